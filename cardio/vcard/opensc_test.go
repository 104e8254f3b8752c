package vcard_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

const opensc = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// runTool runs an OpenSC command line tool against the reader and returns its stdout.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestOpenSCReadsTheCard proves the JPKI read side is byte-compatible with OpenSC's jpki
// driver, the standard client: driver choice, certificate listing and reading, PIN login and
// signing through the PKCS#11 module, through real pcscd and vpcd.
func TestOpenSCReadsTheCard(t *testing.T) {
	env := testenv.PCSCD(t)
	l := vcardtest.Personalised(t, filepath.Join(t.TempDir(), "card.json"), 0x21)
	vcardtest.PlugIn(t, l.Card, env.Ports[0], env.Readers[0])

	if out := runTool(t, "opensc-tool", "-r", env.Readers[0], "-n"); strings.TrimSpace(out) != "jpki" {
		t.Fatalf("opensc-tool -n printed %q, want jpki", out)
	}

	list := runTool(t, "pkcs15-tool", "--reader", env.Readers[0], "--list-certificates")
	got := parseListing(list)
	want := map[string]map[string]string{
		"User Authentication Certificate":    {"Path": "000a", "ID": "01", "Authority": "no", "Encoded serial": "02 01 07"},
		"Digital Signature Certificate":      {"Path": "0001", "ID": "02", "Authority": "no", "Object Flags": "[0x01], private"},
		"User Authentication Certificate CA": {"Path": "000b", "ID": "03", "Authority": "yes", "Encoded serial": "02 01 07"},
		"Digital Signature Certificate CA":   {"Path": "0002", "ID": "04", "Authority": "yes", "Encoded serial": "02 01 07"},
	}
	for title, fields := range want {
		for k, v := range fields {
			if got[title][k] != v {
				t.Errorf("listing of %q: %s = %q, want %q", title, k, got[title][k], v)
			}
		}
	}

	pemOut := runTool(t, "pkcs15-tool", "--reader", env.Readers[0], "--read-certificate", "01")
	block, _ := pem.Decode([]byte(pemOut))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("--read-certificate 01 printed no PEM certificate:\n%s", pemOut)
	}
	if string(block.Bytes) != string(l.AuthCert) {
		t.Fatal("certificate 01 read by OpenSC differs from the user-auth certificate on the card")
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "data")
	sigPath := filepath.Join(dir, "sig")
	data := []byte("madoguchi counter terminal test data")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	objects := runTool(t, "pkcs11-tool", "--module", opensc, "-L")
	for _, want := range []string{"token label        : JPKI (User Authentication PIN)", "pin min/max        : 4/4",
		"token label        : JPKI (Digital Signature PIN)", "pin min/max        : 6/16"} {
		if !strings.Contains(objects, want) {
			t.Errorf("pkcs11-tool -L lacks %q:\n%s", want, objects)
		}
	}
	for _, tc := range []struct {
		token, pin, id string
		cert           []byte
	}{
		{"JPKI (User Authentication PIN)", l.AuthPIN, "01", l.AuthCert},
		{"JPKI (Digital Signature PIN)", l.SignPIN, "02", l.SignCert},
	} {
		os.Remove(sigPath)
		runTool(t, "pkcs11-tool", "--module", opensc, "--token-label", tc.token, "--login", "--pin", tc.pin,
			"--sign", "-m", "SHA256-RSA-PKCS", "--id", tc.id, "-i", in, "-o", sigPath)
		sig, err := os.ReadFile(sigPath)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(tc.cert)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(data)
		if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("key %s: signature made through OpenSC does not verify with its certificate: %v", tc.id, err)
		}
	}
	// A wrong PIN through OpenSC costs a try on the card.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad := exec.CommandContext(ctx, "pkcs11-tool", "--module", opensc, "--token-label", "JPKI (User Authentication PIN)",
		"--login", "--pin", "0000", "--sign", "-m", "SHA256-RSA-PKCS", "--id", "01", "-i", in, "-o", sigPath)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "CKR_PIN_INCORRECT") {
		t.Fatalf("wrong pin through OpenSC: err=%v output:\n%s", err, out)
	}
	if st, left, _ := l.Card.PINStatus(vcard.EFUserAuthPIN); st != vcard.PINSet || left != 2 {
		t.Fatalf("after one wrong pin: %s with %d tries, want set with 2", st, left)
	}
}

// parseListing turns pkcs15-tool's certificate listing into title → field → value.
func parseListing(out string) map[string]map[string]string {
	res := map[string]map[string]string{}
	var cur map[string]string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if title, ok := strings.CutPrefix(line, "X.509 Certificate ["); ok {
			cur = map[string]string{}
			res[strings.TrimSuffix(title, "]")] = cur
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok && cur != nil {
			cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return res
}
