package scp

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"io"

	"madoguchi/cardio/apdu"
)

// Instruction bytes and fixed fields of the channel set-up commands (GP Card Spec §11.8,
// §11.9; docs/CARD-PROTOCOL.md).
const (
	CLAGlobalPlatform   byte = 0x80 // CLA of INITIALIZE UPDATE (no secure messaging)
	CLASecureMessaging  byte = 0x84 // CLA of every protected command of a session
	INSInitializeUpdate byte = 0x50
	INSExternalAuth     byte = 0x82
	// SCPIdentifier is the secure channel protocol identifier in the key information (SCP03).
	SCPIdentifier byte = 0x03
	// SCPParameter is the "i" parameter cards announce: S8 mode, random card challenge, R-MAC
	// and R-ENC supported (Amendment D §5.1, 0x60).
	SCPParameter byte = 0x60
	// InitUpdateResponseLen is the length of the INITIALIZE UPDATE response data:
	// serial(16) ‖ KVN(1) ‖ SCP id(1) ‖ i(1) ‖ card challenge(8) ‖ card cryptogram(8).
	// GP's diversification data field is 10 bytes; ours is the 16-byte card serial.
	InitUpdateResponseLen = SerialLen + 3 + ChallengeLen + CryptoLen
)

// SessionParams are the non-secret values that, with HostKeys, rebuild a session's keys.
// The CA stores them at prepare and rebuilds the session at confirm (a different request)
// to verify the card's responses. They are safe to store and log.
type SessionParams struct {
	Serial        []byte        `json:"serial"`         // 16-byte card serial
	HostChallenge []byte        `json:"host_challenge"` // 8 bytes, chosen by the CA
	CardChallenge []byte        `json:"card_challenge"` // 8 bytes, chosen by the card
	Level         SecurityLevel `json:"level"`          // security level of EXTERNAL AUTHENTICATE
}

func (p SessionParams) check() error {
	if len(p.Serial) != SerialLen {
		return fmt.Errorf("scp: card serial is %d bytes, want %d", len(p.Serial), SerialLen)
	}
	if len(p.HostChallenge) != ChallengeLen || len(p.CardChallenge) != ChallengeLen {
		return fmt.Errorf("scp: challenges are %d and %d bytes, want %d", len(p.HostChallenge), len(p.CardChallenge), ChallengeLen)
	}
	if !p.Level.valid() {
		return fmt.Errorf("%w: %02X", ErrSecurityLevel, byte(p.Level))
	}
	return nil
}

func (p SessionParams) context() []byte {
	return append(append(make([]byte, 0, 2*ChallengeLen), p.HostChallenge...), p.CardChallenge...)
}

// NewHostChallenge draws an 8-byte host challenge from rand (crypto/rand.Reader in
// production). TS Art. 6(ii), 7(ii): mutual authentication by exchanged random numbers; the
// CA uses each challenge for one session only.
func NewHostChallenge(rand io.Reader) ([]byte, error) {
	c := make([]byte, ChallengeLen)
	if _, err := io.ReadFull(rand, c); err != nil {
		return nil, fmt.Errorf("scp: host challenge: %w", err)
	}
	return c, nil
}

// InitializeUpdateCommand returns `80 50 00 00 08 <host challenge> 00`, which the terminal
// sends to the card (after selecting the management application) and whose full response it
// relays to the CA.
func InitializeUpdateCommand(hostChallenge []byte) ([]byte, error) {
	if len(hostChallenge) != ChallengeLen {
		return nil, fmt.Errorf("scp: host challenge is %d bytes, want %d", len(hostChallenge), ChallengeLen)
	}
	return apdu.Command{CLA: CLAGlobalPlatform, INS: INSInitializeUpdate, Data: hostChallenge, Ne: apdu.MaxShortNe}.Encode()
}

// InitUpdateResponse is the parsed data of the card's INITIALIZE UPDATE response.
type InitUpdateResponse struct {
	Serial         []byte // 16 bytes
	KeyVersion     byte
	SCPID          byte // 03
	Param          byte // i
	CardChallenge  []byte
	CardCryptogram []byte
}

