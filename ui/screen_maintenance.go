package ui

import (
	"context"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"
)

// The card-maintenance procedures of the counter: the reset of a PIN
// (暗証番号の初期化・ロック解除) and the destruction of the card's keys (鍵の廃棄). Both change the card with commands it
// accepts only under the card issuer's keys, which the CA holds: the CA authorises a protected
// script for this card and the terminal relays it (TS Arts. 6(ii), 7(ii); app.Session.ResetPIN,
// app.Session.DestroyKeys). They run in the procedure frame the other counter procedures share:
// case, identity check, decision (CPS §4.1.2.1; R02 II-8-1(3)).

// Screen IDs of the card-maintenance screens.
const (
	PINResetScreenID       = "reception.pin_reset"
	KeyDestructionScreenID = "reception.key_destruction"
)

// The card-maintenance procedures (app/workflow kinds).
const (
	// ProcPINReset resets (and so unblocks) one PIN of the card; the holder sets a new one.
	ProcPINReset ProcedureKind = "pin_reset"
	// ProcKeyDestruction erases the private keys on the card, after their certificates were
	// revoked.
	ProcKeyDestruction ProcedureKind = "key_destruction"
)

// CardMaintenanceDesk runs the card maintenance of an approved case with the card in the
// reader, through the CA. The domain checks the Reception permission (TS Art. 3(4)), audits,
// and completes the case on success.
type CardMaintenanceDesk interface {
	CounterProcedures
	// ResetPINAtCounter resets PIN which, then asks the holder for the new PIN through newPIN
	// (called again with Refused set when the rules of TS Art. 4 or the card refused the
	// entry; it returns a fresh slice the callee overwrites). Refusals: CardUnknown,
	// CardOtherMunicipality (the card is not this counter's), PINNotSet (the holder gave up
	// after the reset), NotSupported, CAUnavailable; ErrCardUnavailable without a card.
	ResetPINAtCounter(ctx context.Context, caseID int64, which PINKind, newPIN func(ctx context.Context, req ApplicantPINRequest) ([]byte, error)) error
	// DestroyKeysAtCounter erases the keys of the card in the reader. Refusals as
	// ResetPINAtCounter, and CertificateNotRevoked while a certificate of a key is still valid
	// or on hold (revoke it first, CPS §4.9.1).
	DestroyKeysAtCounter(ctx context.Context, caseID int64) error
}

// pinResetScreen resets one PIN of the holder's card (a forgotten or blocked PIN) and has the
// holder set a new one on the applicant-facing screen (CPS §6.4.1.2: the holder sets it
// personally; the clerk never sees it).
func pinResetScreen() Screen {
	return Screen{ID: PINResetScreenID, Title: "maintenance.pin_reset.title", Permission: PermissionReception, View: newPINResetView}
}

// keyDestructionScreen erases the private keys on the holder's card: never undone, and only
// once their certificates are revoked (the CA refuses otherwise).
func keyDestructionScreen() Screen {
	return Screen{ID: KeyDestructionScreenID, Title: "maintenance.key_destruction.title", Permission: PermissionReception, View: newKeyDestructionView}
}

// pinResetTimeout bounds a PIN reset including the holder's entries of the new PIN; when it
// ends, the PIN screen closes and the PIN stays "not set" until the procedure is repeated.
const pinResetTimeout = 10 * time.Minute

// maintenanceView is the PIN-reset or key-destruction screen. It is a widget so that tests can
// reach its fields from the shell's content.
type maintenanceView struct {
	widget.BaseWidget
	frame   *procedureFrame
	desk    CardMaintenanceDesk
	kind    ProcedureKind
	which   *widget.RadioGroup // PIN reset: which PIN
	confirm *widget.Check      // key destruction: the holder understood it cannot be undone
	content fyne.CanvasObject
}

func (v *maintenanceView) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(v.content)
}

