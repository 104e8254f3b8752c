package ocsp_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/ca-server/ocsp"
)

// countingSigner counts Sign calls: in serve the signer is the HSM
// responder key, so each call is one HSM operation.
type countingSigner struct {
	crypto.Signer
	n atomic.Int64
}

func (s *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n.Add(1)
	return s.Signer.Sign(r, digest, opts)
}

// knownOnly is a StatusSource that knows the serials in m and has no
// record of any other (ocsp.ErrNoRecord), as status.OCSPSource answers
// for a serial the store does not hold.
type knownOnly struct{ m map[string]ocsp.CertStatus }

func (k knownOnly) Status(_ context.Context, serial *big.Int) (ocsp.CertStatus, error) {
	if st, ok := k.m[serial.String()]; ok {
		return st, nil
	}
	return ocsp.CertStatus{}, ocsp.ErrNoRecord
}

func boundedResponder(t testing.TB, src ocsp.StatusSource, maxBytes int64) (*fixture, *ocsp.Responder, *countingSigner) {
	t.Helper()
	f := newFixture(t, nil)
	signer := &countingSigner{Signer: testKeys(t)[1]}
	r, err := ocsp.New(ocsp.Config{Issuer: f.ca, ResponderCert: f.responder, Signer: signer, Source: src, MaxCacheBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	return f, r, signer
}

// discard is a minimal ResponseWriter: the bulk below measures the
// responder, not httptest's recorder.
type discard struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(b []byte) (int, error) { return d.body.Write(b) }

// TestRandomSerialsCostNoSignatures is the bulk of issue 13's threat 5:
// 200,000 requests for random serials (SHA-1 and SHA-256 CertIDs) through
// the responder's real request path (ServeHTTP: read, parse, issuer match,
// status, answer), in process. The attack test that failed on the code
// before this change, through the real status source and store, is
// ca-server/status TestOCSPRandomSerialsCostNoSignatures; over the real
// verifier listener, ca-server/api TestOCSPFloodOverVerifierListener.
// Random serials get the unsigned "unauthorized" and cost no signature;
// the cache stays under its byte bound by its own accounting.
func TestRandomSerialsCostNoSignatures(t *testing.T) {
	src := knownOnly{m: map[string]ocsp.CertStatus{serialGood.String(): {State: ocsp.Good}}}
	const bound = 64 << 10
	f, r, signer := boundedResponder(t, src, bound)
	if res, body := post(t, r, request(t, f.ca, serialGood, crypto.SHA1)); res.StatusCode != 200 {
		t.Fatal(res.Status)
	} else if resp, err := xocsp.ParseResponse(body, f.ca); err != nil || resp.Status != xocsp.Good {
		t.Fatalf("good serial: %v", err)
	}
	// one request's DER, with the serial's 16 bytes patched per request
	templ := map[crypto.Hash][]byte{}
	marker := bytes.Repeat([]byte{0x25}, 16) // high bit clear: a 16-byte INTEGER
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		templ[h] = request(t, f.ca, new(big.Int).SetBytes(marker), h)
	}
	const requests, workers = 200_000, 4
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < requests/workers; i++ {
				h := crypto.SHA1
				if (i+w)%2 == 1 {
					h = crypto.SHA256
				}
				body := bytes.Clone(templ[h])
				at := bytes.Index(body, marker)
				rand.Read(body[at : at+16])
				body[at] |= 0x40 // positive, 16 bytes
				body[at] &^= 0x80
				req := &http.Request{Method: http.MethodPost, URL: &urlRoot, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
				d := &discard{h: http.Header{}}
				r.ServeHTTP(d, req)
				if d.code != http.StatusOK || !bytes.Equal(d.body.Bytes(), xocsp.UnauthorizedErrorResponse) {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d random serials not answered unauthorized", bad.Load())
	}
	st := r.Stats()
	if n := signer.n.Load(); n != 1 || st.Signatures != 1 {
		t.Fatalf("signatures: signer %d, responder %d; want only the good serial's", n, st.Signatures)
	}
	if st.Bytes > bound || st.Entries != 1 {
		t.Fatalf("cache %+v", st)
	}
	t.Logf("%d random serials: %d signature in all, cache %+v", requests, signer.n.Load(), st)
}

// TestCacheBoundedInBytes: answers for more serials than fit are signed
// and served; the cache evicts to stay within MaxCacheBytes by its own
// accounting, and an evicted answer is signed again when asked for.
func TestCacheBoundedInBytes(t *testing.T) {
	m := map[string]ocsp.CertStatus{}
	var serials []*big.Int
	for i := range 120 {
		s := big.NewInt(int64(0x10000 + i))
		serials = append(serials, s)
		m[s.String()] = ocsp.CertStatus{State: ocsp.Good}
	}
	const bound = 32 << 10 // about 16 answers
	f, r, signer := boundedResponder(t, knownOnly{m: m}, bound)
	hot := serials[0]
	for _, s := range serials {
		for _, q := range []*big.Int{s, hot} { // hot is asked for between every other
			_, body := post(t, r, request(t, f.ca, q, crypto.SHA1))
			resp, err := xocsp.ParseResponse(body, f.ca)
			if err != nil || resp.Status != xocsp.Good || resp.SerialNumber.Cmp(q) != 0 {
				t.Fatalf("serial %x: %v", q, err)
			}
		}
		if st := r.Stats(); st.Bytes > bound {
			t.Fatalf("cache over its bound: %+v", st)
		}
	}
	st := r.Stats()
	if st.Evictions == 0 || st.Entries < 8 || st.Bytes > bound || st.Bytes < bound/2 {
		t.Fatalf("cache %+v", st)
	}
	before := signer.n.Load()
	if before < int64(len(serials)) || before > int64(len(serials))+4 {
		t.Fatalf("%d signatures for %d serials: the hot serial was evicted while in use", before, len(serials))
	}
	// the first serials were evicted: asking again signs again
	post(t, r, request(t, f.ca, serials[1], crypto.SHA1))
	if signer.n.Load() != before+1 {
		t.Fatalf("evicted answer not re-signed: %d → %d", before, signer.n.Load())
	}
}

var urlRoot = *httptest.NewRequest(http.MethodPost, "/", nil).URL