// ParseInitUpdateResponse parses a full INITIALIZE UPDATE response APDU (data ‖ SW). A
// status word other than 9000 comes back as *apdu.StatusError.
func ParseInitUpdateResponse(response []byte) (InitUpdateResponse, error) {
	r, err := apdu.ParseResponse(response)
	if err != nil {
		return InitUpdateResponse{}, err
	}
	if err := r.Err(); err != nil {
		return InitUpdateResponse{}, err
	}
	d := r.Data
	if len(d) != InitUpdateResponseLen {
		return InitUpdateResponse{}, fmt.Errorf("%w: initialize update response of %d bytes, want %d", ErrSMFormat, len(d), InitUpdateResponseLen)
	}
	out := InitUpdateResponse{
		Serial:         d[:16],
		KeyVersion:     d[16],
		SCPID:          d[17],
		Param:          d[18],
		CardChallenge:  d[19:27],
		CardCryptogram: d[27:35],
	}
	if out.SCPID != SCPIdentifier {
		return InitUpdateResponse{}, fmt.Errorf("%w: scp identifier %02X, want %02X", ErrSMFormat, out.SCPID, SCPIdentifier)
	}
	if out.KeyVersion != KeyVersion {
		return InitUpdateResponse{}, fmt.Errorf("%w: %02X", ErrKeyVersion, out.KeyVersion)
	}
	return out, nil
}

// ProtectedCommand is one command of a session as the host built it: the wire APDU, the
// encryption counter it used and its full 16-byte C-MAC, which chains into the R-MAC of the
// card's answer. Counter 0 marks EXTERNAL AUTHENTICATE. Counter and MAC are not secret; the
// CA stores them to verify the responses at confirm without keeping the APDUs.
type ProtectedCommand struct {
	APDU    []byte `json:"apdu,omitempty"`
	Counter uint32 `json:"counter"`
	MAC     []byte `json:"mac"`
}

// HostSession is the host end of one secure channel session (the CA). Not safe for
// concurrent use: build a script from one goroutine. Call Close when done to clear the
// session keys.
type HostSession struct {
	params  SessionParams
	keys    sessionKeys
	chain   []byte
	counter uint32
	state   hostState
}

type hostState int

const (
	hostInitialized hostState = iota // card cryptogram checked, EXTERNAL AUTHENTICATE not built
	hostAuthenticated
	hostClosed
)

// NewHostSession starts the host end of a session: it parses the card's INITIALIZE UPDATE
// response (the full response APDU the terminal relayed), derives the session keys through
// keys (three CMAC calls under the card's static keys) and checks the card cryptogram.
// ErrCardCryptogram means the card does not hold the keys for the serial it claims
// (TS Art. 7(ii): the card authenticates itself before anything is written).
func NewHostSession(ctx context.Context, keys HostKeys, hostChallenge, initUpdateResponse []byte) (*HostSession, error) {
	iu, err := ParseInitUpdateResponse(initUpdateResponse)
	if err != nil {
		return nil, err
	}
	p := SessionParams{
		Serial:        bytes.Clone(iu.Serial),
		HostChallenge: bytes.Clone(hostChallenge),
		CardChallenge: bytes.Clone(iu.CardChallenge),
		Level:         LevelFull,
	}
	h, err := ResumeHostSession(ctx, keys, p)
	if err != nil {
		return nil, err
	}
	want := h.keys.cryptogram(DeriveCardCryptogram, p.context())
	if subtle.ConstantTimeCompare(want, iu.CardCryptogram) != 1 {
		h.Close()
		return nil, ErrCardCryptogram
	}
	return h, nil
}

// ResumeHostSession rebuilds the session keys of an earlier session from its parameters,
// e.g. at confirm time to verify the card's responses with VerifyResponse. The resumed
// session can verify responses; building commands on it again would give different
// protected commands only if the card ran a second EXTERNAL AUTHENTICATE, which it refuses.
func ResumeHostSession(ctx context.Context, keys HostKeys, p SessionParams) (*HostSession, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	c := p.context()
	senc, err := keys.CardCMAC(ctx, KeyENC, p.Serial, KDFInput(DeriveSENC, KeyLen*8, 1, c))
	if err != nil {
		return nil, fmt.Errorf("scp: derive s-enc: %w", err)
	}
	smac, err := keys.CardCMAC(ctx, KeyMAC, p.Serial, KDFInput(DeriveSMAC, KeyLen*8, 1, c))
	if err != nil {
		return nil, fmt.Errorf("scp: derive s-mac: %w", err)
	}
	srmac, err := keys.CardCMAC(ctx, KeyMAC, p.Serial, KDFInput(DeriveSRMAC, KeyLen*8, 1, c))
	if err != nil {
		return nil, fmt.Errorf("scp: derive s-rmac: %w", err)
	}
	sk, err := newSessionKeys(senc, smac, srmac)
	clear(senc)
	clear(smac)
	clear(srmac)
	if err != nil {
		return nil, err
	}
	return &HostSession{
		params: SessionParams{
			Serial:        bytes.Clone(p.Serial),
			HostChallenge: bytes.Clone(p.HostChallenge),
			CardChallenge: bytes.Clone(p.CardChallenge),
			Level:         p.Level,
		},
		keys:  sk,
		chain: make([]byte, 16),
	}, nil
}

