// Package ui is the integrated counter terminal's desktop interface (統合端末, TS Art. 1(iii)):
// Fyne screens for municipal clerks, Japanese first with English through Fyne's lang package,
// drawn with the bundled Noto Sans CJK JP font.
//
// The package talks to the counter domain only through small interfaces, each declared beside
// the screen that needs it, so every screen is tested headless with fyne.io/fyne/v2/test against
// an in-process fake:
//   - backend.go: Backend (log-in) and Session (the logged-in operator);
//   - status.go: CardWatcher and CAWatcher (the status bar); shell.go: PINJudge (the applicant
//     PIN screen); residentsearch.go: ResidentSearcher (the one resident-search form, shared by
//     the residents and resident-changes screens); screen_residents.go: ResidentRegister;
//   - ReceptionDesk, TerminalSettings and PDFRenderer (screen_reception_desk.go),
//     CounterProcedures, RevocationDesk, HoldReleaseDesk, ResidentChangeDesk and
//     CertificateCopyDesk (screen_revoke_desk.go), CardMaintenanceDesk (screen_maintenance.go),
//     OperatorDirectory and OperatorAdmin (screen_operators.go), AuditLog (screen_history.go),
//     DocumentPrinter and PDFSpooler (printpreview.go).
//
// AppBackend (appbackend*.go) adapts the domain (app) to them; its session embeds app.Session,
// so a method whose signature is app's own needs no adapter. The procedures take their CA
// client, card and document printer from the terminal (app/terminal), so the screens pass
// neither; ui imports no card (cardio) or CA client (raclient) package. It never imports
// fyne.io/fyne/v2/app (that pulls in the GL driver): only the terminal's main package builds
// the Fyne app and window.
//
// Screens are rows of a table (screens.go), one file each, with a reception wizard or screen
// for every reception workflow of app/workflow: the issuance wizard for new issuance, renewal
// and new-card issuance with its 外字 step, a sequence of page types (file, existence, 外字,
// identity, explanations, card, issuing, result, failed; screen_reception_issue_*.go), each
// owning its widgets over bound state (fyne.io/fyne/v2/data/binding: the step header, the message
// line, the case number and certificate types, the progress, the saved notice's path, each next
// button's enabled state), with the domain calls between the pages in the wizard
// (screen_reception_issue.go); revocation, loss report, hold release, certificate
// copy, PIN reset and key destruction on the shared procedure frame. Texts come from
// assets/translations through Fyne's lang; an error's words from the one table in messages.go.
// Every screen fits the 1200×800 counter window: long texts wrap or end in an ellipsis, tall
// screens scroll under the fixed header and status bar, the audit table's detail column fills the
// width and the selected record is shown whole below it, and the shell scrolls a too-wide screen
// sideways as a last resort (TestScreensFitCounterWindow).
//
// Concurrency: widgets are touched only on Fyne's UI goroutine. Backend calls may block (database,
// fprintd, the CA), so the screens make them on their own goroutines and hand the results back
// with fyne.Do; watcher callbacks (card, CA) arrive on the watcher's goroutine and are applied to
// bindings the same way. A binding tells its widgets through fyne.Do, so in the running app a
// bound widget follows its Set one event-loop turn later: a handler reads the binding (the
// wizard's isSet), not the widget's state.
//
// Secrets: PINs and passwords are never logged, stored or formatted; the applicant PIN screen
// hands the PIN over once and clears its fields, so the clerk cannot read it back (CPS §6.4.1.2,
// DOMAIN §2: the applicant sets the PIN personally and the operator never sees it).
package ui
