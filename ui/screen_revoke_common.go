package ui

import (
	"context"
	"errors"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
	"madoguchi/assets/translations"
)

// procedureFrame is the part every counter procedure screen shares (revocation, loss report,
// hold release, certificate copy): open a case for the resident, record the identity check with
// a proxy's documents (CPS §4.1.2.1, R02 II-2-6), then the screen's own part, then the
// decision: proceed, or refuse with a recorded reason (R02 II-8-1(3)). A doubt about identity
// stops the case and nothing more can be done in it (CPS §4.1.2.1(3)).
//
// Concurrency: fields are touched on the UI goroutine only; backend calls run through
// shell.async and hand their results back with shell.do.
type procedureFrame struct {
	shell *Shell
	desk  CounterProcedures
	kind  ProcedureKind
	c     ProcedureCase // zero ID until a case is opened

	code      *widget.Entry
	open      *widget.Button
	applicant *widget.Label
	identity  *identityForm
	record    *widget.Button
	specific  fyne.CanvasObject // the screen's own inputs, shown after the identity check
	proceed   *widget.Button
	reason    *widget.Entry // reason of a refusal or a withdrawal
	refuse    *widget.Button
	withdraw  *widget.Button // the applicant withdrew: the case is stopped with the reason
	restart   *widget.Button
	message   *widget.Label // refusals and errors (danger)
	notice    *widget.Label // progress and success
	result    *fyne.Container
	body      *fyne.Container // the whole screen, laid out again when the result grows
	scroll    *container.Scroll
	busy      bool
	// reveal is set when the outcome of the decision arrives: the screen then scrolls down to
	// it, since the clerk pressed the button at the bottom of a screen taller than the window
	// and the result (the acknowledgement, the copies) is added below it.
	reveal bool

	// check returns the translation key of what is missing in the screen's own inputs, or "".
	check func() string
	// perform runs the procedure for an approved case on the backend goroutine and returns
	// the UI work that shows its outcome.
	perform func(ctx context.Context, caseID int64) (func(), error)
	// enableSpecific enables or disables the screen's own inputs.
	enableSpecific func(on bool)
	// clearSpecific empties the screen's own inputs for the next applicant.
	clearSpecific func()
}

// japanTime is the zone the counter shows times in (the CA answers in UTC).
var japanTime = time.FixedZone("JST", 9*60*60)

// japanDay parses a calendar day typed as YYYY-MM-DD (surrounding spaces ignored) as its start
// in Japan Standard Time, whatever the machine's zone: expiry dates on the card and on
// certificates are Japanese calendar days (the issuer ends validity at the end of a JST day).
func japanDay(text string) (time.Time, error) {
	return time.ParseInLocation(dateLayout, strings.TrimSpace(text), japanTime)
}

// procedureOutput is how the terminal saves, previews and prints the documents it hands over:
// the terminal's wiring (main, app/terminal), shared with the issuance notice (zero disables
// each part and the preview says so).
func procedureOutput(s *Shell) TerminalWiring { return s.Terminal }

// procedureTimeout bounds one backend call of a procedure screen (the CA call included: raclient
// retries inside it with the same request id).
const procedureTimeout = 90 * time.Second

func newProcedureFrame(s *Shell, desk CounterProcedures, kind ProcedureKind, proceedKey string) *procedureFrame {
	f := &procedureFrame{shell: s, desk: desk, kind: kind,
		code: widget.NewEntry(), applicant: widget.NewLabel(tr("procedure.no_case")),
		identity: newIdentityForm(), reason: widget.NewEntry(),
		message: widget.NewLabel(""), notice: widget.NewLabel(""), result: container.NewVBox()}
	f.applicant.Wrapping = fyne.TextWrapWord
	f.message.Importance = widget.DangerImportance
	f.message.Wrapping = fyne.TextWrapWord
	f.notice.Importance = widget.SuccessImportance
	f.notice.Wrapping = fyne.TextWrapWord
	f.code.SetPlaceHolder(tr("procedure.record_code.placeholder"))
	f.code.OnSubmitted = func(string) { f.doOpen() }
	f.open = widget.NewButtonWithIcon(tr("procedure.open"), theme.DocumentCreateIcon(), f.doOpen)
	f.open.Importance = widget.HighImportance
	f.record = widget.NewButtonWithIcon(tr("procedure.identity.record"), theme.ConfirmIcon(), f.doRecordIdentity)
	f.identity.ref.OnSubmitted = func(string) { f.doRecordIdentity() }
	f.proceed = widget.NewButtonWithIcon(tr(proceedKey), theme.ConfirmIcon(), f.doProceed)
	f.proceed.Importance = widget.HighImportance
	f.reason.SetPlaceHolder(tr("procedure.refuse.placeholder"))
	f.reason.OnSubmitted = func(string) { f.doRefuse() }
	f.refuse = widget.NewButtonWithIcon(tr("procedure.refuse"), theme.CancelIcon(), f.doRefuse)
	f.refuse.Importance = widget.WarningImportance
	f.withdraw = widget.NewButtonWithIcon(tr("procedure.withdraw"), theme.ContentUndoIcon(), f.doWithdraw)
	f.restart = widget.NewButtonWithIcon(tr("procedure.restart"), theme.ViewRefreshIcon(), f.reset)
	return f
}

