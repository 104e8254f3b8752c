// Package api is the ca-server's HTTPS issuance API: TLS 1.3, terminals
// authenticated by client certificate against the internal TLS CA and the
// terminals table, JSON bodies decoded strictly, one error type mapped to an
// HTTP status here and nowhere else, and every request of an authenticated
// terminal audited.
//
// Only issuance (with card maintenance: PIN reset and key destruction
// scripts, maintenance.go), status and enrolment are offered; there are no
// administrative endpoints (TS Art. 20(1)(iii), 42(1)(iii)).
//
// Client certificates: the TLS layer runs with tls.RequestClientCert, so the
// handshake proves the terminal holds the certificate's key, and this
// package verifies the chain itself, on every request except POST
// /v1/enroll (the one endpoint a terminal calls before it has a
// certificate). Verifying in the handler rather than in the handshake lets
// every refusal — no certificate, untrusted, expired, unknown or revoked
// terminal — get a specific error code, on one listener. Routing is by
// exact method and path, so no other path is reachable without a verified
// certificate.
//
// Audit (TS Art. 20(2), CPS §5.4; issue 13 threat 4): a request whose
// terminal was authenticated is one audit record, refusals included, with
// Terminal the authenticated terminal and Operator the operator id that
// terminal asserts in the Madoguchi-Operator-Id header (the CA
// authenticates terminals; each terminal authenticates its operators), so
// `audit show --operator` lists what authenticated terminals asserted for
// that operator. A request refused before any terminal was authenticated
// (unknown route, wrong method, no or a bad client certificate, an unknown
// or revoked terminal, a refused enrolment) is not audited by itself: the
// listener's traffic.Guard counts it and writes one summary per minute, so
// a sender nobody authenticated chooses neither a record's content nor the
// log's growth, and cannot make issuance fail closed by keeping the audit
// store busy. Every audited string is escaped and bounded (traffic.Clean).
//
// Rate limits: a source address has a budget of refusals, and an
// authenticated terminal a budget of requests (Config.Traffic); over
// either, the answer is 429 rate_limited, counted, not audited.
//
// Concurrency: a Server is safe for concurrent use.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
	"madoguchi/ca-server/traffic"
	"madoguchi/internal/wallclock"
	"madoguchi/jpki/wire"
)

// Service is the issuance service the API serves.
type Service interface {
	OpenChannel(ctx context.Context, c issuance.Caller) (wire.ChannelResponse, error)
	Prepare(ctx context.Context, c issuance.Caller, req wire.PrepareRequest) (wire.PrepareResponse, error)
	Confirm(ctx context.Context, c issuance.Caller, id string, req wire.ConfirmRequest) (wire.IssuanceStatus, error)
	Abort(ctx context.Context, c issuance.Caller, id string, req wire.AbortRequest) (wire.IssuanceStatus, error)
	Status(ctx context.Context, c issuance.Caller, id string) (wire.IssuanceStatus, error)
}

var _ Service = (*issuance.Service)(nil)

// Enroller enrols terminals (tlsca.CA).
type Enroller interface {
	Enroll(ctx context.Context, token string, csrDER []byte) (wire.EnrollResponse, error)
}

var _ Enroller = (*tlsca.CA)(nil)

// Terminals looks terminals up by certificate serial (store.Reader).
type Terminals interface {
	TerminalBySerial(ctx context.Context, certSerial string) (store.Terminal, error)
}

// Auditor records one entry per request of an authenticated terminal, and
// the traffic summaries (audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

var _ Auditor = (*audit.Log)(nil)

// Config configures a Server.
type Config struct {
	Service   Service
	Enroller  Enroller
	Terminals Terminals
	Audit     Auditor
	ClientCAs *x509.CertPool   // the internal TLS CA
	Clock     func() time.Time // default time.Now; also checks certificate validity
	Logger    *slog.Logger
	// MaxBody bounds request bodies (default 256 KiB: a prepare request is
	// a few KiB; card responses to a script are under 64 KiB).
	MaxBody int64
	// Traffic counts the requests refused before a terminal was
	// authenticated and holds the per-address and per-terminal budgets
	// (nil: a guard without limits, listener "api", auditing to Audit;
	// its summaries are written when someone runs or flushes it).
	Traffic *traffic.Guard
	// Witness keeps and signs terminals' audit chain heads (witness.go); nil: the witness
	// endpoints answer CodeUnavailable.
	Witness *Witness
}

