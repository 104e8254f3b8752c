package ocsp_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/ca-server/ocsp"
)

var policyOCSP = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 1, 3, 330}

var (
	keysOnce sync.Once
	keys     [3]*rsa.PrivateKey // CA, responder, other CA
	keysErr  error
)

func testKeys(t testing.TB) [3]*rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		for i := range keys {
			if keys[i], keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
				return
			}
		}
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keys
}

func makeCA(t testing.TB, key *rsa.PrivateKey, cn string) *x509.Certificate {
	t.Helper()
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ski := sha1.Sum(spki)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, CommonName: cn},
		NotBefore: time.Now().AddDate(-1, 0, 0), NotAfter: time.Now().AddDate(9, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writePEM(t testing.TB, dir, name string, c *x509.Certificate) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// statusMap is an in-memory StatusSource; calls counts Status calls.
type statusMap struct {
	mu    sync.Mutex
	m     map[string]ocsp.CertStatus
	calls atomic.Int64
	fail  error
}

func (s *statusMap) Status(_ context.Context, serial *big.Int) (ocsp.CertStatus, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return ocsp.CertStatus{}, s.fail
	}
	st, ok := s.m[serial.String()]
	if !ok {
		return ocsp.CertStatus{}, fmt.Errorf("store: %w", ocsp.ErrNotIssued)
	}
	return st, nil
}

func (s *statusMap) set(serial *big.Int, st ocsp.CertStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[serial.String()] = st
}

type fixture struct {
	ca, other, responder  *x509.Certificate
	caPEM, otherPEM, rPEM string
	src                   *statusMap
	r                     *ocsp.Responder
	now                   *atomic.Pointer[time.Time]
}

var (
	serialGood    = big.NewInt(0x1001)
	serialRevoked = big.NewInt(0x1002)
	serialHeld    = big.NewInt(0x1003)
	serialUnknown = big.NewInt(0x7777)
	revokedAt     = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
)

