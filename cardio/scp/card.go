package scp

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"

	"madoguchi/cardio/apdu"
)

// CardSession is the card end of the secure channel, used by the management applet of the
// virtual card (cardio/perso.Applet). It answers INITIALIZE UPDATE, checks EXTERNAL
// AUTHENTICATE, verifies and decrypts protected commands and protects responses. Any failure
// ends the session: the next protected command is refused with ErrNoSession until a new
// INITIALIZE UPDATE and EXTERNAL AUTHENTICATE succeed.
//
// Not safe for concurrent use: a card processes one APDU at a time.
type CardSession struct {
	serial []byte
	static CardKeys
	rand   io.Reader

	state   cardState
	params  SessionParams
	keys    sessionKeys
	chain   []byte
	counter uint32
}

type cardState int

const (
	cardIdle          cardState = iota // no session
	cardInitialized                    // INITIALIZE UPDATE answered, waiting for EXTERNAL AUTHENTICATE
	cardAuthenticated                  // protected commands accepted
)

// NewCardSession returns an idle card end for the card with serial (16 bytes) and static
// keys. rand supplies card challenges (crypto/rand.Reader, or a seeded reader in tests).
func NewCardSession(serial []byte, keys CardKeys, rand io.Reader) (*CardSession, error) {
	if len(serial) != SerialLen {
		return nil, fmt.Errorf("scp: card serial is %d bytes, want %d", len(serial), SerialLen)
	}
	if err := keys.Valid(); err != nil {
		return nil, err
	}
	if rand == nil {
		return nil, fmt.Errorf("scp: card session needs a random source")
	}
	return &CardSession{
		serial: bytes.Clone(serial),
		static: CardKeys{ENC: bytes.Clone(keys.ENC), MAC: bytes.Clone(keys.MAC), DEK: bytes.Clone(keys.DEK)},
		rand:   rand,
	}, nil
}

// InitializeUpdate answers `80 50 P1 00 08 <host challenge> [Le]`: it ends any current
// session, draws a fresh card challenge, derives the session keys and returns serial ‖ key
// information ‖ card challenge ‖ card cryptogram (InitUpdateResponseLen bytes). P1 must be
// 00 or KeyVersion (else ErrKeyVersion).
func (c *CardSession) InitializeUpdate(cmd apdu.Command) ([]byte, error) {
	c.Close()
	if cmd.CLA != CLAGlobalPlatform || cmd.INS != INSInitializeUpdate {
		return nil, fmt.Errorf("%w: not initialize update", ErrSMFormat)
	}
	if cmd.P1 != 0 && cmd.P1 != KeyVersion {
		return nil, fmt.Errorf("%w: %02X", ErrKeyVersion, cmd.P1)
	}
	if cmd.P2 != 0 {
		return nil, fmt.Errorf("%w: initialize update p2 %02X", ErrSMFormat, cmd.P2)
	}
	if len(cmd.Data) != ChallengeLen {
		return nil, fmt.Errorf("%w: host challenge of %d bytes", ErrSMFormat, len(cmd.Data))
	}
	cardChallenge := make([]byte, ChallengeLen)
	if _, err := io.ReadFull(c.rand, cardChallenge); err != nil {
		return nil, fmt.Errorf("scp: card challenge: %w", err)
	}
	p := SessionParams{Serial: c.serial, HostChallenge: bytes.Clone(cmd.Data), CardChallenge: cardChallenge}
	ctx := p.context()
	senc, err := KDF(c.static.ENC, DeriveSENC, KeyLen*8, ctx)
	if err != nil {
		return nil, err
	}
	smac, _ := KDF(c.static.MAC, DeriveSMAC, KeyLen*8, ctx)
	srmac, _ := KDF(c.static.MAC, DeriveSRMAC, KeyLen*8, ctx)
	sk, err := newSessionKeys(senc, smac, srmac)
	clear(senc)
	clear(smac)
	clear(srmac)
	if err != nil {
		return nil, err
	}
	c.params = p
	c.keys = sk
	c.chain = make([]byte, 16)
	c.counter = 0
	c.state = cardInitialized

	out := make([]byte, 0, InitUpdateResponseLen)
	out = append(out, c.serial...)
	out = append(out, KeyVersion, SCPIdentifier, SCPParameter)
	out = append(out, cardChallenge...)
	out = append(out, sk.cryptogram(DeriveCardCryptogram, ctx)...)
	return out, nil
}

