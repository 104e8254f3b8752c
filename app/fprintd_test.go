package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/operator"
	"madoguchi/internal/testenv"
)

// presser presses a print on the virtual device from its own goroutine each time the terminal
// asks for a finger, and collects the first error.
type presser struct {
	fp   *testenv.Fingerprint
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
	seen []auth.EnrollProgress
}

func (p *presser) press(print string) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.fp.Scan(print); err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
		}
	}()
}

func (p *presser) enrollProgress(print string) func(auth.EnrollProgress) {
	return func(e auth.EnrollProgress) {
		p.mu.Lock()
		p.seen = append(p.seen, e)
		p.mu.Unlock()
		if e.Stage < e.Total {
			p.press(print)
		}
	}
}

func (p *presser) wait(t *testing.T) {
	t.Helper()
	p.wg.Wait()
	if p.err != nil {
		t.Fatal(p.err)
	}
}

// TestFingerprintLoginWithFprintd is the proof against the real fprintd with libfprint's virtual
// device on a private system bus: bootstrap enrols the first supervisor's finger with 5 presses,
// the supervisor logs in with it, a wrong finger is refused and audited, a second operator is
// enrolled by the supervisor and logs in, and an operator fprintd has no print for is refused.
func TestFingerprintLoginWithFprintd(t *testing.T) {
	fp := testenv.Fprintd(t)
	ctx := context.Background()
	term, err := app.Open(ctx, app.Config{DBPath: filepath.Join(t.TempDir(), "terminal.db"),
		Fingerprint: &auth.Fprintd{BusAddress: fp.BusAddress}, Argon2: cheap})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()

	p := &presser{fp: fp}
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理 太郎", Finger: "right-index-finger",
		Progress: p.enrollProgress("print-sup")}); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	if n := len(p.seen); n != 6 || p.seen[0].Stage != 0 || p.seen[5].Stage != 5 || p.seen[5].Total != 5 {
		t.Fatalf("enrol progress = %+v, want stages 0..5 of 5", p.seen)
	}

	login := func(id, print string) (*app.Session, error) {
		return term.LoginFingerprint(ctx, id, func(e auth.ScanEvent) {
			if e == auth.ScanWaiting {
				p.press(print)
			}
		})
	}
	sup, err := login("sup", "print-sup")
	p.wait(t)
	if err != nil {
		t.Fatalf("login with the enrolled finger: %v", err)
	}

	// A wrong finger is refused, counted and audited.
	if _, err := login("sup", "print-stranger"); !errors.Is(err, apperr.FingerprintNoMatch) {
		t.Fatalf("wrong finger: %v", err)
	}
	p.wait(t)
	recs, _ := audit.List(ctx, term.DB(), audit.Filter{Operator: "sup"})
	last := recs[len(recs)-1]
	if last.Action != "login.fingerprint" || last.Result != audit.ResultRefused || last.Detail["error_kind"] != "fingerprint no match" {
		t.Fatalf("audit of wrong finger = %+v", last)
	}
	if o, _ := term.LookupOperator(ctx, "sup"); o.FailedLogins != 1 {
		t.Fatalf("failed logins = %d, want 1", o.FailedLogins)
	}

	// The supervisor enrols a reception operator, who then logs in.
	if err := sup.CreateOperator(ctx, "rc1", "受付 花子"); err != nil {
		t.Fatal(err)
	}
	if err := sup.Grant(ctx, "rc1", operator.Reception); err != nil {
		t.Fatal(err)
	}
	if err := sup.EnrollFinger(ctx, "rc1", "left-index-finger", p.enrollProgress("print-rc1")); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	rc, err := login("rc1", "print-rc1")
	p.wait(t)
	if err != nil {
		t.Fatalf("rc1 login: %v", err)
	}
	if !rc.Allowed(ctx, operator.Reception) || rc.Allowed(ctx, operator.CS) {
		t.Fatal("rc1 permissions wrong")
	}
	// rc1's print does not open sup's account.
	if _, err := login("sup", "print-rc1"); !errors.Is(err, apperr.FingerprintNoMatch) {
		t.Fatalf("rc1's finger for sup: %v", err)
	}
	p.wait(t)

	// An operator recorded as enrolled whose prints fprintd does not hold.
	if err := sup.CreateOperator(ctx, "ghost", "記録 のみ"); err != nil {
		t.Fatal(err)
	}
	if _, err := term.DB().Exec(`UPDATE operators SET finger = 'right-thumb' WHERE id = 'ghost'`); err != nil {
		t.Fatal(err)
	}
	if _, err := term.LoginFingerprint(ctx, "ghost", nil); !errors.Is(err, apperr.FingerprintNotEnrolled) {
		t.Fatalf("ghost login: %v", err)
	}
	if _, err := sup.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}
