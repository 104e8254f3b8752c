package raclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"madoguchi/jpki/wire"
)

// Revocation kinds; test with errors.Is(err, raclient.ErrAlreadyRevoked).
var (
	ErrAlreadyRevoked     = errors.New("raclient: certificate already revoked (revocation is never undone)")
	ErrNotOnHold          = errors.New("raclient: certificate is not on hold")
	ErrWrongCA            = errors.New("raclient: certificate belongs to the other CA")
	ErrChannelNotAllowed  = errors.New("raclient: request not accepted through this channel")
	ErrCertificateExpired = errors.New("raclient: certificate has expired")
	ErrUnknownEvent       = errors.New("raclient: unknown resident change event")
	// ErrOtherMunicipality: the holder (or the person of a resident change)
	// is a resident of another municipality; this terminal does not act for
	// them (the holder goes to that municipality's counter).
	ErrOtherMunicipality = errors.New("raclient: the person is a resident of another municipality")
	// ErrPersonMismatch: the resident-record code sent is not the
	// certificate holder's.
	ErrPersonMismatch = errors.New("raclient: the resident-record code is not the certificate holder's")
)

// revocationError adds the revocation kind to a CA answer, keeping *Error.
func revocationError(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	var kind error
	switch e.Code {
	case wire.CodeAlreadyRevoked:
		kind = ErrAlreadyRevoked
	case wire.CodeNotOnHold, wire.CodeAlreadyHeld:
		kind = ErrNotOnHold
	case wire.CodeWrongCA:
		kind = ErrWrongCA
	case wire.CodeChannelNotAllowed:
		kind = ErrChannelNotAllowed
	case wire.CodeCertificateExpired:
		kind = ErrCertificateExpired
	case wire.CodeUnknownEvent:
		kind = ErrUnknownEvent
	case wire.CodeOtherMunicipality:
		kind = ErrOtherMunicipality
	case wire.CodePersonMismatch:
		kind = ErrPersonMismatch
	default:
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

// Revoke revokes a certificate at the counter (CPS §4.9.3.1); the answer
// holds the data of the holder's written acknowledgement. Retried with the
// same request id, which the CA answers idempotently. req.ResidentCode is
// the holder's resident-record code: the CA acts only for its residents and
// only for the holder (ErrOtherMunicipality, ErrPersonMismatch); it travels
// only inside the TLS body, never in the URL or a log.
func (c *Client) Revoke(ctx context.Context, operator, serial string, req wire.RevokeRequest) (wire.RevocationAck, error) {
	if req.RequestID == "" {
		return wire.RevocationAck{}, errors.New("raclient: revoke needs a request id")
	}
	var out wire.RevocationAck
	err := c.do(ctx, true, http.MethodPost, "/v1/certificates/"+url.PathEscape(serial)+"/revoke", operator, req, &out)
	return out, revocationError(err)
}

// ReleaseHold releases a hold at the counter after the identity checks
// (CPS §4.9.13–16); retried with the same request id.
func (c *Client) ReleaseHold(ctx context.Context, operator, serial string, req wire.ReleaseHoldRequest) (wire.CertificateStatus, error) {
	if req.RequestID == "" {
		return wire.CertificateStatus{}, errors.New("raclient: release needs a request id")
	}
	var out wire.CertificateStatus
	err := c.do(ctx, true, http.MethodPost, "/v1/certificates/"+url.PathEscape(serial)+"/release-hold", operator, req, &out)
	return out, revocationError(err)
}

// ReportResidentChange reports that a person's resident record changed
// (R02 II-3-1(2)); retried with the same request id.
func (c *Client) ReportResidentChange(ctx context.Context, operator string, req wire.ResidentChangeRequest) (wire.ResidentChangeResponse, error) {
	if req.RequestID == "" {
		return wire.ResidentChangeResponse{}, errors.New("raclient: resident change needs a request id")
	}
	var out wire.ResidentChangeResponse
	err := c.do(ctx, true, http.MethodPost, "/v1/resident-changes", operator, req, &out)
	return out, revocationError(err)
}
