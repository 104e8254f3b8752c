package perso

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"madoguchi/cardio/apdu"
	"madoguchi/cardio/scp"
)

// WrappedKeySource is one private key that the host can wrap for a card session without
// revealing it: ca-server implements it over the HSM (S-DEK derived with
// CKM_AES_ECB_ENCRYPT_DATA, then RFC 5649 wrap of the key object), SoftwareKey in software
// for tests. TS Art. 5(iv), 6(iii): the key leaves the key generator only encrypted for the
// target card.
type WrappedKeySource interface {
	// Public returns the public half; the builder attests its SubjectPublicKeyInfo.
	Public() *rsa.PublicKey
	// WrapForSession returns the private key as PKCS#8 DER (optionally followed by up to 7
	// zero bytes), wrapped with RFC 5649 under the S-DEK of session p
	// (AES-ECB(K-DEK, host challenge ‖ card challenge)).
	WrapForSession(ctx context.Context, p scp.SessionParams) ([]byte, error)
}

// SoftwareKey is a WrappedKeySource over an in-memory key and a scp.SoftwareIssuer, for
// tests and the demo. It is not for production: the key exists outside an HSM.
type SoftwareKey struct {
	Issuer *scp.SoftwareIssuer
	Key    *rsa.PrivateKey
}

var _ WrappedKeySource = SoftwareKey{}

// String implements fmt.Stringer without revealing the key.
func (SoftwareKey) String() string { return "perso.SoftwareKey{redacted}" }

// GoString implements fmt.GoStringer without revealing the key.
func (SoftwareKey) GoString() string { return "perso.SoftwareKey{redacted}" }

// Public implements WrappedKeySource.
func (k SoftwareKey) Public() *rsa.PublicKey { return &k.Key.PublicKey }

// WrapForSession implements WrappedKeySource.
func (k SoftwareKey) WrapForSession(ctx context.Context, p scp.SessionParams) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, fmt.Errorf("perso: encode private key: %w", err)
	}
	defer clear(der)
	return k.Issuer.WrapForSession(p, der)
}

// Item is one change in an issuance script: ImportKey, WriteFile, ResetPIN or DestroyKey.
type Item interface {
	command(ctx context.Context, p scp.SessionParams, t *transcript) (apdu.Command, error)
}

// ImportKey imports an RSA-2048 private key into key EF FID (FIDUserAuthKey or
// FIDSignatureKey), replacing any key there.
type ImportKey struct {
	FID uint16
	Key WrappedKeySource
}

// WriteFile replaces the whole content of certificate EF FID (FIDUserAuthCert,
// FIDSignatureCert, FIDUserAuthCACert or FIDSignatureCACert) with Content (a DER
// certificate starting 30 82 LL LL).
type WriteFile struct {
	FID     uint16
	Content []byte
}

// ResetPIN returns PIN EF FID (FIDUserAuthPIN or FIDSignaturePIN) to "not set" with a full
// try counter: the CA-authorised unblock. The applicant then sets a new PIN locally
// (docs/CARD-PROTOCOL.md "PIN set").
type ResetPIN struct {
	FID uint16
}

// DestroyKey erases the private key in key EF FID; the JPKI AP then refuses to sign with it.
type DestroyKey struct {
	FID uint16
}

func (it ImportKey) command(ctx context.Context, p scp.SessionParams, t *transcript) (apdu.Command, error) {
	if !IsKeyFile(it.FID) {
		return apdu.Command{}, fmt.Errorf("perso: import key into ef %04X, which is not a key file", it.FID)
	}
	if it.Key == nil {
		return apdu.Command{}, fmt.Errorf("perso: import key into ef %04X without a key", it.FID)
	}
	pub := it.Key.Public()
	if pub == nil || pub.N == nil || pub.N.BitLen() != RSABits {
		return apdu.Command{}, fmt.Errorf("perso: import key into ef %04X: key must be rsa-%d", it.FID, RSABits)
	}
	spki, err := publicKeyContent(pub)
	if err != nil {
		return apdu.Command{}, err
	}
	blob, err := it.Key.WrapForSession(ctx, p)
	if err != nil {
		return apdu.Command{}, fmt.Errorf("perso: wrap key for ef %04X: %w", it.FID, err)
	}
	t.add(INSPutKey, it.FID, spki)
	return fidCommand(INSPutKey, it.FID, blob), nil
}

