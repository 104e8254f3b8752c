package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/clock"
	"madoguchi/app/operator"
	"madoguchi/assets/translations"
)

var cheap = auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

type fixture struct {
	t     *app.Terminal
	clock *clock.Fake
	fp    *auth.Fake
	sup   *app.Session // logged-in supervisor "sup"
}

const supPassword = "correct horse battery"

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with the configuration adjusted by edit (may be nil).
func newFixtureWith(t *testing.T, edit func(*app.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: clock.NewFake(time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)), fp: auth.NewFake()}
	cfg := app.Config{DBPath: filepath.Join(t.TempDir(), "terminal.db"), Clock: f.clock,
		Fingerprint: f.fp, Argon2: cheap, MaxFailedLogins: 3, IdleTimeout: 10 * time.Minute, ResidentFileTTL: 5 * time.Minute, FingerTimeout: 20 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	term, err := app.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	f.t = term
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理 太郎", Password: supPassword, ExemptReason: "initial set-up before the reader is installed"}); err != nil {
		t.Fatal(err)
	}
	if f.sup, err = term.LoginPassword(ctx, "sup", supPassword); err != nil {
		t.Fatal(err)
	}
	return f
}

// lastAudit returns the newest audit record.
func (f *fixture) lastAudit(t *testing.T) audit.Record {
	t.Helper()
	recs, err := audit.List(context.Background(), f.t.DB(), audit.Filter{})
	if err != nil || len(recs) == 0 {
		t.Fatalf("audit list: %v (%d records)", err, len(recs))
	}
	return recs[len(recs)-1]
}

func (f *fixture) addOperator(t *testing.T, id string, finger string, perms ...operator.Permission) {
	t.Helper()
	ctx := context.Background()
	if err := f.sup.CreateOperator(ctx, id, "職員 "+id); err != nil {
		t.Fatal(err)
	}
	for _, p := range perms {
		if err := f.sup.Grant(ctx, id, p); err != nil {
			t.Fatal(err)
		}
	}
	f.fp.Present(finger)
	if err := f.sup.EnrollFinger(ctx, id, auth.DefaultFinger, nil); err != nil {
		t.Fatal(err)
	}
	f.fp.Present("")
}

// login adds operator id with finger and perms (addOperator), then logs it in with that finger.
func (f *fixture) login(t *testing.T, id, finger string, perms ...operator.Permission) *app.Session {
	t.Helper()
	f.addOperator(t, id, finger, perms...)
	return f.loginFinger(t, id, finger)
}

// loginFinger presents finger and logs operator id in with it; the finger stays presented.
func (f *fixture) loginFinger(t *testing.T, id, finger string) *app.Session {
	t.Helper()
	f.fp.Present(finger)
	s, err := f.t.LoginFingerprint(context.Background(), id, nil)
	if err != nil {
		t.Fatalf("finger login %s: %v", id, err)
	}
	return s
}

func TestBootstrapOnlyOnce(t *testing.T) {
	f := newFixture(t)
	err := f.t.Bootstrap(context.Background(), app.BootstrapRequest{ID: "evil", Name: "x", Password: "0123456789ab", ExemptReason: "r"})
	if !errors.Is(err, apperr.AlreadyExists) {
		t.Fatalf("second bootstrap = %v", err)
	}
	if r := f.lastAudit(t); r.Action != "operator.bootstrap" || r.Result != audit.ResultRefused || r.Target != "evil" {
		t.Fatalf("audit = %+v", r)
	}
	if _, err := f.t.LookupOperator(context.Background(), "evil"); !errors.Is(err, apperr.NotFound) {
		t.Fatalf("evil exists: %v", err)
	}
}

