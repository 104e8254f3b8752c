package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// CA is everything the terminal asks of the CA over mutual TLS (raclient.Client): issuance
// (package issue), counter revocation, hold release and resident changes. Tests pass fakes.
type CA interface {
	issue.CA
	RevocationCA
	ChangeReporter
}

// RevocationCA is the counter's revocation service at the CA (CPS §4.9.3.1, §4.9.13–16).
type RevocationCA interface {
	Revoke(ctx context.Context, operator, serial string, req wire.RevokeRequest) (wire.RevocationAck, error)
	ReleaseHold(ctx context.Context, operator, serial string, req wire.ReleaseHoldRequest) (wire.CertificateStatus, error)
}

// ChangeReporter delivers resident changes to the CA (R02 II-3-1(2)).
type ChangeReporter interface {
	ReportResidentChange(ctx context.Context, operator string, req wire.ResidentChangeRequest) (wire.ResidentChangeResponse, error)
}

var _ CA = (*raclient.Client)(nil)

// CAProvider returns the CA client in effect now, or nil (and no error) when the terminal has
// none: no CA URL, or not enrolled yet. An error says the configured client cannot be built
// (certificate or key unreadable).
type CAProvider func() (CA, error)

// ErrNoCA: the terminal has no CA client (no CA URL, or not enrolled yet). Kind CAUnavailable.
var ErrNoCA = apperr.New(apperr.CAUnavailable, "app: no CA configured (no CA URL, or the terminal is not enrolled)")

// ca returns the CA client in effect at this call (Config.CurrentCA, else Config.CA), or an
// error of kind CAUnavailable when there is none. Every procedure that talks to the CA gets
// its client here, so enrolment or a new CA URL at run time reaches all of them at once
// (issue 16: revocation, hold release and the outbox used to keep the client of the start).
func (t *Terminal) ca() (CA, error) {
	c := t.cfg.CA
	if t.cfg.CurrentCA != nil {
		var err error
		if c, err = t.cfg.CurrentCA(); err != nil {
			return nil, err
		}
	}
	if c == nil {
		return nil, ErrNoCA
	}
	return c, nil
}

// issuerNow returns the issuance orchestration over the CA client in effect now (it is a few
// fields, built per issuance), or an error of kind CAUnavailable without a CA.
func (t *Terminal) issuerNow(ctx context.Context) (*issue.Orchestrator, error) {
	c, err := t.ca()
	if err != nil {
		return nil, err
	}
	return t.NewIssuer(ctx, c, t.cfg.CACertificates)
}

// CAFiles names the files that let the terminal talk to the CA: the CA's base URL, the
// terminal's client certificate and key from enrolment (PEM), and the internal TLS CA
// certificate pinned at enrolment (PEM). TS Art. 7(i), Art. 10: mutual TLS 1.3 only.
type CAFiles struct {
	URL      string
	CertFile string
	KeyFile  string
	RootFile string
	// Certificate, when set, is the client certificate with its key already loaded (the key
	// a crypto.Signer in a PKCS#11 token, app/termkey); CertFile and KeyFile are then unused.
	Certificate *tls.Certificate
}

// DialCA builds the CA client from f. It refuses (kind InvalidInput) a missing or unreadable
// file, a key that does not match the certificate, or a root file without a certificate. The
// key is never printed.
func DialCA(f CAFiles) (*raclient.Client, error) {
	if f.URL == "" || (f.Certificate == nil && (f.CertFile == "" || f.KeyFile == "")) || f.RootFile == "" {
		return nil, apperr.New(apperr.InvalidInput, "app: the CA needs a URL, a client certificate, its key and the TLS CA certificate")
	}
	var pair tls.Certificate
	if f.Certificate != nil {
		pair = *f.Certificate
	} else {
		var err error
		if pair, err = tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
			return nil, apperr.Wrap(apperr.InvalidInput, err, "app: terminal client certificate")
		}
	}
	rootPEM, err := os.ReadFile(f.RootFile)
	if err != nil {
		return nil, apperr.Wrap(apperr.InvalidInput, err, "app: TLS CA certificate")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		return nil, apperr.New(apperr.InvalidInput, "app: %s holds no PEM certificate", f.RootFile)
	}
	c, err := raclient.New(raclient.Config{BaseURL: f.URL, Certificate: pair, RootCAs: pool})
	if err != nil {
		return nil, apperr.Wrap(apperr.InvalidInput, err, "app: CA client")
	}
	return c, nil
}

