package ui

import (
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"madoguchi/app/apperr"
)

func TestLoginFingerprintSuccess(t *testing.T) {
	clerk := receptionClerk()
	clerk.events = []ScanEvent{ScanWaiting, ScanRetry}
	b := newFakeBackend(clerk)
	b.gate = make(chan struct{})
	s, _ := newTestShell(t, b, Screens(), true) // the real goroutine path

	loginAs(t, s, "R001")
	lv := s.login
	waitFor(t, "fingerprint step", func() bool { return lv.fpStep.Visible() })
	if got, want := lv.fpPrompt.Text, "指をセンサーに置いてください"; got != want {
		t.Errorf("prompt = %q, want %q", got, want)
	}
	waitFor(t, "retry hint", func() bool { return lv.fpState.Text == tr("login.fingerprint.retry_scan") })
	if lv.pwStep.Visible() {
		t.Error("password form shown to an operator who must use a fingerprint")
	}
	if s.Session() != nil {
		t.Fatal("logged in before the finger matched")
	}

	b.gate <- struct{}{} // the finger matches
	waitFor(t, "home screen", func() bool { return s.Current() == HomeID })
	if got := s.Session().Operator().ID; got != "R001" {
		t.Errorf("session operator = %q, want R001", got)
	}
	if s.login != nil {
		t.Error("log-in view still attached after log-in")
	}
}

func TestLoginFingerprintNoMatch(t *testing.T) {
	clerk := receptionClerk()
	clerk.result = apperr.New(apperr.FingerprintNoMatch, "auth: verify-no-match")
	b := newFakeBackend(clerk)
	s, _ := newTestShell(t, b, Screens(), false)

	loginAs(t, s, "R001")
	lv := s.login
	if got, want := lv.message.Text, "指紋が一致しませんでした。もう一度お試しください"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if !lv.fpRetry.Visible() {
		t.Error("no retry offered after a no-match")
	}
	if s.Session() != nil || s.Current() != "" {
		t.Fatal("logged in despite a no-match")
	}

	clerk.result = nil // second press matches
	test.Tap(lv.fpRetry)
	if s.Current() != HomeID {
		t.Fatalf("retry did not log in: current screen %q, message %q", s.Current(), lv.message.Text)
	}
	if n := b.fingerprintCalls(); n != 2 {
		t.Errorf("fingerprint verifications = %d, want 2", n)
	}
}

func TestLoginUnknownOperator(t *testing.T) {
	s, _ := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
	loginAs(t, s, "X999")
	if got, want := s.login.message.Text, "職員番号が見つかりません"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if !s.login.idStep.Visible() {
		t.Error("left the operator id step for an unknown operator")
	}
}

func TestLoginEmptyID(t *testing.T) {
	b := newFakeBackend(receptionClerk())
	s, _ := newTestShell(t, b, Screens(), false)
	test.Tap(s.login.next)
	if got := s.login.message.Text; got != tr("login.error.empty_id") {
		t.Errorf("message = %q", got)
	}
	if b.fingerprintCalls() != 0 {
		t.Error("fingerprint started without an operator id")
	}
}

func TestLoginPasswordOnlyForExemptOperators(t *testing.T) {
	clerk := receptionClerk()
	clerk.result = apperr.New(apperr.FingerprintNoMatch, "auth: verify-no-match")
	b := newFakeBackend(clerk, exemptClerk())
	s, w := newTestShell(t, b, Screens(), false)

	// An operator who must use biometrics never sees a password field.
	loginAs(t, s, "R001")
	if s.login.pwStep.Visible() || !s.login.fpStep.Visible() {
		t.Fatal("password form shown to a non-exempt operator")
	}
	s.login.back()
	s.login.idEntry.SetText("")
	calls := b.fingerprintCalls()

	// An exempted operator gets the password form, and no fingerprint verification starts.
	loginAs(t, s, "E001")
	lv := s.login
	if !lv.pwStep.Visible() || lv.fpStep.Visible() {
		t.Fatalf("exempt operator: password step visible=%v, fingerprint step visible=%v", lv.pwStep.Visible(), lv.fpStep.Visible())
	}
	if b.fingerprintCalls() != calls {
		t.Error("fingerprint verification started for an exempted operator")
	}
	if w.Canvas().Focused() != lv.pwEntry {
		t.Error("password field not focused")
	}

	// Wrong password: refused, field emptied.
	test.Type(lv.pwEntry, "wrong")
	lv.pwEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if got, want := lv.message.Text, "職員番号またはパスワードが違います"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if lv.pwEntry.Text != "" {
		t.Error("refused password left in the field")
	}

	// Right password: Enter submits, home shows.
	test.Type(lv.pwEntry, "correct horse")
	lv.pwEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if s.Current() != HomeID {
		t.Fatalf("password log-in failed: %q", lv.message.Text)
	}
	if lv.pwEntry.Text != "" {
		t.Error("password left in the field after log-in")
	}
}

