package ui

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app"
	"madoguchi/app/printout"
)

// CopyScreenID is the screen ID of the certificate copy.
const CopyScreenID = "reception.certificate_copy"

// copyScreen hands the holder a human-readable copy of a certificate on their card (電子証明書の
// 写しの交付, CPS §4.4.1.1): read from the card in the reader, shown on screen, saved as PDF,
// previewed and printed. The signature certificate carries the four items (TS Art. 11); the card
// shows it only after the holder entered the signature PIN on the applicant-facing screen, which
// the clerk cannot read (CPS §6.4.1.2).
func copyScreen() Screen {
	return Screen{ID: CopyScreenID, Title: "copy.title", Permission: PermissionReception, View: newCopyView}
}

// copyView is the certificate-copy screen.
type copyView struct {
	widget.BaseWidget
	frame    *procedureFrame
	desk     CertificateCopyDesk
	certs    *certChoice
	previews []*documentPreview
	content  fyne.CanvasObject
}

func newCopyView(s *Shell) fyne.CanvasObject {
	desk, ok := deskOf[CertificateCopyDesk](s.Session())
	if !ok {
		return procDangerLabel(tr("error.internal"))
	}
	v := &copyView{desk: desk, certs: newCertChoice()}
	v.ExtendBaseWidget(v)
	f := newProcedureFrame(s, desk, ProcCertificateCopy, "copy.proceed")
	v.frame = f
	note := widget.NewLabel(tr("copy.signature_pin"))
	note.Wrapping = fyne.TextWrapWord
	f.specific = container.NewVBox(
		container.New(layout.NewFormLayout(), widget.NewLabel(tr("copy.certificates")), v.certs.view),
		note)
	f.enableSpecific = v.certs.enable
	f.clearSpecific = func() {
		v.certs.signature.SetChecked(false)
		v.certs.userAuth.SetChecked(false)
		v.previews = nil
	}
	f.check = func() string {
		if len(v.certs.selected()) == 0 {
			return "procedure.error.no_certificate"
		}
		return ""
	}
	f.perform = v.perform
	v.content = f.layout("copy.intro")
	return v
}

func (v *copyView) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(v.content) }

// perform reads each chosen certificate from the card (off the UI goroutine), then completes
// the case. Copies read before a failure are shown all the same.
func (v *copyView) perform(ctx context.Context, caseID int64) (func(), error) {
	var copies []CertificateCopy
	var err error
	for _, t := range v.certs.selected() {
		var c CertificateCopy
		if c, err = v.desk.CopyFromCard(ctx, caseID, t, v.askPIN); err != nil {
			break
		}
		copies = append(copies, c)
	}
	if err == nil {
		_, err = v.desk.CompleteProcedure(ctx, caseID)
	}
	if len(copies) == 0 {
		return nil, err
	}
	return func() {
		for i, c := range copies {
			v.showCopy(caseID, i, c)
		}
	}, err
}

// askPIN hands the window to the holder for the signature PIN and waits for it on the calling
// goroutine. The PIN is checked by the card, not by the rules for new PINs; it comes back as a
// fresh copy that the caller overwrites after use, and the entry fields are emptied.
func (v *copyView) askPIN(ctx context.Context) ([]byte, error) {
	s := v.frame.shell
	got := make(chan []byte, 1)
	gaveUp := make(chan error, 1)
	s.do(func() {
		s.ShowApplicantPIN(PINRequest{Kind: PINSignature, Existing: true,
			Submit:    func(pin []byte) error { got <- bytes.Clone(pin); return nil },
			Cancelled: func() { gaveUp <- ErrPINCancelled }})
	})
	select {
	case pin := <-got:
		return pin, nil
	case err := <-gaveUp:
		return nil, err
	case <-ctx.Done():
		s.do(func() {
			if s.pin != nil {
				s.pin.clear()
				s.pin.done()
			}
		})
		return nil, ctx.Err()
	}
}

// showCopy shows the recorded items of one certificate and the preview of its printable copy.
func (v *copyView) showCopy(caseID int64, seq int, c CertificateCopy) {
	cp := c.Copy
	kind := certTypeName(CertUserAuth)
	if cp.Kind == printout.Signature {
		kind = certTypeName(CertSignature)
	}
	rows := [][2]string{
		{tr("copy.field.kind"), kind},
		{tr("copy.field.serial"), strings.ToUpper(cp.Serial.Text(16))},
		{tr("copy.field.not_before"), cp.NotBefore.In(japanTime).Format("2006-01-02 15:04")},
		{tr("copy.field.not_after"), cp.NotAfter.In(japanTime).Format("2006-01-02 15:04")},
		{tr("copy.field.issuer"), cp.Issuer},
	}
	if pd := cp.Personal; pd != nil {
		sex := tr("copy.sex.male")
		if pd.Sex == printout.Female {
			sex = tr("copy.sex.female")
		}
		rows = append(rows,
			[2]string{tr("copy.field.name"), pd.Name.Value},
			[2]string{tr("copy.field.birth_date"), fmt.Sprintf("%04d-%02d-%02d", pd.BirthDate.Year, int(pd.BirthDate.Month), pd.BirthDate.Day)},
			[2]string{tr("copy.field.sex"), sex},
			[2]string{tr("copy.field.address"), pd.Address.Value})
	} else {
		rows = append(rows, [2]string{tr("copy.field.personal"), tr("copy.no_personal_data")})
	}
	grid := procFieldRows(rows...)
	p := newDocumentPreview(v.frame.shell, procedureOutput(v.frame.shell), tr("copy.document_title", map[string]any{"Kind": kind}), caseID, app.DocumentCertificateCopy, seq, c.PDF)
	v.previews = append(v.previews, p)
	v.frame.result.Add(container.NewVBox(grid, p.view))
}