func newFixture(t testing.TB, authorize func(*http.Request) bool) *fixture {
	t.Helper()
	k := testKeys(t)
	f := &fixture{ca: makeCA(t, k[0], "JPKI user authentication CA (test)"), other: makeCA(t, k[2], "Another CA")}
	der, err := ocsp.IssueResponderCertificate(ocsp.ResponderCertRequest{
		Issuer: f.ca, IssuerSigner: k[0], PublicKey: &k[1].PublicKey,
		Subject: pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, CommonName: "OCSP Responder (test)"},
		Serial:  big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), Policy: policyOCSP,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.responder, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f.caPEM, f.otherPEM, f.rPEM = writePEM(t, dir, "ca.pem", f.ca), writePEM(t, dir, "other.pem", f.other), writePEM(t, dir, "responder.pem", f.responder)
	f.src = &statusMap{m: map[string]ocsp.CertStatus{}}
	f.src.set(serialGood, ocsp.CertStatus{State: ocsp.Good})
	f.src.set(serialRevoked, ocsp.CertStatus{State: ocsp.Revoked, RevokedAt: revokedAt, Reason: 1})
	f.src.set(serialHeld, ocsp.CertStatus{State: ocsp.Held, RevokedAt: revokedAt})
	f.now = new(atomic.Pointer[time.Time])
	now := time.Now()
	f.now.Store(&now)
	f.r, err = ocsp.New(ocsp.Config{Issuer: f.ca, ResponderCert: f.responder, Signer: k[1], Source: f.src,
		Now: func() time.Time { return *f.now.Load() }, Authorize: authorize})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) advance(d time.Duration) {
	n := f.now.Load().Add(d)
	f.now.Store(&n)
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := opensslMayFail(args...)
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func opensslMayFail(args ...string) (string, error) {
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

// Real openssl against a real loopback listener: good, revoked with reason,
// held, unknown, and a request for another CA's certificate.
func TestOpenSSLQueries(t *testing.T) {
	f := newFixture(t, nil)
	srv := httptest.NewServer(f.r)
	t.Cleanup(srv.Close)
	query := func(issuer string, serial *big.Int) (string, error) {
		return opensslMayFail("ocsp", "-issuer", issuer, "-serial", fmt.Sprintf("0x%x", serial), "-url", srv.URL,
			"-resp_text", "-VAfile", f.rPEM, "-no_nonce")
	}
	tests := []struct {
		name   string
		issuer string
		serial *big.Int
		want   []string
		fails  bool
	}{
		{"good", f.caPEM, serialGood, []string{"Response verify OK", "0x1001: good", "Cert Status: good", "OCSP Responder (test)"}, false},
		{"revoked", f.caPEM, serialRevoked, []string{"Response verify OK", "0x1002: revoked", "Reason: keyCompromise",
			"Revocation Time: Feb  3 04:05:06 2026 GMT"}, false},
		{"held", f.caPEM, serialHeld, []string{"Response verify OK", "0x1003: revoked", "Reason: certificateHold"}, false},
		{"unknown", f.caPEM, serialUnknown, []string{"Response verify OK", "0x7777: unknown"}, false},
		{"other CA", f.otherPEM, serialGood, []string{"Responder Error: unauthorized (6)"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := query(tt.issuer, tt.serial)
			if (err != nil) != tt.fails {
				t.Fatalf("openssl: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("openssl output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func post(t *testing.T, h http.Handler, body []byte) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/ocsp-request")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func request(t *testing.T, issuer *x509.Certificate, serial *big.Int, h crypto.Hash) []byte {
	t.Helper()
	// CreateRequest needs a certificate only for its serial.
	req, err := xocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, issuer, &xocsp.RequestOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestMalformedAndUnauthorized(t *testing.T) {
	denied := false
	f := newFixture(t, func(*http.Request) bool { return !denied })
	tests := []struct {
		name   string
		body   []byte
		deny   bool
		status xocsp.ResponseStatus
	}{
		{"garbage", []byte("hello"), false, xocsp.Malformed},
		{"empty", nil, false, xocsp.Malformed},
		{"truncated", request(t, f.ca, serialGood, crypto.SHA1)[:20], false, xocsp.Malformed},
		{"other CA", request(t, f.other, serialGood, crypto.SHA1), false, xocsp.Unauthorized},
		{"refused client", request(t, f.ca, serialGood, crypto.SHA1), true, xocsp.Unauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			denied = tt.deny
			res, body := post(t, f.r, tt.body)
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/ocsp-response" {
				t.Fatalf("HTTP %d %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
			_, err := xocsp.ParseResponse(body, nil)
			var re xocsp.ResponseError
			if !errors.As(err, &re) || re.Status != tt.status {
				t.Fatalf("response %x: %v, want status %v", body, err, tt.status)
			}
		})
	}
	req := httptest.NewRequest(http.MethodPut, "/", nil)
	rec := httptest.NewRecorder()
	f.r.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", rec.Code)
	}
}

// GET with the base64 request in the path (RFC 6960 A.1), also with SHA-256
// CertIDs; responses carry HTTP caching headers until nextUpdate.
func TestGetAndHashes(t *testing.T) {
	f := newFixture(t, nil)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		raw := request(t, f.ca, serialRevoked, h)
		req := httptest.NewRequest(http.MethodGet, "/"+url.PathEscape(base64.StdEncoding.EncodeToString(raw)), nil)
		rec := httptest.NewRecorder()
		f.r.ServeHTTP(rec, req)
		resp, err := xocsp.ParseResponseForCert(rec.Body.Bytes(), nil, f.ca)
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		if resp.Status != xocsp.Revoked || resp.RevocationReason != xocsp.KeyCompromise || !resp.RevokedAt.Equal(revokedAt) ||
			resp.IssuerHash != h || resp.SerialNumber.Cmp(serialRevoked) != 0 {
			t.Fatalf("%v: %+v", h, resp)
		}
		if err := resp.CheckSignatureFrom(f.responder); err != nil {
			t.Fatal(err)
		}
		if rec.Header().Get("Expires") == "" || rec.Header().Get("Last-Modified") == "" {
			t.Fatalf("no caching headers: %v", rec.Header())
		}
	}
	rec := httptest.NewRecorder()
	f.r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/!!notbase64", nil))
	if _, err := xocsp.ParseResponse(rec.Body.Bytes(), nil); !errors.As(err, new(xocsp.ResponseError)) {
		t.Fatalf("bad GET: %v", err)
	}
}

func status(t *testing.T, f *fixture, serial *big.Int) *xocsp.Response {
	t.Helper()
	_, body := post(t, f.r, request(t, f.ca, serial, crypto.SHA1))
	resp, err := xocsp.ParseResponseForCert(body, nil, f.ca)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Pre-signed responses: the store is asked once per serial; a status change
// reaches clients through Update at once; RefreshDue re-signs at half-life.
func TestCacheUpdateAndRefresh(t *testing.T) {
	f := newFixture(t, nil)
	first := status(t, f, serialGood)
	for i := 0; i < 5; i++ {
		status(t, f, serialGood)
	}
	if n := f.src.calls.Load(); n != 1 {
		t.Fatalf("store asked %d times for one serial", n)
	}
	if first.Status != xocsp.Good || !first.NextUpdate.Equal(first.ThisUpdate.Add(ocsp.DefaultValidity)) {
		t.Fatalf("%+v", first)
	}

	// Phone report: hold. Without Update the cache still says good; Update
	// makes the next answer "revoked, certificateHold".
	f.src.set(serialGood, ocsp.CertStatus{State: ocsp.Held, RevokedAt: revokedAt})
	f.advance(time.Second)
	if err := f.r.Update(context.Background(), serialGood); err != nil {
		t.Fatal(err)
	}
	if got := status(t, f, serialGood); got.Status != xocsp.Revoked || got.RevocationReason != xocsp.CertificateHold {
		t.Fatalf("after hold: %+v", got)
	}
	// Release at the counter: good again.
	f.src.set(serialGood, ocsp.CertStatus{State: ocsp.Good})
	f.advance(time.Second)
	if err := f.r.Update(context.Background(), serialGood); err != nil {
		t.Fatal(err)
	}
	if got := status(t, f, serialGood); got.Status != xocsp.Good {
		t.Fatalf("after release: %+v", got)
	}

	status(t, f, serialUnknown)
	f.advance(ocsp.DefaultValidity/2 + time.Minute)
	n, err := f.r.RefreshDue(context.Background())
	if err != nil || n != 1 { // the good serial; the unknown answer is dropped
		t.Fatalf("RefreshDue: %d, %v", n, err)
	}
	got := status(t, f, serialGood)
	if !got.ThisUpdate.Equal(f.now.Load().UTC().Truncate(time.Second)) {
		t.Fatalf("not re-signed: thisUpdate %v, now %v", got.ThisUpdate, f.now.Load())
	}
	// After nextUpdate without a refresh, a request signs afresh.
	calls := f.src.calls.Load()
	f.advance(ocsp.DefaultValidity + time.Second)
	if got := status(t, f, serialGood); !got.ThisUpdate.Equal(f.now.Load().UTC().Truncate(time.Second)) || f.src.calls.Load() != calls+1 {
		t.Fatalf("expired response served: %+v", got)
	}
}

// A store failure is answered with internalError and not cached.
func TestStoreFailure(t *testing.T) {
	f := newFixture(t, nil)
	f.src.fail = errors.New("database is locked")
	_, body := post(t, f.r, request(t, f.ca, serialGood, crypto.SHA1))
	var re xocsp.ResponseError
	if _, err := xocsp.ParseResponse(body, nil); !errors.As(err, &re) || re.Status != xocsp.InternalError {
		t.Fatalf("%v", err)
	}
	f.src.fail = nil
	if got := status(t, f, serialGood); got.Status != xocsp.Good {
		t.Fatalf("%+v", got)
	}
}

func TestResponderCertificateProfile(t *testing.T) {
	f := newFixture(t, nil)
	c := f.responder
	if got := c.NotAfter.Sub(c.NotBefore); got < 5*365*24*time.Hour || c.NotAfter != c.NotBefore.AddDate(5, 0, 0) {
		t.Errorf("validity %v (CPS §6.3.2.1: 5 years)", got)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning || c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("usage %v %v", c.ExtKeyUsage, c.KeyUsage)
	}
	if len(c.PolicyIdentifiers) != 1 || !c.PolicyIdentifiers[0].Equal(policyOCSP) {
		t.Errorf("policies %v", c.PolicyIdentifiers)
	}
	noCheck := false
	for _, e := range c.Extensions {
		noCheck = noCheck || e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5})
	}
	if !noCheck || c.IsCA || c.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("nocheck %v, CA %v, alg %v", noCheck, c.IsCA, c.SignatureAlgorithm)
	}
	text := openssl(t, "x509", "-in", f.rPEM, "-noout", "-text")
	for _, w := range []string{"OCSP Signing", "OCSP No Check", "Policy: 1.2.392.200149.8.5.1.3.330"} {
		if !strings.Contains(text, w) {
			t.Errorf("openssl x509 lacks %q", w)
		}
	}
	k := testKeys(t)
	if _, err := ocsp.IssueResponderCertificate(ocsp.ResponderCertRequest{Issuer: f.ca, IssuerSigner: k[0], PublicKey: &k[1].PublicKey,
		Serial: big.NewInt(3), NotBefore: f.ca.NotAfter.AddDate(-4, 0, 0), Policy: policyOCSP}); !errors.Is(err, ocsp.ErrOutlivesCA) {
		t.Errorf("outliving CA: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	f := newFixture(t, nil)
	k := testKeys(t)
	base := ocsp.Config{Issuer: f.ca, ResponderCert: f.responder, Signer: k[1], Source: f.src}
	tests := []struct {
		name   string
		mutate func(*ocsp.Config)
		want   error
	}{
		{"no source", func(c *ocsp.Config) { c.Source = nil }, ocsp.ErrConfig},
		{"responder cert from another CA", func(c *ocsp.Config) { c.Issuer = f.other }, ocsp.ErrResponderCert},
		{"CA cert as responder cert", func(c *ocsp.Config) { c.ResponderCert = f.ca }, ocsp.ErrResponderCert},
		{"expired responder", func(c *ocsp.Config) { c.Now = func() time.Time { return time.Now().AddDate(6, 0, 0) } }, ocsp.ErrResponderCert},
		{"wrong key", func(c *ocsp.Config) { c.Signer = k[0] }, ocsp.ErrKeyMismatch},
	}
	for _, tt := range tests {
		c := base
		tt.mutate(&c)
		if _, err := ocsp.New(c); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// BenchmarkOCSPHandler: POST requests for a warm set of serials, through the
// handler in process (parse, match issuer, cache hit, write).
func BenchmarkOCSPHandler(b *testing.B) {
	f := newFixture(b, nil)
	var bodies [][]byte
	for i := 0; i < 64; i++ {
		s := big.NewInt(int64(0x2000 + i))
		f.src.set(s, ocsp.CertStatus{State: ocsp.Good})
		req, err := xocsp.CreateRequest(&x509.Certificate{SerialNumber: s}, f.ca, nil)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, req)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bodies[i%len(bodies)]))
			rec := httptest.NewRecorder()
			f.r.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
			i++
		}
	})
}

// BenchmarkOCSPSign is the cost of a cache miss (one RSA-2048 signature).
func BenchmarkOCSPSign(b *testing.B) {
	f := newFixture(b, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := f.r.Update(context.Background(), serialGood); err != nil {
			b.Fatal(err)
		}
	}
}

// GET paths as clients write them (RFC 6960 A.1, RFC 5019 §5): "/" escaped
// as %2F or %2f or left as is, "+" and "=" escaped or not; all are the same
// request and get the same response, over a real loopback server.
func TestGetPathForms(t *testing.T) {
	f := newFixture(t, nil)
	srv := httptest.NewServer(f.r)
	t.Cleanup(srv.Close)
	var b64 string
	var serial *big.Int
	for i := int64(0x3000); ; i++ { // a serial whose request has both "/" and "+" in base64
		serial = big.NewInt(i)
		b64 = base64.StdEncoding.EncodeToString(request(t, f.ca, serial, crypto.SHA1))
		if strings.Contains(b64, "/") && strings.Contains(b64, "+") {
			break
		}
	}
	f.src.set(serial, ocsp.CertStatus{State: ocsp.Revoked, RevokedAt: revokedAt, Reason: 1})
	want, err := f.r.Response(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{
		"PathEscape":          url.PathEscape(b64),
		"raw":                 b64,
		"lower-case %2f":      strings.ReplaceAll(b64, "/", "%2f"),
		"all escaped %2B %3D": strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(b64),
	}
	for name, p := range forms {
		res, err := srv.Client().Get(srv.URL + "/" + p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !bytes.Equal(body, want) {
			t.Errorf("%s (%s): response differs from the pre-signed one", name, p)
		}
	}
}

// The responder policies are data: the embedded file gives CPS §1.2's
// …3.330 for the user-auth CA; a bad file or OID is refused.
func TestResponderPolicies(t *testing.T) {
	p, err := ocsp.DefaultResponderPolicies()
	if err != nil {
		t.Fatal(err)
	}
	if o, err := p.For("user-auth"); err != nil || o.String() != "1.2.392.200149.8.5.1.3.330" {
		t.Fatalf("user-auth policy %v, %v", o, err)
	}
	if _, err := p.For("stamp"); !errors.Is(err, ocsp.ErrConfig) {
		t.Fatalf("unknown CA: %v", err)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"bad-oid.json": `{"responderPolicies": {"user-auth": "1.2.x"}}`,
		"unknown.json": `{"responderPolicies": {"user-auth": "1.2.3"}, "extra": 1}`,
		"empty.json":   `{"responderPolicies": {}}`,
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o600)
		if _, err := ocsp.LoadResponderPolicies(path); !errors.Is(err, ocsp.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"responderPolicies": {"user-auth": "1.2.392.200149.8.5.1.3.330"}}`), 0o600)
	if p, err := ocsp.LoadResponderPolicies(good); err != nil || p["user-auth"].String() != "1.2.392.200149.8.5.1.3.330" {
		t.Fatalf("good file: %v %v", p, err)
	}
}
