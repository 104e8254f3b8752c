package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
)

// Tests of the issuance wizard's 外字 step, renewal and new-card issuance, and its width.

// gaijiApplicant is 髙橋 一郎 living in 髙尾町 (app/resident/fixtures: 髙 is outside JIS X 0208).
func gaijiApplicant() *resident.Resident {
	a := recApplicant()
	a.Name, a.NameKana = "髙橋 一郎", "タカハシ イチロウ"
	a.Address = "神奈川県架空市髙尾町五丁目10番11号"
	return &a
}

// toGaiji imports the file and goes past the existence check to the 外字 step.
func (h *recHarness) toGaiji() {
	h.t.Helper()
	h.importFile()
	test.Tap(h.wiz.existenceNext)
	h.waitStep(stepGaiji)
}

// identityFromHere records the applicant's own driving licence on the identity step.
func (h *recHarness) identityFromHere() {
	h.t.Helper()
	h.wiz.document.SetSelected(recDocumentName(workflow.DriversLicence))
	test.Type(h.wiz.documentRef, "5678")
	h.wiz.documentRef.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	h.waitStep(stepExplanation)
}

func TestReceptionGaijiNameChosenAddressFixed(t *testing.T) {
	h := newRecHarness(t)
	h.desk.applicant = gaijiApplicant()
	h.toGaiji()
	if len(h.wiz.gaiji) != 2 {
		t.Fatalf("%d characters to replace, want 2 (name 髙, address 髙)", len(h.wiz.gaiji))
	}
	name, addr := h.wiz.gaiji[0], h.wiz.gaiji[1]
	if name.field.name != "name" || name.at.Pos != 0 || addr.field.name != "address" || addr.at.Pos != 7 {
		t.Fatalf("characters: %s@%d, %s@%d", name.field.name, name.at.Pos, addr.field.name, addr.at.Pos)
	}
	if got := name.candidates.Options; len(got) != 1 || got[0] != "高" {
		t.Errorf("candidates for 髙 %v, want [高]", got)
	}
	if addr.fixed != "高" || addr.candidates != nil {
		t.Errorf("address: fixed %q, offered a choice %v", addr.fixed, addr.candidates != nil)
	}
	if !h.wiz.gaijiBtn.Disabled() {
		t.Error("the substitutions can be recorded before the applicant chose the name's")
	}
	if name.preview.Text != tr("reception.gaiji.not_chosen") {
		t.Errorf("name preview before a choice: %q", name.preview.Text)
	}
	want := tr("reception.gaiji.preview", map[string]any{"Value": "神奈川県架空市高尾町五丁目10番11号"})
	if addr.preview.Text != want {
		t.Errorf("address preview %q, want %q", addr.preview.Text, want)
	}
	name.candidates.SetSelected("高")
	if got, want := name.preview.Text, tr("reception.gaiji.preview", map[string]any{"Value": "高橋 一郎"}); got != want {
		t.Errorf("name preview %q, want %q", got, want)
	}
	if h.wiz.gaijiBtn.Disabled() {
		t.Fatal("recording still disabled with every substitute chosen")
	}
	test.Tap(h.wiz.gaijiBtn)
	h.waitStep(stepIdentity)
	if len(h.desk.subs) != 1 {
		t.Fatalf("SetSubstitutions called %d times", len(h.desk.subs))
	}
	got := h.desk.subs[0]
	wantSubs := []resident.Substitution{
		{Field: "name", Pos: 0, Original: "髙", Substitute: "高", ChosenByApp: true},
		{Field: "address", Pos: 7, Original: "髙", Substitute: "高"},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantSubs) {
		t.Errorf("substitutions %+v, want %+v", got, wantSubs)
	}
	h.identityFromHere()
	h.explainAll()
	// The approval that refused this applicant before (every 外字 substituted, for the
	// signature certificate) now passes.
	h.desk.mu.Lock()
	c := *h.desk.c
	h.desk.mu.Unlock()
	if err := c.Approve("R001"); err != nil {
		t.Errorf("approval after the 外字 step: %v", err)
	}
}

