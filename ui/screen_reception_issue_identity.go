package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/data/binding"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/workflow"
)

// recIdentityPage is the issuance wizard's identity check (本人性; CPS §3.2.3, R02 II-2-6): the
// applicant in person or a proxy with power of attorney and inquiry reply, the photo identity
// document, and the operator's doubt, which stops the case instead (CPS §4.1.2.1(3)). It owns
// its widgets and says what was checked (evidence); the wizard records it with the domain.
//
// Concurrency: touched on the UI goroutine only.
type recIdentityPage struct {
	who          *widget.RadioGroup
	document     *widget.Select
	documentRef  *widget.Entry
	proxyBox     *fyne.Container
	identityBody *fyne.Container
	poa          *widget.Check
	inquiry      *widget.Check
	proxyName    *widget.Entry
	proxyDoc     *widget.Select
	doubt        *widget.Check
	doubtReason  *widget.Entry
	identityOK   binding.Bool // the evidence is complete, or the doubt has its reason: the button is enabled
	identityBtn  *widget.Button
}

// newRecIdentityPage builds the page for the applicant name, born birth; submit records the
// evidence (the next button, and Enter in the document reference when the button is enabled).
func newRecIdentityPage(name, birth string, submit func()) *recIdentityPage {
	p := &recIdentityPage{identityOK: binding.NewBool()}
	self, proxy := tr("reception.identity.self"), tr("reception.identity.proxy")
	p.who = widget.NewRadioGroup([]string{self, proxy}, nil)
	p.who.Horizontal = true
	p.who.Required = true
	p.document = widget.NewSelect(recDocumentNames(), nil)
	p.document.PlaceHolder = tr("reception.identity.document.choose")
	p.documentRef = widget.NewEntry()
	p.documentRef.SetPlaceHolder(tr("reception.identity.document_ref.placeholder"))
	p.poa = widget.NewCheck(tr("reception.identity.power_of_attorney"), nil)
	p.inquiry = widget.NewCheck(tr("reception.identity.inquiry_reply"), nil)
	p.proxyName = widget.NewEntry()
	p.proxyDoc = widget.NewSelect(recDocumentNames(), nil)
	p.proxyDoc.PlaceHolder = tr("reception.identity.document.choose")
	p.doubt = widget.NewCheck(tr("reception.identity.doubt"), nil)
	p.doubtReason = widget.NewEntry()
	p.doubtReason.SetPlaceHolder(tr("reception.identity.doubt_reason"))
	p.doubtReason.Hide()
	p.identityBtn = widget.NewButtonWithIcon(tr("reception.next"), theme.NavigateNextIcon(), submit)
	p.identityBtn.Importance = widget.HighImportance
	bindEnabled(p.identityBtn, p.identityOK)

	proxyNote := widget.NewLabel(tr("reception.identity.proxy_note"))
	proxyNote.Wrapping = fyne.TextWrapWord
	p.proxyBox = container.NewVBox(widget.NewSeparator(), proxyNote, p.poa, p.inquiry,
		container.New(layout.NewFormLayout(),
			widget.NewLabel(tr("reception.identity.proxy_name")), p.proxyName,
			widget.NewLabel(tr("reception.identity.proxy_document")), p.proxyDoc))
	p.proxyBox.Hide()

	update := func() { p.updateIdentity() }
	p.who.OnChanged = func(string) { update() }
	p.document.OnChanged = func(string) { update() }
	p.poa.OnChanged = func(bool) { update() }
	p.inquiry.OnChanged = func(bool) { update() }
	p.proxyName.OnChanged = func(string) { update() }
	p.proxyDoc.OnChanged = func(string) { update() }
	p.doubt.OnChanged = func(bool) { update() }
	p.doubtReason.OnChanged = func(string) { update() }
	p.documentRef.OnSubmitted = func(string) {
		if isSet(p.identityOK) {
			submit()
		}
	}
	p.who.SetSelected(self)

	applicant := widget.NewLabel(tr("reception.identity.applicant", map[string]any{"Name": name, "Birth": birth}))
	form := container.New(layout.NewFormLayout(),
		widget.NewLabel(tr("reception.identity.who")), p.who,
		widget.NewLabel(tr("reception.identity.document")), p.document,
		widget.NewLabel(tr("reception.identity.document_ref")), p.documentRef,
	)
	doubtBox := container.NewVBox(widget.NewSeparator(), p.doubt, p.doubtReason)
	p.identityBody = container.NewVBox(applicant, form, p.proxyBox, doubtBox)
	return p
}

// content is the page with the wizard's stop button beside its own.
func (p *recIdentityPage) content(stop fyne.CanvasObject) fyne.CanvasObject {
	return container.NewBorder(nil, container.NewHBox(stop, layout.NewSpacer(), p.identityBtn), nil, nil,
		container.NewVScroll(p.identityBody))
}

func (p *recIdentityPage) isProxy() bool { return p.who.Selected == tr("reception.identity.proxy") }

// updateIdentity shows the proxy branch for a proxy and enables the button only when the
// evidence the rules require is complete; with a doubt, the button stops the case instead.
func (p *recIdentityPage) updateIdentity() {
	if p.isProxy() != p.proxyBox.Visible() {
		if p.isProxy() {
			p.proxyBox.Show()
		} else {
			p.proxyBox.Hide()
		}
		p.identityBody.Refresh()
	}
	if p.doubt.Checked {
		if !p.doubtReason.Visible() {
			p.doubtReason.Show()
			p.identityBody.Refresh()
		}
		p.identityBtn.SetText(tr("reception.identity.stop"))
		p.identityBtn.SetIcon(theme.CancelIcon())
		p.identityBtn.Importance = widget.DangerImportance
		p.identityBtn.Refresh()
		p.identityOK.Set(strings.TrimSpace(p.doubtReason.Text) != "")
		return
	}
	if p.doubtReason.Visible() {
		p.doubtReason.Hide()
		p.identityBody.Refresh()
	}
	p.identityBtn.SetText(tr("reception.next"))
	p.identityBtn.SetIcon(theme.NavigateNextIcon())
	p.identityBtn.Importance = widget.HighImportance
	complete := p.document.Selected != ""
	if p.isProxy() {
		complete = complete && p.poa.Checked && p.inquiry.Checked && strings.TrimSpace(p.proxyName.Text) != "" && p.proxyDoc.Selected != ""
	}
	p.identityBtn.Refresh()
	p.identityOK.Set(complete)
}

func (p *recIdentityPage) evidence() workflow.Evidence {
	e := workflow.Evidence{Document: recDocumentOf(p.document.Selected), DocumentRef: strings.TrimSpace(p.documentRef.Text)}
	if p.isProxy() {
		e.Proxy, e.PowerOfAttorney, e.InquiryReply = true, p.poa.Checked, p.inquiry.Checked
		e.ProxyName, e.ProxyDocument = strings.TrimSpace(p.proxyName.Text), recDocumentOf(p.proxyDoc.Selected)
	}
	if p.doubt.Checked {
		e.Doubt = strings.TrimSpace(p.doubtReason.Text)
	}
	return e
}
