package hsmissuance

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"madoguchi/ca-server/issuance"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
)

// Errors of the card channel.
var (
	// ErrCardSerial: the serial the terminal named is not the one the card
	// announced in its INITIALIZE UPDATE answer.
	ErrCardSerial = errors.New("hsmissuance: card serial does not match the card's answer")
	// ErrUnknownCACertificate: BuildScript was given a CA certificate that
	// is neither the signature CA's nor the user-authentication CA's, so the
	// target files on the card are unknown.
	ErrUnknownCACertificate = errors.New("hsmissuance: ca certificate is not one of this ca's")
	// ErrSessionState: a stored channel state that cannot be read.
	ErrSessionState = errors.New("hsmissuance: stored card session state unreadable")
)

// CardFiles are the card's EFs for one certificate type: the user's private
// key, the user's certificate and the issuing CA's certificate
// (docs/CARD-PROTOCOL.md §1).
type CardFiles struct {
	Key, Certificate, CACertificate uint16
}

// Card files of the two certificate types.
var (
	SignatureFiles = CardFiles{Key: perso.FIDSignatureKey, Certificate: perso.FIDSignatureCert, CACertificate: perso.FIDSignatureCACert}
	UserAuthFiles  = CardFiles{Key: perso.FIDUserAuthKey, Certificate: perso.FIDUserAuthCert, CACertificate: perso.FIDUserAuthCACert}
)

// CardChannel is the host end of the card secure channel over the card keys
// in the HSM (issuance.CardChannel). Which files a script writes follows from
// the CA certificate it writes: SignatureCA's → SignatureFiles, AuthCA's →
// UserAuthFiles.
type CardChannel struct {
	Keys    scp.HostKeys // cardkeys.Issuer in production
	Wrapper CardWrapper  // cardkeys.Issuer in production
	// SignatureCA and AuthCA are the DER CA certificates written to cards.
	SignatureCA, AuthCA []byte
}

var _ issuance.CardChannel = (*CardChannel)(nil)

// Authenticate checks the card cryptogram in the INITIALIZE UPDATE answer
// (TS Arts. 6(ii), 7(ii)) and that the card is the one the terminal named.
func (c *CardChannel) Authenticate(ctx context.Context, a issuance.CardAuth) (issuance.CardSession, error) {
	sess, err := scp.NewHostSession(ctx, c.Keys, a.HostChallenge, a.InitUpdateResponse)
	if err != nil {
		return nil, fmt.Errorf("hsmissuance: %w", err)
	}
	if got := hex.EncodeToString(sess.Params().Serial); !strings.EqualFold(got, a.CardSerial) {
		sess.Close()
		return nil, fmt.Errorf("%w: terminal named %q", ErrCardSerial, a.CardSerial)
	}
	return &cardSession{ch: c, sess: sess}, nil
}

// VerifyConfirmation rebuilds the session from the stored state and checks
// every R-MAC and the card's attestation of what it wrote (DOMAIN §4.7: only
// then is the certificate delivered).
func (c *CardChannel) VerifyConfirmation(ctx context.Context, state []byte, responses [][]byte) error {
	var script perso.Script
	if err := json.Unmarshal(state, &script); err != nil || len(script.Steps) == 0 {
		return fmt.Errorf("%w: %v", ErrSessionState, err)
	}
	sess, err := scp.ResumeHostSession(ctx, c.Keys, script.Session)
	if err != nil {
		return fmt.Errorf("hsmissuance: %w", err)
	}
	defer sess.Close()
	if _, err := perso.VerifyResponses(sess, &script, responses); err != nil {
		return fmt.Errorf("hsmissuance: %w", err)
	}
	return nil
}

func (c *CardChannel) files(caCertDER []byte) (CardFiles, error) {
	switch {
	case len(caCertDER) > 0 && bytes.Equal(caCertDER, c.SignatureCA):
		return SignatureFiles, nil
	case len(caCertDER) > 0 && bytes.Equal(caCertDER, c.AuthCA):
		return UserAuthFiles, nil
	}
	return CardFiles{}, ErrUnknownCACertificate
}

// cardSession is one authenticated session; it builds one script.
type cardSession struct {
	ch    *CardChannel
	sess  *scp.HostSession
	state []byte
}

// BuildScript wraps key for this card inside the HSM (destroying the HSM
// copy) and builds EXTERNAL AUTHENTICATE, PUT KEY, WRITE FILE (certificate),
// WRITE FILE (CA certificate), FINALIZE.
func (s *cardSession) BuildScript(ctx context.Context, key issuance.UserKey, certDER, caCertDER []byte) ([][]byte, error) {
	defer s.sess.Close()
	uk, ok := key.(*UserKey)
	if !ok {
		return nil, ErrForeignKey
	}
	f, err := s.ch.files(caCertDER)
	if err != nil {
		return nil, err
	}
	script, err := perso.BuildIssuanceScript(ctx, s.sess,
		perso.ImportKey{FID: f.Key, Key: CardKeySource{Key: uk, Wrapper: s.ch.Wrapper}},
		perso.WriteFile{FID: f.Certificate, Content: certDER},
		perso.WriteFile{FID: f.CACertificate, Content: caCertDER},
	)
	if err != nil {
		return nil, fmt.Errorf("hsmissuance: %w", err)
	}
	// Stored between prepare and confirm: no APDUs (they carry the wrapped
	// key), only what VerifyResponses needs.
	s.state, err = json.Marshal(script.WithoutAPDUs())
	if err != nil {
		return nil, fmt.Errorf("hsmissuance: encode session state: %w", err)
	}
	return script.APDUs(), nil
}

// State implements issuance.CardSession.
func (s *cardSession) State() []byte { return s.state }
