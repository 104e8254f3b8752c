package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// recIssuingPage is the issuance wizard's progress page: the named stages of the issuance
// (stepProgress) while the wizard runs it with the domain and the applicant sets the PINs, and
// the warning to leave the card in the reader. A failed issuance's page shows the same stages,
// so the clerk sees where it stopped.
//
// Concurrency: touched on the UI goroutine only.
type recIssuingPage struct {
	progress *stepProgress
	body     fyne.CanvasObject
}

// newRecIssuingPage builds the page for the applicant name, every stage waiting.
func newRecIssuingPage(name string) *recIssuingPage {
	p := &recIssuingPage{progress: newStepProgress(tr("reception.stage.key_and_cert"), tr("reception.stage.write"),
		tr("reception.stage.pin"), tr("reception.stage.verify"), tr("reception.stage.confirm"))}
	keep := widget.NewLabelWithStyle(tr("reception.issuing.keep_card"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	keep.Importance = widget.WarningImportance
	p.body = container.NewVBox(widget.NewLabel(tr("reception.issuing.for", map[string]any{"Name": name})), p.progress.view, keep)
	return p
}
