// Package ocsp is the CA's RFC 6960 OCSP responder: an http.Handler that
// answers good / revoked (with reason and time) / unknown for the
// certificates of one CA (CPS §4.9.9), from a cache of pre-signed responses
// signed by a delegated responder certificate (CPS §6.3.2.1: 5 years,
// id-kp-OCSPSigning, id-pkix-ocsp-nocheck).
//
// Access: only registered verifiers may query (CPS §2.4, §4.9.10; TS Arts.
// 33, 36: "immediate response" behind access control). The caller's TLS
// configuration requires client certificates; Config.Authorize lets the API
// layer refuse a request (answered with the OCSP "unauthorized" status).
//
// Freshness: a response is signed on the first request for a serial and
// cached; Update re-signs at once when a certificate's status changes
// (revocation, hold, release), and RefreshDue re-signs responses past half
// their validity, so a cached answer is never stale and never expired.
//
// Bounded cost (issue 13 threat 5: a registered verifier asking for random
// serials). A serial the CA has no record of (StatusSource returns
// ErrNoRecord) is answered with the unsigned "unauthorized" status, a
// constant: no signature, nothing cached. A signed answer cannot be shared
// between serials — its CertID names the serial, and a client must reject
// a response for another certificate (RFC 6960 §3.2(1)) — so "one
// pre-signed unknown answer" is not possible; RFC 5019 §2.2.3 gives
// "unauthorized" to a responder "not capable of responding
// authoritatively" for a certificate, which RFC 6960 §2.3 allows too. CPS
// §4.9.9's 不明 ("unknown") stays a signed answer for a serial the CA has a
// record of but does not vouch for (signed, never delivered:
// ErrNotIssued), of which there are only as many as the store holds. The
// cache is bounded in bytes (Config.MaxCacheBytes); beyond it the entry
// least recently hit is evicted (second chance), and the next request for
// it is signed again.
//
// Concurrency: a *Responder is safe for concurrent use; it calls the
// StatusSource and the Signer from several goroutines at once.
package ocsp

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/internal/wallclock"
)

// Errors. Callers branch on them with errors.Is.
var (
	ErrConfig        = errors.New("ocsp: invalid configuration")
	ErrResponderCert = errors.New("ocsp: unusable responder certificate")
	ErrKeyMismatch   = errors.New("ocsp: signer's public key does not match the responder certificate")
	// ErrNotIssued is returned by a StatusSource for a serial this CA has a
	// record of but does not vouch for (signed, never delivered); the
	// responder answers "unknown" (CPS §4.9.9: 不明), signed.
	ErrNotIssued = errors.New("ocsp: serial not issued by this CA")
	// ErrNoRecord is returned by a StatusSource for a serial this CA has no
	// record of; the responder answers "unauthorized" (RFC 5019 §2.2.3),
	// unsigned: such serials cost no signature.
	ErrNoRecord = errors.New("ocsp: serial has no record at this CA")
	ErrSign     = errors.New("ocsp: signing failed")
)

// State of a certificate as the store reports it.
type State int

const (
	Good    State = iota
	Revoked       // final
	Held          // certificateHold: answered as revoked with reason 6 (RFC 6960 §2.2)
)

// CertStatus is what the responder needs to know about one certificate.
type CertStatus struct {
	State     State
	RevokedAt time.Time // Revoked or Held: since when
	Reason    int       // Revoked: CPS §4.9.9 code 0–5
}

// StatusSource is the part of the store the responder uses. Status returns
// ErrNotIssued (possibly wrapped) for a serial the CA never issued.
type StatusSource interface {
	Status(ctx context.Context, serial *big.Int) (CertStatus, error)
}

// StatusFunc adapts a function to StatusSource.
type StatusFunc func(ctx context.Context, serial *big.Int) (CertStatus, error)

// Status implements StatusSource.
func (f StatusFunc) Status(ctx context.Context, serial *big.Int) (CertStatus, error) {
	return f(ctx, serial)
}