// Params returns a copy of the session's non-secret parameters.
func (h *HostSession) Params() SessionParams {
	return SessionParams{
		Serial:        bytes.Clone(h.params.Serial),
		HostChallenge: bytes.Clone(h.params.HostChallenge),
		CardChallenge: bytes.Clone(h.params.CardChallenge),
		Level:         h.params.Level,
	}
}

// ExternalAuthenticate builds `84 82 <level> 00 10 <host cryptogram> <C-MAC>`, the first
// command of every script. It may be called once per session.
func (h *HostSession) ExternalAuthenticate() (ProtectedCommand, error) {
	if h.state != hostInitialized {
		return ProtectedCommand{}, fmt.Errorf("%w: external authenticate already built or session closed", ErrSessionState)
	}
	crypto := h.keys.cryptogram(DeriveHostCryptogram, h.params.context())
	cmd := apdu.Command{CLA: CLASecureMessaging, INS: INSExternalAuth, P1: byte(h.params.Level), Data: make([]byte, CryptoLen+MACLen)}
	copy(cmd.Data, crypto)
	mac := h.keys.commandMAC(h.chain, cmd.HeaderAndLc(), crypto)
	copy(cmd.Data[CryptoLen:], mac[:MACLen])
	wire, err := cmd.Encode()
	if err != nil {
		return ProtectedCommand{}, err
	}
	h.chain = mac
	h.counter = 0
	h.state = hostAuthenticated
	return ProtectedCommand{APDU: wire, Counter: 0, MAC: bytes.Clone(mac)}, nil
}

// Protect applies the session's command protection (C-DEC, C-MAC) to cmd, which must have a
// CLA without the secure messaging bit. Commands must be sent to the card in the order they
// were protected: each MAC chains on the previous one (replay and reordering are refused).
func (h *HostSession) Protect(cmd apdu.Command) (ProtectedCommand, error) {
	if h.state != hostAuthenticated {
		return ProtectedCommand{}, fmt.Errorf("%w: protect before external authenticate", ErrSessionState)
	}
	counter := h.counter + 1
	out, mac, err := h.keys.protectCommand(cmd, h.params.Level, h.chain, counter)
	if err != nil {
		return ProtectedCommand{}, err
	}
	wire, err := out.Encode()
	if err != nil {
		return ProtectedCommand{}, err
	}
	h.counter = counter
	h.chain = mac
	return ProtectedCommand{APDU: wire, Counter: counter, MAC: bytes.Clone(mac)}, nil
}

// VerifyResponse checks the card's full response APDU to pc (R-MAC chained on pc.MAC),
// removes R-ENC and returns the plain response. For EXTERNAL AUTHENTICATE (Counter 0) the
// response must be exactly 9000. Errors: ErrBadMAC (forged, replayed, for another command
// or session), ErrSMFormat, *apdu.StatusError for an error status word (which carries no
// MAC). VerifyResponse does not change the session, so responses may be verified in any
// order and long after the script was built.
func (h *HostSession) VerifyResponse(pc ProtectedCommand, response []byte) (apdu.Response, error) {
	if h.state == hostClosed {
		return apdu.Response{}, fmt.Errorf("%w: session closed", ErrSessionState)
	}
	r, err := apdu.ParseResponse(response)
	if err != nil {
		return apdu.Response{}, err
	}
	if pc.Counter == 0 {
		if err := r.Err(); err != nil {
			return r, err
		}
		if len(r.Data) != 0 {
			return apdu.Response{}, fmt.Errorf("%w: external authenticate answered with data", ErrSMFormat)
		}
		return r, nil
	}
	if len(pc.MAC) != 16 {
		return apdu.Response{}, fmt.Errorf("%w: chaining value of %d bytes", ErrSMFormat, len(pc.MAC))
	}
	return h.keys.unprotectResponse(r, h.params.Level, pc.MAC, pc.Counter)
}

// Close ends the session; later calls fail with ErrSessionState. The expanded AES key
// schedules are dropped for the garbage collector (Go offers no way to wipe them).
func (h *HostSession) Close() {
	h.state = hostClosed
	h.keys = sessionKeys{}
}
