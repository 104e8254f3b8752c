package status

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/ca-server/ocsp"
	"madoguchi/ca-server/store"
)

// countingSigner counts the signatures the responder asks for: in serve it
// is the HSM responder key, so each Sign is one HSM operation.
type countingSigner struct {
	crypto.Signer
	n atomic.Int64
}

func (s *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n.Add(1)
	return s.Signer.Sign(r, digest, opts)
}

// TestOCSPRandomSerialsCostNoSignatures is threat 5 of issue 13 (a rogue
// registered verifier).
//
// Attack: OCSP requests for random serials of this CA's issuer, through
// the real status source over a real SQLite store, into the real responder
// handler (in process: the handler the verifier listener mounts). 4,000
// here, each a store look-up; the 200,000 of the issue go through the same
// responder path in ca-server/ocsp TestRandomSerialsCostNoSignatures, and
// ca-server/api TestOCSPFloodOverVerifierListener sends them over the real
// verifier listener from a registered verifier. On the code before this change
// the attack succeeded: every serial the CA never issued was answered
// "unknown" with a fresh signature (one HSM operation per request), and up
// to 4 Mi such answers were cached; the test stopped at the bound with
// "signatures … > bound". Now such serials get the unsigned "unauthorized"
// (RFC 5019 §2.2.3), and the cache is bounded in bytes.
func TestOCSPRandomSerialsCostNoSignatures(t *testing.T) {
	e := newEnv(t)
	goodCert, _ := e.issue(t, residentA, store.CertSign, true)
	pending, _ := e.issue(t, residentB, store.CertSign, false)
	respKey := rsaKey(t, 5)
	rder, err := ocsp.IssueResponderCertificate(ocsp.ResponderCertRequest{Issuer: e.sig.cert, IssuerSigner: e.sig.key, PublicKey: respKey.Public(),
		Subject: pkix.Name{CommonName: "OCSP responder (test)"}, Serial: big.NewInt(77), NotBefore: t0, Policy: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 1, 3, 330}})
	if err != nil {
		t.Fatal(err)
	}
	rcert, _ := x509.ParseCertificate(rder)
	signer := &countingSigner{Signer: respKey}
	const cacheBound = 1 << 20
	resp, err := ocsp.New(ocsp.Config{Issuer: e.sig.cert, ResponderCert: rcert, Signer: signer, Source: e.svc.OCSPSource(store.CertSign), Now: time.Now,
		MaxCacheBytes: cacheBound})
	if err != nil {
		t.Fatal(err)
	}
	query := func(serial *big.Int, h crypto.Hash) *xocsp.Response {
		t.Helper()
		nh, kh := h.New(), h.New()
		nh.Write(e.sig.cert.RawSubject)
		var spki struct {
			Algo      pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		asn1.Unmarshal(e.sig.cert.RawSubjectPublicKeyInfo, &spki)
		kh.Write(spki.PublicKey.RightAlign())
		der, err := (&xocsp.Request{HashAlgorithm: h, IssuerNameHash: nh.Sum(nil), IssuerKeyHash: kh.Sum(nil), SerialNumber: serial}).Marshal()
		if err != nil {
			t.Error(err)
			return nil
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(der))
		req.Header.Set("Content-Type", "application/ocsp-request")
		w := httptest.NewRecorder()
		resp.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Errorf("HTTP %d", w.Code)
			return nil
		}
		r, err := xocsp.ParseResponse(w.Body.Bytes(), e.sig.cert)
		var re xocsp.ResponseError
		if errors.As(err, &re) && re.Status == xocsp.Unauthorized {
			return &xocsp.Response{Status: -1}
		}
		if err != nil {
			t.Errorf("response to %x: %v", serial, err)
			return nil
		}
		return r
	}
	// honest answers first: good, and "unknown" for a certificate the CA
	// signed but never delivered (CPS §4.9.9: 有効、不明及び失効の別)
	if r := query(goodCert.SerialNumber, crypto.SHA1); r == nil || r.Status != xocsp.Good {
		t.Fatalf("good certificate: %+v", r)
	}
	if r := query(pending.SerialNumber, crypto.SHA1); r == nil || r.Status != xocsp.Unknown {
		t.Fatalf("undelivered certificate: %+v", r)
	}
	base := signer.n.Load()

	const requests, workers = 4_000, 4
	// bound: the honest answers above may be re-signed once per hash
	// algorithm; random serials add nothing.
	const bound = 8
	var wg sync.WaitGroup
	var done atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hashes := []crypto.Hash{crypto.SHA1, crypto.SHA256}
			for i := 0; i < requests/workers; i++ {
				b := make([]byte, 16)
				rand.Read(b)
				serial := new(big.Int).SetBytes(b)
				serial.SetBit(serial, 127, 1)
				r := query(serial, hashes[(i+w)%2])
				if r == nil || r.Status != -1 {
					t.Errorf("random serial %x: %+v, want unauthorized", serial, r)
					return
				}
				if n := signer.n.Load() - base; n > bound {
					t.Errorf("signatures for random serials: %d > bound %d after %d requests", n, bound, done.Load())
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// the responder's own accounting: only the honest answers are cached,
	// well under the bound, and it agrees with the signer
	st := resp.Stats()
	if st.Bytes > cacheBound || st.MaxBytes != cacheBound || st.Entries > 2 || st.Signatures != signer.n.Load() {
		t.Fatalf("cache after the flood: %+v (signer called %d times)", st, signer.n.Load())
	}
	t.Logf("%d requests, %d signatures in all, cache %+v", done.Load(), signer.n.Load(), st)
}