func TestBootstrapNeedsReasonForPassword(t *testing.T) {
	term, err := app.Open(context.Background(), app.Config{DBPath: filepath.Join(t.TempDir(), "t.db"), Fingerprint: auth.NewFake(), Argon2: cheap})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	err = term.Bootstrap(context.Background(), app.BootstrapRequest{ID: "sup", Name: "x", Password: "0123456789ab"})
	if !errors.Is(err, apperr.ReasonRequired) {
		t.Fatalf("bootstrap without reason = %v", err)
	}
	if need, _ := term.NeedsBootstrap(context.Background()); !need {
		t.Fatal("refused bootstrap created an operator")
	}
}

// TestPermissionSeparation: CS and reception are separate (TS Art. 3(4)); supervisor functions
// need Supervisor; audit functions need Audit. Every refusal is audited and changes nothing.
func TestPermissionSeparation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addOperator(t, "cs1", "f-cs", operator.CS)
	f.addOperator(t, "rc1", "f-rc", operator.Reception)
	cs := f.loginFinger(t, "cs1", "f-cs")
	cases := []struct {
		name string
		call func() error
	}{
		{"cs creates operator", func() error { return cs.CreateOperator(ctx, "x1", "x") }},
		{"cs grants itself reception", func() error { return cs.Grant(ctx, "cs1", operator.Reception) }},
		{"cs reads history", func() error { _, err := cs.History(ctx, "sup"); return err }},
		{"cs verifies audit", func() error { _, err := cs.VerifyAudit(ctx); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := f.t.LookupOperator(ctx, "cs1")
			err := c.call()
			if !errors.Is(err, apperr.PermissionDenied) {
				t.Fatalf("err = %v, want PermissionDenied", err)
			}
			r := f.lastAudit(t)
			if r.Operator != "cs1" || r.Result != audit.ResultRefused || r.Detail["error_kind"] != "permission denied" {
				t.Fatalf("audit = %+v", r)
			}
			after, _ := f.t.LookupOperator(ctx, "cs1")
			if len(after.Permissions) != len(before.Permissions) {
				t.Fatal("permissions changed")
			}
			if _, err := f.t.LookupOperator(ctx, "x1"); !errors.Is(err, apperr.NotFound) {
				t.Fatal("operator created by refused call")
			}
		})
	}
	if cs.Allowed(ctx, operator.Reception) || !cs.Allowed(ctx, operator.CS) {
		t.Fatal("Allowed wrong")
	}
	// A withdrawn permission takes effect in the running session.
	if err := f.sup.Grant(ctx, "cs1", operator.Audit); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.History(ctx, "cs1"); err != nil {
		t.Fatalf("history after grant: %v", err)
	}
	if err := f.sup.Withdraw(ctx, "cs1", operator.Audit); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.History(ctx, "cs1"); !errors.Is(err, apperr.PermissionDenied) {
		t.Fatalf("history after withdraw: %v", err)
	}
	// A disabled operator's session stops working.
	if err := f.sup.SetOperatorActive(ctx, "cs1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.History(ctx, "cs1"); !errors.Is(err, apperr.OperatorDisabled) {
		t.Fatalf("disabled operator call: %v", err)
	}
	f.fp.Present("f-cs")
	if _, err := f.t.LoginFingerprint(ctx, "cs1", nil); !errors.Is(err, apperr.OperatorDisabled) {
		t.Fatalf("disabled operator login: %v", err)
	}
}

func TestLastSupervisorGuard(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"withdraw own supervisor", func() error { return f.sup.Withdraw(ctx, "sup", operator.Supervisor) }},
		{"disable self", func() error { return f.sup.SetOperatorActive(ctx, "sup", false) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, apperr.LastSupervisor) {
				t.Fatalf("err = %v, want LastSupervisor", err)
			}
			o, _ := f.t.LookupOperator(ctx, "sup")
			if !o.Active || !o.Has(operator.Supervisor) {
				t.Fatalf("refused change applied: %+v", o)
			}
			if r := f.lastAudit(t); r.Result != audit.ResultRefused || r.Detail["error_kind"] != "last supervisor" {
				t.Fatalf("audit = %+v", r)
			}
		})
	}
	// With a second supervisor the first may step down.
	f.addOperator(t, "sup2", "f2", operator.Supervisor)
	if err := f.sup.Withdraw(ctx, "sup", operator.Supervisor); err != nil {
		t.Fatal(err)
	}
	s2 := f.loginFinger(t, "sup2", "f2")
	if err := s2.SetOperatorActive(ctx, "sup2", false); !errors.Is(err, apperr.LastSupervisor) {
		t.Fatalf("sup2 disabling itself = %v", err)
	}
}

func TestPasswordLoginRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addOperator(t, "rc1", "f-rc", operator.Reception)
	// Not exempted: password refused even if one were guessed.
	if _, err := f.t.LoginPassword(ctx, "rc1", "whatever12345"); !errors.Is(err, apperr.PasswordNotAllowed) {
		t.Fatalf("non-exempt password login = %v", err)
	}
	if r := f.lastAudit(t); r.Action != "login.password" || r.Result != audit.ResultRefused || r.Operator != "rc1" {
		t.Fatalf("audit = %+v", r)
	}
	if _, err := f.t.LoginPassword(ctx, "nobody", "whatever12345"); !errors.Is(err, apperr.BadCredentials) {
		t.Fatalf("unknown operator = %v", err)
	}
	// Exemption needs a reason.
	if err := f.sup.GrantPasswordExemption(ctx, "rc1", "", "longpassword1"); !errors.Is(err, apperr.ReasonRequired) {
		t.Fatalf("exemption without reason = %v", err)
	}
	if o, _ := f.t.LookupOperator(ctx, "rc1"); o.PasswordExempt {
		t.Fatal("exemption recorded without reason")
	}
	if err := f.sup.GrantPasswordExemption(ctx, "rc1", "指の損傷により指紋認証が困難", "longpassword1"); err != nil {
		t.Fatal(err)
	}
	r := f.lastAudit(t)
	if r.Action != "operator.grant_exemption" || r.Detail["reason"] == "" {
		t.Fatalf("audit = %+v", r)
	}
	for _, v := range r.Detail {
		if v == "longpassword1" {
			t.Fatal("password in audit detail")
		}
	}
	s, err := f.t.LoginPassword(ctx, "rc1", "longpassword1")
	if err != nil {
		t.Fatal(err)
	}
	s.Logout(ctx)
	if err := f.sup.WithdrawPasswordExemption(ctx, "rc1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.t.LoginPassword(ctx, "rc1", "longpassword1"); !errors.Is(err, apperr.PasswordNotAllowed) {
		t.Fatalf("after withdrawal = %v", err)
	}
}

