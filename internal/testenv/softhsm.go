package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"madoguchi/internal/services"
)

// HSM is a SoftHSM2 token initialised for one test.
//
// It holds the token's PINs: never format it with %v/%+v in production code paths. String
// redacts them so an accidental log line does not leak them.
type HSM struct {
	Module     string // PKCS#11 module, /usr/lib/softhsm/libsofthsm2.so
	ConfPath   string // private softhsm2.conf, also exported as SOFTHSM2_CONF
	TokenDir   string // directories.tokendir
	TokenLabel string // random, "testenv-<hex>"; find the slot by this label
	SOPIN      string // random
	UserPIN    string // random
}

// String describes the token without its PINs.
func (h *HSM) String() string {
	return fmt.Sprintf("softhsm token %q (conf %s)", h.TokenLabel, h.ConfPath)
}

// SoftHSMOptions configures SoftHSMWith; the zero value is Debian's softhsm2.
type SoftHSMOptions struct {
	Util   string // softhsm2-util, default from PATH
	Module string // default /usr/lib/softhsm/libsofthsm2.so
}

// SoftHSM writes a private softhsm2.conf under t.TempDir(), sets SOFTHSM2_CONF to it for the
// rest of the test, and initialises one token with a random label, SO PIN and user PIN
// (`softhsm2-util --init-token --free`). The slot id of the token is not stable: find it by
// label.
func SoftHSM(t testing.TB) *HSM {
	t.Helper()
	return SoftHSMWith(t, SoftHSMOptions{})
}

// SoftHSMWith is SoftHSM with options.
func SoftHSMWith(t testing.TB, opts SoftHSMOptions) *HSM {
	t.Helper()
	if opts.Util == "" {
		opts.Util = "softhsm2-util"
	}
	if opts.Module == "" {
		opts.Module = "/usr/lib/softhsm/libsofthsm2.so"
	}
	if _, err := os.Stat(opts.Module); err != nil {
		t.Fatalf("testenv: softhsm module: %v", err)
	}
	dir := t.TempDir()
	h := &HSM{
		Module:     opts.Module,
		ConfPath:   filepath.Join(dir, "softhsm2.conf"),
		TokenDir:   filepath.Join(dir, "tokens"),
		TokenLabel: "testenv-" + randomHex(t, 6),
		SOPIN:      randomHex(t, 8),
		UserPIN:    randomHex(t, 8),
	}
	if err := os.Mkdir(h.TokenDir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", h.TokenDir)
	if err := os.WriteFile(h.ConfPath, []byte(conf), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Setenv("SOFTHSM2_CONF", h.ConfPath)
	if _, err := services.RunTool("softhsm2-util", opts.Util, []string{"--init-token", "--free",
		"--label", h.TokenLabel, "--so-pin", h.SOPIN, "--pin", h.UserPIN},
		[]string{"SOFTHSM2_CONF=" + h.ConfPath}, nil); err != nil {
		// The error holds the command line with the PINs: report without it.
		t.Fatalf("testenv: softhsm2-util --init-token failed for token %q: %v", h.TokenLabel, services.Redact(err.Error(), h.SOPIN, h.UserPIN))
	}
	return h
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return hex.EncodeToString(b)
}
