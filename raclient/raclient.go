// Package raclient is the counter terminal's client of the ca-server
// issuance API: mutual TLS 1.3 (TS Art. 7(i), Art. 10), timeouts, retries
// with backoff that resend the same request id, and typed errors that app
// maps to apperr kinds (with the CA's code as detail) at its edge.
//
// Retries: only operations that are idempotent on the server are retried
// (prepare, confirm and abort by request id; status), after network errors
// and 429/502/503/504. Opening a channel is not retried: a fresh host challenge
// is cheap and the old one simply expires.
//
// Concurrency: a Client is safe for concurrent use.
package raclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"madoguchi/jpki/wire"
)

// Sentinel kinds; test with errors.Is(err, raclient.ErrDuplicatePerson).
var (
	ErrDuplicatePerson  = errors.New("raclient: the person already has a certificate of this type")
	ErrPendingPerson    = errors.New("raclient: a certificate of this type is being issued to the person")
	ErrNotFound         = errors.New("raclient: not found")
	ErrForbidden        = errors.New("raclient: terminal not authorised")
	ErrInvalidApplicant = errors.New("raclient: applicant data refused")
	ErrInvalidRequest   = errors.New("raclient: request refused as malformed")
	ErrConflict         = errors.New("raclient: conflicts with the issuance's state")
	ErrChannelExpired   = errors.New("raclient: secure channel expired")
	ErrCard             = errors.New("raclient: card authentication or response failed")
	ErrTokenInvalid     = errors.New("raclient: enrolment token unknown, used or expired")
	ErrUnavailable      = errors.New("raclient: CA unavailable")
	ErrInternal         = errors.New("raclient: CA internal error")
)

// ErrRenewalTooEarly: by the CA's record the person's current certificate has three months
// or more left (CPS §4.7.1.1, §6.3.2.2 ①).
var ErrRenewalTooEarly = errors.New("raclient: renewal refused, the current certificate has three months or more left")

// Error is an error answer of the CA, or a transport failure (Status 0).
type Error struct {
	Status  int
	Code    wire.Code
	Message string
	Err     error // transport cause, if any
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("raclient: %s: %v", e.Code, e.Err)
	}
	return fmt.Sprintf("raclient: %d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is maps the CA's code to a sentinel kind.
func (e *Error) Is(target error) bool { return kindOf(e.Code) == target }

func kindOf(c wire.Code) error {
	switch c {
	case wire.CodeDuplicatePerson:
		return ErrDuplicatePerson
	case wire.CodePendingPerson:
		return ErrPendingPerson
	case wire.CodeRenewalTooEarly:
		return ErrRenewalTooEarly
	case wire.CodeNotFound, wire.CodeRouteNotFound:
		return ErrNotFound
	case wire.CodeClientCertMissing, wire.CodeClientCertInvalid, wire.CodeClientCertExpired, wire.CodeTerminalUnknown, wire.CodeTerminalRevoked, wire.CodeOperatorRequired,
		wire.CodeVerifierRequired, wire.CodeVerifierUnknown, wire.CodeVerifierRevoked,
		wire.CodeHolderSignatureInvalid, wire.CodeOnlineSignatureOnly: // the holder's online revocation (public listener)
		return ErrForbidden
	case wire.CodeInvalidApplicant:
		return ErrInvalidApplicant
	case wire.CodeMalformedJSON, wire.CodeUnknownField, wire.CodeWrongType, wire.CodeBodyTooLarge, wire.CodeUnsupportedMedia, wire.CodeInvalidRequest, wire.CodeInvalidCSR, wire.CodeMethodNotAllowed,
		wire.CodeRequestStale:
		return ErrInvalidRequest
	case wire.CodeInvalidState, wire.CodeRequestIDReused, wire.CodeChannelUsed, wire.CodeRequestReplayed:
		return ErrConflict
	case wire.CodeChannelExpired:
		return ErrChannelExpired
	case wire.CodeCardAuthFailed, wire.CodeCardResponseFailed:
		return ErrCard
	case wire.CodeTokenInvalid:
		return ErrTokenInvalid
	case wire.CodeUnavailable, wire.CodeRateLimited: // 429: the terminal's budget, retried like 503
		return ErrUnavailable
	// Revocation and status (revocation.go holds the sentinels).
	case wire.CodeAlreadyRevoked:
		return ErrAlreadyRevoked
	case wire.CodeNotOnHold, wire.CodeAlreadyHeld:
		return ErrNotOnHold
	case wire.CodeWrongCA:
		return ErrWrongCA
	case wire.CodeChannelNotAllowed:
		return ErrChannelNotAllowed
	case wire.CodeCertificateExpired:
		return ErrCertificateExpired
	case wire.CodeUnknownEvent:
		return ErrUnknownEvent
	case wire.CodeOtherMunicipality:
		return ErrOtherMunicipality
	case wire.CodePersonMismatch:
		return ErrPersonMismatch
	// Card maintenance (maintenance.go holds the sentinels).
	case wire.CodeCardUnknown:
		return ErrCardUnknown
	case wire.CodeCardOtherMunicipality:
		return ErrCardOtherMunicipality
	case wire.CodeCertificateLive:
		return ErrCertificateLive
	// Card ownership at prepare (ownership.go holds the sentinels).
	case wire.CodeCardOtherPerson:
		return ErrCardOtherPerson
	case wire.CodeCardStateUnknown:
		return ErrCardStateUnknown
	// Audit witness (witness.go holds the sentinels).
	case wire.CodeAuditHeadBackwards, wire.CodeAuditHeadForked:
		return ErrAuditHeadRefused
	case wire.CodeAuditAnchorStale:
		return ErrAuditAnchorStale
	default:
		return ErrInternal
	}
}

// Config configures a Client.
type Config struct {
	BaseURL     string          // e.g. "https://ca.example:8443"
	Certificate tls.Certificate // the terminal's client certificate; its key may be any crypto.Signer
	RootCAs     *x509.CertPool  // the internal TLS CA, pinned at enrolment
	Timeout     time.Duration   // per attempt, default 30 s
	MaxAttempts int             // default 4
	Backoff     time.Duration   // first retry delay, doubled each time; default 250 ms
	// Sleep waits between attempts (default: a timer honouring ctx); tests
	// inject their own.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client calls the CA.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if len(cfg.Certificate.Certificate) == 0 || cfg.Certificate.PrivateKey == nil {
		return nil, errors.New("raclient: a client certificate and key are required")
	}
	return newClient(cfg, []tls.Certificate{cfg.Certificate})
}