func TestLockoutAndUnlock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addOperator(t, "rc1", "f-rc", operator.Reception)
	f.fp.Present("wrong")
	for i := 1; i <= 3; i++ {
		_, err := f.t.LoginFingerprint(ctx, "rc1", nil)
		want := apperr.FingerprintNoMatch
		if i == 3 {
			want = apperr.LockedOut
		}
		if !errors.Is(err, want) {
			t.Fatalf("attempt %d: %v, want %v", i, err, want)
		}
	}
	// Locked: even the right finger is refused, without asking the reader.
	f.fp.Present("f-rc")
	if _, err := f.t.LoginFingerprint(ctx, "rc1", nil); !errors.Is(err, apperr.LockedOut) {
		t.Fatalf("locked login = %v", err)
	}
	if r := f.lastAudit(t); r.Result != audit.ResultRefused || r.Detail["error_kind"] != "locked out" {
		t.Fatalf("audit = %+v", r)
	}
	if err := f.sup.Unlock(ctx, "rc1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.t.LoginFingerprint(ctx, "rc1", nil); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	// A success resets the count: two failures do not lock.
	f.fp.Present("wrong")
	for i := 0; i < 2; i++ {
		f.t.LoginFingerprint(ctx, "rc1", nil)
	}
	if o, _ := f.t.LookupOperator(ctx, "rc1"); o.Locked || o.FailedLogins != 2 {
		t.Fatalf("operator = %+v", o)
	}
	// A timeout (no finger) is not a failure.
	f.fp.Present("")
	// (the reader's own time limit, Config.FingerTimeout, ends the wait)
	if _, err := f.t.LoginFingerprint(ctx, "rc1", nil); !errors.Is(err, apperr.Cancelled) {
		t.Fatalf("timeout = %v", err)
	}
	if o, _ := f.t.LookupOperator(ctx, "rc1"); o.Locked || o.FailedLogins != 2 {
		t.Fatalf("timeout counted: %+v", o)
	}
	// Password lockout as well.
	if err := f.sup.GrantPasswordExemption(ctx, "rc1", "reason", "longpassword1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.t.LoginPassword(ctx, "rc1", "wrongpassword"); !errors.Is(err, apperr.LockedOut) {
		t.Fatalf("third failure = %v", err)
	}
	if _, err := f.t.LoginPassword(ctx, "rc1", "longpassword1"); !errors.Is(err, apperr.LockedOut) {
		t.Fatalf("locked password login = %v", err)
	}
}

func TestIdleLogout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.clock.Advance(9 * time.Minute)
	if _, err := f.sup.ListOperators(ctx); err != nil {
		t.Fatalf("within idle time: %v", err)
	}
	f.clock.Advance(9 * time.Minute) // 9 min since the last call: still fine
	if f.sup.Expired() {
		t.Fatal("expired early")
	}
	if _, err := f.sup.ListOperators(ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10*time.Minute + time.Second)
	if !f.sup.Expired() {
		t.Fatal("Expired() false after idle time")
	}
	if err := f.sup.CreateOperator(ctx, "x1", "x"); !errors.Is(err, apperr.SessionExpired) {
		t.Fatalf("after idle = %v", err)
	}
	recs, _ := audit.List(ctx, f.t.DB(), audit.Filter{Operator: "sup"})
	var idle, refused bool
	for _, r := range recs {
		idle = idle || r.Action == "logout.idle"
		refused = refused || (r.Action == "operator.create" && r.Result == audit.ResultRefused && r.Detail["error_kind"] == "session expired")
	}
	if !idle || !refused {
		t.Fatalf("idle logout not audited: %+v", recs)
	}
	if _, err := f.t.LookupOperator(ctx, "x1"); !errors.Is(err, apperr.NotFound) {
		t.Fatal("operator created after idle logout")
	}
	if _, err := f.sup.ListOperators(ctx); !errors.Is(err, apperr.NotLoggedIn) {
		t.Fatalf("after expiry = %v", err)
	}
}

func TestHistoryAndVerifyThroughSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rc := f.login(t, "rc1", "f-rc", operator.Reception)
	rc.ListOperators(ctx) // refused, audited
	h, err := f.sup.History(ctx, "rc1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Action != "login.fingerprint" || h[1].Action != "operator.list" || h[1].Result != audit.ResultRefused {
		t.Fatalf("history = %+v", h)
	}
	rep, err := f.sup.VerifyAudit(ctx)
	if err != nil || rep.Records < 8 {
		t.Fatalf("verify = %+v, %v", rep, err)
	}
}

func TestMessageJA(t *testing.T) {
	if translations.ErrorText("ja", apperr.New(apperr.LockedOut, "x")) == "" || translations.ErrorText("ja", nil) != "" {
		t.Fatal("ErrorText")
	}
	for k := apperr.Internal; k <= apperr.Cancelled; k++ {
		if translations.ErrorText("ja", apperr.New(k, "x")) == translations.ErrorText("ja", apperr.New(apperr.Internal, "x")) && k != apperr.Internal {
			t.Errorf("kind %v has no own Japanese message", k)
		}
	}
}