const (
	// DefaultValidity of a signed response (nextUpdate − thisUpdate): one
	// CRL issuing interval (CPS §4.9.7), refreshed at half-life.
	DefaultValidity = 24 * time.Hour
	// DefaultMaxCacheBytes bounds the cache: 64 MiB hold about 30,000
	// responses (a response with the responder certificate is ~1.7 KB plus
	// entryOverhead), every certificate of a large municipality's counters,
	// and is small beside the process; an evicted answer costs one signature
	// when next asked for, within the verifier's request budget.
	DefaultMaxCacheBytes = 64 << 20
	// entryOverhead is what a cache entry costs besides its DER and serial:
	// the map slot, the entry and its two HTTP-date strings.
	entryOverhead = 256
	// maxRequestBytes: an OCSP request for one certificate is ~100 bytes.
	maxRequestBytes = 8 << 10
)

// Config configures a Responder. Issuer, ResponderCert, Signer and Source
// are required.
type Config struct {
	// Issuer is the CA whose certificates this responder answers for.
	Issuer *x509.Certificate
	// ResponderCert is the delegated responder certificate, issued by
	// Issuer, with id-kp-OCSPSigning (IssueResponderCertificate makes one).
	ResponderCert *x509.Certificate
	// Signer holds the responder key; its public key must be ResponderCert's.
	Signer crypto.Signer
	Source StatusSource
	// Now is the trusted clock (CPS §6.8); nil means time.Now.
	Now func() time.Time
	// Validity defaults to DefaultValidity.
	Validity time.Duration
	// Authorize, if set, is asked before each request; false answers
	// "unauthorized" (CPS §2.4: registered verifiers only).
	Authorize func(r *http.Request) bool
	// MaxCacheBytes bounds the cache (DER, serial and entryOverhead per
	// entry); it defaults to DefaultMaxCacheBytes.
	MaxCacheBytes int64
}

type cacheKey struct {
	hash   crypto.Hash
	serial string // big-endian bytes
}

type cached struct {
	der        []byte
	thisUpdate time.Time
	nextUpdate time.Time
	status     int // xocsp.Good, Revoked or Unknown
	// lastModified and expires are thisUpdate and nextUpdate as HTTP dates,
	// formatted once when signed rather than on every GET.
	lastModified, expires string
	size                  int64       // counted against MaxCacheBytes
	hit                   atomic.Bool // since eviction last passed it (second chance)
}

// Responder answers OCSP requests for one CA.
type Responder struct {
	cfg Config
	// issuer name and key hashes per hash algorithm a request may use.
	nameHash map[crypto.Hash][]byte
	keyHash  map[crypto.Hash][]byte

	mu        sync.RWMutex
	cache     map[cacheKey]*cached
	bytes     int64 // sum of the entries' size
	evictions int64

	signatures atomic.Int64
	// changes numbers the status changes announced (Update, Refresh), and
	// changedAt holds, for each serial changed within changeHorizon, the
	// number of its latest change: an answer signed from a status read
	// before a change of its own serial is returned but not cached, so a
	// late writer never puts a stale answer back (TS Art. 36), while
	// changes of other serials do not stop caching (which would cost an HSM
	// signature per request under a stream of revocations). Guarded by mu.
	changes   uint64
	changedAt map[string]changeMark
}

// changeMark is a serial's latest change: its number and when (monotonic).
type changeMark struct {
	n  uint64
	at time.Time
}

// changeHorizon bounds how long a change is remembered. A signature that
// took longer than this (a hung HSM call, whose own deadline is shorter) is
// not cached, since the mark of a change during it may be gone.
const changeHorizon = 2 * time.Minute

// CacheStats is the responder's own accounting (tests, metrics).
type CacheStats struct {
	Entries    int
	Bytes      int64 // ≤ MaxBytes
	MaxBytes   int64
	Evictions  int64
	Signatures int64 // responses signed since New
}

// Stats returns the cache accounting now.
func (r *Responder) Stats() CacheStats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return CacheStats{Entries: len(r.cache), Bytes: r.bytes, MaxBytes: r.cfg.MaxCacheBytes, Evictions: r.evictions, Signatures: r.signatures.Load()}
}

var _ http.Handler = (*Responder)(nil)

var supportedHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

