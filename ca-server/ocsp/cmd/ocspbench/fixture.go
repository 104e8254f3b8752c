package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/ca-server/ocsp"
)

// policyOCSP is the OCSP responder policy of the user-authentication CA
// (CPS §1.2).
var policyOCSP = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 1, 3, 330}

// statusTable is a read-only in-memory ocsp.StatusSource keyed by the
// serial's big-endian bytes. It is filled before the servers start and
// never written afterwards, so concurrent reads need no lock. lookups
// counts Status calls, to show that the load run was served from the
// responder's pre-signed cache.
type statusTable struct {
	m       map[string]ocsp.CertStatus
	lookups atomic.Int64
}

var _ ocsp.StatusSource = (*statusTable)(nil)

// Status implements ocsp.StatusSource.
func (s *statusTable) Status(_ context.Context, serial *big.Int) (ocsp.CertStatus, error) {
	s.lookups.Add(1)
	st, ok := s.m[string(serial.Bytes())]
	if !ok {
		return ocsp.CertStatus{}, fmt.Errorf("ocspbench: serial %x: %w", serial, ocsp.ErrNotIssued)
	}
	return st, nil
}

// fixtureConfig sizes the generated CA.
type fixtureConfig struct {
	Certs       int     // certificates in the status source
	RevokedFrac float64 // fraction of them revoked (a quarter of those on hold)
	URLs        int     // distinct serials requested during the load run
	Seed        uint64  // serials and statuses are reproducible for a seed
}

// fixture is a CA with its delegated responder, a status source and the
// GET paths of the requests the load tool rotates over. Keys live only in
// memory for the life of the process (never written, never committed).
type fixture struct {
	ca, responderCert *x509.Certificate
	table             *statusTable
	responder         *ocsp.Responder
	serials           []*big.Int // the requested ones, in path order
	paths             []string   // "/" + path-escaped base64 DER request (RFC 6960 A.1)
	revoked, held     int        // among all certificates
	reqRevoked        int        // among the requested serials (revoked or held)
}

// newFixture generates two RSA-2048 keys (TS Art. 2), a self-signed CA, a
// responder certificate issued with ocsp.IssueResponderCertificate, the
// status table and the request paths, then pre-signs the requested serials
// (what the CA does with Responder.Update on issuance and status changes).
func newFixture(ctx context.Context, cfg fixtureConfig) (*fixture, error) {
	if cfg.Certs < 1 || cfg.URLs < 1 || cfg.URLs > cfg.Certs || cfg.RevokedFrac < 0 || cfg.RevokedFrac > 1 {
		return nil, fmt.Errorf("ocspbench: need 1 ≤ urls (%d) ≤ certs (%d) and 0 ≤ revoked fraction (%g) ≤ 1",
			cfg.URLs, cfg.Certs, cfg.RevokedFrac)
	}
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("ocspbench: CA key: %w", err)
	}
	respKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("ocspbench: responder key: %w", err)
	}
	f := &fixture{}
	if f.ca, err = selfSignedCA(caKey); err != nil {
		return nil, err
	}
	der, err := ocsp.IssueResponderCertificate(ocsp.ResponderCertRequest{
		Issuer: f.ca, IssuerSigner: caKey, PublicKey: &respKey.PublicKey,
		Subject:   pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, CommonName: "OCSP Responder (ocspbench)"},
		Serial:    big.NewInt(2),
		NotBefore: time.Now().Add(-time.Hour),
		Policy:    policyOCSP,
	})
	if err != nil {
		return nil, err
	}
	if f.responderCert, err = x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("ocspbench: responder certificate: %w", err)
	}

	rng := mrand.New(mrand.NewPCG(cfg.Seed, 0x6f637370))
	f.table = &statusTable{m: make(map[string]ocsp.CertStatus, cfg.Certs)}
	all := make([]*big.Int, 0, cfg.Certs)
	revokedAt := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	for len(all) < cfg.Certs {
		var b [16]byte // 128-bit serials, as the issuer draws them
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		b[0] = b[0]&0x7f | 0x01 // positive, full length
		key := string(b[:])
		if _, dup := f.table.m[key]; dup {
			continue
		}
		st := ocsp.CertStatus{State: ocsp.Good}
		if rng.Float64() < cfg.RevokedFrac {
			st = ocsp.CertStatus{State: ocsp.Revoked, RevokedAt: revokedAt, Reason: rng.IntN(6)}
			f.revoked++
			if rng.IntN(4) == 0 {
				st = ocsp.CertStatus{State: ocsp.Held, RevokedAt: revokedAt}
				f.revoked--
				f.held++
			}
		}
		f.table.m[key] = st
		all = append(all, new(big.Int).SetBytes(b[:]))
	}
	for _, i := range rng.Perm(len(all))[:cfg.URLs] {
		s := all[i]
		raw, err := xocsp.CreateRequest(&x509.Certificate{SerialNumber: s}, f.ca, nil) // SHA-1 CertID, as most clients send
		if err != nil {
			return nil, fmt.Errorf("ocspbench: request: %w", err)
		}
		f.serials = append(f.serials, s)
		f.paths = append(f.paths, "/"+url.PathEscape(base64.StdEncoding.EncodeToString(raw)))
		if f.table.m[string(s.Bytes())].State != ocsp.Good {
			f.reqRevoked++
		}
	}

	f.responder, err = ocsp.New(ocsp.Config{Issuer: f.ca, ResponderCert: f.responderCert, Signer: respKey, Source: f.table})
	if err != nil {
		return nil, err
	}
	if err := f.presign(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func selfSignedCA(key *rsa.PrivateKey) (*x509.Certificate, error) {
	spki := x509.MarshalPKCS1PublicKey(&key.PublicKey)
	ski := sha1.Sum(spki)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, CommonName: "JPKI user authentication CA (ocspbench)"},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski[:],
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ocspbench: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ocspbench: CA certificate: %w", err)
	}
	return ca, nil
}