func TestReceptionGaijiKanaReading(t *testing.T) {
	h := newRecHarness(t)
	a := recApplicant()
	a.Name = "𠀋田 花子" // U+2000B: no similar character is offered
	h.desk.applicant = &a
	h.toGaiji()
	if len(h.wiz.gaiji) != 1 {
		t.Fatalf("%d characters to replace", len(h.wiz.gaiji))
	}
	g := h.wiz.gaiji[0]
	if len(g.candidates.Options) != 0 {
		t.Fatalf("candidates %v", g.candidates.Options)
	}
	test.Type(g.kana, "abc")
	if !h.wiz.gaijiBtn.Disabled() || g.preview.Text != tr("reception.gaiji.kana_invalid") {
		t.Errorf("latin letters accepted as a reading (button enabled %v, preview %q)", !h.wiz.gaijiBtn.Disabled(), g.preview.Text)
	}
	g.kana.SetText("")
	test.Type(g.kana, "じょう")
	if h.wiz.gaijiBtn.Disabled() {
		t.Fatal("a kana reading is not accepted")
	}
	// Enter records, like the button.
	g.kana.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	h.waitStep(stepIdentity)
	if s := h.desk.subs[0]; len(s) != 1 || s[0].Substitute != "じょう" || !s[0].ChosenByApp || s[0].Pos != 0 {
		t.Errorf("substitutions %+v", s)
	}
}

func TestReceptionGaijiRefusedStays(t *testing.T) {
	h := newRecHarness(t)
	h.desk.applicant = gaijiApplicant()
	h.desk.subsErr = apperr.New(apperr.InvalidInput, "workflow: address character 髙 has the fixed substitute 高")
	h.toGaiji()
	h.wiz.gaiji[0].candidates.SetSelected("高")
	test.Tap(h.wiz.gaijiBtn)
	waitFor(t, "the refusal", func() bool { return h.wiz.message.Text != "" })
	if h.wiz.message.Text != tr("reception.gaiji.refused") {
		t.Errorf("message %q", h.wiz.message.Text)
	}
	if h.wiz.step != stepGaiji || h.wiz.gaijiBtn.Disabled() {
		t.Errorf("after a refusal: step %s, button disabled %v (the clerk must be able to try again)", h.wiz.step, h.wiz.gaijiBtn.Disabled())
	}
}

func TestReceptionGaijiAddressWithoutFixedSubstitute(t *testing.T) {
	h := newRecHarness(t)
	a := recApplicant()
	a.Address = "東京都架空区𠀋町一丁目2番3号"
	h.desk.applicant = &a
	h.toGaiji()
	g := h.wiz.gaiji[0]
	if g.fixedErr == nil || !errors.Is(g.fixedErr, apperr.InvalidInput) {
		t.Fatalf("fixed substitute of 𠀋: %q, %v", g.fixed, g.fixedErr)
	}
	if !h.wiz.gaijiBtn.Disabled() {
		t.Error("an address character without a fixed substitute can be recorded")
	}
	found := false
	recWalk(h.wiz.view, func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok && l.Text == tr("reception.gaiji.no_fixed") {
			found = true
		}
	})
	if !found {
		t.Error("the clerk is not told what to do about the address")
	}
	h.wiz.stop("住所の外字に決められた代替文字がない")
	h.waitStep(stepStopped)
	if len(h.desk.subs) != 0 {
		t.Error("substitutions recorded for a stopped case")
	}
}

