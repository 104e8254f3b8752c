package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

// recExistencePage is the issuance wizard's existence check (実在性): the record the imported
// file holds, shown for the clerk to compare with the applicant, and the kind of case and the
// certificate types it was opened with. Its next button goes on to the 外字 step or the
// identity check, which the wizard decides.
//
// Concurrency: touched on the UI goroutine only.
type recExistencePage struct {
	existenceNext *widget.Button
	form          *fyne.Container
}

// newRecExistencePage builds the page for the open case c, whose number and certificate types
// it shows from the wizard's shared state; next goes on (the next button).
func newRecExistencePage(c *workflow.Case, shared recShared, next func()) *recExistencePage {
	a := c.Applicant
	address, addressKey := a.Address, "reception.applicant.address"
	if a.Status == resident.StatusAbroad {
		address, addressKey = a.FuhyoAddress, "reception.applicant.fuhyo_address"
	}
	sex := tr("reception.sex.male")
	if a.Sex == "F" {
		sex = tr("reception.sex.female")
	}
	rows := []fyne.CanvasObject{
		widget.NewLabel(tr("reception.case_no")), widget.NewLabelWithData(shared.caseNo),
		widget.NewLabel(tr("cs.record_code")), widget.NewLabel(a.RecordCode),
		widget.NewLabel(tr("cs.name")), widget.NewLabelWithStyle(a.Name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		widget.NewLabel(tr("cs.name_kana")), widget.NewLabel(a.NameKana),
		widget.NewLabel(tr("cs.birth_date")), widget.NewLabel(a.BirthDate),
		widget.NewLabel(tr("reception.applicant.sex")), widget.NewLabel(sex),
		widget.NewLabel(tr(addressKey)), widget.NewLabel(address),
		widget.NewLabel(tr("cs.status")), widget.NewLabel(residentStatusName(string(a.Status))),
	}
	if a.FormerSurname != "" {
		rows = append(rows, widget.NewLabel(tr("reception.applicant.former_surname")), widget.NewLabel(a.FormerSurname))
	}
	if a.AliasName != "" {
		rows = append(rows, widget.NewLabel(tr("reception.applicant.alias")), widget.NewLabel(a.AliasName))
	}
	if c.Kind != workflow.NewIssuance || c.NewCard {
		// Shown when the case is not a plain new issuance (the usual case needs no extra row).
		rows = append(rows, widget.NewLabel(tr("reception.kind")), widget.NewLabel(recKindName(c)))
	}
	if c.Kind == workflow.Renewal {
		rows = append(rows, widget.NewLabel(tr("reception.renewal.expiry")), widget.NewLabel(c.CurrentExpiry.In(japanTime).Format(dateLayout)))
	}
	rows = append(rows, widget.NewLabel(tr("reception.cert.types")), widget.NewLabelWithData(shared.certTypes))
	p := &recExistencePage{form: container.New(layout.NewFormLayout(), rows...)}
	p.existenceNext = widget.NewButtonWithIcon(tr("reception.next"), theme.NavigateNextIcon(), next)
	p.existenceNext.Importance = widget.HighImportance
	return p
}

// content is the page with the wizard's stop button beside its own.
func (p *recExistencePage) content(stop fyne.CanvasObject) fyne.CanvasObject {
	ok := widget.NewLabel(tr("reception.existence.ok"))
	ok.Importance = widget.SuccessImportance
	ok.Wrapping = fyne.TextWrapWord
	return container.NewVBox(ok, p.form, container.NewHBox(stop, layout.NewSpacer(), p.existenceNext))
}
