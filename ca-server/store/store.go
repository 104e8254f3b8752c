// Package store keeps the ca-server's durable state (terminals, enrolment
// tokens, secure-channel openings, issuances, key fingerprints and the audit
// log) behind a read-only and a read-write interface, with a SQLite
// implementation (the default: one file) and a PostgreSQL one (several
// ca-server processes on one database), which run the same statements.
//
// Each write method is one transaction, so every invariant below holds after
// a crash at any instant (kill -9 included):
//
//   - A certificate is signed only after its issuance row exists (state
//     issuing, serial reserved): a signed certificate never lacks a record,
//     and the serial of a certificate whose DER was lost is still known and
//     is revoked with reason 0 (CPS §4.9.9: destroyed before delivery).
//   - An issuance becomes delivered only in the transaction that stores the
//     card's confirmation; a renewal supersedes (reason 4) the person's
//     previous certificate in that same transaction (CPS §4.3.1.1).
//   - At most one valid or held, and at most one pending, certificate of each
//     type per person: partial UNIQUE indexes, not only code.
//   - TS Art. 5(iii): a key must never be generated twice, so the SPKI
//     fingerprint of every generated key is kept with a UNIQUE constraint.
//
// Concurrency: implementations are safe for concurrent use. The SQLite
// implementation serialises writers on one connection and reads on a pool;
// the PostgreSQL one runs every write method as one SERIALIZABLE
// transaction, retried inside the method on a serialisation failure, so
// the outcome is that of some serial order, across processes too.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors callers branch on. Methods wrap them with detail; use errors.Is.
var (
	ErrNotFound        = errors.New("store: not found")
	ErrDuplicatePerson = errors.New("store: person already has a certificate of this type")
	ErrPendingPerson   = errors.New("store: person already has a certificate of this type being issued")
	ErrDuplicateKey    = errors.New("store: public key was generated before")
	ErrDuplicateReq    = errors.New("store: request id already used by this terminal")
	ErrChannelUsed     = errors.New("store: channel already used")
	ErrChannelExpired  = errors.New("store: channel expired")
	ErrTokenInvalid    = errors.New("store: enrolment token unknown, used or expired")
	ErrState           = errors.New("store: operation not allowed in the current state")
	ErrConflict        = errors.New("store: conflicting record exists")
	// ErrCardOtherPerson: the card holds or was delivered with another person's certificate
	// (issue 17: a card is written only when blank or the applicant's own).
	ErrCardOtherPerson = errors.New("store: the card holds another person's certificate")
)

// CertType is the kind of JPKI certificate (DOMAIN §2).
type CertType string

const (
	CertSign CertType = "sign" // 署名用電子証明書
	CertAuth CertType = "auth" // 利用者証明用電子証明書
)

// Valid reports whether t is a known certificate type.
func (t CertType) Valid() bool { return t == CertSign || t == CertAuth }

// State is an issuance's place in its life cycle.
type State string

const (
	StateIssuing   State = "issuing"   // record exists, certificate may be being signed
	StatePrepared  State = "prepared"  // signed, script handed to the terminal, not yet on the card
	StateDelivered State = "delivered" // the card confirmed it holds key and certificate
	StateHeld      State = "held"      // reason 6 (certificateHold); may return to delivered
	StateRevoked   State = "revoked"   // final
)

// Revocation reasons (CPS §4.9.9) used by this package.
const (
	ReasonDestroyedBeforeDelivery = 0 // unspecified: 交付前に破棄
	ReasonSuperseded              = 4
)

// Terminal is one enrolled counter terminal.
type Terminal struct {
	ID           string
	Municipality string // 6-digit local government code, e.g. "131016"
	CertSerial   string // hex serial of the terminal's client certificate
	CertSHA256   []byte // SHA-256 of the certificate DER; nil until signed
	CertNotAfter time.Time
	EnrolledAt   time.Time
	RevokedAt    time.Time // zero when not revoked
}

// Revoked reports whether the terminal was revoked.
func (t Terminal) Revoked() bool { return !t.RevokedAt.IsZero() }

