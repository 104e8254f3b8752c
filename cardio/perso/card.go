package perso

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"madoguchi/cardio/apdu"
	"madoguchi/cardio/scp"
)

// CardStore is what the management applet needs from a card (cardio/vcard implements it).
type CardStore interface {
	// Serial returns the card's 16-byte serial (the key diversification data).
	Serial() []byte
	// StaticKeys returns the card's static keys K-ENC, K-MAC, K-DEK.
	StaticKeys() scp.CardKeys
	// Commit applies changes in order, atomically: when it returns an error the card's
	// content must be exactly as before (a virtual card writes its state file to a temporary
	// name and renames it). A dropped link must never leave a half-written card that looks
	// valid (DOMAIN §4.7).
	Commit(changes []Change) error
}

// ChangeKind is the kind of a staged change.
type ChangeKind int

// Kinds of changes committed at FINALIZE.
const (
	ChangeWriteFile  ChangeKind = 1 // replace the whole content of a certificate EF with Data
	ChangePutKey     ChangeKind = 2 // store Key in a key EF (replacing any key there)
	ChangeResetPIN   ChangeKind = 3 // set a PIN EF to "not set" with a full try counter
	ChangeDestroyKey ChangeKind = 4 // erase the key in a key EF
)

// String returns the kind's name.
func (k ChangeKind) String() string {
	switch k {
	case ChangeWriteFile:
		return "write-file"
	case ChangePutKey:
		return "put-key"
	case ChangeResetPIN:
		return "reset-pin"
	case ChangeDestroyKey:
		return "destroy-key"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one staged change. It can hold a private key: its String and GoString redact it,
// never format it otherwise.
type Change struct {
	Kind ChangeKind
	FID  uint16
	Data []byte          // ChangeWriteFile: the new EF content
	Key  *rsa.PrivateKey // ChangePutKey: the decrypted key (validated, RSA-2048)
}

// String implements fmt.Stringer without the key.
func (c Change) String() string {
	return fmt.Sprintf("perso.Change{%s ef %04X, %d data bytes}", c.Kind, c.FID, len(c.Data))
}

// GoString implements fmt.GoStringer without the key.
func (c Change) GoString() string { return c.String() }

// Applet is the card-side management application. The virtual card routes to Process every
// APDU that arrives while the management application is selected (including the SELECT that
// selected it) and calls Reset on power off, card reset and selection of another
// application. Not safe for concurrent use: a card processes one APDU at a time.
//
// Rules: every change command must arrive inside an authenticated secure channel session
// (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE); changes are staged and committed together by
// FINALIZE; any refused command (bad MAC, replay, reordering, wrong session, malformed or
// unknown command, bad key blob) ends the session and discards everything staged, so the card
// content changes only by a complete, verified script.
type Applet struct {
	store   CardStore
	session *scp.CardSession
	staged  []Change
	t       transcript
}

// NewApplet returns the management applet of the card behind store; rand supplies card
// challenges.
func NewApplet(store CardStore, rand io.Reader) (*Applet, error) {
	sess, err := scp.NewCardSession(store.Serial(), store.StaticKeys(), rand)
	if err != nil {
		return nil, fmt.Errorf("perso: %w", err)
	}
	return &Applet{store: store, session: sess}, nil
}

// Reset ends the session and discards staged changes (power off, reset, deselect).
func (a *Applet) Reset() {
	a.session.Close()
	a.discard()
}

// Staged returns the number of changes staged in the current session (for tests and
// diagnostics).
func (a *Applet) Staged() int { return len(a.staged) }

func (a *Applet) discard() {
	a.staged = nil
	a.t = transcript{}
}

// abort ends the session, discards staged changes and returns the bare status word.
func (a *Applet) abort(sw uint16) []byte {
	a.Reset()
	return apdu.Status(sw).Encode()
}

// Process handles one command APDU and returns the response APDU.
func (a *Applet) Process(command []byte) []byte {
	cmd, err := apdu.ParseCommand(command)
	if err != nil {
		return a.abort(apdu.SWWrongLength)
	}
	switch {
	case cmd.CLA == 0x00 && cmd.INS == 0xA4 && cmd.P1 == 0x04:
		if !bytes.Equal(cmd.Data, AID) {
			return a.abort(apdu.SWFileNotFound)
		}
		a.Reset()
		return apdu.Status(apdu.SWOK).Encode()
	case cmd.CLA == scp.CLAGlobalPlatform && cmd.INS == scp.INSInitializeUpdate:
		a.discard()
		data, err := a.session.InitializeUpdate(cmd)
		if err != nil {
			return a.abort(scp.StatusFor(err))
		}
		return apdu.Response{Data: data, SW: apdu.SWOK}.Encode()
	case cmd.CLA == scp.CLASecureMessaging && cmd.INS == scp.INSExternalAuth:
		a.discard()
		if err := a.session.ExternalAuthenticate(cmd); err != nil {
			return a.abort(scp.StatusFor(err))
		}
		return apdu.Status(apdu.SWOK).Encode()
	case cmd.CLA == scp.CLASecureMessaging:
		plain, err := a.session.UnwrapCommand(cmd)
		if err != nil {
			return a.abort(scp.StatusFor(err))
		}
		resp, sw := a.execute(plain)
		if sw != apdu.SWOK {
			return a.abort(sw)
		}
		out := a.session.WrapResponse(apdu.Response{Data: resp, SW: sw}).Encode()
		if plain.INS == INSFinalize {
			a.Reset()
		}
		return out
	case cmd.CLA == CLAProprietary:
		// A change command without secure messaging: TS Art. 7(ii), only the authenticated
		// issuer may write.
		return a.abort(apdu.SWSecurityNotSatisfied)
	case cmd.CLA&0xF0 != 0x00 && cmd.CLA&0xF0 != 0x80:
		return a.abort(apdu.SWCLANotSupported)
	}
	return a.abort(apdu.SWINSNotSupported)
}

// execute runs one verified, decrypted command and returns its response data and status.
func (a *Applet) execute(c apdu.Command) ([]byte, uint16) {
	fid := uint16(c.P1)<<8 | uint16(c.P2)
	if c.CLA != CLAProprietary {
		return nil, apdu.SWCLANotSupported
	}
	if c.INS != INSFinalize && len(a.staged) >= MaxChanges {
		return nil, apdu.SWNotEnoughMemory
	}
	switch c.INS {
	case INSPutKey:
		if !IsKeyFile(fid) {
			return nil, apdu.SWIncorrectP1P2
		}
		key, err := a.decryptKey(c.Data)
		if err != nil {
			if errors.Is(err, scp.ErrUnwrap) || errors.Is(err, scp.ErrNoSession) {
				return nil, scp.StatusFor(err)
			}
			return nil, apdu.SWWrongData
		}
		spki, err := publicKeyContent(&key.PublicKey)
		if err != nil {
			return nil, apdu.SWWrongData
		}
		a.staged = append(a.staged, Change{Kind: ChangePutKey, FID: fid, Key: key})
		a.t.add(INSPutKey, fid, spki)
		return nil, apdu.SWOK
	case INSWriteFile:
		if !IsCertificateFile(fid) {
			return nil, apdu.SWIncorrectP1P2
		}
		if err := checkCertificateContent(c.Data); err != nil {
			return nil, apdu.SWWrongData
		}
		a.staged = append(a.staged, Change{Kind: ChangeWriteFile, FID: fid, Data: bytes.Clone(c.Data)})
		a.t.add(INSWriteFile, fid, c.Data)
		return nil, apdu.SWOK
	case INSResetPIN, INSDeleteKey:
		if len(c.Data) != 0 {
			return nil, apdu.SWWrongLength
		}
		kind := ChangeResetPIN
		ok := IsPINFile(fid)
		if c.INS == INSDeleteKey {
			kind, ok = ChangeDestroyKey, IsKeyFile(fid)
		}
		if !ok {
			return nil, apdu.SWIncorrectP1P2
		}
		a.staged = append(a.staged, Change{Kind: kind, FID: fid})
		a.t.add(c.INS, fid, nil)
		return nil, apdu.SWOK
	case INSFinalize:
		if fid != 0 || len(c.Data) != 0 {
			return nil, apdu.SWIncorrectP1P2
		}
		if len(a.staged) == 0 {
			return nil, apdu.SWConditionsNotSatisfied
		}
		att := a.t.attestation(a.session.Params()).Encode()
		if err := a.store.Commit(a.staged); err != nil {
			return nil, apdu.SWMemoryFailure
		}
		a.discard()
		return att, apdu.SWOK
	}
	return nil, apdu.SWINSNotSupported
}

// decryptKey unwraps a PUT KEY blob under S-DEK, trims the zero padding an HSM may add
// before wrapping (PLATFORM.md: PKCS#8 DER + 1–7 zero bytes), parses PKCS#8 strictly and
// requires a valid RSA-2048 key. TS Art. 6(iv): the key is only ever stored, never output.
func (a *Applet) decryptKey(blob []byte) (*rsa.PrivateKey, error) {
	plain, err := a.session.UnwrapKey(blob)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	der, err := trimDER(plain)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("perso: key blob: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("perso: key blob is not an rsa key")
	}
	if rk.N.BitLen() != RSABits {
		return nil, fmt.Errorf("perso: key of %d bits, want %d", rk.N.BitLen(), RSABits)
	}
	if err := rk.Validate(); err != nil {
		return nil, fmt.Errorf("perso: key blob: %w", err)
	}
	return rk, nil
}

// trimDER returns the leading DER SEQUENCE of b, allowing up to 7 trailing zero bytes.
func trimDER(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0x30 {
		return nil, errors.New("perso: key blob is not a der sequence")
	}
	n, hdr := int(b[1]), 2
	switch {
	case b[1] == 0x81 && len(b) >= 3:
		n, hdr = int(b[2]), 3
	case b[1] == 0x82 && len(b) >= 4:
		n, hdr = int(b[2])<<8|int(b[3]), 4
	case b[1] >= 0x80:
		return nil, errors.New("perso: key blob has an unsupported der length")
	}
	end := hdr + n
	if end > len(b) || len(b)-end > 7 {
		return nil, fmt.Errorf("perso: key blob der length %d does not fit %d bytes", end, len(b))
	}
	for _, z := range b[end:] {
		if z != 0 {
			return nil, errors.New("perso: key blob padding is not zero")
		}
	}
	return b[:end], nil
}