func TestReceptionRenewalExistingPIN(t *testing.T) {
	h := newRecHarness(t)
	h.wiz.kind.SetSelected(tr("reception.kind.renewal"))
	if !h.wiz.renewalBox.Visible() {
		t.Fatal("the current certificate's expiry is not asked for a renewal")
	}
	h.wiz.files.SetSelected(h.wiz.files.Options[0])
	if !h.wiz.importBtn.Disabled() {
		t.Error("a renewal can be opened without the current certificate's expiry")
	}
	test.Type(h.wiz.currentExpiry, "2026/12/31")
	if !h.wiz.importBtn.Disabled() || h.wiz.message.Text != tr("reception.renewal.expiry_invalid") {
		t.Errorf("malformed expiry: button enabled %v, message %q", !h.wiz.importBtn.Disabled(), h.wiz.message.Text)
	}
	expiry := time.Now().AddDate(0, 2, 0).Format("2006-01-02")
	h.wiz.currentExpiry.SetText(expiry)
	h.wiz.currentExpiry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) // Enter opens the case
	h.waitStep(stepExistence)
	if a := h.desk.apps[0]; a.Kind != workflow.Renewal || a.CurrentExpiry.Format("2006-01-02") != expiry || a.NewCard {
		t.Errorf("opened %s, expiry %v, new card %v", a.Kind, a.CurrentExpiry, a.NewCard)
	}
	if !recShowsLabel(h.wiz.view, tr("reception.kind.renewal")) || !recShowsLabel(h.wiz.view, expiry) {
		t.Error("the existence check does not show the renewal and the current certificate's expiry")
	}
	// The card keeps its signature PIN: app/issue asks for the existing one, and the card
	// refuses the first entry.
	var asked []ApplicantPINRequest
	h.desk.issue = func(ctx context.Context, o IssuanceOrder) (*issue.Result, error) {
		o.Progress(issue.StepPIN, "")
		for _, req := range []ApplicantPINRequest{
			{Kind: PINSignature, Existing: true, Attempt: 1},
			{Kind: PINSignature, Existing: true, Attempt: 2, Refused: &apperr.Error{Kind: apperr.BadCredentials, Detail: "wrong_existing_pin",
				Args: map[string]string{"Tries": "4"}, Err: &cardio.PINError{Which: cardio.Signature, TriesLeft: 4}}},
		} {
			asked = append(asked, req)
			pin, err := o.PIN(ctx, req)
			if err != nil {
				return nil, err
			}
			clear(pin)
		}
		return &issue.Result{CaseID: o.CaseID, CardSerial: "5A5A", Delivered: []issue.Delivered{{CertType: workflow.SignatureCert, Serial: "4c5b6a"}}}, nil
	}
	test.Tap(h.wiz.existenceNext)
	h.waitStep(stepIdentity)
	h.identityFromHere()
	h.explainAll()
	h.start()
	p := h.pinScreen(PINSignature)
	if !p.req.Existing || recShown(p.view, p.second) {
		t.Error("the existing PIN is asked twice")
	}
	test.Type(p.first, "SAKURA73")
	p.first.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) // once, Enter submits
	waitFor(t, "the second attempt", func() bool { return len(asked) == 2 && h.s.pin != nil && h.s.pin != p })
	if got, want := h.s.pin.message.Text, tr("pin.error.wrong_existing", map[string]any{"Tries": 4}); got != want {
		t.Errorf("refusal %q, want %q", got, want)
	}
	test.Type(h.s.pin.first, "SAKURA74")
	test.Tap(h.s.pin.submit)
	h.waitStep(stepResult)
	// The notice is saved in the test's directory in the background: wait for it, so that the
	// directory is not removed under the write.
	waitFor(t, "the notice", func() bool { return h.wiz.savedPath() != "" })
}

// recShown reports whether o is among the objects laid out under root.
func recShown(root, o fyne.CanvasObject) bool {
	found := false
	recWalk(root, func(x fyne.CanvasObject) {
		if x == o {
			found = true
		}
	})
	return found
}

