package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
	"madoguchi/app/pinrule"
	"madoguchi/app/workflow"
)

// maintFake is the card-maintenance part of the fake domain, over fakeDesk's cases (app/workflow's
// real state machine). Like the domain it refuses a case that is not an approved one of the
// right kind, asks the holder's new PIN through the screen's entry (judging it by app/pinrule,
// asking again with Refused), and completes the case on success. Safe for concurrent use.
type maintFake struct {
	desk *fakeDesk
	mu   sync.Mutex
	// err, when set, is what the CA or the card answers (before any PIN is asked).
	err      error
	resets   []PINKind
	destroys int
	newPINs  int // PINs the card accepted (never kept)
}

type maintBackend struct {
	*deskBackend
	m *maintFake
}

type maintSession struct {
	*deskSession
	m *maintFake
}

var (
	_ CardMaintenanceDesk = (*maintSession)(nil)
	_ PINJudge            = (*maintSession)(nil)
)

func (b maintBackend) LoginFingerprint(ctx context.Context, id string, progress func(ScanEvent)) (Session, error) {
	s, err := b.deskBackend.LoginFingerprint(ctx, id, progress)
	if err != nil {
		return nil, err
	}
	return &maintSession{deskSession: s.(*deskSession), m: b.m}, nil
}

// maintBirth is the birthday of 山田 太郎 (fakeDesk's resident 12345678901).
var maintBirth = time.Date(1980, 4, 1, 0, 0, 0, 0, time.UTC)

func pinruleKind(k PINKind) pinrule.Kind {
	if k == PINUserAuth {
		return pinrule.UserAuth
	}
	return pinrule.Signature
}

func (s *maintSession) CheckApplicantPIN(ctx context.Context, caseID int64, kind PINKind, pin []byte) error {
	p := pinrule.New(string(pin))
	return pinrule.Check(pinruleKind(kind), p, p, pinrule.Applicant{BirthDate: maintBirth})
}

// approvedCase refuses as the domain does for a case that is not an approved one of kind.
func (m *maintFake) approvedCase(id int64, kind ProcedureKind) error {
	m.desk.mu.Lock()
	defer m.desk.mu.Unlock()
	c := m.desk.cases[id]
	if c == nil {
		return apperr.New(apperr.NotFound, "workflow: no case %d", id)
	}
	if c.Kind != workflow.Kind(kind) || c.State != workflow.Approved {
		return apperr.New(apperr.InvalidTransition, "app: case %d is a %s in state %s", id, c.Kind, c.State)
	}
	return nil
}

func (m *maintFake) complete(id int64) error {
	_, err := m.desk.step(id, func(c *workflow.Case) error { return c.Complete() })
	return err
}

func (s *maintSession) ResetPINAtCounter(ctx context.Context, caseID int64, which PINKind, newPIN func(ctx context.Context, req ApplicantPINRequest) ([]byte, error)) error {
	m := s.m
	m.mu.Lock()
	m.resets = append(m.resets, which)
	scripted := m.err
	m.mu.Unlock()
	if err := m.approvedCase(caseID, ProcPINReset); err != nil {
		return err
	}
	if scripted != nil {
		return scripted
	}
	// The PIN is "not set" from here until the holder sets one.
	var refused error
	for attempt := 1; attempt <= 5; attempt++ {
		pin, err := newPIN(ctx, ApplicantPINRequest{Kind: which, Attempt: attempt, Refused: refused})
		if err != nil {
			return apperr.Wrap(apperr.PINNotSet, err, "app: the applicant set no new PIN")
		}
		p := pinrule.New(string(pin))
		clear(pin)
		if refused = pinrule.Check(pinruleKind(which), p, p, pinrule.Applicant{BirthDate: maintBirth}); refused != nil {
			continue
		}
		m.mu.Lock()
		m.newPINs++
		m.mu.Unlock()
		return m.complete(caseID)
	}
	return apperr.New(apperr.PINNotSet, "app: 5 PIN entries refused")
}

func (s *maintSession) DestroyKeysAtCounter(ctx context.Context, caseID int64) error {
	m := s.m
	m.mu.Lock()
	m.destroys++
	scripted := m.err
	m.mu.Unlock()
	if err := m.approvedCase(caseID, ProcKeyDestruction); err != nil {
		return err
	}
	if scripted != nil {
		return scripted
	}
	return m.complete(caseID)
}

