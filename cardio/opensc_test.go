package cardio_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/cardio"
	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/pinrule"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

const openscPKCS11 = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// tool runs a command line tool (OpenSC, openssl) and returns its combined output and error.
func tool(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func mustTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := tool(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// certListing turns `pkcs15-tool --list-certificates` output into title → field → value.
func certListing(out string) map[string]map[string]string {
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

// encodedSerial is the DER INTEGER of a certificate serial as pkcs15-tool prints it
// ("02 03 0A 0A 0A").
func encodedSerial(t *testing.T, der []byte) string {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	b := c.SerialNumber.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return fmt.Sprintf("02 %02X %X", len(b), b)
}

// TestOpenSCAfterPersonalisationRealStack is the card issue's end-to-end proof: a blank card
// from card stock is personalised through the real stack (pcscd + vpcd, cardio/pcsc, the
// CA's perso script relayed by RunScript and verified by VerifyResponses, the applicant's
// PINs through SetPIN), then OpenSC's jpki driver, the standard JPKI client, lists the four
// certificates, and signatures made with each key through OpenSC's PKCS#11 module verify with
// openssl against the issued certificates. Wrong PINs through OpenSC then count down and lock
// the user-auth PIN (TS Art. 17-2(xi)(xii)).
func TestOpenSCAfterPersonalisationRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	issuer := stockIssuer(t)
	card := stockCard(t, issuer)
	p := issuedPKI(t)
	vcardtest.PlugIn(t, card, env.Ports[0], env.Readers[0])
	reader := env.Readers[0]
	ctx := context.Background()

	cl, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	pc, err := cl.Connect(reader, pcsc.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	api := cardio.New(pc)
	if err := personalise(ctx, api, issuer, p); err != nil {
		pc.Close(true)
		t.Fatal(err)
	}
	for _, w := range []cardio.Which{cardio.UserAuth, cardio.Signature} {
		if n, err := api.PINTriesLeft(ctx, w); err != nil || n != pinrule.MaxTries(w) {
			t.Fatalf("%s pin after issuance: %d tries, %v", w, n, err)
		}
	}
	// The terminal lets go of the card (reset: no verified PIN outlives the connection).
	if err := pc.Close(true); err != nil {
		t.Fatal(err)
	}
	if card.Lifecycle() != vcard.LifecyclePersonalised {
		t.Fatalf("lifecycle %s after issuance", card.Lifecycle())
	}

	if out := mustTool(t, "opensc-tool", "-r", reader, "-n"); strings.TrimSpace(out) != "jpki" {
		t.Fatalf("opensc-tool -n printed %q, want jpki", out)
	}
	listing := certListing(mustTool(t, "pkcs15-tool", "--no-cache", "--reader", reader, "--list-certificates"))
	want := []struct {
		title, id, path, authority string
		der                        []byte
	}{
		{"User Authentication Certificate", "01", "000a", "no", p.AuthCert},
		{"Digital Signature Certificate", "02", "0001", "no", p.SignCert},
		{"User Authentication Certificate CA", "03", "000b", "yes", p.AuthCACert},
		{"Digital Signature Certificate CA", "04", "0002", "yes", p.SignCACert},
	}
	for _, w := range want {
		got, ok := listing[w.title]
		if !ok {
			t.Errorf("pkcs15-tool lists no %q", w.title)
			continue
		}
		if got["ID"] != w.id || got["Path"] != w.path || got["Authority"] != w.authority {
			t.Errorf("%q: ID %q Path %q Authority %q, want %s %s %s", w.title, got["ID"], got["Path"], got["Authority"], w.id, w.path, w.authority)
		}
		// OpenSC reads the private signature certificate only after a login, so it lists no
		// serial for it here; it is checked through PKCS#11 below.
		if w.id != "02" && got["Encoded serial"] != encodedSerial(t, w.der) {
			t.Errorf("%q: encoded serial %q, want %q", w.title, got["Encoded serial"], encodedSerial(t, w.der))
		}
	}
	if len(listing) != len(want) {
		t.Errorf("pkcs15-tool lists %d certificates, want %d", len(listing), len(want))
	}

	dir := t.TempDir()
	// The public certificates as OpenSC reads them: exactly the issued ones, and openssl
	// prints the issued subject and serial.
	for _, w := range want {
		if w.id == "02" {
			continue
		}
		out := mustTool(t, "pkcs15-tool", "--no-cache", "--reader", reader, "--read-certificate", w.id)
		block, _ := pem.Decode([]byte(out))
		if block == nil || string(block.Bytes) != string(w.der) {
			t.Fatalf("certificate %s read by OpenSC differs from the issued one:\n%s", w.id, out)
		}
		checkSubjectSerial(t, dir, w.id, block.Bytes, w.der)
	}

	data := filepath.Join(dir, "data")
	if err := os.WriteFile(data, []byte("madoguchi: personalised through the real stack"), 0o600); err != nil {
		t.Fatal(err)
	}
	sigs := map[string]string{}
	for _, tc := range []struct {
		token, pin, id string
		cert           []byte
	}{
		{"JPKI (User Authentication PIN)", p.AuthPIN, "01", p.AuthCert},
		{"JPKI (Digital Signature PIN)", p.SignPIN, "02", p.SignCert},
	} {
		// The certificate as OpenSC's PKCS#11 module gives it after login (the signature
		// certificate is private): the issued one.
		certPath := filepath.Join(dir, "cert-"+tc.id+".der")
		mustTool(t, "pkcs11-tool", "--module", openscPKCS11, "--token-label", tc.token, "--login", "--pin", tc.pin,
			"--read-object", "--type", "cert", "--id", tc.id, "-o", certPath)
		got, err := os.ReadFile(certPath)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(tc.cert) {
			t.Fatalf("certificate %s read through PKCS#11 differs from the issued one", tc.id)
		}
		checkSubjectSerial(t, dir, tc.id, got, tc.cert)

		sig := filepath.Join(dir, "sig-"+tc.id)
		mustTool(t, "pkcs11-tool", "--module", openscPKCS11, "--token-label", tc.token, "--login", "--pin", tc.pin,
			"--sign", "-m", "SHA256-RSA-PKCS", "--id", tc.id, "-i", data, "-o", sig)
		pub := publicKeyPEM(t, dir, tc.id, tc.cert)
		if out := mustTool(t, "openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, data); !strings.Contains(out, "Verified OK") {
			t.Fatalf("openssl on the signature of key %s: %s", tc.id, out)
		}
		sigs[tc.id] = sig
	}
	// The check can fail: each signature fails against the other key's certificate.
	if out, err := tool("openssl", "dgst", "-sha256", "-verify", filepath.Join(dir, "pub-02.pem"), "-signature", sigs["01"], data); err == nil {
		t.Fatalf("user-auth signature verified with the signature key:\n%s", out)
	}

	// Wrong PINs through OpenSC count down on the card and lock the PIN.
	maxTries := pinrule.MaxTries(cardio.UserAuth)
	for left := maxTries - 1; left >= 0; left-- {
		out, err := tool("pkcs11-tool", "--module", openscPKCS11, "--token-label", "JPKI (User Authentication PIN)",
			"--login", "--pin", "0000", "--sign", "-m", "SHA256-RSA-PKCS", "--id", "01", "-i", data, "-o", filepath.Join(dir, "bad"))
		if err == nil || !strings.Contains(out, "CKR_PIN_INCORRECT") && !strings.Contains(out, "CKR_PIN_LOCKED") {
			t.Fatalf("wrong pin through OpenSC: err=%v\n%s", err, out)
		}
		if st, n, _ := card.PINStatus(vcard.EFUserAuthPIN); n != left || (left == 0) != (st == vcard.PINBlocked) {
			t.Fatalf("after a wrong pin: %s with %d tries, want %d", st, n, left)
		}
	}
	// The right PIN no longer signs (OpenSC may report CKR_PIN_LOCKED or hide the token of a
	// blocked PIN), and the card stays blocked: the right PIN does not restore the counter.
	late := filepath.Join(dir, "late")
	out, err := tool("pkcs11-tool", "--module", openscPKCS11, "--token-label", "JPKI (User Authentication PIN)",
		"--login", "--pin", p.AuthPIN, "--sign", "-m", "SHA256-RSA-PKCS", "--id", "01", "-i", data, "-o", late)
	if _, serr := os.Stat(late); err == nil || serr == nil {
		t.Fatalf("right pin on a locked card through OpenSC signed: err=%v\n%s", err, out)
	}
	if st, n, _ := card.PINStatus(vcard.EFUserAuthPIN); st != vcard.PINBlocked || n != 0 {
		t.Fatalf("user-auth pin after the lock: %s with %d tries, want blocked", st, n)
	}
	// The signature key is untouched by the user-auth lock.
	if st, n, _ := card.PINStatus(vcard.EFSignaturePIN); st != vcard.PINSet || n != pinrule.MaxTries(cardio.Signature) {
		t.Fatalf("signature pin after the user-auth lock: %s %d", st, n)
	}
}

// checkSubjectSerial has openssl print subject and serial of the certificate got (as read
// from the card) and compares them with the issued certificate want.
func checkSubjectSerial(t *testing.T, dir, id string, got, want []byte) {
	t.Helper()
	path := filepath.Join(dir, "read-"+id+".pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: got}), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustTool(t, "openssl", "x509", "-in", path, "-noout", "-serial", "-subject", "-nameopt", "RFC2253")
	c, err := x509.ParseCertificate(want)
	if err != nil {
		t.Fatal(err)
	}
	wantSerial := "serial=" + strings.ToUpper(fmt.Sprintf("%0*X", (len(c.SerialNumber.Bytes())*2), c.SerialNumber))
	if !strings.Contains(out, wantSerial) || !strings.Contains(out, "subject="+c.Subject.String()) {
		t.Fatalf("certificate %s: openssl printed\n%s\nwant %s and subject=%s", id, out, wantSerial, c.Subject)
	}
}

// publicKeyPEM extracts the public key of an issued certificate with openssl into
// dir/pub-<id>.pem and returns the path.
func publicKeyPEM(t *testing.T, dir, id string, der []byte) string {
	t.Helper()
	certPath := filepath.Join(dir, "issued-"+id+".pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "pub-"+id+".pem")
	mustTool(t, "openssl", "x509", "-in", certPath, "-pubkey", "-noout", "-out", pub)
	return pub
}