func newClient(cfg Config, certs []tls.Certificate) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("raclient: base URL %q must be https://host[:port]", cfg.BaseURL)
	}
	if cfg.RootCAs == nil {
		return nil, errors.New("raclient: the internal TLS CA certificate is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 250 * time.Millisecond
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: cfg.RootCAs, Certificates: certs},
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        4,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{cfg: cfg, base: u, http: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// OpenChannel asks for a host challenge (not retried).
func (c *Client) OpenChannel(ctx context.Context, operator string) (wire.ChannelResponse, error) {
	var out wire.ChannelResponse
	return out, c.do(ctx, false, http.MethodPost, "/v1/channels", operator, wire.ChannelRequest{}, &out)
}

// Prepare asks the CA to prepare a certificate; retried with the same
// request id, which the CA answers idempotently.
func (c *Client) Prepare(ctx context.Context, operator string, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	if req.RequestID == "" {
		return wire.PrepareResponse{}, errors.New("raclient: prepare needs a request id (keep it in the terminal's journal)")
	}
	var out wire.PrepareResponse
	return out, c.do(ctx, true, http.MethodPost, "/v1/issuances", operator, req, &out)
}

// Confirm reports the card's responses; retried with the same request id.
func (c *Client) Confirm(ctx context.Context, operator, issuanceID string, req wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	if req.RequestID == "" {
		return wire.IssuanceStatus{}, errors.New("raclient: confirm needs a request id")
	}
	var out wire.IssuanceStatus
	return out, c.do(ctx, true, http.MethodPost, "/v1/issuances/"+url.PathEscape(issuanceID)+"/confirm", operator, req, &out)
}

// Abort ends an issuance before delivery; retried with the same request id.
func (c *Client) Abort(ctx context.Context, operator, issuanceID string, req wire.AbortRequest) (wire.IssuanceStatus, error) {
	if req.RequestID == "" {
		return wire.IssuanceStatus{}, errors.New("raclient: abort needs a request id")
	}
	var out wire.IssuanceStatus
	return out, c.do(ctx, true, http.MethodPost, "/v1/issuances/"+url.PathEscape(issuanceID)+"/abort", operator, req, &out)
}

// Status returns an issuance's state.
func (c *Client) Status(ctx context.Context, operator, issuanceID string) (wire.IssuanceStatus, error) {
	var out wire.IssuanceStatus
	return out, c.do(ctx, true, http.MethodGet, "/v1/issuances/"+url.PathEscape(issuanceID), operator, nil, &out)
}

// NewRequestID returns a random request id for the terminal's journal.
func NewRequestID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("raclient: request id: %w", err)
	}
	return fmt.Sprintf("%x", b), nil
}

