package api

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/traffic"
	"madoguchi/internal/wallclock"
	"madoguchi/jpki/wire"
)

// VerifierRegistry finds registered verifiers by certificate fingerprint
// (store.SQLite).
type VerifierRegistry interface {
	VerifierByFingerprint(ctx context.Context, certSHA256 []byte) (store.Verifier, error)
}

// shardSeries returns the series of the CRL shard named by seg: a
// decimal number without sign or leading zeros below the shard count.
func (c StatusCA) shardSeries(seg string) (string, bool) {
	shards := c.CRLShards
	if len(shards) == 0 {
		shards = []string{c.CRLSeries}
	}
	if seg == "" || len(seg) > 6 || (len(seg) > 1 && seg[0] == '0') {
		return "", false
	}
	i := 0
	for _, r := range seg {
		if r < '0' || r > '9' {
			return "", false
		}
		i = i*10 + int(r-'0')
	}
	if i >= len(shards) {
		return "", false
	}
	return shards[i], true
}

// CRLSource serves the newest archived CRL of a series (status.Service).
type CRLSource interface {
	CurrentCRL(series string) (io.ReadCloser, crl.Meta, error)
}

// StatusCA is one CA as the status handlers publish it.
type StatusCA struct {
	Name      string // "signature", "user-auth": the URL path segment
	CRLSeries string
	// CRLShards are the series of the shards of a partitioned CRL, shard 0
	// first (RFC 5280 §5.2.5); empty or one: CRLSeries is the one CRL.
	CRLShards   []string
	ARLSeries   string
	Certificate *x509.Certificate
	OCSP        http.Handler // nil: no responder for this CA
}

// StatusConfig configures the verifier and public status handlers.
type StatusConfig struct {
	Verifiers VerifierRegistry
	CRLs      CRLSource
	CAs       []StatusCA
	Audit     Auditor
	Clock     func() time.Time
	Logger    *slog.Logger
	// Traffic counts what is not audited one by one and holds the budgets:
	// on the verifier listener, refusals per source address and requests
	// per registered verifier; on the public listener, requests per source
	// address (Clients) and refusals per source address. Nil: a guard
	// without limits named "verifier" or "public".
	Traffic *traffic.Guard
	// AuditCheckpoints serves GET /v1/audit/checkpoint on the public
	// listener (audit.CheckpointHandler): the newest signed audit
	// checkpoint and its chain, for outside witnesses. nil: not served.
	AuditCheckpoints http.Handler
	// Holders serves POST /v1/holder/revoke on the public listener (holder.go: online
	// revocation of a signature certificate, CPS §4.9.3.1), with Acks signing the
	// acknowledgements. nil: not served.
	Holders HolderRevoker
	Acks    AckSigner
}

// unauthorizedOCSP is the OCSPResponse with status unauthorized (RFC 6960
// §4.2.1: responseStatus 6, no responseBytes).
var unauthorizedOCSP = []byte{0x30, 0x03, 0x0a, 0x01, 0x06}

// VerifierTLSConfig is the TLS configuration of the verifier listener: TLS
// 1.2 or 1.3 (relying parties' OCSP clients), a client certificate
// required; which certificates are accepted is the registry's decision
// (fingerprints), so certificates from other CAs can be registered too.
func VerifierTLSConfig(serverCert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAnyClientCert}
}

// NewVerifierHandler serves CRLs, ARLs and OCSP to registered verifiers
// only (CPS §2.4; TS Arts. 33, 36), on a listener with VerifierTLSConfig:
//
//	GET  /crl/{ca}          the newest CRL (DER, application/pkix-crl)
//	GET  /crl/{ca}/{shard}  the newest CRL of shard {shard} (decimal, from
//	                        0) of a partitioned CRL; shard 0 is the one
//	                        CRL of an unpartitioned CA
//	GET  /arl/{ca}          the newest ARL
//	POST /ocsp/{ca}         OCSP request (application/ocsp-request)
//	GET  /ocsp/{ca}/{req}   OCSP request, base64 (RFC 6960 Appendix A.1)
//
// Every request is authenticated by the SHA-256 of the client certificate
// against the registry. A registered verifier's requests are audited one by
// one (CPS §5.5.1.2 keeps the OCSP inquiry history), within its request
// budget; over it, 429 (for OCSP with the "tryLater" answer as body),
// counted, not audited. A request from a client that is not a registered
// verifier is refused (an OCSP request with the "unauthorized" answer),
// counted in the listener's summary, not audited by itself (issue 13
// threat 4), and 429 once its address has spent its budget of refusals.
func NewVerifierHandler(cfg StatusConfig) (http.Handler, error) {
	if cfg.Verifiers == nil || cfg.CRLs == nil || cfg.Audit == nil {
		return nil, errors.New("api: verifier registry, CRL source and auditor are required")
	}
	fill(&cfg, "verifier")
	return &statusHandler{cfg: cfg, verifiersOnly: true}, nil
}