// Server serves the API.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil || cfg.Enroller == nil || cfg.Terminals == nil || cfg.Audit == nil || cfg.ClientCAs == nil {
		return nil, errors.New("api: service, enroller, terminals, auditor and client CA pool are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 256 << 10
	}
	if cfg.Traffic == nil {
		cfg.Traffic = traffic.NewGuard(traffic.GuardConfig{Listener: "api", Audit: cfg.Audit, Logger: cfg.Logger})
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.handle("POST /v1/enroll", "terminal.enroll", false, s.enroll)
	s.handle("POST /v1/channels", "channel.open", true, s.openChannel)
	s.handle("POST /v1/issuances", "issuance.prepare", true, s.prepare)
	s.handle("POST /v1/issuances/{id}/confirm", "issuance.confirm", true, s.confirm)
	s.handle("POST /v1/issuances/{id}/abort", "issuance.abort", true, s.abort)
	s.handle("GET /v1/issuances/{id}", "issuance.status", true, s.status)
	s.mountMaintenance() // maintenance.go
	s.mountWitness()     // witness.go
	return s, nil
}

// Traffic is the server's traffic guard (Config.Traffic).
func (s *Server) Traffic() *traffic.Guard { return s.cfg.Traffic }

// TLSConfig returns the server TLS configuration: TLS 1.3 only (TS Art. 10:
// traffic encrypted), client certificate requested; see the package comment
// for where it is verified.
func TLSConfig(serverCert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequestClientCert,
	}
}

// call is one request in progress.
type call struct {
	r      *http.Request
	w      http.ResponseWriter
	caller issuance.Caller
	target string
	detail string // recorded with the result (witness.go: the head a terminal sent)
	// release, when set, runs after the audit record is written (witness.go: the witness
	// lock covers the check and the record of the head it accepted).
	release func()
}

type handlerFunc func(c *call) (status int, body any, err error)

// ServeHTTP routes a request; unknown routes get a problem body too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		code, msg := wire.CodeRouteNotFound, "no such endpoint"
		if r.URL.Path == "/v1/enroll" || r.URL.Path == "/v1/channels" || r.URL.Path == "/v1/issuances" || strings.HasPrefix(r.URL.Path, "/v1/issuances/") ||
			r.URL.Path == "/v1/card-maintenance" || strings.HasPrefix(r.URL.Path, "/v1/card-maintenance/") ||
			strings.HasPrefix(r.URL.Path, "/v1/terminal-audit/") {
			code, msg = wire.CodeMethodNotAllowed, "method not allowed"
		}
		s.refuse(w, r, wire.Errorf(code, "%s", msg))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// refuse answers a request refused before any terminal was authenticated:
// counted in the listener's summary instead of audited, and 429 once the
// source address has spent its budget of refusals.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if code := wire.CodeOf(err); code == wire.CodeInternal || code == wire.CodeUnavailable {
		s.cfg.Logger.Error("api: refused unauthenticated request", "code", code, "err", err)
	}
	if s.cfg.Traffic.Refuse(r, string(wire.CodeOf(err))) {
		err = errRateLimited
	}
	writeProblem(w, err)
}

var errRateLimited = wire.Errorf(wire.CodeRateLimited, "too many requests; retry later")

func (s *Server) handle(pattern, action string, auth bool, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := &call{r: r, w: w}
		var err error
		if auth {
			// a missing operator header is the one refusal of an
			// authenticated terminal: audited below like any of its requests
			if err = s.authenticate(c); err != nil && wire.CodeOf(err) != wire.CodeOperatorRequired {
				s.refuse(w, r, err)
				return
			}
			if !s.cfg.Traffic.AllowClient("terminal " + c.caller.TerminalID) {
				s.cfg.Traffic.Limited(r)
				writeProblem(w, errRateLimited)
				return
			}
		}
		var status int
		var body any
		if err == nil {
			status, body, err = h(c)
		}
		if !auth && err != nil {
			// a refused enrolment: the sender proved nothing
			s.refuse(w, r, err)
			return
		}
		aerr := s.audit(r.Context(), c, action, err)
		if c.release != nil {
			c.release()
		}
		if aerr != nil && err == nil {
			// fail closed: an unaudited operation is not reported as done;
			// a retry with the same request id gets the stored answer.
			err = wire.Wrap(wire.CodeUnavailable, aerr, "audit log unavailable")
		}
		if err != nil {
			if wire.CodeOf(err) == wire.CodeInternal {
				s.cfg.Logger.Error("api: internal error", "action", action, "err", err)
			}
			writeProblem(w, err)
			return
		}
		writeJSON(w, status, body)
	})
}

