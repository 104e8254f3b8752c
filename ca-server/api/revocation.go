package api

import (
	"context"
	"net/http"
	"strconv"

	"madoguchi/ca-server/revocation"
	"madoguchi/ca-server/status"
	"madoguchi/jpki/wire"
)

// RevocationService is the revocation service the terminal API serves
// (status.Service).
type RevocationService interface {
	Revoke(ctx context.Context, c status.Caller, ch revocation.Channel, serial string, req wire.RevokeRequest) (wire.RevocationAck, error)
	ReleaseHold(ctx context.Context, c status.Caller, serial string, req wire.ReleaseHoldRequest) (wire.CertificateStatus, error)
	ResidentChange(ctx context.Context, c status.Caller, req wire.ResidentChangeRequest) (wire.ResidentChangeResponse, error)
}

var _ RevocationService = (*status.Service)(nil)

// MountRevocation adds the revocation endpoints for terminals, behind the
// same client-certificate authentication, error mapping and audit as
// issuance. Call it before serving. Terminals are the counter: requests
// arrive through revocation.ChannelCounter (CPS §4.9.3.1). There is no hold
// endpoint: a hold is set only by the local call-centre command, and
// released only here (CPS §4.9.13–16).
//
// Authority (issue 13, threat 3): each request acts only for a resident of
// the calling terminal's municipality, and revoke and release-hold carry the
// holder's resident-record code, which the CA hashes to the person key of
// the certificate; refusals are 403 other_municipality / person_mismatch,
// audited with that result, and change nothing. The audit target is the
// serial (or the request id), never the code.
//
//	POST /v1/certificates/{serial}/revoke        wire.RevokeRequest → wire.RevocationAck
//	POST /v1/certificates/{serial}/release-hold  wire.ReleaseHoldRequest → wire.CertificateStatus
//	POST /v1/resident-changes                    wire.ResidentChangeRequest → wire.ResidentChangeResponse
func (s *Server) MountRevocation(rs RevocationService) {
	caller := func(c *call) status.Caller {
		// the municipality comes from the terminals table, never from the
		// request: a terminal acts only for its own residents
		return status.Caller{TerminalID: c.caller.TerminalID, Municipality: c.caller.Municipality, OperatorID: c.caller.OperatorID}
	}
	s.handle("POST /v1/certificates/{serial}/revoke", "certificate.revoke", true, func(c *call) (int, any, error) {
		c.target = c.r.PathValue("serial")
		var req wire.RevokeRequest
		if err := s.decode(c, &req); err != nil {
			return 0, nil, err
		}
		resp, err := rs.Revoke(c.r.Context(), caller(c), revocation.ChannelCounter, c.target, req)
		return http.StatusOK, resp, err
	})
	s.handle("POST /v1/certificates/{serial}/release-hold", "certificate.release-hold", true, func(c *call) (int, any, error) {
		c.target = c.r.PathValue("serial")
		var req wire.ReleaseHoldRequest
		if err := s.decode(c, &req); err != nil {
			return 0, nil, err
		}
		resp, err := rs.ReleaseHold(c.r.Context(), caller(c), c.target, req)
		return http.StatusOK, resp, err
	})
	s.handle("POST /v1/resident-changes", "resident.change", true, func(c *call) (int, any, error) {
		var req wire.ResidentChangeRequest
		if err := s.decode(c, &req); err != nil {
			return 0, nil, err
		}
		// the audit target never names the person (TS Art. 31(iii))
		c.target = "request:" + req.RequestID
		resp, err := rs.ResidentChange(c.r.Context(), caller(c), req)
		if err == nil {
			c.target = "change:" + strconv.FormatInt(resp.ChangeID, 10)
		}
		return http.StatusOK, resp, err
	})
}

// statusOfRevocation maps the revocation and verifier codes; statusOf
// calls it for codes it does not know.
func statusOfRevocation(code wire.Code) int {
	switch code {
	case wire.CodeAlreadyRevoked, wire.CodeNotOnHold, wire.CodeAlreadyHeld, wire.CodeCertificateExpired:
		return http.StatusConflict
	case wire.CodeWrongCA:
		return http.StatusUnprocessableEntity
	case wire.CodeChannelNotAllowed, wire.CodeVerifierRevoked, wire.CodeOtherMunicipality, wire.CodePersonMismatch:
		return http.StatusForbidden
	case wire.CodeUnknownEvent:
		return http.StatusBadRequest
	case wire.CodeVerifierRequired, wire.CodeVerifierUnknown:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}