// ExternalAuthenticate checks `84 82 <level> 00 10 <host cryptogram> <C-MAC>`. On success
// the session is authenticated at the requested level (LevelFull or LevelMinimum); on any
// failure the session ends. TS Art. 6(ii), 7(ii): nothing is written to a card before the
// host has proved it holds the card's keys.
func (c *CardSession) ExternalAuthenticate(cmd apdu.Command) error {
	if c.state != cardInitialized {
		c.Close()
		return ErrNoSession
	}
	err := c.externalAuthenticate(cmd)
	if err != nil {
		c.Close()
	}
	return err
}

func (c *CardSession) externalAuthenticate(cmd apdu.Command) error {
	if cmd.CLA != CLASecureMessaging || cmd.INS != INSExternalAuth || cmd.P2 != 0 {
		return fmt.Errorf("%w: not external authenticate", ErrSMFormat)
	}
	if len(cmd.Data) != CryptoLen+MACLen {
		return fmt.Errorf("%w: external authenticate data of %d bytes", ErrSMFormat, len(cmd.Data))
	}
	level := SecurityLevel(cmd.P1)
	mac := c.keys.commandMAC(c.chain, cmd.HeaderAndLc(), cmd.Data[:CryptoLen])
	if subtle.ConstantTimeCompare(mac[:MACLen], cmd.Data[CryptoLen:]) != 1 {
		return ErrBadMAC
	}
	want := c.keys.cryptogram(DeriveHostCryptogram, c.params.context())
	if subtle.ConstantTimeCompare(want, cmd.Data[:CryptoLen]) != 1 {
		return ErrHostCryptogram
	}
	if !level.valid() {
		return fmt.Errorf("%w: %02X", ErrSecurityLevel, byte(level))
	}
	c.params.Level = level
	c.chain = mac
	c.counter = 0
	c.state = cardAuthenticated
	return nil
}

// UnwrapCommand verifies the C-MAC of a protected command against the chaining value,
// decrypts its data and returns the plain command (CLA without the secure messaging bit).
// A replayed, reordered, truncated or foreign command fails the MAC: the session ends and
// the error is returned (ErrBadMAC, ErrNotProtected, ErrSMFormat, or ErrNoSession when no
// session is authenticated).
func (c *CardSession) UnwrapCommand(cmd apdu.Command) (apdu.Command, error) {
	if c.state != cardAuthenticated {
		c.Close()
		return apdu.Command{}, ErrNoSession
	}
	counter := c.counter + 1
	plain, mac, err := c.keys.unprotectCommand(cmd, c.params.Level, c.chain, counter)
	if err != nil {
		c.Close()
		return apdu.Command{}, err
	}
	c.counter = counter
	c.chain = mac
	return plain, nil
}

// WrapResponse protects the response to the last unwrapped command (R-ENC, R-MAC). Error
// status words go out bare, as SCP03 requires. With no authenticated session r is returned
// unchanged.
func (c *CardSession) WrapResponse(r apdu.Response) apdu.Response {
	if c.state != cardAuthenticated {
		return apdu.Response{Data: r.Data, SW: r.SW}
	}
	return c.keys.protectResponse(r, c.params.Level, c.chain, c.counter)
}

// UnwrapKey unwraps an RFC 5649 blob under this session's S-DEK (AES-ECB(K-DEK, host
// challenge ‖ card challenge)) and returns the plaintext, zero padding included when the
// host padded before wrapping. Requires an authenticated session. TS Art. 5(iv), 6(iii):
// the private key arrives encrypted for this card and this session only, and is decrypted
// inside the card. A failure ends the session.
func (c *CardSession) UnwrapKey(wrapped []byte) ([]byte, error) {
	if c.state != cardAuthenticated {
		c.Close()
		return nil, ErrNoSession
	}
	sdek, err := SessionDEK(c.static.DEK, c.params.HostChallenge, c.params.CardChallenge)
	if err != nil {
		c.Close()
		return nil, err
	}
	defer clear(sdek)
	plain, err := UnwrapKWP(sdek, wrapped)
	if err != nil {
		c.Close()
		return nil, err
	}
	return plain, nil
}

// Authenticated reports whether an authenticated session is open.
func (c *CardSession) Authenticated() bool { return c.state == cardAuthenticated }

// Params returns the parameters of the current session (zero when idle).
func (c *CardSession) Params() SessionParams {
	if c.state == cardIdle {
		return SessionParams{}
	}
	return SessionParams{
		Serial:        bytes.Clone(c.params.Serial),
		HostChallenge: bytes.Clone(c.params.HostChallenge),
		CardChallenge: bytes.Clone(c.params.CardChallenge),
		Level:         c.params.Level,
	}
}

// Close ends the current session, if any.
func (c *CardSession) Close() {
	c.state = cardIdle
	c.params = SessionParams{}
	c.keys = sessionKeys{}
	c.chain = nil
	c.counter = 0
}