// layout builds the screen: the steps from top to bottom, in tab order.
func (f *procedureFrame) layout(introKey string) fyne.CanvasObject {
	intro := widget.NewLabel(tr(introKey))
	intro.Wrapping = fyne.TextWrapWord
	applicant := container.NewVBox(
		procHeading("procedure.step.applicant"),
		container.NewBorder(nil, nil, widget.NewLabel(tr("procedure.record_code")), f.open, f.code),
		f.applicant,
	)
	identity := container.NewVBox(procHeading("procedure.step.identity"), f.identity.view, container.NewHBox(f.record))
	specific := container.NewVBox(procHeading("procedure.step.details"), f.specific)
	decision := container.NewVBox(procHeading("procedure.step.decision"),
		container.NewHBox(f.proceed),
		container.NewBorder(nil, nil, widget.NewLabel(tr("procedure.refuse.reason")), container.NewHBox(f.refuse, f.withdraw), f.reason),
	)
	f.body = container.NewVBox(intro, applicant, widget.NewSeparator(), identity, widget.NewSeparator(),
		specific, widget.NewSeparator(), decision, f.message, f.notice, container.NewHBox(f.restart), f.result)
	f.refresh()
	var page fyne.CanvasObject
	f.scroll, page = newPageScroll(f.body)
	return page
}

func procHeading(key string) *widget.Label {
	l := widget.NewLabelWithStyle(tr(key), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	l.SizeName = theme.SizeNameSubHeadingText
	return l
}

// refresh enables exactly the step the case is at.
func (f *procedureFrame) refresh() {
	opened := f.c.ID != 0
	final := opened && f.c.Final()
	procSetEnabled(f.code, !opened && !f.busy)
	procSetEnabled(f.open, !opened && !f.busy)
	f.identity.enable(opened && f.c.State == "opened" && !f.busy)
	procSetEnabled(f.record, opened && f.c.State == "opened" && !f.busy)
	ready := opened && (f.c.State == "identity_checked" || f.c.State == "approved") && !f.busy
	if f.enableSpecific != nil {
		f.enableSpecific(ready)
	}
	procSetEnabled(f.proceed, ready)
	procSetEnabled(f.reason, ready || (opened && f.c.State == "opened" && !f.busy))
	procSetEnabled(f.refuse, ready || (opened && f.c.State == "opened" && !f.busy))
	procSetEnabled(f.withdraw, ready || (opened && f.c.State == "opened" && !f.busy))
	if final {
		f.restart.Show()
	} else {
		f.restart.Hide()
	}
}

type procToggle interface {
	Enable()
	Disable()
}

func procSetEnabled(w procToggle, on bool) {
	if on {
		w.Enable()
	} else {
		w.Disable()
	}
}

// run calls the backend off the UI goroutine with the frame marked busy, then applies the
// outcome on the UI goroutine.
func (f *procedureFrame) run(call func(ctx context.Context) (func(), error)) {
	f.busy = true
	f.message.SetText("")
	f.refresh()
	f.shell.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), procedureTimeout)
		apply, err := call(ctx)
		cancel()
		f.shell.do(func() {
			f.busy = false
			if apply != nil {
				apply()
			}
			if err != nil {
				f.message.SetText(procedureErrorMessage(err))
			}
			f.refresh()
			// A container's Add lays out only itself: lay the screen out again for the result.
			if f.body != nil {
				f.body.Refresh()
			}
			if f.reveal {
				f.reveal = false
				f.revealOutcome()
			}
		})
	})
}

