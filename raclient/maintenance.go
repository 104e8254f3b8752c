package raclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"madoguchi/jpki/wire"
)

// Card maintenance kinds (mapped from the wire codes in kindOf); test with
// errors.Is(err, raclient.ErrCardUnknown).
var (
	ErrCardUnknown           = errors.New("raclient: the CA delivered no certificate to this card")
	ErrCardOtherMunicipality = errors.New("raclient: the card was issued through another municipality")
	ErrCertificateLive       = errors.New("raclient: the certificate of this key is not revoked")
)

// PrepareMaintenance asks the CA for a protected script that resets one PIN or destroys keys
// on the card (wire.MaintenanceRequest). Retried with the same request id, which the CA
// answers idempotently (the same script while it is not confirmed).
func (c *Client) PrepareMaintenance(ctx context.Context, operator string, req wire.MaintenanceRequest) (wire.MaintenanceResponse, error) {
	if req.RequestID == "" {
		return wire.MaintenanceResponse{}, errors.New("raclient: card maintenance needs a request id")
	}
	var out wire.MaintenanceResponse
	return out, c.do(ctx, true, http.MethodPost, "/v1/card-maintenance", operator, req, &out)
}

// ConfirmMaintenance reports the card's protected responses to the script; retried with the
// same request id.
func (c *Client) ConfirmMaintenance(ctx context.Context, operator, maintenanceID string, req wire.ConfirmRequest) (wire.MaintenanceStatus, error) {
	if req.RequestID == "" {
		return wire.MaintenanceStatus{}, errors.New("raclient: confirm needs a request id")
	}
	var out wire.MaintenanceStatus
	return out, c.do(ctx, true, http.MethodPost, "/v1/card-maintenance/"+url.PathEscape(maintenanceID)+"/confirm", operator, req, &out)
}