// presign signs the requested serials' responses on two goroutines.
func (f *fixture) presign(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make([]error, 2)
	)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(f.serials) || errs[w] != nil {
					return
				}
				errs[w] = f.responder.Update(ctx, f.serials[i])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// staticResponse is one response the static server replays: the headers
// the responder sent (without Date, which net/http adds) and the body.
type staticResponse struct {
	header http.Header
	body   []byte
}

// staticHandler is the baseline: a map lookup on the request URI and a
// write of the stored bytes, nothing else. It is read-only once built.
type staticHandler map[string]staticResponse

func (s staticHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, ok := s[r.RequestURI]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.body)
}

// server is a plain net/http server on a loopback port.
type server struct {
	url string // http://127.0.0.1:port
	srv *http.Server
	ln  net.Listener
}

func startServer(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ocspbench: listen: %w", err)
	}
	s := &server{url: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *server) close() { _ = s.srv.Close() }

// verifyAndCapture GETs every path from the OCSP server, checks each
// response (signature by the responder certificate, serial, status as in the
// table) and returns the static handler that replays the same bytes.
func (f *fixture) verifyAndCapture(ctx context.Context, client *http.Client, ocspURL string) (staticHandler, error) {
	static := make(staticHandler, len(f.paths))
	for i, p := range f.paths {
		body, header, err := get(ctx, client, ocspURL+p)
		if err != nil {
			return nil, err
		}
		if err := f.check(body, f.serials[i]); err != nil {
			return nil, err
		}
		header.Del("Date")
		static[p] = staticResponse{header: header, body: body}
	}
	return static, nil
}

// check verifies one OCSP response for serial against the status table.
func (f *fixture) check(body []byte, serial *big.Int) error {
	resp, err := xocsp.ParseResponseForCert(body, nil, f.ca)
	if err != nil {
		return fmt.Errorf("ocspbench: response for %x: %w", serial, err)
	}
	if err := resp.CheckSignatureFrom(f.responderCert); err != nil {
		return fmt.Errorf("ocspbench: response for %x: signature: %w", serial, err)
	}
	want := xocsp.Good
	if f.table.m[string(serial.Bytes())].State != ocsp.Good {
		want = xocsp.Revoked
	}
	if resp.SerialNumber.Cmp(serial) != 0 || resp.Status != want {
		return fmt.Errorf("ocspbench: response for %x: serial %x status %d, want status %d", serial, resp.SerialNumber, resp.Status, want)
	}
	return nil
}

func get(ctx context.Context, client *http.Client, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("ocspbench: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("ocspbench: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("ocspbench: GET %s: %w", u, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("ocspbench: GET %s: HTTP %d", u, res.StatusCode)
	}
	return body, res.Header, nil
}
