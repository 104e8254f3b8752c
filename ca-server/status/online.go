package status

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"madoguchi/ca-server/revocation"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// HolderTerminal is the terminal name of online holder requests in the store and the audit.
const HolderTerminal = "holder"

// requestLog is the store's record of status requests (store.SQLite, store.Postgres).
type requestLog interface {
	StatusRequests(ctx context.Context, serial string) ([]store.StatusRequest, error)
}

// OnlineRevocation is an accepted online revocation: the acknowledgement and what the caller
// audits about it.
type OnlineRevocation struct {
	Ack           wire.RevocationAck
	Serial        string // the revoked certificate
	RequestID     string
	PayloadSHA256 string // hex: what the holder signed
}

// RevokeOnline revokes a signature certificate on its holder's online request, signed with
// that certificate's key (CPS §4.9.3.1(1): "stop-using", reason 5 cessationOfOperation).
// Checks, in this order, each refusal changing nothing:
//
//   - the payload parses, is of HolderRevocationType and kind stop-using, with a valid
//     serial and request id (invalid_request);
//   - the CA issued and delivered a certificate with that serial, and the signature verifies
//     with its public key (holder_signature_invalid; the two are one answer so the public
//     listener reveals no serial);
//   - the certificate chains to this CA's certificate of its type (holder_signature_invalid);
//   - it is a signature certificate (online_revocation_signature_only: a user-authentication
//     certificate is revoked at the counter) whose key usage allows signing;
//   - signed_at is within wire.HolderRequestWindow of the CA's clock (request_stale);
//   - the request id was never used (request_replayed);
//   - the certificate is delivered or held, not revoked or expired (already_revoked,
//     certificate_expired).
func (s *Service) RevokeOnline(ctx context.Context, req wire.HolderRevocation) (OnlineRevocation, error) {
	var p wire.HolderRevocationPayload
	if len(req.Payload) == 0 || len(req.Payload) > wire.MaxHolderPayload {
		return OnlineRevocation{}, wire.Errorf(wire.CodeInvalidRequest, "payload must be 1 to %d bytes", wire.MaxHolderPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(req.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		return OnlineRevocation{}, wire.Errorf(wire.CodeInvalidRequest, "payload is not one holder revocation object")
	}
	if p.Type != wire.HolderRevocationType || p.Kind != wire.HolderRevocationKind {
		return OnlineRevocation{}, wire.Errorf(wire.CodeInvalidRequest, "payload type must be %q and kind %q (CPS §4.9.3.1: only stop-using online)",
			wire.HolderRevocationType, wire.HolderRevocationKind)
	}
	if !validRequestID(p.RequestID) || len(p.RequestID) < 16 {
		return OnlineRevocation{}, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 16 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	serial, ok := store.NormalizeSerial(p.Serial)
	if !ok || p.SignedAt.IsZero() || len(req.Signature) == 0 || len(req.Signature) > 1024 {
		return OnlineRevocation{}, wire.Errorf(wire.CodeInvalidRequest, "payload needs a hexadecimal serial and signed_at, and the request a signature")
	}
	bad := wire.Errorf(wire.CodeHolderSignatureInvalid, "the signature does not verify with a certificate this CA issued")
	cert, err := s.cfg.Store.CertificateBySerial(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return OnlineRevocation{}, bad
	}
	if err != nil {
		return OnlineRevocation{}, storeError(err)
	}
	if len(cert.DER) == 0 {
		return OnlineRevocation{}, bad // prepared, never delivered: no certificate to sign with
	}
	x, err := x509.ParseCertificate(cert.DER)
	if err != nil {
		return OnlineRevocation{}, bad
	}
	pub, ok := x.PublicKey.(*rsa.PublicKey)
	digest := sha256.Sum256(req.Payload)
	if !ok || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], req.Signature) != nil {
		return OnlineRevocation{}, bad
	}
	if !s.issuedHere(cert.CertType, x) {
		return OnlineRevocation{}, bad
	}
	if cert.CertType != store.CertSign {
		return OnlineRevocation{}, wire.Errorf(wire.CodeOnlineSignatureOnly,
			"certificate %s is a user-authentication certificate: only the signature certificate is revoked online (CPS §4.9.3.1); the holder asks at the counter", serial)
	}
	if x.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return OnlineRevocation{}, bad
	}
	now := s.cfg.Clock()
	if d := now.Sub(p.SignedAt); d > wire.HolderRequestWindow || d < -wire.HolderRequestWindow {
		return OnlineRevocation{}, wire.Errorf(wire.CodeRequestStale, "signed_at %s is more than %v from the CA's clock; sign a new request",
			p.SignedAt.UTC().Format("2006-01-02T15:04:05Z"), wire.HolderRequestWindow)
	}
	used, err := s.requestUsed(ctx, serial, p.RequestID)
	if err != nil {
		return OnlineRevocation{}, err
	}
	if used {
		return OnlineRevocation{}, wire.Errorf(wire.CodeRequestReplayed, "request %s was already received; a signed request is used once", p.RequestID)
	}
	rule, err := s.cfg.Rules.Request(wire.HolderRevocationKind, revocation.ChannelOnlineSigned)
	if err != nil {
		return OnlineRevocation{}, rulesError(err)
	}
	if _, err := s.cfg.Rules.Transition(certStatus(cert), revocation.Revoke, revocation.ChannelOnlineSigned, now, x.NotAfter); err != nil {
		return OnlineRevocation{}, rulesError(err)
	}
	if !now.Before(x.NotAfter) {
		return OnlineRevocation{}, wire.Errorf(wire.CodeCertificateExpired, "certificate %s expired at %s", serial, x.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	sum := hex.EncodeToString(digest[:])
	done, err := s.cfg.Store.RevokeCertificate(ctx, store.StatusRequest{Serial: serial, Kind: rule.Kind, Reason: int(rule.Reason),
		Channel: string(revocation.ChannelOnlineSigned), Terminal: HolderTerminal, Operator: "holder of " + serial, RequestID: p.RequestID,
		Evidence: "online request signed with the certificate's key; payload sha256 " + sum, At: now})
	if err != nil {
		return OnlineRevocation{}, storeError(err)
	}
	s.changed(ctx, done)
	return OnlineRevocation{Ack: s.ack(done, rule), Serial: serial, RequestID: p.RequestID, PayloadSHA256: sum}, nil
}

// issuedHere reports whether x was signed by one of this service's CA key generations of type t.
func (s *Service) issuedHere(t store.CertType, x *x509.Certificate) bool {
	for _, ca := range s.cfg.CAs {
		if ca.CertType != t {
			continue
		}
		for _, g := range ca.Generations() {
			if g.Certificate != nil && x.CheckSignatureFrom(g.Certificate) == nil {
				return true
			}
		}
	}
	return false
}

// requestUsed reports whether a holder request with id was already recorded for serial.
func (s *Service) requestUsed(ctx context.Context, serial, id string) (bool, error) {
	rl, ok := s.cfg.Store.(requestLog)
	if !ok {
		return false, wire.Errorf(wire.CodeUnavailable, "the store keeps no request log; online revocation is not available")
	}
	reqs, err := rl.StatusRequests(ctx, serial)
	if err != nil {
		return false, storeError(fmt.Errorf("status: request log: %w", err))
	}
	for _, r := range reqs {
		if r.Terminal == HolderTerminal && r.RequestID == id {
			return true, nil
		}
	}
	return false, nil
}