func TestReceptionRenewalTooEarly(t *testing.T) {
	h := newRecHarness(t)
	h.wiz.kind.SetSelected(tr("reception.kind.renewal"))
	h.wiz.files.SetSelected(h.wiz.files.Options[0])
	test.Type(h.wiz.currentExpiry, time.Now().AddDate(1, 0, 0).Format("2006-01-02"))
	test.Tap(h.wiz.importBtn)
	waitFor(t, "the refusal", func() bool { return h.wiz.message.Text != "" })
	want := translations.ErrorText("ja", apperr.New(apperr.RenewalTooEarly, "workflow: too early"))
	if h.wiz.message.Text != want || !strings.Contains(want, "3か月") {
		t.Errorf("message %q, want %q", h.wiz.message.Text, want)
	}
	if h.wiz.step != stepFile {
		t.Errorf("step %s after a refused renewal", h.wiz.step)
	}
	// Nothing was consumed: the file is still there for a new issuance.
	if _, err := os.Stat(h.file); err != nil {
		t.Errorf("the resident file was removed after a refused renewal: %v", err)
	}
}

func TestReceptionNewCard(t *testing.T) {
	h := newRecHarness(t)
	test.Tap(h.wiz.newCard)
	h.importFile()
	if a := h.desk.apps[0]; a.Kind != workflow.NewIssuance || !a.NewCard || !a.CurrentExpiry.IsZero() {
		t.Errorf("opened %+v", a)
	}
	if !h.desk.c.NewCard {
		t.Error("the case is not for a new card")
	}
	if !recShowsLabel(h.wiz.view, "新規発行（新しいカード）") {
		t.Error("the existence check does not say the certificates go on a new card")
	}
}

// recShowsLabel reports whether a label under root reads text.
func recShowsLabel(root fyne.CanvasObject, text string) bool {
	found := false
	recWalk(root, func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok && l.Text == text {
			found = true
		}
	})
	return found
}

// recMaxWidth is the widest a screen may need: the counter's window on a 1280 px screen.
const recMaxWidth = 1200

func recCheckWidth(t *testing.T, h *recHarness, what string) {
	t.Helper()
	waitFor(t, "UI work", func() bool { return true })
	if got := h.wiz.view.MinSize().Width; got > recMaxWidth {
		t.Errorf("%s: the wizard needs %.0f px, more than %d", what, got, recMaxWidth)
	}
	if got := h.w.Content().MinSize().Width; got > recMaxWidth {
		t.Errorf("%s: the window needs %.0f px, more than %d (the log-out button would be off-screen)", what, got, recMaxWidth)
	}
}

func TestReceptionWizardFitsCounterScreen(t *testing.T) {
	h := newRecHarness(t)
	h.wiz.kind.SetSelected(tr("reception.kind.renewal"))
	recCheckWidth(t, h, "file step (renewal)")
	h.wiz.kind.SetSelected(tr("reception.kind.new_issuance"))
	a := gaijiApplicant()
	a.Name = "髙橋 寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末"
	a.Address = "神奈川県架空市髙尾町五丁目10番11号架空マンション千代田霞が関中央合同庁舎第二号館十八階"
	h.desk.applicant = a
	h.toGaiji()
	recCheckWidth(t, h, "gaiji step")
	h.wiz.gaiji[0].candidates.SetSelected("高")
	test.Tap(h.wiz.gaijiBtn)
	h.waitStep(stepIdentity)
	h.identityFromHere()
	h.explainAll()
	// 160-bit serials (40 hexadecimal digits), a long card serial and a deep notice folder.
	const serial = "3F9A0C7E5B1D2468ACE013579BDF2468ACE01357"
	h.desk.issue = func(ctx context.Context, o IssuanceOrder) (*issue.Result, error) {
		return &issue.Result{CaseID: o.CaseID, CardSerial: strings.Repeat("5A", 32), Delivered: []issue.Delivered{
			{CertType: workflow.UserAuthCert, Serial: serial}, {CertType: workflow.SignatureCert, Serial: strings.ToLower(serial)}}}, nil
	}
	h.s.Terminal.NoticeDir = h.saved + "/var/lib/madoguchi/municipality-131016-chiyoda/counter-terminal-03/notices-handed-over"
	h.start()
	h.waitStep(stepResult)
	waitFor(t, "the notice", func() bool { return h.wiz.savedPath() != "" })
	recCheckWidth(t, h, "result step")
}