// maintShell logs a reception clerk in and opens screen id; async runs backend calls on
// goroutines as in the terminal (needed when the holder's PIN is asked).
func maintShell(t *testing.T, id string, async bool) (*Shell, fyne.Window, *maintenanceView, *maintFake) {
	t.Helper()
	db := newDeskBackend(t, receptionClerk())
	m := &maintFake{desk: db.desk}
	s, w := newTestShell(t, maintBackend{deskBackend: db, m: m}, Screens(), async)
	loginAs(t, s, "R001")
	waitFor(t, "home", func() bool { return s.Current() == HomeID })
	if err := s.Show(id); err != nil {
		t.Fatal(err)
	}
	v, ok := s.body.Objects[0].(*maintenanceView)
	if !ok {
		t.Fatalf("screen %s shows %T", id, s.body.Objects[0])
	}
	return s, w, v, m
}

// maintIdentify opens a case for 山田 太郎 and records his driver's licence.
func maintIdentify(t *testing.T, f *procedureFrame) {
	t.Helper()
	test.Type(f.code, "12345678901")
	f.code.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) // Enter opens the case
	waitFor(t, "case opened", func() bool { return f.c.ID != 0 && !f.busy })
	f.identity.document.SetSelected(documentName("drivers_licence"))
	test.Type(f.identity.ref, "5678")
	f.identity.ref.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) // Enter records the identity
	waitFor(t, "identity recorded", func() bool { return f.c.State == "identity_checked" && !f.busy })
}

func maintShows(v *maintenanceView, text string) bool {
	found := false
	recWalk(v.frame.body, func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok && l.Text == text {
			found = true
		}
	})
	return found
}

func TestPINResetHolderSetsNewPIN(t *testing.T) {
	s, _, v, m := maintShell(t, PINResetScreenID, true)
	f := v.frame
	maintIdentify(t, f)
	test.Tap(f.proceed)
	if f.message.Text != tr("maintenance.error.no_pin") || len(m.resets) != 0 {
		t.Fatalf("no PIN chosen: message %q, resets %v", f.message.Text, m.resets)
	}
	v.which.SetSelected(tr("maintenance.pin.user_auth"))
	test.Tap(f.proceed)
	// The holder's screen: a new PIN, typed twice, judged by the rules of TS Art. 4.
	waitFor(t, "the applicant PIN screen", func() bool { return s.pin != nil })
	p := s.pin
	if p.req.Kind != PINUserAuth || p.req.Existing || !recShown(p.view, p.second) {
		t.Fatalf("PIN screen: kind %d existing %v, confirmation shown %v", p.req.Kind, p.req.Existing, recShown(p.view, p.second))
	}
	recEnterPIN(p, "1234") // a run of digits
	if p.message.Text != tr("pin.error.sequence") || s.pin != p {
		t.Errorf("a guessable PIN: message %q, screen still up %v", p.message.Text, s.pin == p)
	}
	recEnterPIN(p, "5830")
	waitFor(t, "the reset", func() bool { return !f.busy && f.c.State == "completed" })
	if m.resets[0] != PINUserAuth || m.newPINs != 1 {
		t.Errorf("resets %v, PINs set %d", m.resets, m.newPINs)
	}
	if s.pin != nil {
		t.Error("the applicant PIN screen is still up")
	}
	want := tr("maintenance.pin_reset.done", map[string]any{"PIN": tr("maintenance.pin.user_auth")})
	if !maintShows(v, want) || f.message.Text != "" || m.desk.caseState(f.c.ID) != "completed" {
		t.Errorf("after the reset: message %q, state %q, done shown %v", f.message.Text, m.desk.caseState(f.c.ID), maintShows(v, want))
	}
}

func TestPINResetCancelledLeavesPINNotSet(t *testing.T) {
	s, _, v, m := maintShell(t, PINResetScreenID, true)
	f := v.frame
	maintIdentify(t, f)
	v.which.SetSelected(tr("maintenance.pin.signature"))
	test.Tap(f.proceed)
	waitFor(t, "the applicant PIN screen", func() bool { return s.pin != nil })
	if s.pin.req.Kind != PINSignature {
		t.Errorf("PIN kind %d", s.pin.req.Kind)
	}
	test.Tap(s.pin.cancel)
	waitFor(t, "the refusal", func() bool { return !f.busy && f.message.Text != "" })
	if f.message.Text != tr("maintenance.error.pin_not_set") {
		t.Errorf("message %q", f.message.Text)
	}
	if st := m.desk.caseState(f.c.ID); st != "approved" || f.proceed.Disabled() {
		t.Errorf("case %s, proceed disabled %v: the reset must be repeatable", st, f.proceed.Disabled())
	}
}

func TestPINResetRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		key  string
	}{
		{"not supported", apperr.New(apperr.NotSupported, "app: pin-reset: not supported by the CA"), "procedure.error.not_supported"},
		{"wrong card", apperr.New(apperr.CardUnknown, "app: the CA delivered no certificate to this card"), "maintenance.error.card_unknown"},
		{"other municipality", apperr.New(apperr.CardOtherMunicipality, "app: card of 271004"), "maintenance.error.card_other_municipality"},
		{"no card", fmt.Errorf("%w: no reader", ErrCardUnavailable), "copy.error.card"},
		{"card refused", apperr.New(apperr.CardRefused, "app: bad R-MAC"), "maintenance.error.card_refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, v, m := maintShell(t, PINResetScreenID, false)
			m.err = tc.err
			f := v.frame
			maintIdentify(t, f)
			v.which.SetSelected(tr("maintenance.pin.signature"))
			test.Tap(f.proceed)
			if f.message.Text != tr(tc.key) {
				t.Errorf("message %q, want %q", f.message.Text, tr(tc.key))
			}
			if st := m.desk.caseState(f.c.ID); st != "approved" {
				t.Errorf("case %s after a refusal (the decision stands, the procedure can be repeated)", st)
			}
			if f.notice.Text != "" || len(f.result.Objects) != 0 {
				t.Errorf("success shown after a refusal: %q", f.notice.Text)
			}
		})
	}
}

func TestKeyDestructionRevokeFirstThenDestroys(t *testing.T) {
	_, _, v, m := maintShell(t, KeyDestructionScreenID, false)
	f := v.frame
	if f.proceed.Importance != widget.DangerImportance {
		t.Error("the destruction button does not look dangerous")
	}
	maintIdentify(t, f)
	test.Tap(f.proceed)
	if f.message.Text != tr("maintenance.error.not_confirmed") || m.destroys != 0 {
		t.Fatalf("unconfirmed: message %q, destroys %d", f.message.Text, m.destroys)
	}
	test.Tap(v.confirm)
	m.err = apperr.New(apperr.CertificateNotRevoked, "ca: certificate 1A2B is valid")
	test.Tap(f.proceed)
	if f.message.Text != tr("maintenance.error.revoke_first") || !strings.Contains(f.message.Text, "失効") {
		t.Errorf("revoke first: %q", f.message.Text)
	}
	if st := m.desk.caseState(f.c.ID); st != "approved" {
		t.Errorf("case %s after the CA refused", st)
	}
	m.err = nil
	test.Tap(f.proceed)
	if f.c.State != "completed" || m.desk.caseState(f.c.ID) != "completed" || !maintShows(v, tr("maintenance.key_destruction.done")) {
		t.Errorf("destruction: state %q, message %q", f.c.State, f.message.Text)
	}
	if m.destroys != 2 {
		t.Errorf("destroy calls %d", m.destroys)
	}
	// The next applicant starts from a clean screen.
	test.Tap(f.restart)
	if v.confirm.Checked || f.c.ID != 0 {
		t.Error("the confirmation survives for the next applicant")
	}
}

func TestKeyDestructionNotSupported(t *testing.T) {
	_, _, v, m := maintShell(t, KeyDestructionScreenID, false)
	m.err = apperr.New(apperr.NotSupported, "app: key-destruction: not implemented")
	f := v.frame
	maintIdentify(t, f)
	test.Tap(v.confirm)
	test.Tap(f.proceed)
	if f.message.Text != tr("procedure.error.not_supported") {
		t.Errorf("message %q", f.message.Text)
	}
}

