package ui

import (
	"context"
	"math/big"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app"
)

// Screen IDs of the revocation screens.
const (
	RevokeScreenID     = "reception.revoke"
	LossReportScreenID = "reception.loss_report"
)

// revokeScreen is revocation at the holder's request (失効申請, CPS §4.9.3.1(1)): the holder no
// longer needs the certificate, or the card was abolished (reason 5). It ends with the written
// acknowledgement the holder is given after the CA has revoked.
func revokeScreen() Screen {
	return Screen{ID: RevokeScreenID, Title: "revoke.title", Permission: PermissionReception,
		View: func(s *Shell) fyne.CanvasObject { return newRevokeView(s, ProcRevocation) }}
}

// lossReportScreen is the report of a lost, leaked or damaged key or an unusable card
// (紛失・危殆化の届出, reason 1): accepted only at the counter and in writing (CPS §4.9.3.1(2)),
// which is why no other channel of the terminal offers it.
func lossReportScreen() Screen {
	return Screen{ID: LossReportScreenID, Title: "loss.title", Permission: PermissionReception,
		View: func(s *Shell) fyne.CanvasObject { return newRevokeView(s, ProcLossReport) }}
}

// revocationReason is one request kind the counter may send, with its reason code and the JPKI
// meaning of the code (ca-server/revocation/rules.json; CPS §4.9.9).
type revocationReason struct {
	kind RevocationRequestKind
	key  string // translation key of the label
}

// revocationReasons are the request kinds of each procedure; the first is the default.
func revocationReasons(kind ProcedureKind) []revocationReason {
	if kind == ProcLossReport {
		return []revocationReason{
			{RevokeKeyCompromise, "revoke.reason.key_compromise"},
			{RevokeCardUnusable, "revoke.reason.card_unusable"},
		}
	}
	return []revocationReason{
		{RevokeStopUsing, "revoke.reason.stop_using"},
		{RevokeCardAbolished, "revoke.reason.card_abolished"},
	}
}

// serialRow is one certificate to name: a check box and its serial number.
type serialRow struct {
	typ    CertType
	check  *widget.Check
	serial *widget.Entry
}

func newSerialRow(t CertType) *serialRow {
	r := &serialRow{typ: t, serial: widget.NewEntry()}
	r.serial.SetPlaceHolder(tr("procedure.serial.placeholder"))
	r.serial.Disable()
	r.check = widget.NewCheck(certTypeName(t), func(on bool) {
		if on {
			r.serial.Enable()
		} else {
			r.serial.Disable()
		}
	})
	return r
}

func (r *serialRow) enable(on bool) {
	procSetEnabled(r.check, on)
	procSetEnabled(r.serial, on && r.check.Checked)
}

// validSerial reports whether s is a positive hexadecimal serial number (as the domain
// requires), so the clerk learns of a typing error before anything is decided.
func validSerial(s string) bool {
	n, ok := new(big.Int).SetString(strings.TrimPrefix(strings.ReplaceAll(s, ":", ""), "0x"), 16)
	return ok && n.Sign() > 0
}

func normalSerial(s string) string {
	return strings.ToUpper(strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(s), ":", ""), "0x"))
}

// revokeView is the revocation or loss-report screen. It is a widget so that tests can reach its
// fields from the shell's content.
type revokeView struct {
	widget.BaseWidget
	frame   *procedureFrame
	desk    RevocationDesk
	reasons []revocationReason
	certs   []*serialRow
	reason  *widget.RadioGroup
	written *widget.Entry
	preview *documentPreview // the acknowledgement, once made
	content fyne.CanvasObject
}

func newRevokeView(s *Shell, kind ProcedureKind) fyne.CanvasObject {
	desk, ok := deskOf[RevocationDesk](s.Session())
	if !ok {
		l := widget.NewLabel(tr("error.internal"))
		l.Importance = widget.DangerImportance
		return l
	}
	v := &revokeView{desk: desk, reasons: revocationReasons(kind),
		certs: []*serialRow{newSerialRow(CertSignature), newSerialRow(CertUserAuth)}, written: widget.NewEntry()}
	v.ExtendBaseWidget(v)
	labels := make([]string, len(v.reasons))
	for i, r := range v.reasons {
		labels[i] = tr(r.key)
	}
	v.reason = widget.NewRadioGroup(labels, nil)
	v.reason.Required = true
	v.reason.SetSelected(labels[0])
	v.written.SetPlaceHolder(tr("revoke.written_request.placeholder"))

	proceedKey, introKey := "revoke.proceed", "revoke.intro"
	if kind == ProcLossReport {
		proceedKey, introKey = "loss.proceed", "loss.intro"
	}
	f := newProcedureFrame(s, desk, kind, proceedKey)
	v.frame = f
	form := container.New(layout.NewFormLayout())
	for _, r := range v.certs {
		form.Add(r.check)
		form.Add(r.serial)
	}
	form.Add(widget.NewLabel(tr("revoke.reason")))
	form.Add(v.reason)
	form.Add(widget.NewLabel(tr("revoke.written_request")))
	form.Add(v.written)
	// Key compromise and an unusable card are reported on the loss-report screen: counter only,
	// in writing (CPS §4.9.3.1(2)); the revocation screen points there.
	noteKey := "revoke.loss_hint"
	if kind == ProcLossReport {
		noteKey = "loss.counter_only"
	}
	note := widget.NewLabel(tr(noteKey))
	note.Importance = widget.WarningImportance
	note.Wrapping = fyne.TextWrapWord
	details := container.NewVBox(note, form)
	f.specific = details
	f.enableSpecific = func(on bool) {
		for _, r := range v.certs {
			r.enable(on)
		}
		procSetEnabled(v.reason, on)
		procSetEnabled(v.written, on)
	}
	f.clearSpecific = func() {
		for _, r := range v.certs {
			r.check.SetChecked(false)
			r.serial.SetText("")
		}
		v.reason.SetSelected(labels[0])
		v.written.SetText("")
		v.preview = nil
	}
	v.written.OnSubmitted = func(string) { f.doProceed() }
	f.check = v.check
	f.perform = v.perform
	v.content = f.layout(introKey)
	return v
}