func newPINResetView(s *Shell) fyne.CanvasObject {
	desk, ok := deskOf[CardMaintenanceDesk](s.Session())
	if !ok {
		return procDangerLabel(tr("error.internal"))
	}
	v := &maintenanceView{desk: desk, kind: ProcPINReset,
		which: widget.NewRadioGroup([]string{tr("maintenance.pin.signature"), tr("maintenance.pin.user_auth")}, nil)}
	v.ExtendBaseWidget(v)
	v.which.Required = true
	f := newProcedureFrame(s, desk, ProcPINReset, "maintenance.pin_reset.proceed")
	v.frame = f
	note := widget.NewLabel(tr("maintenance.pin_reset.note"))
	note.Wrapping = fyne.TextWrapWord
	f.specific = container.NewVBox(
		container.New(layout.NewFormLayout(), widget.NewLabel(tr("maintenance.pin_reset.which")), v.which),
		note)
	f.enableSpecific = func(on bool) { procSetEnabled(v.which, on) }
	f.clearSpecific = func() { v.which.SetSelected("") }
	f.check = func() string {
		if v.which.Selected == "" {
			return "maintenance.error.no_pin"
		}
		return ""
	}
	f.perform = v.resetPIN
	v.content = f.layout("maintenance.pin_reset.intro")
	return v
}

func newKeyDestructionView(s *Shell) fyne.CanvasObject {
	desk, ok := deskOf[CardMaintenanceDesk](s.Session())
	if !ok {
		return procDangerLabel(tr("error.internal"))
	}
	v := &maintenanceView{desk: desk, kind: ProcKeyDestruction,
		confirm: widget.NewCheck(tr("maintenance.key_destruction.confirm"), nil)}
	v.ExtendBaseWidget(v)
	f := newProcedureFrame(s, desk, ProcKeyDestruction, "maintenance.key_destruction.proceed")
	v.frame = f
	// Erasing keys is never undone: the button says so by its colour too.
	f.proceed.Importance = widget.DangerImportance
	warning := widget.NewLabelWithStyle(tr("maintenance.key_destruction.warning"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	warning.Importance = widget.DangerImportance
	warning.Wrapping = fyne.TextWrapWord
	note := widget.NewLabel(tr("maintenance.key_destruction.note"))
	note.Wrapping = fyne.TextWrapWord
	f.specific = container.NewVBox(warning, note, v.confirm)
	f.enableSpecific = func(on bool) { procSetEnabled(v.confirm, on) }
	f.clearSpecific = func() { v.confirm.SetChecked(false) }
	f.check = func() string {
		if !v.confirm.Checked {
			return "maintenance.error.not_confirmed"
		}
		return ""
	}
	f.perform = v.destroyKeys
	v.content = f.layout("maintenance.key_destruction.intro")
	return v
}

// pinKind is the PIN chosen for the reset.
func (v *maintenanceView) pinKind() PINKind {
	if v.which.Selected == tr("maintenance.pin.user_auth") {
		return PINUserAuth
	}
	return PINSignature
}

// resetPIN runs the reset off the UI goroutine; the holder sets the new PIN on the
// applicant-facing screen, judged by the rules of TS Art. 4 as at issuance.
func (v *maintenanceView) resetPIN(ctx context.Context, caseID int64) (func(), error) {
	// The holder's entries are part of this call: give them the time an applicant needs
	// rather than the frame's bound of one backend call.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pinResetTimeout)
	defer cancel()
	s := v.frame.shell
	which := v.pinKind()
	ask := func(ctx context.Context, req ApplicantPINRequest) ([]byte, error) {
		return askApplicantPIN(ctx, s, caseID, req)
	}
	if err := v.desk.ResetPINAtCounter(ctx, caseID, which, ask); err != nil {
		return nil, err
	}
	name := tr("maintenance.pin.signature")
	if which == PINUserAuth {
		name = tr("maintenance.pin.user_auth")
	}
	return func() {
		v.frame.result.Add(maintenanceDone(tr("maintenance.pin_reset.done", map[string]any{"PIN": name})))
	}, nil
}

func (v *maintenanceView) destroyKeys(ctx context.Context, caseID int64) (func(), error) {
	if err := v.desk.DestroyKeysAtCounter(ctx, caseID); err != nil {
		return nil, err
	}
	return func() { v.frame.result.Add(maintenanceDone(tr("maintenance.key_destruction.done"))) }, nil
}

func maintenanceDone(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Importance = widget.SuccessImportance
	l.Wrapping = fyne.TextWrapWord
	return l
}
