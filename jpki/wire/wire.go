// Package wire holds the JSON types of the ca-server issuance API, shared by
// the server (ca-server/api) and its client (raclient), and the one error
// type of the ca-server with its codes.
//
// The package is data only: no I/O, safe for concurrent use. Binary fields
// ([]byte) travel as standard base64 (encoding/json's default). Every
// request body is decoded with DisallowUnknownFields, so adding a request
// field is a breaking change for old servers and must be versioned.
package wire

import "time"

// OperatorHeader carries the id of the operator on whose behalf the terminal
// calls; every record of the CA names terminal and operator (TS Art. 20(2)).
const OperatorHeader = "Madoguchi-Operator-Id"

// ChannelRequest opens a secure channel between the card and the CA.
type ChannelRequest struct{}

// ChannelResponse carries the CA-chosen host challenge for INITIALIZE UPDATE.
type ChannelResponse struct {
	ChannelID     string    `json:"channel_id"`
	HostChallenge []byte    `json:"host_challenge"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// Applicant is the resident-record data of the applicant, as imported from
// the CS file (DOMAIN §4.1). Dates are "YYYY-MM-DD".
type Applicant struct {
	ResidentCode  string `json:"resident_code"` // 住民票コード, 11 digits; the CA keeps only a keyed hash
	Name          string `json:"name"`
	NameKana      string `json:"name_kana,omitempty"`
	BirthDate     string `json:"birth_date"`
	Sex           string `json:"sex"` // "1" male, "2" female (resident register codes)
	Address       string `json:"address"`
	FormerSurname string `json:"former_surname,omitempty"` // 旧氏
	Alias         string `json:"alias,omitempty"`          // 通称
	CardExpiry    string `json:"card_expiry"`              // the card's own expiry date (CPS §6.3.2.2)
	// NameSubstitutes and AddressSubstitutes are the 代替文字 positions of
	// Name and Address (R02 II-2-5(4)(5)): one '0' or '1' per character
	// (Unicode code point) of the substituted text, '1' where a substitute
	// stands; empty means no substitute. The CA writes them into the
	// certificate (.5.5.2, .5.5.6) and refuses a string of the wrong length,
	// with another character, or with a '1' at a character that cannot be a
	// substitute (jpki.MaySubstitute).
	NameSubstitutes    string `json:"name_substitutes,omitempty"`
	AddressSubstitutes string `json:"address_substitutes,omitempty"`
}

// PrepareRequest asks the CA to prepare one certificate for the card.
type PrepareRequest struct {
	RequestID  string `json:"request_id"` // idempotency key chosen by the terminal
	ChannelID  string `json:"channel_id"`
	CardSerial string `json:"card_serial"`
	// InitUpdateResponse is the card's answer to INITIALIZE UPDATE with the
	// host challenge (card challenge and card cryptogram).
	InitUpdateResponse []byte    `json:"init_update_response"`
	CertType           string    `json:"cert_type"`  // "sign" or "auth"
	Supersedes         bool      `json:"supersedes"` // renewal or card replacement (CPS §4.3.1.1)
	Applicant          Applicant `json:"applicant"`

	// Kind is what the counter took the application as (KindNew,
	// KindRenewal, KindNewCard); empty means KindNew without Supersedes and
	// KindNewCard with it (terminals from before the field). It only says
	// what was asked: the CA decides from its own record of the person's
	// current certificate whether the 6th-birthday rule applies (CPS
	// §6.3.2.2 ①) and refuses a renewal with three months or more left
	// (CodeRenewalTooEarly).
	Kind string `json:"kind,omitempty"`

	// CardContents is what the terminal read on the card before writing (ownership.go);
	// nil from a terminal that did not read it (the CA then relies on its records).
	CardContents *CardContents `json:"card_contents,omitempty"`
}

// Kinds of issuance request (PrepareRequest.Kind).
const (
	KindNew     = "new"      // 新規発行: no valid or held certificate of the type
	KindRenewal = "renewal"  // 更新 (CPS §4.7): supersedes the current certificate
	KindNewCard = "new_card" // カード再交付等: supersedes, on a new card
)

// PrepareResponse returns the prepared certificate and the protected script.
type PrepareResponse struct {
	IssuanceID  string    `json:"issuance_id"`
	State       string    `json:"state"`
	Serial      string    `json:"serial"`
	Certificate []byte    `json:"certificate"` // DER
	Script      [][]byte  `json:"script"`      // protected command APDUs, in order
	Deadline    time.Time `json:"deadline"`
	// CardOwner is whose card the CA found this to be: CardOwnerBlank or CardOwnerApplicant
	// (ownership.go). The terminal writes a card that is not blank only on "applicant".
	CardOwner string `json:"card_owner,omitempty"`
}

// ConfirmRequest carries the card's protected responses to the script.
type ConfirmRequest struct {
	RequestID     string   `json:"request_id"`
	CardResponses [][]byte `json:"card_responses"`
}

// AbortRequest stops an issuance before delivery (revoked, reason 0).
type AbortRequest struct {
	RequestID string `json:"request_id"`
	Reason    string `json:"reason,omitempty"` // free text for the audit record
	// CardWritten: the script's FINALIZE was sent, so the card may hold this issuance's key
	// in place of the one it held before. For a renewal on the same card the CA then also
	// revokes the certificate of the replaced key (issue 17: no valid or held certificate
	// outlives its key).
	CardWritten bool `json:"card_written,omitempty"`
}

// IssuanceStatus is the state of one issuance.
type IssuanceStatus struct {
	IssuanceID       string     `json:"issuance_id"`
	State            string     `json:"state"` // issuing, prepared, delivered, held, revoked
	CertType         string     `json:"cert_type"`
	Serial           string     `json:"serial"`
	Deadline         time.Time  `json:"deadline"`
	PreparedAt       *time.Time `json:"prepared_at,omitempty"`
	DeliveredAt      *time.Time `json:"delivered_at,omitempty"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason *int       `json:"revocation_reason,omitempty"`
}

// EnrollRequest enrols a terminal with a one-time token.
type EnrollRequest struct {
	Token string `json:"token"`
	CSR   []byte `json:"csr"` // PKCS#10, DER
}

// EnrollResponse returns the terminal's client certificate.
type EnrollResponse struct {
	TerminalID    string `json:"terminal_id"`
	Municipality  string `json:"municipality"`
	Certificate   []byte `json:"certificate"`    // DER
	CACertificate []byte `json:"ca_certificate"` // DER of the internal TLS CA, to pin
}

// Problem is the body of every error response.
type Problem struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}
