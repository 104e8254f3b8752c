package testenv

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// TestSoftHSMLogin proves the token works: the module finds it by label and the user PIN logs
// in.
func TestSoftHSMLogin(t *testing.T) {
	start := time.Now()
	h := SoftHSM(t)
	t.Logf("SoftHSM token ready in %v", time.Since(start))
	if got := os.Getenv("SOFTHSM2_CONF"); got != h.ConfPath {
		t.Fatalf("SOFTHSM2_CONF = %q, want %q", got, h.ConfPath)
	}
	if s := h.String(); strings.Contains(s, h.UserPIN) || strings.Contains(s, h.SOPIN) {
		t.Fatal("HSM.String leaks a PIN")
	}

	p := pkcs11.New(h.Module)
	if p == nil {
		t.Fatalf("cannot load %s", h.Module)
	}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Finalize(); p.Destroy() })
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	var slot uint
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimRight(ti.Label, " ") == h.TokenLabel {
			slot, found = s, true
		}
	}
	if !found {
		t.Fatalf("token %q not among %d slots", h.TokenLabel, len(slots))
	}
	session, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseSession(session)
	if err := p.Login(session, pkcs11.CKU_USER, "wrong-pin"); err == nil {
		t.Fatal("login with a wrong PIN succeeded")
	}
	if err := p.Login(session, pkcs11.CKU_USER, h.UserPIN); err != nil {
		t.Fatalf("login with the user PIN: %v", err)
	}
	if err := p.Logout(session); err != nil {
		t.Fatal(err)
	}
}
