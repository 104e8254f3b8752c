package ui

import (
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// recCardPage is the issuance wizard's last page before the issuance: the expiry date printed
// on the card (certificates never outlive the card, CPS §6.3.2.2) and the card put in the
// reader. Its start button begins the issuance, which the wizard runs with the domain.
//
// Concurrency: touched on the UI goroutine only.
type recCardPage struct {
	expiry   *widget.Entry
	expiryOK binding.Bool // a valid date after today: the start button is enabled
	startBtn *widget.Button
	form     *fyne.Container
	// message is the wizard's message line, where an invalid date is said.
	message binding.String
}

// newRecCardPage builds the page for applicant name over the wizard's shared state (the case's
// certificate types, the message line); submit starts the issuance (the start button, and Enter
// in the date when the button is enabled).
func newRecCardPage(name string, shared recShared, submit func()) *recCardPage {
	p := &recCardPage{expiry: widget.NewEntry(), expiryOK: binding.NewBool(), message: shared.message}
	p.expiry.SetPlaceHolder("2035-04-01")
	p.startBtn = widget.NewButtonWithIcon(tr("reception.card.start"), theme.MediaPlayIcon(), submit)
	p.startBtn.Importance = widget.HighImportance
	bindEnabled(p.startBtn, p.expiryOK)
	p.expiry.OnChanged = func(string) { p.updateCard() }
	p.expiry.OnSubmitted = func(string) {
		if isSet(p.expiryOK) {
			submit()
		}
	}
	p.form = container.New(layout.NewFormLayout(),
		widget.NewLabel(tr("cs.name")), widget.NewLabel(name),
		widget.NewLabel(tr("reception.cert.types")), widget.NewLabelWithData(shared.certTypes),
		widget.NewLabel(tr("reception.card.expiry")), p.expiry,
	)
	return p
}

// content is the page with the wizard's stop button beside its own.
func (p *recCardPage) content(stop fyne.CanvasObject) fyne.CanvasObject {
	insert := widget.NewLabelWithStyle(tr("reception.card.insert"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	insert.Wrapping = fyne.TextWrapWord
	note := widget.NewLabel(tr("reception.card.expiry_note"))
	note.Wrapping = fyne.TextWrapWord
	return container.NewVBox(p.form, note, insert, container.NewHBox(stop, layout.NewSpacer(), p.startBtn))
}

// cardExpiry parses the card's expiry date; it must be a date after today.
func (p *recCardPage) cardExpiry() (time.Time, bool) {
	d, err := japanDay(p.expiry.Text)
	if err != nil || !d.After(time.Now()) {
		return time.Time{}, false
	}
	return d, true
}

func (p *recCardPage) updateCard() {
	_, ok := p.cardExpiry()
	p.expiryOK.Set(ok)
	switch {
	case ok:
		p.message.Set("")
	case strings.TrimSpace(p.expiry.Text) != "":
		p.message.Set(tr("reception.card.expiry_invalid"))
	}
}
