package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
	_ "modernc.org/sqlite"

	"madoguchi/app/holder"
	"madoguchi/app/internal/e2e"
	"madoguchi/app/workflow"
	"madoguchi/cardio"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/jpki/wire"
)

const openscPKCS11 = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// TestHolderRevokeOnlineAgainstRealCA: CPS §4.9.3.1(1), online revocation of the signature
// certificate by its holder, on the real stack (SoftHSM-backed `ca-server serve` child
// process, pcscd+vpcd, two virtual cards from the CA's stock issued at the counter).
//
//   - `madoguchi holder revoke` (app/holder) signs through PC/SC with card 1's signature key
//     and gets the signature certificate revoked with reason 5; its acknowledgement verifies
//     under the CA's audit key; the CA audits the request as the holder's action;
//   - a request signed through OpenSC's PKCS#11 module (pkcs11-tool --sign, the standard JPKI
//     client stack) on card 0 is accepted the same way, and the serve's OCSP responder
//     answers revoked, cessationOfOperation, to a registered verifier;
//   - refused, each changing nothing: a replay of an accepted request, a request naming card
//     0's certificate signed by card 1's key, the user-authentication certificate (counter
//     only), a request signed an hour ago.
//
// Seen failing before the endpoint existed: POST /v1/holder/revoke was route_not_found (404).
func TestHolderRevokeOnlineAgainstRealCA(t *testing.T) {
	c := startCounter(t)
	ctx := context.Background()
	_, serials := c.issue("signature:SAKURA73\nsignature:SAKURA73\nuser-auth:4826\nuser-auth:4826\n")
	// A second resident's card: only the signature certificate, on card 1 in reader 1.
	const rc = rcStdin
	file := filepath.Join(c.dir, "resident-44.json")
	c.must(rc, false, "-user", "rc1", "resident", "export", "90000000044", "-o", file)
	c.must(rc, false, "-user", "rc1", "case", "open", "-kind", "new_issuance", "-file", file, "-types", "signature")
	c.must(rc, false, "-user", "rc1", "case", "identity", "2", "-document", "drivers_licence", "-ref", "9012")
	c.must(rc, false, "-user", "rc1", "case", "explain", "2")
	link1 := c.ca.PlugInStockCard(t, c.pc, 1)
	r := c.must(rc, true, "-pin-fd", pinFD(t, "signature:MOMIJI42\nsignature:MOMIJI42\n"), "-user", "rc1", "issue", "-case", "2",
		"-reader", c.pc.Readers[1], "-card-expiry", time.Now().AddDate(10, 0, 0).Format("2006-01-02"))
	m := regexp.MustCompile(`delivered signature serial ([0-9a-fA-F]+)`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("second issuance: %s", r.out)
	}
	sign1 := strings.ToLower(m[1])
	sign0, auth0 := strings.ToLower(serials["signature"]), strings.ToLower(serials["user_auth"])

	root := filepath.Join(c.dir, "tls-ca.crt")
	auditKey := auditKeyCertificate(t, c.ca.Data)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.ca.Data, "ca.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := func() string { return storeState(t, db) }
	post := func(body []byte) (int, []byte) { return postHolder(t, c.ca.Public, root, body) }
	refused := func(name string, body []byte, status int, code wire.Code) {
		t.Helper()
		before := st()
		got, b := post(body)
		var p wire.Problem
		json.Unmarshal(b, &p)
		if got != status || p.Code != code {
			t.Fatalf("%s: %d %s, want %d %s", name, got, b, status, code)
		}
		if after := st(); after != before {
			t.Fatalf("%s changed the store:\nbefore %s\nafter  %s", name, before, after)
		}
	}

	// Another card's key: card 1 signs a request naming card 0's signature certificate.
	pc1, close1 := e2e.ConnectCard(t, c.pc.Readers[1])
	card1 := cardio.New(pc1)
	if err := card1.VerifyPIN(ctx, cardio.Signature, []byte("MOMIJI42")); err != nil {
		t.Fatal(err)
	}
	payload, _ := wire.NewHolderRevocationPayload(sign0, "other-card-key-0001", time.Now())
	sum := sha256.Sum256(payload)
	sig, err := card1.Sign(ctx, cardio.Signature, holder.DigestInfoSHA256(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	close1()
	refused("another card's key", envelope(payload, sig), http.StatusUnauthorized, wire.CodeHolderSignatureInvalid)

	// The holder's command on card 1: signed through PC/SC, PIN from -pin-fd.
	saved, ackFile := filepath.Join(c.dir, "request.json"), filepath.Join(c.dir, "ack.json")
	var out, errOut bytes.Buffer
	code := holder.Run(ctx, []string{"revoke", "-ca-url", c.ca.Public, "-ca-root", root, "-ack-key", auditKey, "-reader", c.pc.Readers[1],
		"-pin-fd", pinFD(t, "MOMIJI42\n"), "-save-request", saved, "-o", ackFile}, holder.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	if code != 0 || !strings.Contains(out.String(), "serial "+sign1+", reason 5") || !strings.Contains(out.String(), "published audit key") {
		t.Fatalf("holder revoke: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), "MOMIJI42") {
		t.Fatal("the PIN was echoed")
	}
	checkAck(t, ackFile, auditKey, sign1)
	checkRevokedOnline(t, db, sign1)

	// A replay of the accepted request changes nothing.
	body, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	refused("replay", body, http.StatusConflict, wire.CodeRequestReplayed)
	link1.Faults.Remove() // card 1 leaves: OpenSC sees only card 0 from here on
	vcardtest.WaitPresent(t, c.pc.Readers[1], false)

	// Through OpenSC's PKCS#11 module on card 0.
	dir := t.TempDir()
	p11sign := func(payload []byte, id, pin string) []byte {
		t.Helper()
		in, o := filepath.Join(dir, "payload"), filepath.Join(dir, "sig")
		os.Remove(o)
		if err := os.WriteFile(in, payload, 0o600); err != nil {
			t.Fatal(err)
		}
		token := map[string]string{"01": "JPKI (User Authentication PIN)", "02": "JPKI (Digital Signature PIN)"}[id]
		cmd := exec.Command("pkcs11-tool", "--module", openscPKCS11, "--token-label", token, "--login", "--pin", pin,
			"--sign", "-m", "SHA256-RSA-PKCS", "--id", id, "-i", in, "-o", o)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pkcs11-tool --sign: %v\n%s", err, b)
		}
		s, err := os.ReadFile(o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	p, _ := wire.NewHolderRevocationPayload(auth0, "user-auth-online-0001", time.Now())
	refused("user-authentication certificate", envelope(p, p11sign(p, "01", "4826")), http.StatusForbidden, wire.CodeOnlineSignatureOnly)
	p, _ = wire.NewHolderRevocationPayload(sign0, "stale-request-00001", time.Now().Add(-time.Hour))
	refused("signed an hour ago", envelope(p, p11sign(p, "02", "SAKURA73")), http.StatusBadRequest, wire.CodeRequestStale)

	p, _ = wire.NewHolderRevocationPayload(sign0, "opensc-signed-00001", time.Now())
	accepted := envelope(p, p11sign(p, "02", "SAKURA73"))
	got, b := post(accepted)
	if got != http.StatusOK {
		t.Fatalf("request signed through OpenSC: %d %s", got, b)
	}
	if err := os.WriteFile(ackFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	checkAck(t, ackFile, auditKey, sign0)
	checkRevokedOnline(t, db, sign0)
	refused("replay of the OpenSC-signed request", accepted, http.StatusConflict, wire.CodeRequestReplayed)
	// OCSP tells relying parties at once (TS Art. 36): revoked, cessationOfOperation.
	checkOCSP(t, c.ca, db, sign0)
	// The user-authentication certificate is still valid: the refusal above changed nothing.
	var state string
	if err := db.QueryRow(`SELECT state FROM issuances WHERE serial = ?`, auth0).Scan(&state); err != nil || state != "delivered" {
		t.Fatalf("user-auth certificate: %q %v", state, err)
	}
}

func envelope(payload, sig []byte) []byte {
	b, _ := json.Marshal(wire.HolderRevocation{Payload: payload, Signature: sig})
	return b
}

// postHolder posts body to the public listener's holder revocation, trusting root.
func postHolder(t *testing.T, base, root string, body []byte) (int, []byte) {
	t.Helper()
	pem, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Post(base+"/v1/holder/revoke", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// storeState is every certificate's state and reason, the status requests and the online
// revocation audit records: what a refusal must leave as it was.
func storeState(t *testing.T, db *sql.DB) string {
	t.Helper()
	var sb strings.Builder
	rows, err := db.Query(`SELECT serial, state, IFNULL(revocation_reason, -1) FROM issuances ORDER BY serial`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s, st string
		var r int
		rows.Scan(&s, &st, &r)
		fmt.Fprintf(&sb, "%s=%s/%d ", s, st, r)
	}
	rows.Close()
	var n, a int
	db.QueryRow(`SELECT COUNT(*) FROM status_requests`).Scan(&n)
	db.QueryRow(`SELECT COUNT(*) FROM audit_records WHERE action = 'certificate.revoke.online'`).Scan(&a)
	fmt.Fprintf(&sb, "requests=%d online-audit=%d", n, a)
	return sb.String()
}

// checkRevokedOnline: serial is revoked with reason 5 (cessationOfOperation), its request came
// through the online-signed channel from the holder, and the CA audited it as the holder's.
func checkRevokedOnline(t *testing.T, db *sql.DB, serial string) {
	t.Helper()
	var state string
	var reason int
	if err := db.QueryRow(`SELECT state, revocation_reason FROM issuances WHERE serial = ?`, serial).Scan(&state, &reason); err != nil || state != "revoked" || reason != 5 {
		t.Fatalf("certificate %s: %s reason %d (%v), want revoked 5", serial, state, reason, err)
	}
	var channel, terminal string
	if err := db.QueryRow(`SELECT channel, terminal FROM status_requests WHERE serial = ?`, serial).Scan(&channel, &terminal); err != nil ||
		channel != "online-signed" || terminal != "holder" {
		t.Fatalf("status request of %s: %s %s %v", serial, channel, terminal, err)
	}
	var op, result string
	if err := db.QueryRow(`SELECT operator, result FROM audit_records WHERE action = 'certificate.revoke.online' AND target = ?`, serial).Scan(&op, &result); err != nil ||
		op != "certificate "+serial || result != "ok" {
		t.Fatalf("audit of the online revocation of %s: %q %q %v", serial, op, result, err)
	}
}

// checkAck verifies the signed acknowledgement in file under the CA's audit key certificate.
func checkAck(t *testing.T, file, keyPEM, serial string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var a wire.SignedRevocationAck
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	kb, _ := os.ReadFile(keyPEM)
	blk, _ := pem.Decode(kb)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.VerifyRevocationAck(cert.PublicKey, a); err != nil {
		t.Fatal(err)
	}
	if a.Ack.Serial != serial || a.Ack.Reason != 5 || a.Ack.CertType != "sign" || a.Ack.Kind != "stop-using" {
		t.Fatalf("acknowledgement %+v", a.Ack)
	}
	a.Payload = bytes.Replace(a.Payload, []byte(`"reason":5`), []byte(`"reason":1`), 1)
	if err := wire.VerifyRevocationAck(cert.PublicKey, a); err == nil {
		t.Fatal("a changed acknowledgement verified")
	}
}

// auditKeyCertificate is the PEM file of the CA's audit checkpoint key certificate (published
// with the audit checkpoints) in the ceremony state.
func auditKeyCertificate(t *testing.T, dataDir string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dataDir, "ceremony", "*audit*.pem"))
	for _, m := range matches {
		if b, err := os.ReadFile(m); err == nil && bytes.Contains(b, []byte("CERTIFICATE")) {
			return m
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dataDir, "ceremony"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Fatalf("no audit key certificate in the ceremony state: %v", names)
	return ""
}

// checkOCSP registers a verifier (`ca-server verifier-add`, a local command) and asks the
// serve's verifier listener over mutual TLS for serial's status: revoked, reason 5.
func checkOCSP(t *testing.T, ca *e2e.CA, db *sql.DB, serial string) {
	t.Helper()
	vdir := t.TempDir()
	e2e.CACmd(t, ca.Bin, "verifier-add", "--data-dir", ca.Data, "--dev", "--name", "holder-revocation-check", "--out-dir", vdir)
	vcert, err := tls.LoadX509KeyPair(filepath.Join(vdir, "verifier.crt"), filepath.Join(vdir, "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.RootPEM)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{vcert}}}}
	var der []byte
	if err := db.QueryRow(`SELECT der FROM issuances WHERE serial = ?`, serial).Scan(&der); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(ca.CACerts[workflow.SignatureCert])
	if err != nil {
		t.Fatal(err)
	}
	req, err := xocsp.CreateRequest(cert, issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Post(ca.Verifier+"/ocsp/signature", "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r, err := xocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil || r.Status != xocsp.Revoked || r.RevocationReason != xocsp.CessationOfOperation {
		t.Fatalf("OCSP for %s: %+v %v", serial, r, err)
	}
}