// CAError is a refusal or failure of the CA in a counter procedure, with the kind the
// screens branch on and, as its detail code, what the CA answered (the table of
// assets/translations turns both into words). It wraps the raclient error, so
// errors.Is(err, raclient.ErrAlreadyRevoked) works.
type CAError struct {
	Kind apperr.Kind
	Op   string // "revoke", "release-hold", "resident-change"
	Err  error
}

func (e *CAError) Error() string { return fmt.Sprintf("app: CA %s: %v", e.Op, e.Err) }

// Unwrap returns the raclient error.
func (e *CAError) Unwrap() error { return e.Err }

// ErrorKind implements apperr.Kinded.
func (e *CAError) ErrorKind() apperr.Kind { return e.Kind }

// ErrorDetail implements apperr.Detailed: the CA's answer, by the first raclient kind that
// matches (the CA's wire codes where one answer is one code), or "".
func (e *CAError) ErrorDetail() string {
	for _, d := range caDetails {
		if errors.Is(e.Err, d.kind) {
			return d.detail
		}
	}
	return ""
}

// Is makes errors.Is(err, apperr.X) work for the kind.
func (e *CAError) Is(target error) bool {
	k, ok := target.(apperr.Kind)
	return ok && k == e.Kind
}

// caDetails names what the CA answered, per raclient kind (first match wins).
var caDetails = []struct {
	kind   error
	detail string
}{
	{raclient.ErrAlreadyRevoked, string(wire.CodeAlreadyRevoked)},
	{raclient.ErrNotOnHold, string(wire.CodeNotOnHold)},
	{raclient.ErrWrongCA, string(wire.CodeWrongCA)},
	{raclient.ErrChannelNotAllowed, string(wire.CodeChannelNotAllowed)},
	{raclient.ErrCertificateExpired, string(wire.CodeCertificateExpired)},
	{raclient.ErrUnknownEvent, string(wire.CodeUnknownEvent)},
	{raclient.ErrOtherMunicipality, string(wire.CodeOtherMunicipality)},
	{raclient.ErrPersonMismatch, string(wire.CodePersonMismatch)},
	{raclient.ErrNotFound, string(wire.CodeNotFound)},
	{raclient.ErrForbidden, "forbidden"},
	{raclient.ErrInvalidRequest, string(wire.CodeInvalidRequest)},
	{raclient.ErrUnavailable, string(wire.CodeUnavailable)},
}

// caError classifies an error of a CA call.
func caError(op string, err error) error {
	if err == nil {
		return nil
	}
	kind := apperr.Internal
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		kind = apperr.Cancelled
	case errors.Is(err, raclient.ErrAlreadyRevoked), errors.Is(err, raclient.ErrNotOnHold), errors.Is(err, raclient.ErrCertificateExpired),
		errors.Is(err, raclient.ErrConflict):
		kind = apperr.InvalidTransition
	case errors.Is(err, raclient.ErrWrongCA), errors.Is(err, raclient.ErrInvalidRequest), errors.Is(err, raclient.ErrUnknownEvent),
		errors.Is(err, raclient.ErrPersonMismatch):
		kind = apperr.InvalidInput
	case errors.Is(err, raclient.ErrNotFound):
		kind = apperr.NotFound
	case errors.Is(err, raclient.ErrChannelNotAllowed), errors.Is(err, raclient.ErrForbidden), errors.Is(err, raclient.ErrOtherMunicipality):
		kind = apperr.PermissionDenied
	case errors.Is(err, raclient.ErrUnavailable):
		kind = apperr.CAUnavailable
	}
	return &CAError{Kind: kind, Op: op, Err: err}
}

// transient reports whether a CA failure may go away by itself (network, CA overloaded).
func transient(err error) bool {
	k := apperr.KindOf(err)
	return k == apperr.CAUnavailable || k == apperr.Internal || k == apperr.Cancelled
}