// revealOutcome scrolls the screen so that the outcome of the decision (the message, the notice,
// then the result: the acknowledgement and its preview, the copies) starts at the top of the
// window. The screen is laid out first, so the positions are those of the grown content.
func (f *procedureFrame) revealOutcome() {
	if f.scroll == nil {
		return
	}
	f.scroll.Refresh()
	top := f.message.Position().Y
	if f.message.Text == "" {
		top = f.notice.Position().Y
	}
	// The scroll container clamps the offset to the end of the content.
	f.scroll.ScrollToOffset(fyne.NewPos(0, top))
}

func (f *procedureFrame) setCase(c ProcedureCase) {
	f.c = c
	f.applicant.SetText(tr("procedure.case", map[string]any{"ID": c.ID, "Name": c.ApplicantName, "Code": c.RecordCode}))
}

func (f *procedureFrame) doOpen() {
	code := strings.TrimSpace(f.code.Text)
	if code == "" {
		f.message.SetText(tr("procedure.error.record_code"))
		return
	}
	f.notice.SetText("")
	f.run(func(ctx context.Context) (func(), error) {
		c, err := f.desk.OpenProcedure(ctx, f.kind, code)
		if err != nil {
			return nil, err
		}
		return func() {
			f.setCase(c)
			f.notice.SetText(tr("procedure.opened"))
			f.focus(f.identity.ref)
		}, nil
	})
}

func (f *procedureFrame) doRecordIdentity() {
	if f.c.ID == 0 || f.c.State != "opened" {
		return
	}
	e, key := f.identity.evidence()
	if key != "" {
		f.message.SetText(tr(key))
		return
	}
	f.notice.SetText("")
	id := f.c.ID
	f.run(func(ctx context.Context) (func(), error) {
		c, err := f.desk.RecordProcedureIdentity(ctx, id, e)
		if errors.Is(err, apperr.IdentityDoubt) {
			// The stop is a recorded decision: show the stopped case and why.
			return func() {
				f.setCase(c)
				f.c.State = "stopped"
			}, err
		}
		if err != nil {
			return nil, err
		}
		return func() {
			f.setCase(c)
			f.notice.SetText(tr("procedure.identity.recorded"))
		}, nil
	})
}

func (f *procedureFrame) doProceed() {
	if f.c.ID == 0 || !(f.c.State == "identity_checked" || f.c.State == "approved") {
		return
	}
	if f.check != nil {
		if key := f.check(); key != "" {
			f.message.SetText(tr(key))
			return
		}
	}
	f.notice.SetText(tr("procedure.working"))
	c := f.c
	f.run(func(ctx context.Context) (func(), error) {
		if c.State != "approved" {
			approved, err := f.desk.ApproveProcedure(ctx, c.ID)
			if err != nil {
				return func() { f.notice.SetText("") }, err
			}
			c = approved
		}
		show, err := f.perform(ctx, c.ID)
		return func() {
			f.c.State = c.State
			f.result.RemoveAll()
			f.reveal = true
			if show != nil {
				show()
			}
			if err != nil {
				// The decision stands; the clerk may try again or refuse with a reason.
				f.notice.SetText("")
				return
			}
			f.c.State = "completed"
			f.notice.SetText(tr("procedure.completed"))
		}, err
	})
}

func (f *procedureFrame) doRefuse() {
	if f.c.ID == 0 || f.c.Final() {
		return
	}
	reason := strings.TrimSpace(f.reason.Text)
	if reason == "" {
		f.message.SetText(tr("procedure.error.refuse_reason"))
		return
	}
	id := f.c.ID
	f.notice.SetText("")
	f.run(func(ctx context.Context) (func(), error) {
		c, err := f.desk.RefuseProcedure(ctx, id, reason)
		if err != nil {
			return nil, err
		}
		return func() {
			f.setCase(c)
			f.notice.SetText(tr("procedure.refused"))
		}, nil
	})
}