func TestMaintenanceScreensNeedReceptionPermission(t *testing.T) {
	s, _ := newTestShell(t, newFakeBackend(csClerk()), Screens(), false)
	loginAs(t, s, csClerk().ID)
	for _, id := range []string{PINResetScreenID, KeyDestructionScreenID} {
		if err := s.Show(id); err == nil {
			t.Errorf("a CS clerk opened %s", id)
		}
	}
	r, w := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
	loginAs(t, r, "R001")
	titles := menuTitles(w)
	for _, key := range []string{"maintenance.pin_reset.title", "maintenance.key_destruction.title"} {
		found := false
		for _, tl := range titles {
			found = found || tl == tr(key)
		}
		if !found {
			t.Errorf("home menu %v lacks %q", titles, tr(key))
		}
	}
}

func TestMaintenanceScreensFitCounterScreen(t *testing.T) {
	for _, id := range []string{PINResetScreenID, KeyDestructionScreenID} {
		_, w, v, m := maintShell(t, id, false)
		m.err = apperr.New(apperr.CertificateNotRevoked, "ca: still valid")
		maintIdentify(t, v.frame)
		if v.which != nil {
			v.which.SetSelected(tr("maintenance.pin.signature"))
		} else {
			test.Tap(v.confirm)
		}
		test.Tap(v.frame.proceed)
		if got := v.MinSize().Width; got > recMaxWidth {
			t.Errorf("%s needs %.0f px", id, got)
		}
		if got := w.Content().MinSize().Width; got > recMaxWidth {
			t.Errorf("window with %s needs %.0f px", id, got)
		}
	}
}

func TestImagePINReset(t *testing.T) {
	s, w, v, _ := maintShell(t, PINResetScreenID, false)
	s.status.SetCard(CardPresent)
	s.status.SetCA(CAConnected)
	maintIdentify(t, v.frame)
	v.which.SetSelected(tr("maintenance.pin.user_auth"))
	test.AssertImageMatches(t, "maintenance_pin_reset.png", w.Canvas().Capture())
}

func TestImageKeyDestructionRevokeFirst(t *testing.T) {
	s, w, v, m := maintShell(t, KeyDestructionScreenID, false)
	s.status.SetCard(CardPresent)
	s.status.SetCA(CAConnected)
	m.err = apperr.New(apperr.CertificateNotRevoked, "ca: certificate 1A2B is valid")
	maintIdentify(t, v.frame)
	test.Tap(v.confirm)
	test.Tap(v.frame.proceed)
	// Tall enough for the whole procedure, so that the image needs no scrolling.
	w.Resize(fyne.NewSize(testSize.Width, 1180))
	w.Content().Refresh()
	test.AssertImageMatches(t, "maintenance_key_destruction_revoke_first.png", w.Canvas().Capture())
}

func TestImagePINExisting(t *testing.T) {
	s, w := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
	s.ShowApplicantPIN(PINRequest{Kind: PINSignature, Existing: true, Submit: func([]byte) error { return nil }})
	test.Type(s.pin.first, "SAKURA7")
	s.pin.message.SetText(tr("pin.error.wrong_existing", map[string]any{"Tries": 4}))
	test.AssertImageMatches(t, "pin_existing.png", w.Canvas().Capture())
}

// TestMaintenanceAndWizardKeysTranslated checks every key literal of the card-maintenance
// screens and the issuance wizard (many are passed around or returned, not given to tr
// directly), and the existing-PIN titles the PIN screen derives.
func TestMaintenanceAndWizardKeysTranslated(t *testing.T) {
	ja, en := loadCatalogue(t, "ja.json"), loadCatalogue(t, "en.json")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`"((?:maintenance|reception)\.[a-z_.0-9]+)"`)
	used := map[string]bool{"pin.title.signature.existing": true, "pin.title.user_auth.existing": true, "pin.notice.existing": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || !(strings.HasPrefix(f, "screen_maintenance") || strings.HasPrefix(f, "screen_reception_issue")) {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(src), -1) {
			used[m[1]] = true
		}
	}
	if len(used) < 60 {
		t.Fatalf("found only %d keys: the scan is broken", len(used))
	}
	for _, sc := range Screens() {
		delete(used, sc.ID) // screen ids look like keys
	}
	for k := range used {
		if _, ok := ja[k]; !ok {
			t.Errorf("%q missing in ja.json", k)
		}
		if _, ok := en[k]; !ok {
			t.Errorf("%q missing in en.json", k)
		}
	}
}
