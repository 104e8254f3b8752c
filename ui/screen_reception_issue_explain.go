package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/workflow"
)

// recExplanationPage is the issuance wizard's explanations (TS Art. 9): one card per item due
// for the case's certificate types (TS Art. 9(1) vs (2)), each acknowledged by the applicant
// before the wizard goes on. The wizard records what was acknowledged with the domain.
//
// Concurrency: touched on the UI goroutine only.
type recExplanationPage struct {
	items     []workflow.Item // due, in the order shown
	explained map[workflow.Item]*widget.Check
	// allAcknowledged: every item is acknowledged, the next button is enabled.
	allAcknowledged binding.Bool
	explainBtn      *widget.Button
	list            *fyne.Container
}

// newRecExplanationPage builds the page for certificate types certTypes; submit records the
// acknowledgements (the next button).
func newRecExplanationPage(certTypes []workflow.CertType, submit func()) *recExplanationPage {
	p := &recExplanationPage{items: workflow.RequiredItems(certTypes), explained: map[workflow.Item]*widget.Check{},
		allAcknowledged: binding.NewBool()}
	p.explainBtn = widget.NewButtonWithIcon(tr("reception.next"), theme.NavigateNextIcon(), submit)
	p.explainBtn.Importance = widget.HighImportance
	bindEnabled(p.explainBtn, p.allAcknowledged)
	intro := widget.NewLabel(tr("reception.explain.intro"))
	intro.Wrapping = fyne.TextWrapWord
	p.list = container.NewVBox(intro)
	for _, it := range p.items {
		title := widget.NewLabelWithStyle(tr(receptionKey("explain", string(it), "title")), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		body := widget.NewLabel(tr(receptionKey("explain", string(it), "body")))
		body.Wrapping = fyne.TextWrapWord
		check := widget.NewCheck(tr("reception.explain.acknowledged"), func(bool) { p.updateExplanation() })
		p.explained[it] = check
		p.list.Add(widget.NewCard("", "", container.NewVBox(title, body, check)))
	}
	return p
}

// content is the page with the wizard's stop button beside its own.
func (p *recExplanationPage) content(stop fyne.CanvasObject) fyne.CanvasObject {
	return container.NewBorder(nil, container.NewHBox(stop, layout.NewSpacer(), p.explainBtn), nil, nil,
		container.NewVScroll(p.list))
}

// updateExplanation enables the next step only when every item is acknowledged.
func (p *recExplanationPage) updateExplanation() {
	all := true
	for _, c := range p.explained {
		all = all && c.Checked
	}
	p.allAcknowledged.Set(all)
}

// acknowledged lists the items the applicant acknowledged, in the order shown.
func (p *recExplanationPage) acknowledged() []workflow.Item {
	var items []workflow.Item
	for _, it := range p.items {
		if c := p.explained[it]; c != nil && c.Checked {
			items = append(items, it)
		}
	}
	return items
}
