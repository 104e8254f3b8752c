package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
)

func showHold(t *testing.T, s *Shell) *holdView {
	t.Helper()
	if err := s.Show(HoldScreenID); err != nil {
		t.Fatal(err)
	}
	v, ok := s.body.Objects[0].(*holdView)
	if !ok {
		t.Fatalf("hold screen shows %T", s.body.Objects[0])
	}
	return v
}

func TestHoldReleaseAfterIdentityCheck(t *testing.T) {
	s, w, b := deskShell(t, receptionClerk())
	v := showHold(t, s)
	f := v.frame
	if !v.cert.Disabled() || !f.proceed.Disabled() {
		t.Fatal("release offered before the identity check")
	}
	openAndIdentify(t, f, "12345678901")
	test.Tap(f.proceed)
	if f.message.Text != tr("procedure.error.no_certificate") {
		t.Errorf("no certificate: %q", f.message.Text)
	}
	v.cert.SetSelected(certTypeName(CertUserAuth))
	test.Type(v.serial, "xyz")
	test.Tap(f.proceed)
	if f.message.Text != tr("procedure.error.serial") || b.desk.caseState(f.c.ID) != "identity_checked" {
		t.Errorf("bad serial: message %q state %q", f.message.Text, b.desk.caseState(f.c.ID))
	}
	v.serial.SetText("")
	test.Type(v.serial, "beef")
	test.Tap(f.proceed)
	if f.message.Text != "" || f.c.State != "completed" {
		t.Fatalf("release refused: %q", f.message.Text)
	}
	if len(b.desk.releases) != 1 || b.desk.releases[0] != (HoldReleaseOrder{CaseID: f.c.ID, CertType: CertUserAuth, Serial: "BEEF"}) {
		t.Errorf("releases = %+v", b.desk.releases)
	}
	want := "利用者証明用電子証明書（シリアル番号 BEEF）の一時保留を解除しました。現在の状態: 有効"
	if !windowShows(w, want) {
		t.Errorf("confirmation %q not shown", want)
	}
}

func TestHoldReleaseOfCertificateNotOnHoldRefused(t *testing.T) {
	s, _, b := deskShell(t, receptionClerk())
	v := showHold(t, s)
	f := v.frame
	openAndIdentify(t, f, "12345678901")
	v.cert.SetSelected(certTypeName(CertSignature))
	test.Type(v.serial, "1A2B") // valid, not held
	test.Tap(f.proceed)
	if want := "この電子証明書は一時保留されていないため、保留を解除できません"; f.message.Text != want {
		t.Errorf("message = %q, want %q", f.message.Text, want)
	}
	if f.c.State == "completed" || len(f.result.Objects) != 0 {
		t.Error("a refused release shows as done")
	}
	// A revoked certificate's hold cannot be released either: revocation is never undone.
	v.serial.SetText("DEAD")
	test.Tap(f.proceed)
	if !strings.Contains(f.message.Text, "既に失効") {
		t.Errorf("revoked: message %q", f.message.Text)
	}
	if b.desk.caseState(f.c.ID) != "approved" {
		t.Errorf("case %q", b.desk.caseState(f.c.ID))
	}
}