func (c *Client) do(ctx context.Context, retry bool, method, path, operator string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("raclient: encode request: %w", err)
		}
	}
	attempts := 1
	if retry {
		attempts = c.cfg.MaxAttempts
	}
	delay := c.cfg.Backoff
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if err := c.cfg.Sleep(ctx, delay); err != nil {
				return &Error{Code: wire.CodeUnavailable, Err: err}
			}
			delay *= 2
		}
		var again bool
		last, again = c.once(ctx, method, path, operator, body, out)
		if !again {
			return last
		}
	}
	return last
}

// once makes one attempt; again reports whether a retry may help.
func (c *Client) once(ctx context.Context, method, path, operator string, body []byte, out any) (err error, again bool) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(path).String(), rd)
	if err != nil {
		return fmt.Errorf("raclient: %w", err), false
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if operator != "" {
		req.Header.Set(wire.OperatorHeader, operator)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// a certificate the server refuses, a server we cannot verify or
		// one that refuses TLS 1.3 (a TLS alert) will not get better by
		// retrying
		var uerr x509.UnknownAuthorityError
		var herr x509.HostnameError
		var cerr *tls.CertificateVerificationError
		if ctx.Err() != nil || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) || isTLSAlert(err) {
			return &Error{Code: wire.CodeUnavailable, Err: err}, false
		}
		return &Error{Code: wire.CodeUnavailable, Err: err}, true
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return &Error{Code: wire.CodeUnavailable, Err: err}, true
	}
	// A prepare answer carries the card script, the applicant's key wrapped for the card:
	// the raw body is erased once decoded (json.Unmarshal copies into out), so the caller's
	// decoded script is the only copy it has to erase (TS Art. 5(iv), 6(iii)).
	defer clear(data)
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return &Error{Status: resp.StatusCode, Code: wire.CodeInternal, Message: "unreadable answer", Err: err}, false
		}
		return nil, false
	}
	var p wire.Problem
	if json.Unmarshal(data, &p) != nil || p.Code == "" {
		p = wire.Problem{Code: wire.CodeUnavailable, Message: http.StatusText(resp.StatusCode)}
		if resp.StatusCode < 500 {
			p.Code = wire.CodeInternal
		}
	}
	e := &Error{Status: resp.StatusCode, Code: p.Code, Message: p.Message}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return e, true
	}
	return e, false
}

// isTLSAlert reports whether the server ended the handshake with a TLS
// alert (e.g. protocol_version from a server without TLS 1.3, bad_certificate):
// the server refuses this client, and a retry would be refused alike.
func isTLSAlert(err error) bool {
	var aerr tls.AlertError
	if errors.As(err, &aerr) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

// EnrollConfig configures Enroll.
type EnrollConfig struct {
	BaseURL  string
	RootCAs  *x509.CertPool // the internal TLS CA certificate, handed over with the token
	Token    string
	Key      crypto.Signer // the terminal's new key (ECDSA P-256 recommended)
	Operator string        // who installs the terminal, for the CA's audit record
}

// Enroll sends a CSR for Key with the one-time token and returns the
// terminal's client certificate. It is not retried: the token is single use.
func Enroll(ctx context.Context, cfg EnrollConfig) (wire.EnrollResponse, error) {
	if cfg.Key == nil || cfg.Token == "" {
		return wire.EnrollResponse{}, errors.New("raclient: enrolment needs a key and a token")
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "madoguchi terminal"}}, cfg.Key)
	if err != nil {
		return wire.EnrollResponse{}, fmt.Errorf("raclient: csr: %w", err)
	}
	c, err := newClient(Config{BaseURL: cfg.BaseURL, RootCAs: cfg.RootCAs, MaxAttempts: 1}, nil)
	if err != nil {
		return wire.EnrollResponse{}, err
	}
	defer c.Close()
	var out wire.EnrollResponse
	err = c.do(ctx, false, http.MethodPost, "/v1/enroll", cfg.Operator, wire.EnrollRequest{Token: cfg.Token, CSR: csr}, &out)
	return out, err
}

// TLSCertificate combines an enrolment answer with the key into the
// certificate New expects.
func TLSCertificate(resp wire.EnrollResponse, key crypto.Signer) (tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(resp.Certificate)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("raclient: enrolment certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{resp.Certificate}, PrivateKey: key, Leaf: leaf}, nil
}
