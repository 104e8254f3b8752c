package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
)

func showChanges(t *testing.T, s *Shell) *changesView {
	t.Helper()
	if err := s.Show(ChangesScreenID); err != nil {
		t.Fatal(err)
	}
	v, ok := s.body.Objects[0].(*changesView)
	if !ok {
		t.Fatalf("changes screen shows %T", s.body.Objects[0])
	}
	return v
}

// chooseResident searches by record code and presses the result's choose button.
func chooseResident(t *testing.T, v *changesView, code string) {
	t.Helper()
	test.Type(v.code, code)
	v.code.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if v.chosen.RecordCode != "" {
		t.Fatal("chosen before choosing")
	}
	for _, o := range test.LaidOutObjects(v.results) {
		if b, ok := o.(*widget.Button); ok {
			test.Tap(b)
			break
		}
	}
	if v.chosen.RecordCode != code {
		t.Fatalf("resident %s not chosen: %q", code, v.message.Text)
	}
}

func TestChangesRecordDeathAndSendToCA(t *testing.T) {
	s, w, b := deskShell(t, csClerk())
	v := showChanges(t, s)
	if !v.record.Disabled() {
		t.Error("record enabled before a resident is chosen")
	}
	if !windowShows(w, tr("changes.outbox.empty")) {
		t.Error("empty outbox not said")
	}
	chooseResident(t, v, "12345678901")
	v.kind.SetSelected(changeKindName(ChangeDeath))
	if v.effect.Text != tr("changes.effect.death") {
		t.Errorf("effect = %q", v.effect.Text)
	}
	test.Tap(v.record)
	if v.message.Text != tr("changes.error.effective") || len(b.desk.changes) != 0 {
		t.Fatalf("no date: message %q changes %d", v.message.Text, len(b.desk.changes))
	}
	test.Type(v.effective, "2026-03-31")
	v.effective.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if len(b.desk.changes) != 1 || b.desk.changes[0] != (ResidentChangeEntry{RecordCode: "12345678901", Kind: ChangeDeath, Effective: "2026-03-31"}) {
		t.Fatalf("changes = %+v, message %q", b.desk.changes, v.message.Text)
	}
	if !windowShows(w, tr("changes.state.pending")) {
		t.Error("recorded change not shown as pending")
	}
	test.Tap(v.send)
	if v.notice.Text != tr("changes.sent_all") {
		t.Errorf("send: notice %q message %q", v.notice.Text, v.message.Text)
	}
	if !windowShows(w, tr("changes.state.sent")) || !windowShows(w, "失効: 署名用電子証明書・利用者証明用電子証明書") {
		t.Error("sent change or what the CA revoked not shown")
	}
	if windowShows(w, tr("changes.state.pending")) {
		t.Error("sent change still shown as pending")
	}
}

func TestChangesNameChangeNeedsNewName(t *testing.T) {
	s, _, b := deskShell(t, csClerk())
	v := showChanges(t, s)
	chooseResident(t, v, "23456789012")
	if !v.nameBox.Hidden {
		t.Error("name fields shown before name change is chosen")
	}
	v.kind.SetSelected(changeKindName(ChangeName))
	if v.nameBox.Hidden || !v.moveInBox.Hidden {
		t.Error("name change does not show exactly the name fields")
	}
	test.Type(v.effective, "2026-04-01")
	test.Type(v.newName, "佐藤 花子")
	test.Tap(v.record)
	if v.message.Text != tr("changes.error.new_name") || len(b.desk.changes) != 0 {
		t.Fatalf("no kana: message %q", v.message.Text)
	}
	test.Type(v.newKana, "サトウ ハナコ")
	test.Tap(v.record)
	if len(b.desk.changes) != 1 || b.desk.changes[0].NewName != "佐藤 花子" || b.desk.changes[0].NewKana != "サトウ ハナコ" {
		t.Errorf("changes = %+v message %q", b.desk.changes, v.message.Text)
	}
	if v.newName.Text != "" {
		t.Error("form not cleared after recording")
	}
}

func TestChangesSendFailureShowsRetry(t *testing.T) {
	s, w, b := deskShell(t, csClerk())
	v := showChanges(t, s)
	chooseResident(t, v, "12345678901")
	v.kind.SetSelected(changeKindName(ChangeMoveOut))
	test.Type(v.effective, "2026-03-20")
	test.Tap(v.record)
	b.desk.noCA = true
	test.Tap(v.send)
	if v.message.Text != tr("changes.error.ca_unavailable") || !windowShows(w, tr("changes.state.pending")) {
		t.Errorf("no CA link: message %q", v.message.Text)
	}
	b.desk.noCA = false
	b.desk.caDown = true
	test.Tap(v.send)
	if v.message.Text != tr("changes.send_failed") || !windowShows(w, "送信失敗（1回）") {
		t.Errorf("failed send: message %q", v.message.Text)
	}
	b.desk.caDown = false
	test.Tap(v.send)
	if !windowShows(w, "30日後に確認: 利用者証明用電子証明書") {
		t.Error("deferred revocation of a move-out not shown")
	}
}

func TestChangesNeedCSPermission(t *testing.T) {
	s, w, _ := deskShell(t, receptionClerk())
	if err := s.Show(ChangesScreenID); err == nil {
		t.Fatal("reception clerk opened the resident-changes screen")
	}
	for _, title := range menuTitles(w) {
		if title == tr("changes.title") {
			t.Error("reception clerk's menu offers resident changes")
		}
	}
	// Withdrawn meanwhile: the domain refuses, the screen says so.
	s2, _, b2 := deskShell(t, csClerk())
	v := showChanges(t, s2)
	chooseResident(t, v, "12345678901")
	b2.desk.deny = apperr.New(apperr.PermissionDenied, "app: resident.change needs the cs permission")
	v.kind.SetSelected(changeKindName(ChangeDeath))
	test.Type(v.effective, "2026-03-31")
	test.Tap(v.record)
	if v.message.Text != tr("error.permission_denied") {
		t.Errorf("message %q", v.message.Text)
	}
}

// TestImageChanges is the CS screen after a search, with one change sent and one pending.
func TestImageChanges(t *testing.T) {
	s, w, _ := deskShell(t, csClerk())
	w.Resize(fyne.NewSize(960, 1380))
	v := showChanges(t, s)
	chooseResident(t, v, "12345678901")
	v.kind.SetSelected(changeKindName(ChangeDeath))
	test.Type(v.effective, "2026-03-31")
	test.Tap(v.record)
	test.Tap(v.send)
	v.choose(ResidentSummary{RecordCode: "23456789012", Name: "𠮷田 花子", Status: "resident"})
	v.kind.SetSelected(changeKindName(ChangeName))
	test.Type(v.effective, "2026-04-01")
	test.Type(v.newName, "佐藤 花子")
	test.Type(v.newKana, "サトウ ハナコ")
	test.Tap(v.record)
	test.AssertImageMatches(t, "changes_outbox.png", w.Canvas().Capture())
}