// New checks cfg and returns a Responder. It refuses, in this order: a
// missing field (ErrConfig); a responder certificate not issued by Issuer,
// without id-kp-OCSPSigning, or expired at Now (ErrResponderCert); a signer
// whose key is not the responder certificate's (ErrKeyMismatch).
func New(cfg Config) (*Responder, error) {
	switch {
	case cfg.Issuer == nil:
		return nil, fmt.Errorf("%w: no issuer certificate", ErrConfig)
	case cfg.ResponderCert == nil:
		return nil, fmt.Errorf("%w: no responder certificate", ErrConfig)
	case cfg.Signer == nil:
		return nil, fmt.Errorf("%w: no signer", ErrConfig)
	case cfg.Source == nil:
		return nil, fmt.Errorf("%w: no status source", ErrConfig)
	case cfg.Validity < 0:
		return nil, fmt.Errorf("%w: negative validity", ErrConfig)
	}
	if cfg.Now == nil {
		cfg.Now = wallclock.Now
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.MaxCacheBytes <= 0 {
		cfg.MaxCacheBytes = DefaultMaxCacheBytes
	}
	rc := cfg.ResponderCert
	if err := rc.CheckSignatureFrom(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("%w: not issued by the CA: %w", ErrResponderCert, err)
	}
	hasEKU := false
	for _, u := range rc.ExtKeyUsage {
		hasEKU = hasEKU || u == x509.ExtKeyUsageOCSPSigning
	}
	if !hasEKU {
		return nil, fmt.Errorf("%w: lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)", ErrResponderCert)
	}
	if now := cfg.Now(); now.Before(rc.NotBefore) || !now.Before(rc.NotAfter) {
		return nil, fmt.Errorf("%w: not valid at %s", ErrResponderCert, now.UTC().Format(time.RFC3339))
	}
	pub, ok := rc.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cfg.Signer.Public()) {
		return nil, ErrKeyMismatch
	}
	r := &Responder{
		cfg:       cfg,
		nameHash:  map[crypto.Hash][]byte{},
		keyHash:   map[crypto.Hash][]byte{},
		cache:     map[cacheKey]*cached{},
		changedAt: map[string]changeMark{},
	}
	spk, err := subjectPublicKeyBits(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: issuer key: %w", ErrConfig, err)
	}
	for _, h := range supportedHashes {
		hn := h.New()
		hn.Write(cfg.Issuer.RawSubject)
		r.nameHash[h] = hn.Sum(nil)
		hk := h.New()
		hk.Write(spk)
		r.keyHash[h] = hk.Sum(nil)
	}
	return r, nil
}

// ServeHTTP answers POST (body) and GET (base64 request in the path, RFC
// 6960 Appendix A.1). Mount it with http.StripPrefix so the path is the
// base64 request; do not mount it under a ServeMux pattern that would clean
// "//" out of base64 text. Protocol errors are answered with HTTP 200 and an
// OCSP error status (RFC 5019 §4): malformedRequest for an undecodable
// request, unauthorized for another CA's certificate or a refused client,
// internalError when the store fails.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var raw []byte
	switch req.Method {
	case http.MethodPost:
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxRequestBytes))
		if err != nil {
			writeOCSP(w, xocsp.MalformedRequestErrorResponse, nil)
			return
		}
		raw = body
	case http.MethodGet:
		// URL.Path is the path already unescaped (%2F → "/"), the same
		// text PathUnescape(EscapedPath()) would give, without a second pass.
		var err error
		raw, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(req.URL.Path, "/"))
		if err != nil {
			writeOCSP(w, xocsp.MalformedRequestErrorResponse, nil)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "ocsp: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.cfg.Authorize != nil && !r.cfg.Authorize(req) {
		writeOCSP(w, xocsp.UnauthorizedErrorResponse, nil)
		return
	}
	der, c, err := r.respond(req.Context(), raw)
	if err != nil {
		writeOCSP(w, der, nil)
		return
	}
	if req.Method == http.MethodGet {
		writeOCSP(w, der, c)
		return
	}
	writeOCSP(w, der, nil)
}

