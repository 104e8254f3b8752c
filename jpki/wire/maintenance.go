package wire

import "time"

// Card maintenance at the counter: a PIN reset (unblock) or the destruction of the private
// keys on a card the CA delivered certificates to. The CA is the host end of the card's
// secure channel, as for issuance (TS Arts. 6(ii), 7(ii)): the terminal opens a channel
// (POST /v1/channels), relays INITIALIZE UPDATE, and asks for the protected script with
// POST /v1/card-maintenance; it relays the script and confirms with the card's protected
// responses (POST /v1/card-maintenance/{id}/confirm). No PIN ever travels to the CA: after a
// reset the applicant sets the new PIN with the card's own SET PIN (CPS §6.4.1.2).

// Maintenance operations.
const (
	MaintenancePINReset       = "pin-reset"
	MaintenanceKeyDestruction = "key-destruction"
)

// Maintenance states.
const (
	MaintenanceAuthorised = "authorised" // the script was built; the card has not confirmed
	MaintenanceDone       = "done"       // the card's attestation matched the script
)

// Codes of card maintenance.
const (
	// CodeCardUnknown: the CA authorises maintenance only on a card it delivered a
	// certificate to (TS Arts. 6(ii), 7(ii): the card's issuer keys are the CA's).
	CodeCardUnknown Code = "card_unknown"
	// CodeCardOtherMunicipality: the card was issued through another municipality's
	// terminal; the holder goes to that municipality's counter (CPS §4.1, §3.2: the issuing
	// municipality holds the application and identity records).
	CodeCardOtherMunicipality Code = "card_other_municipality"
	// CodeCertificateLive: a key is destroyed only after its certificate was revoked: a valid
	// or held certificate whose key is gone could not be used, yet would still be reported
	// good (CPS §4.9.1.1(1): revoke first).
	CodeCertificateLive Code = "certificate_not_revoked"
)

// MaintenanceRequest asks for a protected script for one card.
type MaintenanceRequest struct {
	RequestID  string `json:"request_id"` // idempotency key chosen by the terminal
	ChannelID  string `json:"channel_id"`
	CardSerial string `json:"card_serial"` // hex, as read from the card
	// InitUpdateResponse is the card's answer to INITIALIZE UPDATE with the host challenge.
	InitUpdateResponse []byte `json:"init_update_response"`
	Operation          string `json:"operation"` // MaintenancePINReset or MaintenanceKeyDestruction
	// Targets names what the operation applies to, as certificate types "sign" / "auth":
	// the one PIN to reset (exactly one), or the keys to destroy (one or both).
	Targets []string `json:"targets"`
}

// MaintenanceResponse returns the protected script.
type MaintenanceResponse struct {
	MaintenanceID string   `json:"maintenance_id"`
	State         string   `json:"state"`
	Operation     string   `json:"operation"`
	Targets       []string `json:"targets"`
	Script        [][]byte `json:"script"` // protected command APDUs, in order
}

// MaintenanceStatus is the state of one maintenance.
type MaintenanceStatus struct {
	MaintenanceID string     `json:"maintenance_id"`
	State         string     `json:"state"`
	Operation     string     `json:"operation"`
	Targets       []string   `json:"targets"`
	CardSerial    string     `json:"card_serial"`
	AuthorisedAt  time.Time  `json:"authorised_at"`
	DoneAt        *time.Time `json:"done_at,omitempty"`
}
