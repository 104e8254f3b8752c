// Package ui is the integrated counter terminal's desktop interface (統合端末, TS Art. 1(iii)):
// Fyne screens for municipal clerks, Japanese first with English through Fyne's lang package,
// drawn with the bundled Noto Sans CJK JP font.
//
// The package talks to the counter domain only through small interfaces, so every screen is
// tested headless with fyne.io/fyne/v2/test against an in-process fake:
//   - backend.go: Backend (log-in), Session (the logged-in operator), CardWatcher and CAWatcher
//     (the status bar), OperatorDirectory, PINJudge, ResidentRegister;
//   - beside the screens that need them: ReceptionDesk, TerminalSettings and PDFRenderer
//     (screen_reception_desk.go), CounterProcedures, RevocationDesk, HoldReleaseDesk,
//     ResidentChangeDesk and CertificateCopyDesk (screen_revoke_desk.go), CardMaintenanceDesk
//     (screen_maintenance.go), OperatorAdmin (screen_operators.go), AuditLog
//     (screen_history.go), DocumentPrinter and PDFSpooler (printpreview.go).
//
// AppBackend (appbackend*.go) adapts the domain (app) to them. The procedures take their CA
// client, card and document printer from the terminal (app/terminal), so the screens pass
// neither; ui imports no card (cardio) or CA client (raclient) package. It never imports
// fyne.io/fyne/v2/app (that pulls in the GL driver): only the terminal's main package builds
// the Fyne app and window.
//
// Concurrency: widgets are touched only on Fyne's UI goroutine. Backend calls may block (database,
// fprintd, the CA), so the screens make them on their own goroutines and hand the results back
// with fyne.Do; watcher callbacks (card, CA) arrive on the watcher's goroutine and are applied to
// bindings the same way.
//
// Secrets: PINs and passwords are never logged, stored or formatted; the applicant PIN screen
// hands the PIN over once and clears its fields, so the clerk cannot read it back (CPS §6.4.1.2,
// DOMAIN §2: the applicant sets the PIN personally and the operator never sees it).
package ui