// NewPublicHandler serves what is public, over plain HTTPS without client
// certificates (CPS §2.4: the ARL and the CA certificates; G Art. 10(ii):
// the CA certificates' fingerprints):
//
//	GET /arl/{ca}              the newest ARL
//	GET /ca/{ca}               the CA certificate (DER)
//	GET /ca/{ca}/fingerprints  SHA-256 and SHA-1 of the CA certificate
//	GET /v1/audit/checkpoint   the newest signed audit checkpoint (?since=N: the chain from N), when configured
//	POST /v1/holder/revoke     a holder's signed online revocation of a signature certificate (holder.go), when configured
//
// CRLs and OCSP are not served here (404). Nobody is authenticated here, so
// no request is audited by itself: each is counted in the listener's
// summary, within a request budget per source address (429 beyond). The one
// exception is an accepted holder revocation, authenticated by the signature
// of the certificate it revokes: it is audited as that holder's action.
func NewPublicHandler(cfg StatusConfig) (http.Handler, error) {
	if cfg.CRLs == nil || cfg.Audit == nil {
		return nil, errors.New("api: CRL source and auditor are required")
	}
	if (cfg.Holders == nil) != (cfg.Acks == nil) {
		return nil, errors.New("api: holder revocation needs both the revoker and the acknowledgement signer")
	}
	fill(&cfg, "public")
	return &statusHandler{cfg: cfg}, nil
}