func (it WriteFile) command(_ context.Context, _ scp.SessionParams, t *transcript) (apdu.Command, error) {
	if !IsCertificateFile(it.FID) {
		return apdu.Command{}, fmt.Errorf("perso: write ef %04X, which is not a certificate file", it.FID)
	}
	if err := checkCertificateContent(it.Content); err != nil {
		return apdu.Command{}, fmt.Errorf("perso: write ef %04X: %w", it.FID, err)
	}
	t.add(INSWriteFile, it.FID, it.Content)
	return fidCommand(INSWriteFile, it.FID, bytes.Clone(it.Content)), nil
}

func (it ResetPIN) command(_ context.Context, _ scp.SessionParams, t *transcript) (apdu.Command, error) {
	if !IsPINFile(it.FID) {
		return apdu.Command{}, fmt.Errorf("perso: reset pin in ef %04X, which is not a pin file", it.FID)
	}
	t.add(INSResetPIN, it.FID, nil)
	return fidCommand(INSResetPIN, it.FID, nil), nil
}

func (it DestroyKey) command(_ context.Context, _ scp.SessionParams, t *transcript) (apdu.Command, error) {
	if !IsKeyFile(it.FID) {
		return apdu.Command{}, fmt.Errorf("perso: destroy key in ef %04X, which is not a key file", it.FID)
	}
	t.add(INSDeleteKey, it.FID, nil)
	return fidCommand(INSDeleteKey, it.FID, nil), nil
}

func fidCommand(ins byte, fid uint16, data []byte) apdu.Command {
	// Ne 256: every answer carries at least an R-MAC (8 bytes).
	return apdu.Command{CLA: CLAProprietary, INS: ins, P1: byte(fid >> 8), P2: byte(fid), Data: data, Ne: apdu.MaxShortNe}
}

// Step is one command of a script with what the verifier needs to check its answer.
type Step struct {
	INS     byte                 `json:"ins"` // scp.INSExternalAuth or one of the INS constants
	FID     uint16               `json:"fid"` // target EF; 0 for EXTERNAL AUTHENTICATE and FINALIZE
	Command scp.ProtectedCommand `json:"command"`
}

// Script is a protected issuance script for one card session: EXTERNAL AUTHENTICATE, the
// changes, FINALIZE. The terminal sends Steps[i].Command.APDU in order, stops at the first
// response whose status word is not 9000, and returns the responses to the CA.
// Attestation is the FINALIZE answer the CA expects.
//
// Storage: the APDUs contain the wrapped private key (under S-DEK, then C-DEC); the CA keeps
// the result of WithoutAPDUs, which is enough for VerifyResponses, and the terminal deletes
// the APDUs once relayed (TS Art. 6(iii)).
type Script struct {
	Session     scp.SessionParams `json:"session"`
	Steps       []Step            `json:"steps"`
	Attestation []byte            `json:"attestation"`
}

// APDUs returns the command APDUs in sending order.
func (s *Script) APDUs() [][]byte {
	out := make([][]byte, len(s.Steps))
	for i, st := range s.Steps {
		out[i] = st.Command.APDU
	}
	return out
}

// WithoutAPDUs returns a copy of s without the command bytes: what the CA stores between
// prepare and confirm.
func (s *Script) WithoutAPDUs() *Script {
	out := &Script{Session: s.Session, Attestation: bytes.Clone(s.Attestation), Steps: make([]Step, len(s.Steps))}
	for i, st := range s.Steps {
		st.Command.APDU = nil
		st.Command.MAC = bytes.Clone(st.Command.MAC)
		out.Steps[i] = st
	}
	return out
}

