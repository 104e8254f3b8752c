package ui

import (
	"context"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"
)

// HoldScreenID is the screen ID of the hold release.
const HoldScreenID = "reception.hold_release"

// holdScreen releases a hold (一時保留の解除): a hold is set when the card is reported lost by
// phone and released only at the counter, after the existence, identity and authenticity checks
// (CPS §4.9.13–16). A certificate that is not on hold is refused by the CA, and so is a revoked
// one: revocation is never undone.
func holdScreen() Screen {
	return Screen{ID: HoldScreenID, Title: "hold.title", Permission: PermissionReception, View: newHoldView}
}

// holdView is the hold-release screen; one certificate per case, as the domain completes the
// case with the release.
type holdView struct {
	widget.BaseWidget
	frame   *procedureFrame
	desk    HoldReleaseDesk
	cert    *widget.RadioGroup
	serial  *widget.Entry
	content fyne.CanvasObject
}

func newHoldView(s *Shell) fyne.CanvasObject {
	desk, ok := deskOf[HoldReleaseDesk](s.Session())
	if !ok {
		return procDangerLabel(tr("error.internal"))
	}
	v := &holdView{desk: desk, serial: widget.NewEntry(),
		cert: widget.NewRadioGroup([]string{certTypeName(CertSignature), certTypeName(CertUserAuth)}, nil)}
	v.ExtendBaseWidget(v)
	v.cert.Required = true
	v.serial.SetPlaceHolder(tr("procedure.serial.placeholder"))
	f := newProcedureFrame(s, desk, ProcHoldRelease, "hold.proceed")
	v.frame = f
	f.specific = container.New(layout.NewFormLayout(),
		widget.NewLabel(tr("hold.certificate")), v.cert,
		widget.NewLabel(tr("hold.serial")), v.serial,
	)
	f.enableSpecific = func(on bool) {
		procSetEnabled(v.cert, on)
		procSetEnabled(v.serial, on)
	}
	f.clearSpecific = func() {
		v.cert.SetSelected("")
		v.serial.SetText("")
	}
	v.serial.OnSubmitted = func(string) { f.doProceed() }
	f.check = v.check
	f.perform = v.perform
	v.content = f.layout("hold.intro")
	return v
}

func (v *holdView) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(v.content) }

func (v *holdView) certType() CertType {
	switch v.cert.Selected {
	case certTypeName(CertSignature):
		return CertSignature
	case certTypeName(CertUserAuth):
		return CertUserAuth
	}
	return ""
}

func (v *holdView) check() string {
	switch {
	case v.certType() == "":
		return "procedure.error.no_certificate"
	case !validSerial(strings.TrimSpace(v.serial.Text)):
		return "procedure.error.serial"
	}
	return ""
}

func (v *holdView) perform(ctx context.Context, caseID int64) (func(), error) {
	o := HoldReleaseOrder{CaseID: caseID, CertType: v.certType(), Serial: normalSerial(v.serial.Text)}
	state, err := v.desk.ReleaseHoldAtCounter(ctx, o)
	if err != nil {
		return nil, err
	}
	return func() {
		l := widget.NewLabel(tr("hold.released", map[string]any{"Certificate": certTypeName(o.CertType), "Serial": o.Serial,
			"State": caStateName(state)}))
		l.Importance = widget.SuccessImportance
		l.Wrapping = fyne.TextWrapWord
		v.frame.result.Add(l)
	}, nil
}

// caStateName is the translated state of a certificate at the CA.
func caStateName(state string) string {
	switch state {
	case "delivered":
		return tr("hold.state.valid")
	case "held":
		return tr("hold.state.held")
	case "revoked":
		return tr("hold.state.revoked")
	}
	return state
}