func writeOCSP(w http.ResponseWriter, der []byte, c *cached) {
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	if c != nil { // RFC 5019 §6.2: GET responses are cacheable until nextUpdate
		h.Set("Last-Modified", c.lastModified)
		h.Set("Expires", c.expires)
	} else {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(der)
}

type protocolError struct{ status string }

func (e protocolError) Error() string { return "ocsp: " + e.status }

// respond returns the DER response for a raw request; on a protocol error
// it returns the error response's DER and a non-nil error.
func (r *Responder) respond(ctx context.Context, raw []byte) ([]byte, *cached, error) {
	req, err := parseRequest(raw)
	if err != nil || req.SerialNumber == nil || req.SerialNumber.Sign() <= 0 {
		return xocsp.MalformedRequestErrorResponse, nil, protocolError{"malformed request"}
	}
	nh, ok := r.nameHash[req.HashAlgorithm]
	if !ok || string(nh) != string(req.IssuerNameHash) || string(r.keyHash[req.HashAlgorithm]) != string(req.IssuerKeyHash) {
		// RFC 6960 §2.3: not authoritative for this certificate.
		return xocsp.UnauthorizedErrorResponse, nil, protocolError{"unauthorized"}
	}
	c, err := r.get(ctx, req.HashAlgorithm, req.SerialNumber)
	if errors.Is(err, ErrNoRecord) {
		return xocsp.UnauthorizedErrorResponse, nil, err
	}
	if err != nil {
		return xocsp.InternalErrorErrorResponse, nil, err
	}
	return c.der, c, nil
}

// Response returns the signed response for serial (SHA-1 CertID, as most
// clients send), from the cache or freshly signed.
func (r *Responder) Response(ctx context.Context, serial *big.Int) ([]byte, error) {
	c, err := r.get(ctx, crypto.SHA1, serial)
	if err != nil {
		return nil, err
	}
	return c.der, nil
}

func (r *Responder) get(ctx context.Context, h crypto.Hash, serial *big.Int) (*cached, error) {
	key := cacheKey{h, string(serial.Bytes())}
	now := r.cfg.Now()
	r.mu.RLock()
	c := r.cache[key]
	r.mu.RUnlock()
	if c != nil && now.Before(c.nextUpdate) && !now.Before(c.thisUpdate) {
		c.hit.Store(true)
		return c, nil
	}
	return r.sign(ctx, key, serial)
}

// sign asks the store for the status, signs a response and caches it.
func (r *Responder) sign(ctx context.Context, key cacheKey, serial *big.Int) (*cached, error) {
	started := time.Now()
	r.mu.RLock()
	before := r.changes
	r.mu.RUnlock()
	st, err := r.cfg.Source.Status(ctx, serial)
	status := xocsp.Good
	switch {
	case errors.Is(err, ErrNoRecord):
		return nil, err
	case errors.Is(err, ErrNotIssued):
		status = xocsp.Unknown
	case err != nil:
		return nil, fmt.Errorf("ocsp: status of %x: %w", serial, err)
	}
	now := r.cfg.Now().UTC().Truncate(time.Second)
	tmpl := xocsp.Response{
		SerialNumber: serial,
		ThisUpdate:   now,
		NextUpdate:   now.Add(r.cfg.Validity),
		Certificate:  r.cfg.ResponderCert,
		IssuerHash:   key.hash,
	}
	if status != xocsp.Unknown {
		switch st.State {
		case Good:
		case Revoked:
			if st.Reason < 0 || st.Reason > 5 {
				return nil, fmt.Errorf("ocsp: status of %x: revocation reason %d outside 0–5 (CPS §4.9.9)", serial, st.Reason)
			}
			status, tmpl.RevokedAt, tmpl.RevocationReason = xocsp.Revoked, st.RevokedAt, st.Reason
		case Held:
			status, tmpl.RevokedAt, tmpl.RevocationReason = xocsp.Revoked, st.RevokedAt, xocsp.CertificateHold
		default:
			return nil, fmt.Errorf("ocsp: status of %x: unknown state %d", serial, st.State)
		}
		if status == xocsp.Revoked && st.RevokedAt.IsZero() {
			return nil, fmt.Errorf("ocsp: status of %x: revoked without a time", serial)
		}
	}
	tmpl.Status = status
	r.signatures.Add(1)
	der, err := xocsp.CreateResponse(r.cfg.Issuer, r.cfg.ResponderCert, tmpl, r.cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSign, err)
	}
	c := &cached{der: der, thisUpdate: tmpl.ThisUpdate, nextUpdate: tmpl.NextUpdate, status: status,
		lastModified: tmpl.ThisUpdate.UTC().Format(http.TimeFormat), expires: tmpl.NextUpdate.UTC().Format(http.TimeFormat),
		size: int64(len(der) + len(key.serial) + entryOverhead)}
	r.mu.Lock()
	if m, ok := r.changedAt[key.serial]; (!ok || m.n <= before) && time.Since(started) < changeHorizon {
		r.storeLocked(key, c)
	}
	r.mu.Unlock()
	return c, nil
}

