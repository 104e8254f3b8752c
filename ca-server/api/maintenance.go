package api

import (
	"context"
	"net/http"
	"strings"

	"madoguchi/ca-server/issuance"
	"madoguchi/jpki/wire"
)

// MaintenanceService is the card maintenance service (issuance.Service): a PIN reset or key
// destruction by a script the CA protects for one card (rules in ca-server/issuance).
type MaintenanceService interface {
	PrepareMaintenance(ctx context.Context, c issuance.Caller, req wire.MaintenanceRequest) (wire.MaintenanceResponse, error)
	ConfirmMaintenance(ctx context.Context, c issuance.Caller, id string, req wire.ConfirmRequest) (wire.MaintenanceStatus, error)
}

var _ MaintenanceService = (*issuance.Service)(nil)

// mountMaintenance adds the card maintenance endpoints, behind the same client-certificate
// authentication, error mapping and audit as issuance (every refusal is audited with its
// code). They are served by Config.Service when it implements MaintenanceService; otherwise
// (CA not activated) they answer CodeUnavailable.
//
//	POST /v1/card-maintenance               wire.MaintenanceRequest → wire.MaintenanceResponse
//	POST /v1/card-maintenance/{id}/confirm  wire.ConfirmRequest → wire.MaintenanceStatus
func (s *Server) mountMaintenance() {
	service := func() (MaintenanceService, error) {
		ms, ok := s.cfg.Service.(MaintenanceService)
		if !ok {
			return nil, wire.Errorf(wire.CodeUnavailable, "card maintenance is not active on this CA")
		}
		return ms, nil
	}
	s.handle("POST /v1/card-maintenance", "card.maintenance.prepare", true, func(c *call) (int, any, error) {
		var req wire.MaintenanceRequest
		if err := s.decode(c, &req); err != nil {
			return 0, nil, err
		}
		// the audit target names the card and the operation, never a person
		c.target = clip("card:" + req.CardSerial + " " + req.Operation + ":" + strings.Join(req.Targets, ",") + " request:" + req.RequestID)
		ms, err := service()
		if err != nil {
			return 0, nil, err
		}
		resp, err := ms.PrepareMaintenance(c.r.Context(), c.caller, req)
		if err != nil {
			return 0, nil, err
		}
		c.target = resp.MaintenanceID + " card:" + req.CardSerial + " " + req.Operation + ":" + strings.Join(resp.Targets, ",")
		return http.StatusOK, resp, nil
	})
	s.handle("POST /v1/card-maintenance/{id}/confirm", "card.maintenance.confirm", true, func(c *call) (int, any, error) {
		c.target = c.r.PathValue("id")
		var req wire.ConfirmRequest
		if err := s.decode(c, &req); err != nil {
			return 0, nil, err
		}
		ms, err := service()
		if err != nil {
			return 0, nil, err
		}
		resp, err := ms.ConfirmMaintenance(c.r.Context(), c.caller, c.target, req)
		if err == nil {
			c.target += " card:" + resp.CardSerial + " " + resp.Operation + ":" + strings.Join(resp.Targets, ",")
		}
		return http.StatusOK, resp, err
	})
}

// statusOfMaintenance maps the card maintenance codes; ok is false for other codes.
func statusOfMaintenance(code wire.Code) (status int, ok bool) {
	switch code {
	case wire.CodeCardUnknown:
		return http.StatusNotFound, true
	case wire.CodeCardOtherMunicipality:
		return http.StatusForbidden, true
	case wire.CodeCertificateLive:
		return http.StatusConflict, true
	}
	return 0, false
}

// clip bounds an audit target built from request fields before they are validated.
func clip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
