package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/traffic"
	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// servedAt runs `ca-server serve` in this process and returns the
// addresses it printed ("listening", "verifier status (mutual TLS)",
// "public ARL and CA certificates") and a stop function (also run at
// cleanup).
func servedAt(t *testing.T, args ...string) (map[string]string, func()) {
	t.Helper()
	if !slices.Contains(args, "--metrics-listen") { // the default is a fixed port
		args = append(args, "--metrics-listen", "127.0.0.1:0")
	}
	ctx, cancel := context.WithCancel(context.Background())
	old := serveContext
	serveContext = func() context.Context { return ctx }
	stdout := &lineWriter{lines: make(chan string, 64)}
	var stderr bytes.Buffer
	var mu sync.Mutex
	done := make(chan int, 1)
	go func() {
		mu.Lock()
		defer mu.Unlock()
		done <- run(append([]string{"serve"}, args...), stdout, &stderr)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if code := <-done; code != 0 {
				mu.Lock()
				t.Errorf("serve exit %d:\n%s", code, stderr.String())
				mu.Unlock()
			}
			serveContext = old
		})
	}
	t.Cleanup(stop)
	addrs := map[string]string{}
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line := <-stdout.lines:
			for _, what := range []string{"verifier status (mutual TLS) on ", "public ARL and CA certificates on ", "listening on ", "metrics on "} {
				if _, rest, ok := strings.Cut(line, what); ok {
					addrs[strings.TrimSuffix(what, " on ")] = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(strings.Fields(rest)[0], "https://"), "http://"), "/metrics")
				}
			}
			if addrs["listening"] != "" {
				return addrs, stop
			}
		case code := <-done:
			done <- code // for stop at cleanup, which waits for the exit code
			mu.Lock()
			msg := stderr.String()
			mu.Unlock()
			t.Fatalf("serve exited with %d before listening:\n%s", code, msg)
		case <-timeout:
			t.Fatal("serve did not start listening")
		}
	}
}

func cmdOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCeremonyCmd(t, args...)
	if err != nil {
		t.Fatalf("ca-server %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// devCA runs a --dev key ceremony in a new data directory, makes a batch of
// cards cards and a terminal token for municipality 131016 (storeFlags name
// another store, e.g. --database URL). The caller provides the SoftHSM.
func devCA(t *testing.T, cards int, storeFlags ...string) (data string, stock []vcard.StockEntry, token string) {
	t.Helper()
	data = t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	batch := filepath.Join(t.TempDir(), "batch.txt")
	runCmd(t, "card-batch", "--data", data, "--dev", "--count", fmt.Sprint(cards), "--out", batch)
	bf, err := os.Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.Close()
	if stock, err = vcard.ParseKeyBatch(bf); err != nil || len(stock) != cards {
		t.Fatalf("batch: %d cards, %v", len(stock), err)
	}
	token = strings.TrimSpace(runCmd(t, append([]string{"terminal-token", "--data-dir", data, "--municipality", "131016"}, storeFlags...)...))
	return data, stock, token
}

// enrolTerminal enrols token's terminal through the serve listening at addr
// and returns its client certificate and the internal TLS CA to trust.
func enrolTerminal(t *testing.T, data, addr, token string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(readPEMCert(t, filepath.Join(data, "tls-ca.crt")))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: "https://" + addr, RootCAs: pool, Token: token, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	cert, err := raclient.TLSCertificate(enr, key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pool
}

// counterAt is the enrolled terminal's client of the serve at addr with the
// cards of stock; one attempt per call, so a test sees each refusal as it
// is; closed at cleanup.
func counterAt(t *testing.T, addr string, cert tls.Certificate, pool *x509.CertPool, stock []vcard.StockEntry) *counterTerminal {
	t.Helper()
	c, err := raclient.New(raclient.Config{BaseURL: "https://" + addr, Certificate: cert, RootCAs: pool, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &counterTerminal{client: c, stock: stock}
}

// counterTerminal is an enrolled terminal with the cards of a batch.
type counterTerminal struct {
	client *raclient.Client
	stock  []vcard.StockEntry
}

func (ct *counterTerminal) issue(t *testing.T, card int, typ, resident, reqID string) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	prepare, c := ct.prepareNow(t, card, typ, resident, reqID)
	prep, err := prepare()
	if err != nil {
		t.Fatalf("prepare %s: %v", reqID, err)
	}
	responses, err := c.RunScript(ctx, prep.Script)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := ct.client.Confirm(ctx, "op-1", prep.IssuanceID, wire.ConfirmRequest{RequestID: "c-" + reqID, CardResponses: responses}); err != nil || st.State != "delivered" {
		t.Fatalf("confirm %s: %v %+v", reqID, err, st)
	}
	cert, err := x509.ParseCertificate(prep.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// prepareNow opens a channel and has the card answer INITIALIZE UPDATE, then
// returns the card and a function that sends the prepare (a test may put a
// fault between the two).
func (ct *counterTerminal) prepareNow(t *testing.T, card int, typ, resident, reqID string) (func() (wire.PrepareResponse, error), *cardio.Card) {
	t.Helper()
	ctx := context.Background()
	vc, err := vcard.New(vcard.Config{Serial: ct.stock[card].Serial, Keys: ct.stock[card].Keys})
	if err != nil {
		t.Fatal(err)
	}
	c := cardio.New(vcard.Insert(vc))
	ch, err := ct.client.OpenChannel(ctx, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	iu, err := c.InitializeUpdate(ctx, ch.HostChallenge)
	if err != nil {
		t.Fatal(err)
	}
	app := wire.Applicant{ResidentCode: resident, Name: "窓口 太郎", BirthDate: "1980-04-01", Sex: "1", Address: "東京都千代田区霞が関二丁目1番2号", CardExpiry: "2034-04-01"}
	return func() (wire.PrepareResponse, error) {
		return ct.client.Prepare(ctx, "op-1", wire.PrepareRequest{RequestID: "p-" + reqID, ChannelID: ch.ChannelID, CardSerial: hex.EncodeToString(ct.stock[card].Serial),
			InitUpdateResponse: iu, CertType: typ, Applicant: app})
	}, c
}

func clientTLS(t *testing.T, pool *x509.CertPool, certs ...tls.Certificate) *http.Client {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: certs}}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func get(t *testing.T, hc *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func selfSignedClient(t *testing.T) tls.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "not registered"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

func ocspPost(t *testing.T, hc *http.Client, url string, cert, issuer *x509.Certificate) (*xocsp.Response, []byte) {
	t.Helper()
	req, err := xocsp.CreateRequest(cert, issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Post(url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r, _ := xocsp.ParseResponseForCert(body, cert, issuer)
	return r, body
}

// TestRevocationStatusEndToEnd drives the revocation and status slice of
// ca-server through its commands and listeners, with real SoftHSM keys,
// real mutual TLS and openssl:
//
//   - CPS §5.6: a certificate issued by the signature CA's first key, then
//     a rollover, then one issued by the new key; both revoked through the
//     terminal API (raclient); `crl publish --now` signs one CRL per key
//     generation with that key, each verifying with `openssl crl -CAfile`
//     against its own CA certificate and listing that key's certificate.
//   - CPS §2.4, TS Arts. 33, 36: over mutual TLS a verifier registered with
//     `verifier-add` gets CRLs and OCSP (revoked, signed by the responder
//     whose key is in the HSM, policy …330 for the user-auth CA); an
//     unregistered certificate, a withdrawn verifier and no certificate
//     are refused with specific errors and audited; the public listener
//     serves ARLs and CA certificates without a client certificate and
//     no CRLs or OCSP.
//   - the terminal routes' refusals arrive as raclient kinds; `hold`,
//     `crl archive --at`, `compromise-drill`, `verifier-revoke` work
//     through their run functions and refuse bad input with no change.
func TestRevocationStatusEndToEnd(t *testing.T) {
	testenv.SoftHSM(t)
	ctx := context.Background()
	data, stock, tok := devCA(t, 2)
	serveArgs := []string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0"}

	// 1. the first signature CA key issues a certificate
	addrs, stopA := servedAt(t, serveArgs...)
	terminalCert, pool := enrolTerminal(t, data, addrs["listening"], tok)
	newClient := func(base string) *counterTerminal { return counterAt(t, base, terminalCert, pool, stock) }
	oldCert := newClient(addrs["listening"]).issue(t, 0, "sign", "11111111111", "old")
	stopA()

	// 2. rollover; verifiers registered (one then withdrawn)
	cmdOut(t, "ceremony-rollover", "--data", data, "--dev", "--ca", "signature")
	vdir, wdir := t.TempDir(), t.TempDir()
	cmdOut(t, "verifier-add", "--data-dir", data, "--dev", "--name", "relying-party-1", "--out-dir", vdir)
	cmdOut(t, "verifier-add", "--data-dir", data, "--dev", "--name", "relying-party-2", "--out-dir", wdir)
	if _, err := runCeremonyCmd(t, "verifier-add", "--data-dir", data, "--dev", "--name", "relying-party-1", "--out-dir", t.TempDir()); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("verifier-add of a registered name: %v", err)
	}
	cmdOut(t, "verifier-revoke", "--data-dir", data, "--name", "relying-party-2")
	if _, err := runCeremonyCmd(t, "verifier-revoke", "--data-dir", data, "--name", "relying-party-2"); !errors.Is(err, store.ErrVerifierRevoked) {
		t.Fatalf("verifier-revoke twice: %v", err)
	}

	// 3. the new key issues; both revoked through the terminal API
	addrs, stopB := servedAt(t, serveArgs...)
	ct := newClient(addrs["listening"])
	newCert := ct.issue(t, 1, "sign", "22222222222", "new")
	authCert := ct.issue(t, 1, "auth", "22222222222", "auth")
	st, _ := ceremony.LoadState(data)
	var g1, g2 *x509.Certificate
	for _, k := range st.Keys {
		if k.Role == ceremony.RoleSignatureCA {
			c, err := ceremony.ReadCertificate(k)
			if err != nil {
				t.Fatal(err)
			}
			if k.Gen() == 1 {
				g1 = c
			} else {
				g2 = c
			}
		}
	}
	if oldCert.CheckSignatureFrom(g1) != nil || newCert.CheckSignatureFrom(g2) != nil {
		t.Fatal("certificates not issued by the expected key generations")
	}
	authCA := readPEMCert(t, filepath.Join(data, "ceremony", "user-auth-ca.crt.pem"))
	for i, c := range []*x509.Certificate{oldCert, newCert} {
		// a wrong resident-record code is refused, changing nothing (issue 13: the request proves the person)
		if _, err := ct.client.Revoke(ctx, "op-1", c.SerialNumber.Text(16), wire.RevokeRequest{RequestID: "rv-wrong-" + c.SerialNumber.Text(16), CertType: "sign",
			Kind: "key-compromise", WrittenRequest: "form 2026-0042", IdentityDocument: "my number card", ResidentCode: "33333333333"}); !errors.Is(err, raclient.ErrPersonMismatch) {
			t.Fatalf("revoke %x with another person's code: %v, want ErrPersonMismatch", c.SerialNumber, err)
		}
		ack, err := ct.client.Revoke(ctx, "op-1", c.SerialNumber.Text(16), wire.RevokeRequest{RequestID: "rv-" + c.SerialNumber.Text(16), CertType: "sign",
			Kind: "key-compromise", WrittenRequest: "form 2026-0042", IdentityDocument: "my number card", ResidentCode: []string{"11111111111", "22222222222"}[i]})
		if err != nil || ack.Reason != 1 || !ack.WrittenAcknowledgement {
			t.Fatalf("revoke %x: %v %+v", c.SerialNumber, err, ack)
		}
	}
	if _, err := ct.client.Revoke(ctx, "op-1", newCert.SerialNumber.Text(16), wire.RevokeRequest{RequestID: "rv-again", CertType: "sign",
		Kind: "stop-using", WrittenRequest: "form 2026-0043", IdentityDocument: "my number card", ResidentCode: "22222222222"}); !errors.Is(err, raclient.ErrAlreadyRevoked) {
		t.Fatalf("second revocation: %v, want ErrAlreadyRevoked", err)
	}
	if _, err := ct.client.Revoke(ctx, "op-1", authCert.SerialNumber.Text(16), wire.RevokeRequest{RequestID: "rv-wrong", CertType: "sign",
		Kind: "stop-using", WrittenRequest: "form 2026-0044", IdentityDocument: "my number card", ResidentCode: "22222222222"}); !errors.Is(err, raclient.ErrWrongCA) {
		t.Fatalf("revocation at the wrong CA: %v, want ErrWrongCA", err)
	}
	if _, err := ct.client.ReleaseHold(ctx, "op-1", authCert.SerialNumber.Text(16), wire.ReleaseHoldRequest{RequestID: "rel-1", CertType: "auth",
		IdentityDocument: "my number card", ResidentCode: "22222222222"}); !errors.Is(err, raclient.ErrNotOnHold) {
		t.Fatalf("release of a certificate not on hold: %v, want ErrNotOnHold", err)
	}
	if _, err := ct.client.ReportResidentChange(ctx, "op-1", wire.ResidentChangeRequest{RequestID: "chg-1", ResidentCode: "22222222222",
		Event: "became-a-cat", OccurredAt: time.Now()}); !errors.Is(err, raclient.ErrUnknownEvent) {
		t.Fatalf("unknown resident event: %v, want ErrUnknownEvent", err)
	}

	// 4. mutual TLS: registered verifier, unregistered, withdrawn, none
	vcert, err := tls.LoadX509KeyPair(filepath.Join(vdir, "verifier.crt"), filepath.Join(vdir, "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	wcert, _ := tls.LoadX509KeyPair(filepath.Join(wdir, "verifier.crt"), filepath.Join(wdir, "verifier.key"))
	vbase := "https://" + addrs["verifier status (mutual TLS)"]
	registered := clientTLS(t, pool, vcert)
	code, body := get(t, registered, vbase+"/crl/signature")
	if code != http.StatusOK {
		t.Fatalf("registered verifier GET /crl/signature: %d %s", code, body)
	}
	if l, err := x509.ParseRevocationList(body); err != nil || l.CheckSignatureFrom(g2) != nil {
		t.Fatalf("CRL served to the verifier: %v", err)
	}
	r, raw := ocspPost(t, registered, vbase+"/ocsp/signature", newCert, g2)
	if r == nil || r.Status != xocsp.Revoked || r.RevocationReason != 1 {
		t.Fatalf("OCSP for the revoked certificate: %+v (%x)", r, raw)
	}
	if r.Certificate == nil || !slices.Contains(r.Certificate.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) ||
		r.Certificate.NotAfter.Sub(r.Certificate.NotBefore) < 5*365*24*time.Hour-time.Hour {
		t.Fatalf("responder certificate: %+v", r.Certificate)
	}
	ra, _ := ocspPost(t, registered, vbase+"/ocsp/user-auth", authCert, authCA)
	if ra == nil || ra.Status != xocsp.Good || len(ra.Certificate.PolicyIdentifiers) != 1 || ra.Certificate.PolicyIdentifiers[0].String() != "1.2.392.200149.8.5.1.3.330" {
		t.Fatalf("OCSP for the good user-auth certificate: %+v", ra)
	}
	respPEM := filepath.Join(data, "ocsp", "user-auth-g1-responder.crt.pem")
	if c := readPEMCert(t, respPEM); !c.Equal(ra.Certificate) {
		t.Fatal("the responder certificate served is not the one on file")
	}
	for _, c := range []struct {
		name   string
		client *http.Client
		status int
		code   wire.Code
	}{
		{"unregistered certificate", clientTLS(t, pool, selfSignedClient(t)), http.StatusUnauthorized, wire.CodeVerifierUnknown},
		{"withdrawn verifier", clientTLS(t, pool, wcert), http.StatusForbidden, wire.CodeVerifierRevoked},
		{"no certificate", clientTLS(t, pool), 0, ""},
	} {
		resp, err := c.client.Get(vbase + "/crl/signature")
		if c.status == 0 {
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s: the handshake succeeded (%d), want refused", c.name, resp.StatusCode)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), string(c.code)) || bytes.Contains(b, []byte("BEGIN")) {
			t.Fatalf("%s: %d %s, want %d %s", c.name, resp.StatusCode, b, c.status, c.code)
		}
		if r, raw := ocspPost(t, c.client, vbase+"/ocsp/signature", newCert, g2); r != nil || !bytes.Equal(raw, []byte{0x30, 0x03, 0x0a, 0x01, 0x06}) {
			t.Fatalf("%s: OCSP answered %x, want unauthorized", c.name, raw)
		}
	}
	pub := clientTLS(t, pool)
	pbase := "https://" + addrs["public ARL and CA certificates"]
	if code, body := get(t, pub, pbase+"/arl/signature"); code != http.StatusOK {
		t.Fatalf("public ARL: %d %s", code, body)
	} else if l, err := x509.ParseRevocationList(body); err != nil || l.CheckSignatureFrom(g2) != nil {
		t.Fatalf("public ARL: %v", err)
	}
	if code, body := get(t, pub, pbase+"/ca/signature"); code != http.StatusOK || !bytes.Equal(body, g2.Raw) {
		t.Fatalf("public CA certificate: %d", code)
	}
	for _, p := range []string{"/crl/signature", "/crl/user-auth"} {
		if code, body := get(t, pub, pbase+p); code != http.StatusNotFound || !strings.Contains(string(body), string(wire.CodeRouteNotFound)) {
			t.Fatalf("public %s: %d %s, want 404", p, code, body)
		}
	}
	// the counters on the loopback metrics listener (issue 13 threat 4)
	if addrs["metrics"] == "" {
		t.Fatal("serve printed no metrics address")
	}
	mresp, err := http.Get("http://" + addrs["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`madoguchi_http_requests_refused_total{kind="verifier_unknown",listener="verifier"} 2`,
		`madoguchi_http_requests_refused_total{kind="route_not_found",listener="public"} 2`, `madoguchi_ocsp_signatures_total{ca="signature"}`,
		`madoguchi_ocsp_cache_bytes{ca="user-auth"}`, `madoguchi_http_connections_open{listener="verifier"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	stopB()

	// a registered verifier's requests are audited one by one (CPS
	// §5.5.1.2: OCSP inquiry history); refusals before authentication and
	// the public listener's requests are counted into one summary per
	// listener, written at the latest when serve stops (issue 13 threat 4)
	stDB, err := store.OpenSQLite(ctx, filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := stDB.AuditRecords(ctx, 0, 10000)
	stDB.Close()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	summaries := map[string]string{}
	for _, r := range recs {
		if r.Terminal == "verifier" {
			seen[r.Operator+" "+r.Action+" "+r.Result] = true
		}
		if r.Action == traffic.SummaryAction {
			summaries[r.Target] += r.Detail
		}
	}
	for _, want := range []string{"relying-party-1 status.crl ok", "relying-party-1 status.ocsp ok"} {
		if !seen[want] {
			t.Errorf("no audit record %q in %v", want, seen)
		}
	}
	for k := range seen {
		if !strings.HasPrefix(k, "relying-party-1 ") {
			t.Errorf("audit record %q of a request nobody authenticated", k)
		}
	}
	for target, want := range map[string][]string{"listener:verifier": {" verifier_unknown=2", " verifier_revoked=2"},
		"listener:public": {" served=2", " route_not_found=2"}} {
		for _, w := range want {
			if !strings.Contains(summaries[target], w) {
				t.Errorf("summary of %s lacks %q: %q", target, w, summaries[target])
			}
		}
	}

	// 5. local commands: hold, crl publish --now, crl archive --at, compromise-drill
	if _, err := runCeremonyCmd(t, "hold", "--data-dir", data, "--serial", newCert.SerialNumber.Text(16), "--note", "phone report 10:02"); wire.CodeOf(err) != wire.CodeAlreadyRevoked {
		t.Fatalf("hold of a revoked certificate: %v", err)
	}
	out := cmdOut(t, "hold", "--data-dir", data, "--serial", authCert.SerialNumber.Text(16), "--note", "phone report 10:05, lost card")
	if !strings.Contains(out, "on hold since") {
		t.Fatalf("hold: %s", out)
	}
	if _, err := runCeremonyCmd(t, "crl", "publish", "--data-dir", data, "--dev"); !errors.Is(err, errUsage) {
		t.Fatalf("crl publish without --now: %v", err)
	}
	out = cmdOut(t, "crl", "publish", "--now", "--data-dir", data, "--dev")
	for _, s := range []string{"signature-g2 #", "signature-g2-arl #", "signature #", "signature-arl #", "user-auth #", "user-auth-arl #"} {
		if !strings.Contains(out, s) {
			t.Fatalf("crl publish --now did not publish %q:\n%s", s, out)
		}
	}
	dir := t.TempDir()
	caPEM := func(name string, c *x509.Certificate) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600)
		return p
	}
	g1PEM, g2PEM, authPEM := caPEM("g1.pem", g1), caPEM("g2.pem", g2), caPEM("auth.pem", authCA)
	now := time.Now().Add(time.Second).Format(time.RFC3339)
	for _, c := range []struct {
		ca, generation, caFile string
		want                   *x509.Certificate
		reason                 string
	}{
		{"signature", "1", g1PEM, oldCert, "Key Compromise"},
		{"signature", "2", g2PEM, newCert, "Key Compromise"},
		{"user-auth", "", authPEM, authCert, "Certificate Hold"},
	} {
		der := filepath.Join(dir, c.ca+c.generation+".crl")
		args := []string{"crl", "archive", "--data-dir", data, "--ca", c.ca, "--at", now, "--out", der}
		if c.generation != "" {
			args = append(args, "--generation", c.generation)
		}
		cmdOut(t, args...)
		o, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", der, "-noout", "-text", "-CAfile", c.caFile).CombinedOutput()
		if err != nil || !strings.Contains(string(o), "verify OK") {
			t.Fatalf("openssl crl %s g%s: %v\n%s", c.ca, c.generation, err, o)
		}
		if n := strings.Count(string(o), "Serial Number:"); n != 1 || !strings.Contains(string(o), strings.ToUpper(c.want.SerialNumber.Text(16))) ||
			!strings.Contains(string(o), c.reason) {
			t.Fatalf("CRL %s g%s lists %d entries, want only %x (%s):\n%s", c.ca, c.generation, n, c.want.SerialNumber, c.reason, o)
		}
	}
	other := map[string]string{"1": g2PEM, "2": g1PEM}
	for gen, wrong := range other {
		der := filepath.Join(dir, "signature"+gen+".crl")
		if o, _ := exec.Command("openssl", "crl", "-inform", "DER", "-in", der, "-noout", "-CAfile", wrong).CombinedOutput(); strings.Contains(string(o), "verify OK") {
			t.Fatalf("generation %s CRL verified under the other key's certificate", gen)
		}
	}
	if _, err := runCeremonyCmd(t, "crl", "archive", "--data-dir", data, "--ca", "signature", "--at", "yesterday"); !errors.Is(err, errUsage) {
		t.Fatalf("crl archive --at yesterday: %v", err)
	}
	if _, err := runCeremonyCmd(t, "compromise-drill", "--data-dir", data, "--dev", "--ca", "user-auth", "--confirm", "yes"); !errors.Is(err, errUsage) {
		t.Fatalf("compromise-drill without the confirmation phrase: %v", err)
	}
	out = cmdOut(t, "compromise-drill", "--data-dir", data, "--dev", "--ca", "user-auth", "--confirm", "revoke-everything-signed-by-user-auth")
	if !strings.Contains(out, "1 certificates revoked with reason 2") || !strings.Contains(out, "user-auth-arl #") {
		t.Fatalf("compromise-drill: %s", out)
	}
}