// EnrolmentToken is a one-time terminal enrolment token, known by its hash.
type EnrolmentToken struct {
	TokenSHA256  []byte
	Municipality string
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// Channel is one secure-channel opening: the host challenge the CA chose.
type Channel struct {
	ID            string
	TerminalID    string
	HostChallenge []byte
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        time.Time // zero while unused
}

// Issuance is one certificate put on one card.
type Issuance struct {
	ID            string
	TerminalID    string
	RequestID     string // the terminal's idempotency key
	RequestSHA256 []byte // hash of the prepare request, to refuse a reused id with other content
	OperatorID    string
	ChannelID     string
	CardSerial    string
	PersonHash    []byte // keyed hash of the resident-record code
	CertType      CertType
	Supersedes    bool   // renewal/replacement: revokes the person's valid one on delivery
	Serial        string // hex, reserved before signing
	KeySHA256     []byte // SPKI fingerprint of the generated key
	State         State
	DER           []byte
	Script        []byte // protected card script; erased once the issuance is final
	ChannelState  []byte // what the card channel needs to verify the confirmation
	CreatedAt     time.Time
	Deadline      time.Time // a prepared issuance not confirmed by then is revoked
	PreparedAt    time.Time
	DeliveredAt   time.Time

	ConfirmRequestID string
	ConfirmSHA256    []byte
	RevokedAt        time.Time
	RevocationReason int // meaningful only when State == StateRevoked
	AbortRequestID   string
}

// AuditRecord is one entry of the hash-chained audit log.
type AuditRecord struct {
	Seq      int64
	At       time.Time
	Terminal string
	Operator string
	Action   string
	Target   string
	Result   string
	Detail   string
	PrevHash []byte
	Hash     []byte
}

// AuditCheckpoint is a signature over the chain hash at record Seq.
// Checkpoints form a chain of their own (package audit): Number counts
// them from 1 and PrevHash is the previous checkpoint's link hash, both
// inside the signed digest. PrevHash is nil for a checkpoint written
// before the chain existed (digest v1), whose Number is its position.
type AuditCheckpoint struct {
	Seq       int64
	At        time.Time
	Hash      []byte
	KeyID     string
	Signature []byte
	Number    int64
	PrevHash  []byte
}

// Reader is the read-only half of the store.
type Reader interface {
	Terminal(ctx context.Context, id string) (Terminal, error)
	TerminalBySerial(ctx context.Context, certSerial string) (Terminal, error)
	Channel(ctx context.Context, id string) (Channel, error)
	Issuance(ctx context.Context, id string) (Issuance, error)
	IssuanceByRequest(ctx context.Context, terminalID, requestID string) (Issuance, error)
	// ValidIssuance returns the person's delivered or held certificate of
	// the type, or ErrNotFound.
	ValidIssuance(ctx context.Context, personHash []byte, t CertType) (Issuance, error)
	// OverdueIssuances lists issuing or prepared issuances whose deadline
	// is before now.
	OverdueIssuances(ctx context.Context, now time.Time, limit int) ([]Issuance, error)

	LastAuditRecord(ctx context.Context) (AuditRecord, error)
	// AuditRecords returns records with seq > after in seq order, at most limit.
	AuditRecords(ctx context.Context, after int64, limit int) ([]AuditRecord, error)
	AuditRecordsByOperator(ctx context.Context, operator string, after int64, limit int) ([]AuditRecord, error)
	AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)
}

// Writer is the read-write store. Each method is one transaction.
type Writer interface {
	Reader

	CreateEnrolmentToken(ctx context.Context, tok EnrolmentToken) error
	// EnrolTerminal consumes the token (unused, not expired at now) and
	// inserts the terminal with the token's municipality, before its
	// certificate is signed. ErrTokenInvalid otherwise.
	EnrolTerminal(ctx context.Context, tokenSHA256 []byte, t Terminal, now time.Time) (Terminal, error)
	// SetTerminalCertificate records the signed certificate's fingerprint.
	SetTerminalCertificate(ctx context.Context, id string, certSHA256 []byte, notAfter time.Time) error
	RevokeTerminal(ctx context.Context, certSerial string, now time.Time) (Terminal, error)

	CreateChannel(ctx context.Context, c Channel) error

	// RecordKeyFingerprint remembers a generated key; ErrDuplicateKey if it
	// was ever generated before (TS Art. 5(iii)).
	RecordKeyFingerprint(ctx context.Context, spkiSHA256 []byte, now time.Time) error
	// BeginIssuance consumes the channel and inserts the issuance in state
	// issuing, before the certificate is signed. It fails with
	// ErrDuplicateReq (same terminal and request id), ErrChannelUsed,
	// ErrChannelExpired, ErrDuplicatePerson (a valid or held one exists and
	// the issuance does not supersede), ErrPendingPerson, ErrCardOtherPerson
	// (the card is another person's: a certificate of someone else on it is
	// being issued, valid, held or was delivered), or ErrNotFound.
	BeginIssuance(ctx context.Context, is Issuance, now time.Time) error
	// MarkPrepared stores the signed certificate and the card script.
	MarkPrepared(ctx context.Context, id string, der, script, channelState []byte, now time.Time) (Issuance, error)
	// ConfirmIssuance marks a prepared issuance delivered with the card's
	// confirmation, erases its script and, for a renewal, supersedes the
	// person's previous certificate.
	ConfirmIssuance(ctx context.Context, id, confirmRequestID string, confirmSHA256 []byte, now time.Time) (Issuance, error)
	// AbortIssuance revokes an issuing or prepared issuance with reason 0
	// and erases its script. abortRequestID may be empty (sweeper).
	AbortIssuance(ctx context.Context, id, abortRequestID string, now time.Time) (Issuance, error)

	// AppendAudit appends a record; its Seq must be the last Seq + 1.
	AppendAudit(ctx context.Context, r AuditRecord) error
	// AppendAuditCheckpoint stores a checkpoint; its Number must be the
	// last checkpoint's + 1 (ErrConflict otherwise: another process
	// checkpointed first).
	AppendAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error

	Close() error
}