// doWithdraw stops the case because the applicant withdrew, with the reason in the same field.
func (f *procedureFrame) doWithdraw() {
	if f.c.ID == 0 || f.c.Final() {
		return
	}
	reason := strings.TrimSpace(f.reason.Text)
	if reason == "" {
		f.message.SetText(tr("procedure.error.refuse_reason"))
		return
	}
	id := f.c.ID
	f.notice.SetText("")
	f.run(func(ctx context.Context) (func(), error) {
		c, err := f.desk.StopProcedure(ctx, id, reason)
		if err != nil {
			return nil, err
		}
		return func() {
			f.setCase(c)
			f.notice.SetText(tr("procedure.withdrawn"))
		}, nil
	})
}

// reset clears the screen for the next applicant.
func (f *procedureFrame) reset() {
	f.c = ProcedureCase{}
	f.code.SetText("")
	f.applicant.SetText(tr("procedure.no_case"))
	f.identity.clear()
	f.reason.SetText("")
	if f.clearSpecific != nil {
		f.clearSpecific()
	}
	f.message.SetText("")
	f.notice.SetText("")
	f.result.RemoveAll()
	f.refresh()
	f.body.Refresh()
	f.focus(f.code)
}

func (f *procedureFrame) focus(o fyne.Focusable) {
	if c := fyne.CurrentApp().Driver().CanvasForObject(o.(fyne.CanvasObject)); c != nil {
		c.Focus(o)
	}
}

// identityForm records the identity check: the photo ID shown, or a proxy's documents.
type identityForm struct {
	document      *widget.Select
	ref           *widget.Entry
	proxy         *widget.Check
	attorney      *widget.Check
	inquiry       *widget.Check
	proxyName     *widget.Entry
	proxyDocument *widget.Select
	doubt         *widget.Entry
	proxyBox      *fyne.Container
	view          fyne.CanvasObject
}

func newIdentityForm() *identityForm {
	i := &identityForm{
		document: widget.NewSelect(documentNames(), nil), ref: widget.NewEntry(),
		attorney:  widget.NewCheck(tr("procedure.identity.power_of_attorney"), nil),
		inquiry:   widget.NewCheck(tr("procedure.identity.inquiry_reply"), nil),
		proxyName: widget.NewEntry(), proxyDocument: widget.NewSelect(documentNames(), nil),
		doubt: widget.NewEntry(),
	}
	i.document.PlaceHolder = tr("procedure.identity.choose_document")
	i.proxyDocument.PlaceHolder = tr("procedure.identity.choose_document")
	i.ref.SetPlaceHolder(tr("procedure.identity.document_ref.placeholder"))
	i.doubt.SetPlaceHolder(tr("procedure.identity.doubt.placeholder"))
	i.proxyBox = container.New(layout.NewFormLayout(),
		widget.NewLabel(""), i.attorney,
		widget.NewLabel(""), i.inquiry,
		widget.NewLabel(tr("procedure.identity.proxy_name")), i.proxyName,
		widget.NewLabel(tr("procedure.identity.proxy_document")), i.proxyDocument,
	)
	i.proxyBox.Hide()
	i.proxy = widget.NewCheck(tr("procedure.identity.proxy"), func(on bool) {
		if on {
			i.proxyBox.Show()
		} else {
			i.proxyBox.Hide()
		}
	})
	i.view = container.NewVBox(
		container.New(layout.NewFormLayout(),
			widget.NewLabel(tr("procedure.identity.document")), i.document,
			widget.NewLabel(tr("procedure.identity.document_ref")), i.ref,
			widget.NewLabel(""), i.proxy,
		),
		i.proxyBox,
		container.New(layout.NewFormLayout(), widget.NewLabel(tr("procedure.identity.doubt")), i.doubt),
	)
	return i
}