func (s *Server) audit(ctx context.Context, c *call, action string, err error) error {
	result := "ok"
	detail := c.detail
	if err != nil {
		result = string(wire.CodeOf(err))
		var we *wire.Error
		if errors.As(err, &we) {
			detail = strings.TrimSpace(we.Message + " " + c.detail)
		}
	}
	// Only authenticated terminals are audited here (handle): Terminal is
	// the terminal, and Operator what it asserts (for an enrolment, what
	// the holder of the valid token asserts).
	terminal := c.caller.TerminalID
	if terminal == "" {
		terminal = "-"
	}
	operator := c.caller.OperatorID
	if operator == "" && terminal != "-" {
		operator = c.r.Header.Get(wire.OperatorHeader)
	}
	if !validOperator(operator) {
		operator = "-"
	}
	return s.cfg.Audit.Record(context.WithoutCancel(ctx), audit.Entry{Terminal: traffic.Clean(terminal, 128), Operator: operator, Action: action,
		Target: traffic.Clean(c.target, 256), Result: traffic.Clean(result, 64), Detail: traffic.Clean(detail, 512)})
}

// authenticate verifies the client certificate and the terminal, and the
// operator header.
func (s *Server) authenticate(c *call) error {
	r := c.r
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return wire.Errorf(wire.CodeClientCertMissing, "a terminal client certificate is required")
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, ic := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: s.cfg.ClientCAs, Intermediates: inter, CurrentTime: s.cfg.Clock(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	var inv x509.CertificateInvalidError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return wire.Wrap(wire.CodeClientCertExpired, err, "client certificate expired or not yet valid")
	case err != nil:
		return wire.Wrap(wire.CodeClientCertInvalid, err, "client certificate not issued by the internal TLS CA")
	}
	term, err := s.cfg.Terminals.TerminalBySerial(r.Context(), tlsca.SerialHex(leaf))
	fp := sha256.Sum256(leaf.Raw)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return wire.Errorf(wire.CodeTerminalUnknown, "terminal not enrolled")
	case err != nil:
		return wire.Wrap(wire.CodeUnavailable, err, "terminal lookup failed")
	case string(term.CertSHA256) != string(fp[:]):
		return wire.Errorf(wire.CodeTerminalUnknown, "terminal not enrolled with this certificate")
	}
	c.caller.TerminalID, c.caller.Municipality = term.ID, term.Municipality
	if term.Revoked() {
		return wire.Errorf(wire.CodeTerminalRevoked, "terminal revoked")
	}
	op := r.Header.Get(wire.OperatorHeader)
	if !validOperator(op) {
		return wire.Errorf(wire.CodeOperatorRequired, "header %s must name the operator (1 to 64 printable ASCII characters)", wire.OperatorHeader)
	}
	c.caller.OperatorID = op
	return nil
}

func validOperator(op string) bool {
	if op == "" || len(op) > 64 {
		return false
	}
	for i := 0; i < len(op); i++ {
		if op[i] <= ' ' || op[i] > '~' {
			return false
		}
	}
	return true
}

// decode reads exactly one JSON value into v: size-limited, unknown fields
// refused, trailing data refused.
func (s *Server) decode(c *call, v any) error {
	return decodeJSON(c.w, c.r, s.cfg.MaxBody, v)
}