// storeLocked caches c under key unless a newer answer is cached, evicting
// entries until the cache fits MaxCacheBytes. r.mu is held.
func (r *Responder) storeLocked(key cacheKey, c *cached) {
	if old := r.cache[key]; old != nil {
		if old.thisUpdate.After(c.thisUpdate) {
			return
		}
		delete(r.cache, key)
		r.bytes -= old.size
	}
	if c.size > r.cfg.MaxCacheBytes {
		return
	}
	for r.bytes+c.size > r.cfg.MaxCacheBytes && r.evictOneLocked() {
	}
	r.cache[key] = c
	r.bytes += c.size
}

// evictOneLocked drops one entry: the first one met (map order, random)
// not hit since eviction last passed it; entries passed lose their hit
// mark, so a second pass always finds one. r.mu is held.
func (r *Responder) evictOneLocked() bool {
	for pass := 0; pass < 2; pass++ {
		for k, c := range r.cache {
			if pass == 0 && c.hit.Swap(false) {
				continue
			}
			delete(r.cache, k)
			r.bytes -= c.size
			r.evictions++
			return true
		}
	}
	return false
}

// Update re-signs the responses for serial now: call it after every status
// change (revocation, hold, release) so the next answer reflects it (TS
// Art. 36: immediate response). It drops the serial's cached answers, signs
// the SHA-1 response even if none was cached (pre-signing) and the other
// hash variants that were cached.
func (r *Responder) Update(ctx context.Context, serial *big.Int) error {
	return r.changed(ctx, serial, true)
}

// Refresh is Update for a change announced by another process (a replica,
// a local command; status_changes): the serial's cached answers are dropped
// and re-signed, and nothing is signed for a serial not cached (the next
// request signs it from the store).
func (r *Responder) Refresh(ctx context.Context, serial *big.Int) error {
	return r.changed(ctx, serial, false)
}

func (r *Responder) changed(ctx context.Context, serial *big.Int, presign bool) error {
	var hashes []crypto.Hash
	if presign {
		hashes = append(hashes, crypto.SHA1)
	}
	r.mu.Lock()
	// a sign of this serial that read the old status no longer caches
	r.changes++
	now := time.Now()
	for k, m := range r.changedAt {
		if now.Sub(m.at) > changeHorizon {
			delete(r.changedAt, k)
		}
	}
	r.changedAt[string(serial.Bytes())] = changeMark{n: r.changes, at: now}
	for _, h := range supportedHashes {
		k := cacheKey{h, string(serial.Bytes())}
		if c, ok := r.cache[k]; ok {
			delete(r.cache, k)
			r.bytes -= c.size
			if !presign || h != crypto.SHA1 {
				hashes = append(hashes, h)
			}
		}
	}
	r.mu.Unlock()
	for _, h := range hashes {
		if _, err := r.sign(ctx, cacheKey{h, string(serial.Bytes())}, serial); err != nil && !errors.Is(err, ErrNoRecord) {
			return err
		}
	}
	return nil
}

// RefreshDue re-signs every cached response that has used half its validity
// (the scheduler calls it periodically) and drops "unknown" answers that
// expired. It returns how many it re-signed.
func (r *Responder) RefreshDue(ctx context.Context) (int, error) {
	now := r.cfg.Now()
	var due []cacheKey
	r.mu.Lock()
	for k, c := range r.cache {
		half := c.thisUpdate.Add(c.nextUpdate.Sub(c.thisUpdate) / 2)
		if now.Before(half) {
			continue
		}
		if c.status == xocsp.Unknown {
			delete(r.cache, k)
			r.bytes -= c.size
			continue
		}
		due = append(due, k)
	}
	r.mu.Unlock()
	n := 0
	for _, k := range due {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("ocsp: %w", err)
		}
		if _, err := r.sign(ctx, k, new(big.Int).SetBytes([]byte(k.serial))); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// subjectPublicKeyBits returns the subjectPublicKey BIT STRING contents of
// cert (the input of the CertID issuerKeyHash, RFC 6960 §4.1.1).
func subjectPublicKeyBits(cert *x509.Certificate) ([]byte, error) {
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok {
		return x509.MarshalPKCS1PublicKey(pub), nil
	}
	return nil, errors.New("issuer key is not RSA (TS Art. 2)")
}
