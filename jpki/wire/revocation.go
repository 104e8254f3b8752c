package wire

import "time"

// Codes of the revocation and status service (ca-server/status).
const (
	// CodeAlreadyRevoked: CPS §4.9: revocation is never undone; a revoked
	// certificate is not revoked, held or released again.
	CodeAlreadyRevoked Code = "already_revoked"
	// CodeNotOnHold: only a certificate on hold can be released.
	CodeNotOnHold Code = "not_on_hold"
	// CodeAlreadyHeld: a held certificate is not held again.
	CodeAlreadyHeld Code = "already_held"
	// CodeWrongCA: the request names a certificate type (CA) other than
	// the one that issued the serial.
	CodeWrongCA Code = "wrong_ca"
	// CodeChannelNotAllowed: the request is not accepted through this
	// channel (CPS §4.9.3.1: key compromise / card unusable only at the
	// counter; CPS §4.9.13–16: hold by phone, release only at the counter).
	CodeChannelNotAllowed Code = "channel_not_allowed"
	// CodeCertificateExpired: a hold lasts at most until the certificate
	// expires (CPS §4.9.16).
	CodeCertificateExpired Code = "certificate_expired"
	// CodeUnknownEvent: a resident change of a kind the rules do not know.
	CodeUnknownEvent Code = "unknown_event"
	// CodeVerifierRequired, CodeVerifierUnknown, CodeVerifierRevoked: CRLs
	// and OCSP only for registered verifiers (CPS §2.4; TS Arts. 33, 36).
	CodeVerifierRequired Code = "verifier_certificate_required"
	CodeVerifierUnknown  Code = "verifier_unknown"
	CodeVerifierRevoked  Code = "verifier_revoked"
	// CodeOtherMunicipality: the certificate's holder (or the person of a
	// resident change) is a resident of another municipality as far as the
	// CA knows (issued there, or moved in there); a terminal acts only for its
	// own municipality's residents (CPS §4.1, §4.9.3.1; R02 II-3-1(2)).
	CodeOtherMunicipality Code = "other_municipality"
	// CodePersonMismatch: the resident-record code of the request is not the
	// certificate holder's (the CA compares the keyed person hashes).
	CodePersonMismatch Code = "person_mismatch"
)

// RevokeRequest asks the CA to revoke one certificate at the counter, on
// the holder's written request after the identity checks (CPS §4.9.3.1).
type RevokeRequest struct {
	RequestID string `json:"request_id"`
	CertType  string `json:"cert_type"` // "sign" or "auth": must be the certificate's
	// Kind is the request kind of the revocation rules: "stop-using",
	// "key-compromise", "card-unusable", "card-abolished".
	Kind             string `json:"kind"`
	WrittenRequest   string `json:"written_request"`   // reference of the holder's written request
	IdentityDocument string `json:"identity_document"` // the photo ID that was checked
	// ResidentCode is the holder's resident-record code (住民票コード, 11
	// digits) from the identity-checked case: the CA hashes it to the person
	// key and compares it with the certificate's (person_mismatch). The CA
	// keeps neither the code nor the hash of the request.
	ResidentCode string `json:"resident_code"`
}

// RevocationAck is the data of the holder's written acknowledgement after
// the CA revoked (CPS §4.9.3.1).
type RevocationAck struct {
	Serial     string    `json:"serial"`
	CertType   string    `json:"cert_type"`
	Reason     int       `json:"reason"`      // CPS §4.9.9 code
	ReasonName string    `json:"reason_name"` // RFC 5280 name
	ReasonJa   string    `json:"reason_ja"`   // JPKI meaning in Japanese
	ReasonEn   string    `json:"reason_en"`
	Kind       string    `json:"kind"`
	RevokedAt  time.Time `json:"revoked_at"`
	// WrittenAcknowledgement: the rules require a written acknowledgement.
	WrittenAcknowledgement bool `json:"written_acknowledgement"`
}

// ReleaseHoldRequest releases a hold at the counter after the existence,
// identity and authenticity checks (CPS §4.9.13–16).
type ReleaseHoldRequest struct {
	RequestID        string `json:"request_id"`
	CertType         string `json:"cert_type"`
	IdentityDocument string `json:"identity_document"`
	ResidentCode     string `json:"resident_code"` // as RevokeRequest.ResidentCode
}

// CertificateStatus is the revocation status of one certificate.
type CertificateStatus struct {
	Serial           string     `json:"serial"`
	CertType         string     `json:"cert_type"`
	State            string     `json:"state"` // delivered, held, revoked
	HeldAt           *time.Time `json:"held_at,omitempty"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason *int       `json:"revocation_reason,omitempty"`
}

// ResidentChangeRequest reports that a person's resident record changed
// (異動等失効情報, R02 II-3-1(2)): only who (the resident-record code, of
// which the CA keeps a keyed hash), what kind of event and when. Where is
// the reporting terminal's municipality: a "move-in" reported by a
// municipality makes the person its resident (accepted after the previous
// municipality's "move-out"; other_municipality otherwise).
type ResidentChangeRequest struct {
	RequestID    string    `json:"request_id"`
	ResidentCode string    `json:"resident_code"`
	Event        string    `json:"event"` // an event of the rules, e.g. "death", "move-out"
	OccurredAt   time.Time `json:"occurred_at"`
}

// ResidentChangeResponse says what the CA did about the change.
type ResidentChangeResponse struct {
	ChangeID  int64    `json:"change_id"`
	Event     string   `json:"event"`
	Replayed  bool     `json:"replayed,omitempty"`
	Revoked   []string `json:"revoked"`             // certificate types revoked now
	Deferred  []string `json:"deferred"`            // types whose revocation waits for a later check
	Cancelled int64    `json:"cancelled,omitempty"` // deferred revocations cancelled
}
