package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/ocsp"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/traffic"
)

type noCRLs struct{}

func (noCRLs) CurrentCRL(string) (io.ReadCloser, crl.Meta, error) {
	return nil, crl.Meta{}, crl.ErrNotFound
}

type countingSigner struct {
	crypto.Signer
	n atomic.Int64
}

func (s *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n.Add(1)
	return s.Signer.Sign(r, digest, opts)
}

// verifierEnv is the verifier listener over real TLS with a real OCSP
// responder (software responder key, wrapped to count signatures) and the
// real registry in the api env's SQLite store.
type verifierEnv struct {
	*env
	url      string
	guard    *traffic.Guard
	resp     *ocsp.Responder
	signer   *countingSigner
	ca       *x509.Certificate
	good     *big.Int
	verifier tls.Certificate
}

func newVerifierEnv(t *testing.T, perVerifier traffic.Rate) *verifierEnv {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	caKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "JPKI Signature CA (test)"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(der)
	rder, err := ocsp.IssueResponderCertificate(ocsp.ResponderCertRequest{Issuer: caCert, IssuerSigner: caKey, PublicKey: rKey.Public(),
		Subject: pkix.Name{CommonName: "OCSP responder (test)"}, Serial: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute),
		Policy: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 1, 3, 330}})
	if err != nil {
		t.Fatal(err)
	}
	rcert, _ := x509.ParseCertificate(rder)
	good := big.NewInt(0x4242)
	src := ocsp.StatusFunc(func(_ context.Context, s *big.Int) (ocsp.CertStatus, error) {
		if s.Cmp(good) == 0 {
			return ocsp.CertStatus{State: ocsp.Good}, nil
		}
		return ocsp.CertStatus{}, ocsp.ErrNoRecord // as status.OCSPSource for a serial the store lacks
	})
	signer := &countingSigner{Signer: rKey}
	resp, err := ocsp.New(ocsp.Config{Issuer: caCert, ResponderCert: rcert, Signer: signer, Source: src, MaxCacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.OpenUnsigned(ctx, e.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	guard := traffic.NewGuard(traffic.GuardConfig{Listener: "verifier", Audit: alog, Refusals: traffic.Rate{Per: 1, Burst: 20}, Clients: perVerifier})
	h, err := api.NewVerifierHandler(api.StatusConfig{Verifiers: e.st, CRLs: noCRLs{}, Audit: alog, Traffic: guard,
		CAs: []api.StatusCA{{Name: "signature", Certificate: caCert, OCSP: resp}}})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := e.ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = api.VerifierTLSConfig(serverCert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	vc := selfSigned(t)
	fp := sha256.Sum256(vc.Certificate[0])
	leaf, _ := x509.ParseCertificate(vc.Certificate[0])
	if err := e.st.AddVerifier(ctx, store.Verifier{ID: "v-1", Name: "relying-party-1", CertSHA256: fp[:], CertSerial: "07", NotAfter: leaf.NotAfter,
		RegisteredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return &verifierEnv{env: e, url: ts.URL, guard: guard, resp: resp, signer: signer, ca: caCert, good: good, verifier: vc}
}

func (v *verifierEnv) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: v.pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 8}}
	v.t.Cleanup(c.CloseIdleConnections)
	return c
}

func (v *verifierEnv) ocsp(t *testing.T, c *http.Client, serial *big.Int) (int, []byte) {
	t.Helper()
	req, err := xocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, v.ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(v.url+"/ocsp/signature", "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestOCSPFloodOverVerifierListener is issue 13's threat 5 over the real
// verifier listener (mutual TLS, registry in SQLite, per-request audit of
// a registered verifier's inquiries): a registered verifier asks for 2,000
// random serials (the 200,000 of the issue run in process through the same
// responder in ca-server/ocsp TestRandomSerialsCostNoSignatures; the
// attack seen succeeding on the code before this change is ca-server/status
// TestOCSPRandomSerialsCostNoSignatures). Every random serial is answered
// "unauthorized" without a signature; the cache stays within its byte
// bound by its own accounting. Then the per-verifier budget: over it, 429
// with the OCSP "tryLater" body, counted, not audited.
func TestOCSPFloodOverVerifierListener(t *testing.T) {
	v := newVerifierEnv(t, traffic.Rate{Per: 1e6, Burst: 1e6})
	c := v.client(&v.verifier)
	if code, body := v.ocsp(t, c, v.good); code != 200 {
		t.Fatalf("good serial: %d", code)
	} else if r, err := xocsp.ParseResponse(body, v.ca); err != nil || r.Status != xocsp.Good {
		t.Fatalf("good serial: %v", err)
	}
	startSeq := v.lastAudit().Seq
	const requests, workers = 2_000, 4
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range requests / workers {
				b := make([]byte, 16)
				rand.Read(b)
				b[0] = b[0]&0x7f | 0x40
				if code, body := v.ocsp(t, c, new(big.Int).SetBytes(b)); code != 200 || !bytes.Equal(body, xocsp.UnauthorizedErrorResponse) {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d random serials not answered unauthorized", wrong.Load())
	}
	st := v.resp.Stats()
	if v.signer.n.Load() != 1 || st.Signatures != 1 || st.Bytes > st.MaxBytes || st.Entries != 1 {
		t.Fatalf("after %d random serials: signer called %d times, cache %+v", requests, v.signer.n.Load(), st)
	}
	// each inquiry of the registered verifier is in the audit log
	recs, err := v.st.AuditRecords(context.Background(), startSeq, 10*requests)
	if err != nil || len(recs) != requests {
		t.Fatalf("%d audit records for %d inquiries: %v", len(recs), requests, err)
	}
	if r := recs[0]; r.Terminal != "verifier" || r.Operator != "relying-party-1" || r.Action != "status.ocsp" {
		t.Fatalf("inquiry record %+v", r)
	}
}

// TestVerifierListenerBudgets: a registered verifier over its budget gets
// 429 with "tryLater"; an unregistered client is answered "unauthorized",
// counted into one summary without a record of its own, and 429 once its
// address has spent its refusals.
func TestVerifierListenerBudgets(t *testing.T) {
	v := newVerifierEnv(t, traffic.Rate{Per: 0.001, Burst: 5})
	ctx := context.Background()
	c := v.client(&v.verifier)
	statuses := map[int]int{}
	for range 20 {
		code, body := v.ocsp(t, c, v.good)
		statuses[code]++
		if code == http.StatusTooManyRequests && !bytes.Equal(body, []byte{0x30, 0x03, 0x0a, 0x01, 0x03}) {
			t.Fatalf("429 body %x, want tryLater", body)
		}
	}
	if statuses[200] != 5 || statuses[429] != 15 {
		t.Fatalf("registered verifier over its budget: %v", statuses)
	}
	seq := v.lastAudit().Seq
	stranger := selfSigned(t)
	sc := v.client(&stranger)
	statuses = map[int]int{}
	for range 50 {
		code, body := v.ocsp(t, sc, v.good)
		statuses[code]++
		if code == 200 && !bytes.Equal(body, xocsp.UnauthorizedErrorResponse) {
			t.Fatalf("unregistered client answered %x", body)
		}
	}
	if statuses[200] != 20 || statuses[429] != 30 || v.lastAudit().Seq != seq {
		t.Fatalf("unregistered client: %v, audit seq %d → %d", statuses, seq, v.lastAudit().Seq)
	}
	if err := v.guard.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r := v.lastAudit()
	if r.Seq != seq+1 || r.Action != traffic.SummaryAction || r.Target != "listener:verifier" ||
		!strings.Contains(r.Detail, "rate_limited=45") || !strings.Contains(r.Detail, "verifier_unknown=20") || !strings.Contains(r.Detail, "127.0.0.1=65") {
		t.Fatalf("summary %+v", r)
	}
}