// decodeJSON is decode for any handler: at most max bytes of
// application/json holding exactly one JSON value.
func decodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return wire.Errorf(wire.CodeUnsupportedMedia, "content type must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			if mbe := decodeError(err); wire.CodeOf(mbe) == wire.CodeBodyTooLarge {
				return mbe
			}
		}
		return wire.Errorf(wire.CodeMalformedJSON, "body must hold exactly one JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return wire.Errorf(wire.CodeBodyTooLarge, "body larger than %d bytes", mbe.Limit)
	case errors.As(err, &te):
		return wire.Errorf(wire.CodeWrongType, "field %q must be %s", te.Field, te.Type)
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return wire.Errorf(wire.CodeMalformedJSON, "body is not valid JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for DisallowUnknownFields
		return wire.Errorf(wire.CodeUnknownField, "%s", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return wire.Wrap(wire.CodeMalformedJSON, err, "body is not a valid request")
	}
}

// statusOf is the one mapping from error code to HTTP status.
func statusOf(code wire.Code) int {
	switch code {
	case wire.CodeMalformedJSON, wire.CodeUnknownField, wire.CodeWrongType, wire.CodeInvalidRequest,
		wire.CodeInvalidApplicant, wire.CodeInvalidCSR, wire.CodeOperatorRequired:
		return http.StatusBadRequest
	case wire.CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case wire.CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case wire.CodeRouteNotFound, wire.CodeNotFound:
		return http.StatusNotFound
	case wire.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case wire.CodeClientCertMissing, wire.CodeClientCertInvalid, wire.CodeClientCertExpired, wire.CodeTerminalUnknown, wire.CodeTokenInvalid:
		return http.StatusUnauthorized
	case wire.CodeTerminalRevoked:
		return http.StatusForbidden
	case wire.CodeDuplicatePerson, wire.CodePendingPerson, wire.CodeRequestIDReused, wire.CodeInvalidState, wire.CodeChannelUsed, wire.CodeRenewalTooEarly,
		wire.CodeCardOtherPerson, wire.CodeCardStateUnknown: // card ownership (issuance/ownership.go)
		return http.StatusConflict
	case wire.CodeChannelExpired:
		return http.StatusGone
	case wire.CodeCardAuthFailed, wire.CodeCardResponseFailed:
		return http.StatusUnprocessableEntity
	case wire.CodeUnavailable:
		return http.StatusServiceUnavailable
	case wire.CodeRateLimited:
		return http.StatusTooManyRequests
	default:
		if st, ok := statusOfMaintenance(code); ok { // maintenance.go
			return st
		}
		if st, ok := statusOfWitness(code); ok { // witness.go
			return st
		}
		if st, ok := statusOfHolder(code); ok { // holder.go
			return st
		}
		return statusOfRevocation(code) // revocation.go
	}
}

func writeProblem(w http.ResponseWriter, err error) {
	code := wire.CodeOf(err)
	msg := "internal error"
	var we *wire.Error
	if errors.As(err, &we) && code != wire.CodeInternal {
		msg = we.Message
	}
	if code == wire.CodeUnavailable || code == wire.CodeRateLimited {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(statusOf(code))
	json.NewEncoder(w).Encode(wire.Problem{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (s *Server) enroll(c *call) (int, any, error) {
	var req wire.EnrollRequest
	if err := s.decode(c, &req); err != nil {
		return 0, nil, err
	}
	resp, err := s.cfg.Enroller.Enroll(c.r.Context(), req.Token, req.CSR)
	if err != nil {
		return 0, nil, err
	}
	c.target = resp.TerminalID
	c.caller.TerminalID = resp.TerminalID
	return http.StatusCreated, resp, nil
}

func (s *Server) openChannel(c *call) (int, any, error) {
	var req wire.ChannelRequest
	if err := s.decode(c, &req); err != nil {
		return 0, nil, err
	}
	resp, err := s.cfg.Service.OpenChannel(c.r.Context(), c.caller)
	c.target = resp.ChannelID
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, resp, nil
}

func (s *Server) prepare(c *call) (int, any, error) {
	var req wire.PrepareRequest
	if err := s.decode(c, &req); err != nil {
		return 0, nil, err
	}
	c.target = "request:" + req.RequestID
	resp, err := s.cfg.Service.Prepare(c.r.Context(), c.caller, req)
	if err != nil {
		return 0, nil, err
	}
	c.target = resp.IssuanceID
	return http.StatusOK, resp, nil
}

func (s *Server) confirm(c *call) (int, any, error) {
	c.target = c.r.PathValue("id")
	var req wire.ConfirmRequest
	if err := s.decode(c, &req); err != nil {
		return 0, nil, err
	}
	resp, err := s.cfg.Service.Confirm(c.r.Context(), c.caller, c.target, req)
	return http.StatusOK, resp, err
}

func (s *Server) abort(c *call) (int, any, error) {
	c.target = c.r.PathValue("id")
	var req wire.AbortRequest
	if err := s.decode(c, &req); err != nil {
		return 0, nil, err
	}
	resp, err := s.cfg.Service.Abort(c.r.Context(), c.caller, c.target, req)
	return http.StatusOK, resp, err
}

func (s *Server) status(c *call) (int, any, error) {
	c.target = c.r.PathValue("id")
	resp, err := s.cfg.Service.Status(c.r.Context(), c.caller, c.target)
	return http.StatusOK, resp, err
}
