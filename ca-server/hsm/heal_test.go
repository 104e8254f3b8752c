package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"madoguchi/ca-server/internal/hsmfault"
)

// setFault installs the call-boundary fault hook for one test.
func setFault(t *testing.T, f func(op string, s pkcs11.SessionHandle) error) {
	t.Helper()
	t.Cleanup(hsmfault.Set(f))
}

func signOnce(t *testing.T, sg *Signer) error {
	t.Helper()
	d := sha256.Sum256([]byte("heal"))
	sig, err := sg.Sign(nil, d[:], crypto.SHA256)
	if err == nil {
		if verr := rsa.VerifyPKCS1v15(sg.Public().(*rsa.PublicKey), crypto.SHA256, d[:], sig); verr != nil {
			t.Fatalf("signature does not verify: %v", verr)
		}
	}
	return err
}

// Every session of the token closed from outside the pool (C_CloseAllSessions
// on the same module, as an HSM reboot or another client of the slot does):
// the login is gone and SoftHSM forgets every object handle. On the old code
// the next Sign failed with CKR_SESSION_HANDLE_INVALID until a restart (seen
// with a probe on the old pool: "sign rsa pkcs1: CKR_SESSION_HANDLE_INVALID").
// Now the session is replaced, the pool logs in again with the PIN it holds
// in memory, finds the token key again by label and CKA_ID and signs.
func TestSessionsClosedFromOutsideHeal(t *testing.T) {
	for _, pool := range []int{1, 3} {
		t.Run(fmt.Sprint("pool", pool), func(t *testing.T) {
			h, _ := openTestToken(t, pool)
			ctx := context.Background()
			kp, err := h.GenerateRSA(ctx, "heal-ca", KeyOptions{Token: true})
			if err != nil {
				t.Fatal(err)
			}
			userKey, err := h.GenerateRSA(ctx, "heal-user", KeyOptions{Extractable: ExtractableForCard})
			if err != nil {
				t.Fatal(err)
			}
			sg, _ := h.Signer(kp)
			if err := signOnce(t, sg); err != nil {
				t.Fatal(err)
			}
			if !h.Alive(userKey.Private) {
				t.Fatal("session key not alive before the fault")
			}
			if err := h.p11().CloseAllSessions(h.slot); err != nil {
				t.Fatal(err)
			}
			for i := range 2 * pool { // every session of the pool had been closed
				if err := signOnce(t, sg); err != nil {
					t.Fatalf("sign %d after the sessions were closed: %v", i, err)
				}
			}
			if h.Faults() == 0 {
				t.Error("no fault counted")
			}
			if err := h.Check(ctx); err != nil {
				t.Errorf("Check after healing: %v", err)
			}
			// the session object died with its session, and says so
			if h.Alive(userKey.Private) {
				t.Error("a session key of a closed session is reported alive")
			}
			if !h.Alive(kp.Private) {
				t.Error("token key reported dead")
			}
			// new keys work in the new epoch
			if _, err := h.GenerateRSA(ctx, "heal-user", KeyOptions{Extractable: ExtractableForCard}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The other codes of a lost session, injected at the PKCS#11 call boundary:
// the session is replaced and a signature (safe to repeat) is retried once.
func TestSessionFaultCodesReplaceAndRetrySign(t *testing.T) {
	h, _ := openTestToken(t, 2)
	ctx := context.Background()
	kp, err := h.GenerateRSA(ctx, "codes", KeyOptions{Token: true})
	if err != nil {
		t.Fatal(err)
	}
	sg, _ := h.Signer(kp)
	for _, code := range []uint{pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_USER_NOT_LOGGED_IN} {
		var calls atomic.Int32
		setFault(t, func(op string, s pkcs11.SessionHandle) error {
			if strings.HasPrefix(op, "sign") && calls.Add(1) == 1 {
				return pkcs11.Error(code)
			}
			return nil
		})
		before := h.Faults()
		if err := signOnce(t, sg); err != nil {
			t.Errorf("%v: sign not healed: %v", pkcs11.Error(code), err)
		}
		if calls.Load() != 2 || h.Faults() != before+1 {
			t.Errorf("%v: %d sign attempts, %d faults (want 2 and 1)", pkcs11.Error(code), calls.Load(), h.Faults()-before)
		}
	}
	// a fault that persists is reported after the one retry, not looped on
	setFault(t, func(op string, s pkcs11.SessionHandle) error {
		if strings.HasPrefix(op, "sign") {
			return pkcs11.Error(pkcs11.CKR_DEVICE_ERROR)
		}
		return nil
	})
	if err := signOnce(t, sg); err == nil || !strings.Contains(err.Error(), "CKR_DEVICE_ERROR") {
		t.Errorf("persistent fault: %v", err)
	}
}

// Keygen of a session object is retried (the object of a failed attempt
// died with its session); creating a token object is not, because whether
// the first attempt made it is unknown: the caller sees the error.
func TestKeygenRetryOnlyForSessionObjects(t *testing.T) {
	h, _ := openTestToken(t, 2)
	ctx := context.Background()
	var calls atomic.Int32
	setFault(t, func(op string, s pkcs11.SessionHandle) error {
		if op == "generate rsa" && calls.Add(1)%2 == 1 {
			return pkcs11.Error(pkcs11.CKR_DEVICE_ERROR)
		}
		return nil
	})
	if _, err := h.GenerateRSA(ctx, "sess", KeyOptions{}); err != nil || calls.Load() != 2 {
		t.Errorf("session keygen: %v after %d attempts (want success after 2)", err, calls.Load())
	}
	calls.Store(0)
	if _, err := h.GenerateRSA(ctx, "tok", KeyOptions{Token: true}); err == nil || calls.Load() != 1 {
		t.Errorf("token keygen: %v after %d attempts (want the fault after 1)", err, calls.Load())
	}
}

// A hung call: the caller gets ErrDeadline at the call timeout while the
// call goes on inside the module; Check reports the HSM unavailable until
// the call returns, then its session is replaced and signing works again.
func TestHungCallHasDeadlineAndReadinessRecovers(t *testing.T) {
	h, _ := openTestToken(t, 1)
	ctx := context.Background()
	kp, err := h.GenerateRSA(ctx, "hang", KeyOptions{Token: true})
	if err != nil {
		t.Fatal(err)
	}
	// Config.CallTimeout, set here after the key generation: the hook
	// below blocks until released, so no real call is near the bound.
	h.callTimeout = 100 * time.Millisecond
	sg, _ := h.Signer(kp)
	release := make(chan struct{})
	var once sync.Once
	setFault(t, func(op string, s pkcs11.SessionHandle) error {
		if strings.HasPrefix(op, "sign") {
			once.Do(func() { <-release })
		}
		return nil
	})
	if err := signOnce(t, sg); !errors.Is(err, ErrDeadline) {
		t.Fatalf("hung sign: %v, want ErrDeadline", err)
	}
	if err := h.Check(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check while a call hangs: %v, want ErrUnavailable", err)
	}
	close(release)
	wait := time.Now().Add(time.Minute)
	for h.Check(ctx) != nil {
		if time.Now().After(wait) {
			t.Fatalf("HSM still unavailable after the hung call returned: %v", h.Check(ctx))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := signOnce(t, sg); err != nil {
		t.Fatalf("sign after the hung call returned: %v", err)
	}
}

// The PIN the pool keeps for re-login never shows when the HSM or the
// secret is printed or logged.
func TestKeptPINNeverPrinted(t *testing.T) {
	h, cfg := openTestToken(t, 1)
	pin, err := ReadPIN(cfg.PINSource)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	lg := slog.New(slog.NewJSONHandler(&buf, nil))
	lg.Info("hsm", "hsm", h, "pin", h.pin)
	out := fmt.Sprintf("%v %+v %s %#v %v %+v %q %s %x", h, h, h, h.pin, h.pin, h.pin, h.pin, h.pin, h.pin) + buf.String()
	if strings.Contains(out, pin) {
		t.Fatalf("PIN printed: %s", out)
	}
}

// Concurrent signers meet a pool whose every session was closed from
// outside: they heal it together (several goroutines find dead sessions at
// once, one logs in again, all find the key again), with no race, no
// session used by two goroutines, and every signature made. (The sessions
// are closed between rounds, not under running calls: SoftHSM crashes when
// C_CloseAllSessions frees a session a C_Sign on another thread is using,
// which no other process can do to ours.)
func TestConcurrentSignersHealTogether(t *testing.T) {
	h, _ := openTestToken(t, 3)
	ctx := context.Background()
	kp, err := h.GenerateRSA(ctx, "storm", KeyOptions{Token: true})
	if err != nil {
		t.Fatal(err)
	}
	sg, _ := h.Signer(kp)
	for round := range 3 {
		if err := h.p11().CloseAllSessions(h.slot); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var failed atomic.Int32
		start := make(chan struct{})
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range 5 {
					d := sha256.Sum256([]byte("storm"))
					if _, err := sg.Sign(nil, d[:], crypto.SHA256); err != nil {
						if failed.Add(1) == 1 {
							t.Errorf("round %d: %v", round, err)
						}
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := failed.Load(); n > 0 {
			t.Errorf("round %d: %d of 30 signatures failed", round, n)
		}
	}
	if err := h.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