func TestLoginLockedOut(t *testing.T) {
	clerk := receptionClerk()
	clerk.locked = true
	s, _ := newTestShell(t, newFakeBackend(clerk), Screens(), false)
	loginAs(t, s, "R001")
	msg := s.login.message.Text
	if msg != tr("error.locked_out") || !strings.Contains(msg, "ロックされています") {
		t.Errorf("message = %q, want the lockout message", msg)
	}
	if s.login.fpRetry.Visible() {
		t.Error("retry offered to a locked operator")
	}
	if s.Session() != nil {
		t.Fatal("locked operator logged in")
	}
}

func TestLoginBackDropsLateSession(t *testing.T) {
	clerk := receptionClerk()
	b := newFakeBackend(clerk)
	b.gate = make(chan struct{})
	s, _ := newTestShell(t, b, Screens(), true)
	loginAs(t, s, "R001")
	lv := s.login
	waitFor(t, "fingerprint step", func() bool { return lv.fpStep.Visible() })
	lv.back() // the clerk walks away; the pending verification is cancelled
	waitFor(t, "operator id step", func() bool { return lv.idStep.Visible() })
	if s.Session() != nil {
		t.Fatal("session after going back")
	}
}

func TestLogoutReturnsToLogin(t *testing.T) {
	b := newFakeBackend(receptionClerk())
	s, _ := newTestShell(t, b, Screens(), false)
	loginAs(t, s, "R001")
	if s.Current() != HomeID {
		t.Fatal("not logged in")
	}
	s.Logout()
	if s.Session() != nil || s.login == nil || s.Current() != "" {
		t.Fatal("logout did not return to the log-in screen")
	}
	if len(b.loggedOut) != 1 || b.loggedOut[0] != "R001" {
		t.Errorf("backend logouts = %v", b.loggedOut)
	}
	if err := s.Show(HomeID); err == nil {
		t.Error("Show succeeded with nobody logged in")
	}
}

func TestIdleLogoutLocksScreen(t *testing.T) {
	b := newFakeBackend(receptionClerk())
	s, _ := newTestShell(t, b, Screens(), false)
	s.IdleCheck = time.Millisecond
	loginAs(t, s, "R001")
	sess := s.Session().(*fakeSession)
	s.do = testUI.do // the idle watcher reports from its own goroutine
	s.ShowApplicantPIN(PINRequest{Kind: PINUserAuth, Submit: func([]byte) error { return nil }})
	test.Type(s.pin.first, "12")
	p := s.pin

	sess.expire() // the domain's idle timer ran out
	waitFor(t, "log-in screen", func() bool { return s.Current() == "" && s.login != nil })
	if got := s.login.message.Text; got != tr("error.session_expired") {
		t.Errorf("message = %q", got)
	}
	if p.first.Text != "" {
		t.Error("applicant's PIN entry left filled after the idle log-out")
	}
	if s.pin != nil || s.win.Content() != s.frame {
		t.Error("PIN screen still shown after the idle log-out")
	}
}

func TestDemoFingerButtonOnlyWhenConfigured(t *testing.T) {
	clerk := receptionClerk()
	clerk.result = apperr.New(apperr.FingerprintNoMatch, "auth: verify-no-match")
	s, _ := newTestShell(t, newFakeBackend(clerk), Screens(), false)
	loginAs(t, s, "R001")
	if s.login.fpDemo.Visible() {
		t.Fatal("demo finger offered on a terminal without DemoFinger")
	}

	presses := 0
	s.DemoFinger = func() error { presses++; return nil }
	s.login.startFingerprint()
	if !s.login.fpDemo.Visible() {
		t.Fatal("demo finger not offered with DemoFinger set")
	}
	test.Tap(s.login.fpDemo)
	if presses != 1 {
		t.Errorf("presses = %d, want 1", presses)
	}
}