func (v *revokeView) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(v.content) }

// check returns what is missing before the decision: at least one certificate with a valid
// serial, a reason, and the reference of the written request (CPS §4.9.3.1: in writing).
func (v *revokeView) check() string {
	n := 0
	for _, r := range v.certs {
		if !r.check.Checked {
			continue
		}
		n++
		if !validSerial(strings.TrimSpace(r.serial.Text)) {
			return "procedure.error.serial"
		}
	}
	switch {
	case n == 0:
		return "procedure.error.no_certificate"
	case v.selectedReason() == "":
		return "revoke.error.reason"
	case strings.TrimSpace(v.written.Text) == "":
		return "revoke.error.written_request"
	}
	return ""
}

func (v *revokeView) selectedReason() RevocationRequestKind {
	for _, r := range v.reasons {
		if tr(r.key) == v.reason.Selected {
			return r.kind
		}
	}
	return ""
}

// perform has the CA revoke and makes the acknowledgement (runs off the UI goroutine).
func (v *revokeView) perform(ctx context.Context, caseID int64) (func(), error) {
	order := RevocationOrder{CaseID: caseID, Kind: v.selectedReason(), WrittenRequest: strings.TrimSpace(v.written.Text),
		Serials: map[CertType]string{}}
	for _, r := range v.certs {
		if r.check.Checked {
			order.Serials[r.typ] = normalSerial(r.serial.Text)
		}
	}
	receipt, err := v.desk.RevokeAtCounter(ctx, order)
	if err != nil {
		// Certificates the CA revoked before refusing another are shown all the same.
		if len(receipt.Revoked) == 0 {
			return nil, err
		}
		return func() { v.showRevoked(receipt.Revoked) }, err
	}
	pdf, pdfErr := v.desk.RevocationNoticePDF(ctx, receipt.Notice)
	return func() {
		v.showRevoked(receipt.Revoked)
		if pdfErr != nil {
			v.frame.result.Add(procDangerLabel(tr("revoke.notice_failed")))
			return
		}
		v.preview = newDocumentPreview(v.frame.shell, procedureOutput(v.frame.shell), tr("revoke.notice_title"), caseID, app.DocumentRevocationNotice, 0, pdf)
		v.frame.result.Add(v.preview.view)
	}, nil
}

// showRevoked lists what the CA revoked, in the CA's words: one block of rows per certificate,
// the titles in a column of their own and the values wrapping in the rest of the width, so that
// a 40-digit serial number or a long reason never widens the window.
func (v *revokeView) showRevoked(revoked []RevokedCertificate) {
	list := container.NewVBox()
	for i, r := range revoked {
		if i > 0 {
			list.Add(widget.NewSeparator())
		}
		list.Add(procFieldRows(
			[2]string{tr("revoke.col.certificate"), certTypeName(r.CertType)},
			[2]string{tr("revoke.col.serial"), r.Serial},
			[2]string{tr("revoke.col.reason"), tr("revoke.reason.value", map[string]any{"Name": r.reasonName(), "Code": r.Reason})},
			[2]string{tr("revoke.col.revoked_at"), r.RevokedAt.In(japanTime).Format("2006-01-02 15:04:05")},
		))
	}
	v.frame.result.Add(list)
}

// procFieldRows lays out title–value rows: bold titles in their own column, values wrapping in
// the remaining width.
func procFieldRows(rows ...[2]string) *fyne.Container {
	form := container.New(layout.NewFormLayout())
	for _, r := range rows {
		form.Add(widget.NewLabelWithStyle(r[0], fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
		form.Add(procWrapped(r[1]))
	}
	return form
}

func procDangerLabel(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Importance = widget.DangerImportance
	l.Wrapping = fyne.TextWrapWord
	return l
}

// reasonName is the CA's meaning of the reason code in the screens' language (the CA's rule
// table sends both).
func (r RevokedCertificate) reasonName() string {
	if language == "en" && r.ReasonEn != "" {
		return r.ReasonEn
	}
	return r.ReasonJa
}