// evidence returns what the form records, or the key of the message that says what is missing.
// A doubt needs nothing else: it stops the case (CPS §4.1.2.1(3)).
func (i *identityForm) evidence() (ProcedureEvidence, string) {
	e := ProcedureEvidence{Document: documentOf(i.document.Selected), DocumentRef: strings.TrimSpace(i.ref.Text),
		Proxy: i.proxy.Checked, Doubt: strings.TrimSpace(i.doubt.Text)}
	if e.Proxy {
		e.PowerOfAttorney, e.InquiryReply = i.attorney.Checked, i.inquiry.Checked
		e.ProxyName, e.ProxyDocument = strings.TrimSpace(i.proxyName.Text), documentOf(i.proxyDocument.Selected)
	}
	if e.Doubt != "" {
		return e, ""
	}
	switch {
	case e.Document == "":
		return e, "procedure.error.document"
	case e.Proxy && (!e.PowerOfAttorney || !e.InquiryReply):
		return e, "procedure.error.proxy_documents"
	case e.Proxy && (e.ProxyName == "" || e.ProxyDocument == ""):
		return e, "procedure.error.proxy_identity"
	}
	return e, ""
}

func (i *identityForm) enable(on bool) {
	for _, w := range []procToggle{i.document, i.ref, i.proxy, i.attorney, i.inquiry, i.proxyName, i.proxyDocument, i.doubt} {
		procSetEnabled(w, on)
	}
}

func (i *identityForm) clear() {
	i.document.ClearSelected()
	i.ref.SetText("")
	i.proxy.SetChecked(false)
	i.attorney.SetChecked(false)
	i.inquiry.SetChecked(false)
	i.proxyName.SetText("")
	i.proxyDocument.ClearSelected()
	i.doubt.SetText("")
}

// documentName is the translated name of an identity document.
func documentName(d IdentityDocument) string {
	switch d {
	case "my_number_card":
		return tr("document.my_number_card")
	case "drivers_licence":
		return tr("document.drivers_licence")
	case "passport":
		return tr("document.passport")
	case "residence_card":
		return tr("document.residence_card")
	case "special_permanent_resident_certificate":
		return tr("document.special_permanent_resident_certificate")
	case "disability_certificate_with_photo":
		return tr("document.disability_certificate_with_photo")
	case "other_official_photo_id":
		return tr("document.other_official_photo_id")
	}
	return string(d)
}

func documentNames() []string {
	out := make([]string, len(IdentityDocuments))
	for i, d := range IdentityDocuments {
		out[i] = documentName(d)
	}
	return out
}

func documentOf(name string) IdentityDocument {
	for _, d := range IdentityDocuments {
		if name != "" && documentName(d) == name {
			return d
		}
	}
	return ""
}

// certTypeName is the translated name of a certificate type.
func certTypeName(t CertType) string {
	switch t {
	case CertSignature:
		return tr("cert.signature")
	case CertUserAuth:
		return tr("cert.user_auth")
	}
	return string(t)
}

// certChoice offers the two certificates of the card as check boxes.
type certChoice struct {
	signature, userAuth *widget.Check
	view                fyne.CanvasObject
}

func newCertChoice() *certChoice {
	c := &certChoice{signature: widget.NewCheck(tr("cert.signature"), nil), userAuth: widget.NewCheck(tr("cert.user_auth"), nil)}
	c.view = container.NewHBox(c.signature, c.userAuth)
	return c
}

func (c *certChoice) selected() []CertType {
	var out []CertType
	if c.signature.Checked {
		out = append(out, CertSignature)
	}
	if c.userAuth.Checked {
		out = append(out, CertUserAuth)
	}
	return out
}

func (c *certChoice) enable(on bool) {
	procSetEnabled(c.signature, on)
	procSetEnabled(c.userAuth, on)
}

// procedureErrorMessage is the clerk's message for a refusal in a counter procedure: the CA's
// specific answer where the domain classified it (procedureErrorKey), otherwise the general
// message of the refusal's kind.
func procedureErrorMessage(err error) string {
	var pe *CardPINRefused
	if errors.As(err, &pe) && !pe.Blocked {
		return tr("copy.error.wrong_pin", map[string]any{"Tries": pe.TriesLeft})
	}
	return tr(procedureErrorKey(err))
}

func procedureErrorKey(err error) string {
	// ui's own adapter errors, when no domain refusal (an apperr kind) wraps them.
	var kinded apperr.Kinded
	var pe *CardPINRefused
	switch {
	case errors.As(err, &kinded):
	case errors.As(err, &pe):
		return "copy.error.pin_blocked"
	case errors.Is(err, ErrCardUnavailable):
		return "copy.error.card"
	case errors.Is(err, ErrPINCancelled):
		return "copy.error.pin_cancelled"
	}
	return translations.ErrorKey(translations.Procedure, err)
}