// BuildIssuanceScript builds the protected script that applies items to the card of sess, in
// the given order, then FINALIZE. sess must be fresh from scp.NewHostSession (this call
// builds its EXTERNAL AUTHENTICATE); it is not usable for another script afterwards. Items
// are checked first (EF kinds, certificate form, RSA-2048) and an error leaves nothing
// behind. ctx bounds the key wraps (HSM calls).
func BuildIssuanceScript(ctx context.Context, sess *scp.HostSession, items ...Item) (*Script, error) {
	if len(items) == 0 {
		return nil, errors.New("perso: empty issuance script")
	}
	if len(items) > MaxChanges {
		return nil, fmt.Errorf("perso: %d changes exceed %d per session", len(items), MaxChanges)
	}
	p := sess.Params()
	var t transcript
	cmds := make([]apdu.Command, 0, len(items)+1)
	for _, it := range items {
		if it == nil {
			return nil, errors.New("perso: nil item")
		}
		c, err := it.command(ctx, p, &t)
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, c)
	}
	cmds = append(cmds, fidCommand(INSFinalize, 0, nil))

	s := &Script{Session: p, Attestation: t.attestation(p).Encode()}
	ea, err := sess.ExternalAuthenticate()
	if err != nil {
		return nil, fmt.Errorf("perso: %w", err)
	}
	s.Steps = append(s.Steps, Step{INS: scp.INSExternalAuth, Command: ea})
	for _, c := range cmds {
		pc, err := sess.Protect(c)
		if err != nil {
			return nil, fmt.Errorf("perso: protect %02X: %w", c.INS, err)
		}
		s.Steps = append(s.Steps, Step{INS: c.INS, FID: uint16(c.P1)<<8 | uint16(c.P2), Command: pc})
	}
	return s, nil
}

// StepError says which step of a script failed verification. Err is scp.ErrBadMAC,
// scp.ErrSMFormat, a *apdu.StatusError (the card refused; nothing was committed unless the
// step is FINALIZE and Err is ErrAttestation) or ErrAttestation.
type StepError struct {
	Index int
	INS   byte
	FID   uint16
	Err   error
}

// Error implements error.
func (e *StepError) Error() string {
	return fmt.Sprintf("perso: step %d (ins %02X ef %04X): %v", e.Index, e.INS, e.FID, e.Err)
}

// Unwrap returns Err.
func (e *StepError) Unwrap() error { return e.Err }

// ErrResponseCount means the terminal returned a different number of responses than the
// script has steps (the script was not run to the end).
var ErrResponseCount = errors.New("perso: response count does not match the script")

// VerifyResponses checks the card's responses to script, one per step in order: EXTERNAL
// AUTHENTICATE answered 9000, every change answered 9000 under a valid R-MAC chained on its
// command, and FINALIZE answered exactly script.Attestation under a valid R-MAC. sess is the
// session the script was built on, or one rebuilt with scp.ResumeHostSession from
// script.Session. It returns the verified attestation; any error means "not delivered".
func VerifyResponses(sess *scp.HostSession, script *Script, responses [][]byte) (*Attestation, error) {
	if len(responses) != len(script.Steps) {
		return nil, fmt.Errorf("%w: %d responses for %d steps", ErrResponseCount, len(responses), len(script.Steps))
	}
	if !sameSession(sess.Params(), script.Session) {
		return nil, fmt.Errorf("%w: session parameters differ from the script's", scp.ErrSessionState)
	}
	if len(script.Steps) < 2 || script.Steps[0].INS != scp.INSExternalAuth || script.Steps[len(script.Steps)-1].INS != INSFinalize {
		return nil, errors.New("perso: script does not start with external authenticate and end with finalize")
	}
	var att *Attestation
	for i, st := range script.Steps {
		r, err := sess.VerifyResponse(st.Command, responses[i])
		if err == nil && r.SW != apdu.SWOK {
			err = &apdu.StatusError{SW: r.SW}
		}
		if err == nil {
			switch {
			case st.INS == INSFinalize:
				if !bytes.Equal(r.Data, script.Attestation) {
					err = ErrAttestation
					break
				}
				a, perr := ParseAttestation(r.Data)
				if perr != nil {
					err = perr
					break
				}
				att = &a
			case len(r.Data) != 0:
				err = fmt.Errorf("%w: unexpected response data", scp.ErrSMFormat)
			}
		}
		if err != nil {
			return nil, &StepError{Index: i, INS: st.INS, FID: st.FID, Err: err}
		}
	}
	return att, nil
}

func sameSession(a, b scp.SessionParams) bool {
	return bytes.Equal(a.Serial, b.Serial) && bytes.Equal(a.HostChallenge, b.HostChallenge) &&
		bytes.Equal(a.CardChallenge, b.CardChallenge) && a.Level == b.Level
}