func fill(cfg *StatusConfig, listener string) {
	if cfg.Traffic == nil {
		cfg.Traffic = traffic.NewGuard(traffic.GuardConfig{Listener: listener, Audit: cfg.Audit, Logger: cfg.Logger})
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

type statusHandler struct {
	cfg           StatusConfig
	verifiersOnly bool
}

func (h *statusHandler) ca(name string) (StatusCA, bool) {
	for _, c := range h.cfg.CAs {
		if c.Name == name {
			return c, true
		}
	}
	return StatusCA{}, false
}

// tryLaterOCSP is the OCSPResponse with status tryLater (RFC 6960 §4.2.1:
// responseStatus 3), the body of a 429 to an OCSP request.
var tryLaterOCSP = []byte{0x30, 0x03, 0x0a, 0x01, 0x03}

func (h *statusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	isOCSP := parts[0] == "ocsp"
	g := h.cfg.Traffic
	limited := func() {
		w.Header().Set("Retry-After", "1")
		if isOCSP {
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write(tryLaterOCSP)
			return
		}
		writeProblem(w, errRateLimited)
	}
	who := ""
	var err error
	if h.verifiersOnly {
		var v store.Verifier
		if v, err = h.authenticate(r); err != nil {
			if g.Refuse(r, string(wire.CodeOf(err))) {
				limited()
				return
			}
			if isOCSP {
				w.Header().Set("Content-Type", "application/ocsp-response")
				w.Write(unauthorizedOCSP)
				return
			}
			writeProblem(w, err)
			return
		}
		if !g.AllowClient("verifier " + v.Name) {
			g.Limited(r)
			limited()
			return
		}
		who = v.Name
	} else if !g.AllowClient(traffic.ClientIP(r)) {
		g.Limited(r)
		limited()
		return
	}
	defer func() {
		if who == "" { // public listener: counted, never audited one by one
			kind := traffic.KindServed
			if err != nil {
				kind = string(wire.CodeOf(err))
			}
			g.Count(r, kind)
			return
		}
		result, detail := "ok", ""
		if err != nil {
			result = string(wire.CodeOf(err))
			var we *wire.Error
			if errors.As(err, &we) {
				detail = we.Message
			}
		}
		if aerr := h.cfg.Audit.Record(context.WithoutCancel(r.Context()), audit.Entry{Terminal: "verifier", Operator: traffic.Clean(who, 128),
			Action: traffic.Clean("status."+parts[0], 64), Target: traffic.Clean(r.URL.Path, 256), Result: result, Detail: traffic.Clean(detail, 512)}); aerr != nil {
			h.cfg.Logger.Error("api: audit status request", "err", aerr)
		}
	}()
	if !h.verifiersOnly && h.cfg.AuditCheckpoints != nil && r.URL.Path == "/v1/audit/checkpoint" && r.Method == http.MethodGet {
		h.cfg.AuditCheckpoints.ServeHTTP(w, r)
		return
	}
	if !h.verifiersOnly && h.cfg.Holders != nil && r.URL.Path == "/v1/holder/revoke" {
		err = h.holderRevoke(w, r)
		return
	}
	if len(parts) < 2 {
		err = wire.Errorf(wire.CodeRouteNotFound, "no such endpoint")
		writeProblem(w, err)
		return
	}
	ca, ok := h.ca(parts[1])
	if !ok {
		err = wire.Errorf(wire.CodeNotFound, "no CA named %q", parts[1])
		writeProblem(w, err)
		return
	}
	switch {
	case parts[0] == "arl" && len(parts) == 2 && r.Method == http.MethodGet:
		err = h.serveCRL(w, ca.ARLSeries)
	case parts[0] == "crl" && len(parts) == 2 && r.Method == http.MethodGet && h.verifiersOnly:
		if len(ca.CRLShards) > 1 {
			// no whole CRL exists: each certificate names its shard
			err = wire.Errorf(wire.CodeNotFound, "the CRL of %s is partitioned in %d shards: GET /crl/%s/{shard}", ca.Name, len(ca.CRLShards), ca.Name)
			writeProblem(w, err)
			return
		}
		err = h.serveCRL(w, ca.CRLSeries)
	case parts[0] == "crl" && len(parts) == 3 && r.Method == http.MethodGet && h.verifiersOnly:
		series, ok := ca.shardSeries(parts[2])
		if !ok {
			err = wire.Errorf(wire.CodeNotFound, "no CRL shard %q of %s", traffic.Clean(parts[2], 16), ca.Name)
			writeProblem(w, err)
			return
		}
		err = h.serveCRL(w, series)
	case isOCSP && h.verifiersOnly && ca.OCSP != nil:
		http.StripPrefix("/ocsp/"+ca.Name, ca.OCSP).ServeHTTP(w, r)
	case parts[0] == "ca" && !h.verifiersOnly && r.Method == http.MethodGet && ca.Certificate != nil && len(parts) == 2:
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(ca.Certificate.Raw)
	case parts[0] == "ca" && !h.verifiersOnly && r.Method == http.MethodGet && ca.Certificate != nil && len(parts) == 3 && parts[2] == "fingerprints":
		s256, s1 := sha256.Sum256(ca.Certificate.Raw), sha1.Sum(ca.Certificate.Raw)
		writeJSON(w, http.StatusOK, map[string]string{"sha256": hex.EncodeToString(s256[:]), "sha1": hex.EncodeToString(s1[:])})
	default:
		err = wire.Errorf(wire.CodeRouteNotFound, "no such endpoint")
		writeProblem(w, err)
	}
}

func (h *statusHandler) serveCRL(w http.ResponseWriter, series string) error {
	rc, m, err := h.cfg.CRLs.CurrentCRL(series)
	if errors.Is(err, crl.ErrNotFound) {
		err = wire.Wrap(wire.CodeNotFound, err, "no CRL published yet")
		writeProblem(w, err)
		return err
	}
	if err != nil {
		err = wire.Wrap(wire.CodeUnavailable, err, "CRL archive unavailable")
		writeProblem(w, err)
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Last-Modified", m.ThisUpdate.UTC().Format(http.TimeFormat))
	w.Header().Set("Expires", m.NextUpdate.UTC().Format(http.TimeFormat))
	_, err = io.Copy(w, rc)
	return err
}

// authenticate finds the registered verifier holding the client
// certificate (the handshake proved possession of its key).
func (h *statusHandler) authenticate(r *http.Request) (store.Verifier, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return store.Verifier{}, wire.Errorf(wire.CodeVerifierRequired, "a registered verifier's client certificate is required (CPS §2.4)")
	}
	leaf := r.TLS.PeerCertificates[0]
	fp := sha256.Sum256(leaf.Raw)
	v, err := h.cfg.Verifiers.VerifierByFingerprint(r.Context(), fp[:])
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Verifier{}, wire.Errorf(wire.CodeVerifierUnknown, "client certificate not registered as a verifier")
	case err != nil:
		return store.Verifier{}, wire.Wrap(wire.CodeUnavailable, err, "verifier lookup failed")
	case v.Revoked():
		return v, wire.Errorf(wire.CodeVerifierRevoked, "verifier registration withdrawn")
	}
	if now := h.cfg.Clock(); now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return v, wire.Errorf(wire.CodeClientCertExpired, "verifier certificate expired or not yet valid")
	}
	return v, nil
}
