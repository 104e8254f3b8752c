// Package issuance is the ca-server's issuance service: secure-channel
// openings, prepare (key generation, certificate, protected card script),
// confirm, abort, status and the sweeper that revokes issuances never
// confirmed.
//
// Its dependencies are the small interfaces below (declared here, by the
// consumer), implemented in production by ca-server/hsm, ca-server/cardkeys,
// ca-server/issuer, ca-server/applicant and ca-server/store.
//
// Concurrency: a Service is safe for concurrent use; the store serialises
// the state changes (partial UNIQUE indexes and single-writer transactions).
package issuance

import (
	"context"
	"crypto"
	"math/big"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// Store is the part of the store the service uses.
type Store interface {
	Channel(ctx context.Context, id string) (store.Channel, error)
	Issuance(ctx context.Context, id string) (store.Issuance, error)
	IssuanceByRequest(ctx context.Context, terminalID, requestID string) (store.Issuance, error)
	ValidIssuance(ctx context.Context, personHash []byte, t store.CertType) (store.Issuance, error)
	OverdueIssuances(ctx context.Context, now time.Time, limit int) ([]store.Issuance, error)
	CreateChannel(ctx context.Context, c store.Channel) error
	RecordKeyFingerprint(ctx context.Context, spkiSHA256 []byte, now time.Time) error
	BeginIssuance(ctx context.Context, is store.Issuance, now time.Time) error
	MarkPrepared(ctx context.Context, id string, der, script, channelState []byte, now time.Time) (store.Issuance, error)
	ConfirmIssuance(ctx context.Context, id, confirmRequestID string, confirmSHA256 []byte, now time.Time) (store.Issuance, error)
	AbortIssuance(ctx context.Context, id, abortRequestID string, now time.Time) (store.Issuance, error)
}

var _ Store = (store.Writer)(nil)

// UserKey is a user's RSA-2048 key pair generated inside the HSM
// (CPS §6.1.1.2). The private half never leaves the HSM except wrapped for
// one card.
type UserKey interface {
	Public() crypto.PublicKey
	// Destroy deletes the HSM copy (TS Art. 5(iv): the CA deletes its copy
	// after transfer; no escrow, no backup).
	Destroy(ctx context.Context) error
}

// KeyGenerator generates user keys in the HSM.
type KeyGenerator interface {
	GenerateUserKey(ctx context.Context) (UserKey, error)
}

// CardAuth is what the card sent in answer to INITIALIZE UPDATE.
type CardAuth struct {
	CardSerial         string
	HostChallenge      []byte
	InitUpdateResponse []byte
}

// CardSession is an authenticated secure channel with one card (the CA is
// the host end; TS Arts. 6(ii), 7(ii)).
type CardSession interface {
	// BuildScript wraps the key for this card inside the HSM and returns
	// the protected APDUs that write key, certificate and CA certificate.
	BuildScript(ctx context.Context, key UserKey, certDER, caCertDER []byte) ([][]byte, error)
	// State is what VerifyConfirmation needs later (challenges, counters,
	// card serial). It must hold no key material: it is stored.
	State() []byte
}

// CardChannel is the host end of the card secure channel.
type CardChannel interface {
	// Authenticate checks the card cryptogram; an error means the card is
	// not who it claims to be.
	Authenticate(ctx context.Context, a CardAuth) (CardSession, error)
	// VerifyConfirmation checks the card's protected responses to the
	// script against the stored session state.
	VerifyConfirmation(ctx context.Context, state []byte, responses [][]byte) error
}

// IssueRequest is what the certificate issuer needs for one certificate.
type IssueRequest struct {
	Serial    *big.Int // reserved in the store before signing
	CertType  store.CertType
	PublicKey crypto.PublicKey
	Applicant Applicant
	Now       time.Time
	// CurrentNotAfter is zero, or the notAfter of the person's current
	// certificate of the type when the CA's record puts it inside the
	// renewal window: the new certificate then runs to the 6th birthday
	// instead of the 5th (CPS §6.3.2.2 ①). Set by the service from the
	// store, never from the request.
	CurrentNotAfter time.Time
}

// Issuer builds and signs certificates (ca-server/issuer).
type Issuer interface {
	Issue(ctx context.Context, req IssueRequest) ([]byte, error)
	// CACertificate returns the DER of the CA certificate written to the
	// card with a certificate of type t.
	CACertificate(t store.CertType) []byte
}

// Applicant is a validated applicant.
type Applicant struct {
	PersonHash []byte // keyed hash of the resident-record code
	BirthDate  time.Time
	CardExpiry time.Time
	Data       wire.Applicant
}

// ApplicantChecker validates the applicant data of a request; errors are
// *wire.Error with CodeInvalidApplicant.
type ApplicantChecker interface {
	Check(a wire.Applicant, now time.Time) (Applicant, error)
}
