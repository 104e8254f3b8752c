package cardio

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"madoguchi/cardio/apdu"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/pinrule"
	"madoguchi/cardio/scp"
)

// Which names one of the card's two key pairs and the PIN that guards it.
type Which = pinrule.Kind

// The two JPKI key pairs (DOMAIN §2).
const (
	UserAuth  Which = pinrule.UserAuth  // 利用者証明用: key 0017, PIN 0018, certificate 000A
	Signature Which = pinrule.Signature // 署名用: key 001A, PIN 001B, certificate 0001
)

// JPKIAID is the application identifier of the JPKI AP.
var JPKIAID = []byte{0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}

// Files of the JPKI AP.
const (
	FileSignatureCert   uint16 = 0x0001
	FileSignatureCACert uint16 = 0x0002
	FileUserAuthCert    uint16 = 0x000A
	FileUserAuthCACert  uint16 = 0x000B
	fileUserAuthKey     uint16 = 0x0017
	fileUserAuthPIN     uint16 = 0x0018
	fileSignatureKey    uint16 = 0x001A
	fileSignaturePIN    uint16 = 0x001B
)

// Errors callers branch on with errors.Is. Other refusals are *apdu.StatusError.
var (
	// ErrWrongPIN: the card refused the PIN; the *PINError says how many tries are left.
	ErrWrongPIN = errors.New("cardio: wrong pin")
	// ErrPINBlocked: the PIN is blocked (6983): the card refuses it for good; only the CA's
	// RESET PIN at the counter makes it settable again (TS Art. 17-2(xi)(xii)).
	ErrPINBlocked = errors.New("cardio: pin blocked")
	// ErrPINNotSet: the PIN (or the key it guards) is not set yet (6984).
	ErrPINNotSet = errors.New("cardio: pin not set")
	// ErrPINAlreadySet: the applicant PIN set was refused because the PIN is set (6985).
	ErrPINAlreadySet = errors.New("cardio: pin already set")
	// ErrPINRequired: the operation needs its PIN verified first in this card session (6982).
	ErrPINRequired = errors.New("cardio: pin verification required")
	// ErrCardSwapped: the card in the reader is not the card the terminal started with.
	ErrCardSwapped = errors.New("cardio: a different card is in the reader")
	// ErrBadCertificateFile: a certificate EF is not one DER SEQUENCE with a 2-byte length.
	ErrBadCertificateFile = errors.New("cardio: certificate file is malformed")
	// ErrCertificateNotPresent: the certificate EF holds nothing (the card answers 6A82 when
	// it is selected; docs/CARD-PROTOCOL.md §2), e.g. a card issued with the user-auth
	// certificate only, or a blank card.
	ErrCertificateNotPresent = errors.New("cardio: certificate not present on the card")
	// ErrNotJPKICard: the card in the reader has no JPKI AP, or no management application
	// of this issuer (SELECT answered 6A82, or SELECT is not supported at all): a card of
	// another kind was put on the reader.
	ErrNotJPKICard = errors.New("cardio: not a jpki card")
	// ErrBadResponse: the card's answer does not have the shape the command asks for (wrong
	// length, more data than requested, a success where a try counter was due). Together with
	// apdu.ErrShortResponse (fewer than 2 bytes: a dropped link) it covers truncated and
	// garbage answers; the terminal never uses such data.
	ErrBadResponse = errors.New("cardio: malformed card response")
)

// PINError is a wrong PIN with the tries the card has left. It matches ErrWrongPIN, and
// ErrPINBlocked when no try is left.
type PINError struct {
	Which     Which
	TriesLeft int
}

func (e *PINError) Error() string {
	return fmt.Sprintf("cardio: wrong %s pin, %d tries left", e.Which, e.TriesLeft)
}

// Is matches ErrWrongPIN, and ErrPINBlocked once the last try is used.
func (e *PINError) Is(target error) bool {
	return target == ErrWrongPIN || (target == ErrPINBlocked && e.TriesLeft == 0)
}

// ScriptError says which APDU of a relayed script failed and why (a *apdu.StatusError for a
// refusal, a transport error otherwise).
type ScriptError struct {
	Index int
	Err   error
}

func (e *ScriptError) Error() string {
	return fmt.Sprintf("cardio: script apdu %d: %v", e.Index, e.Err)
}

func (e *ScriptError) Unwrap() error { return e.Err }

// Card is the terminal's API to one JPKI card over a Transport.
//
// Concurrency: safe for concurrent use; each method runs its whole APDU sequence under one
// lock. The card's security state (verified PINs) lives on the card: VerifyPIN then Sign or
// reading the signature certificate must happen on the same card session (no reset, no other
// application selected in between; CardSerial selects another application).
type Card struct {
	mu        sync.Mutex
	t         Transport
	rand      io.Reader
	shortOnly bool // the card refused an extended READ BINARY (6700): read in short chunks
}

// New returns the card API over t.
func New(t Transport) *Card { return &Card{t: t, rand: rand.Reader} }

// NewWithRand is New with the randomness for host challenges injected.
func NewWithRand(t Transport, rnd io.Reader) *Card { return &Card{t: t, rand: rnd} }

// exchange sends one command and parses the response.
func (c *Card) exchange(ctx context.Context, cmd apdu.Command) (apdu.Response, error) {
	b, err := cmd.Encode()
	if err != nil {
		return apdu.Response{}, fmt.Errorf("cardio: %w", err)
	}
	raw, err := c.t.Transmit(ctx, b)
	if err != nil {
		return apdu.Response{}, fmt.Errorf("cardio: %w", err)
	}
	r, err := apdu.ParseResponse(raw)
	if err != nil {
		return apdu.Response{}, fmt.Errorf("cardio: %w", err)
	}
	return r, nil
}

// exchangeSecret is exchange for a command whose data is a PIN: the encoded command buffer is
// zeroed once the card answered (or the transport failed), so cardio keeps no copy of the PIN
// (DOMAIN §2, §9: PINs are never stored). cmd.Data, the caller's slice, is left as it is.
func (c *Card) exchangeSecret(ctx context.Context, cmd apdu.Command) (apdu.Response, error) {
	b, err := cmd.Encode()
	if err != nil {
		return apdu.Response{}, fmt.Errorf("cardio: %w", err)
	}
	defer clear(b)
	raw, err := c.t.Transmit(ctx, b)
	if err != nil {
		return apdu.Response{}, fmt.Errorf("cardio: %w", err)
	}
	r, err := apdu.ParseResponse(raw)
	if err != nil {
		return apdu.Response{}, fmt.Errorf("cardio: %w", err)
	}
	return r, nil
}

// isAbsentApplication reports whether sw, the answer to a SELECT by AID, means the
// application does not exist on this card: 6A82, or a card that knows no SELECT (6D00, 6E00).
func isAbsentApplication(sw uint16) bool {
	return sw == apdu.SWFileNotFound || sw == apdu.SWINSNotSupported || sw == apdu.SWCLANotSupported
}

func (c *Card) selectJPKI(ctx context.Context) error {
	r, err := c.exchange(ctx, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x0C, Data: JPKIAID})
	if err != nil {
		return err
	}
	switch {
	case r.SW == apdu.SWOK && len(r.Data) == 0:
		return nil
	case r.SW == apdu.SWOK:
		return fmt.Errorf("%w: select jpki ap answered %d data bytes, want none", ErrBadResponse, len(r.Data))
	case isAbsentApplication(r.SW):
		return fmt.Errorf("%w: no jpki ap (select answered %04X)", ErrNotJPKICard, r.SW)
	}
	return fmt.Errorf("cardio: select jpki ap: %w", r.Err())
}

func (c *Card) selectEF(ctx context.Context, fid uint16) error {
	r, err := c.exchange(ctx, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x02, P2: 0x0C, Data: []byte{byte(fid >> 8), byte(fid)}})
	if err != nil {
		return err
	}
	switch {
	case r.SW == apdu.SWOK && len(r.Data) == 0:
		return nil
	case r.SW == apdu.SWOK:
		return fmt.Errorf("%w: select ef %04X answered %d data bytes, want none", ErrBadResponse, fid, len(r.Data))
	case r.SW == apdu.SWFileNotFound && perso.IsCertificateFile(fid):
		return fmt.Errorf("%w: ef %04X", ErrCertificateNotPresent, fid)
	}
	return fmt.Errorf("cardio: select ef %04X: %w", fid, r.Err())
}

func pinFile(w Which) (uint16, error) {
	switch w {
	case UserAuth:
		return fileUserAuthPIN, nil
	case Signature:
		return fileSignaturePIN, nil
	}
	return 0, fmt.Errorf("cardio: unknown key type %d", int(w))
}

func keyFile(w Which) (uint16, error) {
	switch w {
	case UserAuth:
		return fileUserAuthKey, nil
	case Signature:
		return fileSignatureKey, nil
	}
	return 0, fmt.Errorf("cardio: unknown key type %d", int(w))
}

// pinStatusError turns the PIN-related status words into this package's errors.
func pinStatusError(what string, w Which, sw uint16) error {
	if tries, ok := apdu.TriesLeft(sw); ok {
		return &PINError{Which: w, TriesLeft: tries}
	}
	switch sw {
	case apdu.SWAuthMethodBlocked:
		return fmt.Errorf("cardio: %s: %s %w", what, w, ErrPINBlocked)
	case apdu.SWReferenceDataNotUsable:
		return fmt.Errorf("cardio: %s: %s %w", what, w, ErrPINNotSet)
	case apdu.SWSecurityNotSatisfied:
		return fmt.Errorf("cardio: %s: %s %w", what, w, ErrPINRequired)
	case apdu.SWConditionsNotSatisfied:
		return fmt.Errorf("cardio: %s: %s %w", what, w, ErrPINAlreadySet)
	}
	return fmt.Errorf("cardio: %s: %w", what, &apdu.StatusError{SW: sw})
}

// Certificates are the certificate files of a card, DER-encoded. A nil field is a file the
// card did not give: Missing says why.
type Certificates struct {
	UserAuth, UserAuthCA, SignatureCA []byte
	// Signature is nil when the signature PIN was not verified in this card session: the
	// signature certificate carries the holder's 4 items (TS Art. 11) and the card guards it.
	Signature []byte
	// Missing maps the file id of every nil field to the reason: ErrCertificateNotPresent
	// (the EF holds nothing), or, for the signature certificate, ErrPINRequired /
	// ErrPINNotSet (guarded by the signature PIN).
	Missing map[uint16]error
}

// Present reports whether the certificate in file fid was read.
func (c *Certificates) Present(fid uint16) bool {
	_, missing := c.Missing[fid]
	return !missing && c.file(fid) != nil
}

func (c *Certificates) file(fid uint16) []byte {
	switch fid {
	case FileUserAuthCert:
		return c.UserAuth
	case FileUserAuthCACert:
		return c.UserAuthCA
	case FileSignatureCert:
		return c.Signature
	case FileSignatureCACert:
		return c.SignatureCA
	}
	return nil
}

// ReadCertificates reads the four certificate files: the user-auth certificate, both CA
// certificates and, if the signature PIN was verified in this card session, the signature
// certificate. A file the card holds nothing in (ErrCertificateNotPresent) or guards
// (ErrPINRequired, ErrPINNotSet for the signature certificate) is left nil and named in
// Missing; any other failure fails the whole read, because a card that answers some reads
// wrongly cannot be trusted for the others.
func (c *Card) ReadCertificates(ctx context.Context) (*Certificates, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.selectJPKI(ctx); err != nil {
		return nil, err
	}
	out := Certificates{Missing: map[uint16]error{}}
	for _, f := range []struct {
		fid     uint16
		dst     *[]byte
		guarded bool
	}{
		{FileUserAuthCert, &out.UserAuth, false},
		{FileUserAuthCACert, &out.UserAuthCA, false},
		{FileSignatureCACert, &out.SignatureCA, false},
		{FileSignatureCert, &out.Signature, true},
	} {
		der, err := c.readFile(ctx, f.fid)
		switch {
		case err == nil:
			*f.dst = der
		case errors.Is(err, ErrCertificateNotPresent):
			out.Missing[f.fid] = ErrCertificateNotPresent
		case f.guarded && errors.Is(err, ErrPINRequired):
			out.Missing[f.fid] = ErrPINRequired
		case f.guarded && errors.Is(err, ErrPINNotSet):
			out.Missing[f.fid] = ErrPINNotSet
		default:
			return nil, err
		}
	}
	return &out, nil
}

// ReadCertificate reads one certificate file of the JPKI AP.
func (c *Card) ReadCertificate(ctx context.Context, fid uint16) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.selectJPKI(ctx); err != nil {
		return nil, err
	}
	return c.readFile(ctx, fid)
}

// readFile reads a certificate EF: 4 bytes to learn the size (30 82 LL LL, as OpenSC's
// jpki driver does), then the rest in one extended READ BINARY with the exact length. A card
// that refuses extended APDUs (6700) is read in 256-byte chunks and an exact last chunk
// instead, from then on. The extended read takes a ~1 KB certificate in 3 APDUs instead of 6
// (docs/BENCHMARKS.md "Card personalisation (cardio)").
func (c *Card) readFile(ctx context.Context, fid uint16) ([]byte, error) {
	if err := c.selectEF(ctx, fid); err != nil {
		return nil, err
	}
	read := func(off, n int) ([]byte, uint16, error) {
		r, err := c.exchange(ctx, apdu.Command{CLA: 0x00, INS: 0xB0, P1: byte(off >> 8), P2: byte(off), Ne: n})
		if err != nil {
			return nil, 0, err
		}
		if r.SW != apdu.SWOK {
			return nil, r.SW, pinStatusError(fmt.Sprintf("read ef %04X", fid), Signature, r.SW)
		}
		if len(r.Data) == 0 || len(r.Data) > n {
			return nil, r.SW, fmt.Errorf("%w: read ef %04X: %d bytes for %d", ErrBadResponse, fid, len(r.Data), n)
		}
		return r.Data, r.SW, nil
	}
	head, _, err := read(0, 4)
	if err != nil {
		return nil, err
	}
	if len(head) != 4 || head[0] != 0x30 || head[1] != 0x82 {
		return nil, fmt.Errorf("%w: ef %04X starts % X", ErrBadCertificateFile, fid, head)
	}
	size := int(head[2])<<8 | int(head[3]) + 4
	if size > perso.MaxFileSize {
		return nil, fmt.Errorf("%w: ef %04X claims %d bytes", ErrBadCertificateFile, fid, size)
	}
	out := make([]byte, 4, size)
	copy(out, head)
	if rest := size - len(out); rest > apdu.MaxShortNe && !c.shortOnly {
		chunk, sw, err := read(len(out), rest)
		switch {
		case err == nil && len(chunk) == rest:
			return append(out, chunk...), nil
		case err == nil:
			return nil, fmt.Errorf("%w: read ef %04X: %d bytes for %d", ErrBadResponse, fid, len(chunk), rest)
		case sw != apdu.SWWrongLength:
			return nil, err
		}
		c.shortOnly = true // no extended APDUs on this card: fall back to short reads
	}
	for len(out) < size {
		chunk, _, err := read(len(out), min(apdu.MaxShortNe, size-len(out)))
		if err != nil {
			return nil, err
		}
		out = append(out, chunk...)
	}
	return out, nil
}

// PINTriesLeft returns how many wrong tries the PIN has left. A blocked PIN is 0 with
// ErrPINBlocked; a PIN not set yet is ErrPINNotSet. It costs no try.
func (c *Card) PINTriesLeft(ctx context.Context, w Which) (int, error) {
	fid, err := pinFile(w)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.selectJPKI(ctx); err != nil {
		return 0, err
	}
	if err := c.selectEF(ctx, fid); err != nil {
		return 0, err
	}
	r, err := c.exchange(ctx, apdu.Command{CLA: 0x00, INS: 0x20, P1: 0x00, P2: 0x80})
	if err != nil {
		return 0, err
	}
	if tries, ok := apdu.TriesLeft(r.SW); ok {
		if tries == 0 {
			// 63C0: a real card's answer for a blocked PIN (what OpenSC's jpki driver reads);
			// 6983 below is kept for cards that answer that way.
			return 0, fmt.Errorf("cardio: pin tries: %s %w", w, ErrPINBlocked)
		}
		return tries, nil
	}
	if r.SW == apdu.SWOK {
		// VERIFY without data must answer 63Cx (PLATFORM.md): a plain 9000 would hide the
		// try counter, so the answer is not trusted.
		return 0, fmt.Errorf("%w: pin tries answered 9000 without a try counter", ErrBadResponse)
	}
	return 0, pinStatusError("pin tries", w, r.SW)
}

// VerifyPIN presents pin to the card. A PIN of the wrong format is refused before it reaches
// the card, so a typing slip costs no try. Errors: *PINError (ErrWrongPIN, ErrPINBlocked at
// 0 tries), ErrPINBlocked, ErrPINNotSet, *pinrule.FormatError. The PIN is never logged or kept.
func (c *Card) VerifyPIN(ctx context.Context, w Which, pin []byte) error {
	fid, err := pinFile(w)
	if err != nil {
		return err
	}
	return c.pinCommand(ctx, w, fid, pin, apdu.Command{CLA: 0x00, INS: 0x20, P1: 0x00, P2: 0x80}, "verify pin")
}

// pinCommand checks pin's format (nothing malformed reaches the card, so a typing slip costs no
// try), selects PIN EF fid of the JPKI AP and sends cmd with pin as its data, never logged.
func (c *Card) pinCommand(ctx context.Context, w Which, fid uint16, pin []byte, cmd apdu.Command, what string) error {
	if err := pinrule.Check(w, pin); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.selectJPKI(ctx); err != nil {
		return err
	}
	if err := c.selectEF(ctx, fid); err != nil {
		return err
	}
	cmd.Data = pin
	r, err := c.exchangeSecret(ctx, cmd)
	if err != nil {
		return err
	}
	if r.SW != apdu.SWOK {
		return pinStatusError(what, w, r.SW)
	}
	return nil
}

// Sign has the card sign digestInfo (a DER DigestInfo) with PKCS#1 v1.5 using key w. The
// key's PIN must have been verified in this card session (ErrPINRequired otherwise).
func (c *Card) Sign(ctx context.Context, w Which, digestInfo []byte) ([]byte, error) {
	fid, err := keyFile(w)
	if err != nil {
		return nil, err
	}
	if len(digestInfo) == 0 || len(digestInfo) > 256-11 {
		return nil, fmt.Errorf("cardio: digestinfo of %d bytes does not fit an rsa-2048 signature", len(digestInfo))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.selectJPKI(ctx); err != nil {
		return nil, err
	}
	if err := c.selectEF(ctx, fid); err != nil {
		return nil, err
	}
	r, err := c.exchange(ctx, apdu.Command{CLA: 0x80, INS: 0x2A, P1: 0x00, P2: 0x80, Data: digestInfo, Ne: 256})
	if err != nil {
		return nil, err
	}
	if r.SW != apdu.SWOK {
		return nil, pinStatusError("sign", w, r.SW)
	}
	if len(r.Data) != 256 {
		return nil, fmt.Errorf("%w: sign answered %d bytes, want a 256-byte rsa-2048 signature", ErrBadResponse, len(r.Data))
	}
	return r.Data, nil
}

// SetPIN is the applicant's PIN set (CPS §6.4.1.2: the applicant sets the PIN personally):
// CHANGE REFERENCE DATA with the new value only, accepted by the card only while the PIN is
// not set. The format is checked here first (pinrule), so nothing malformed reaches the card;
// the "not easily guessed" rules (TS Art. 4) are the caller's, who knows the applicant.
// Errors: *pinrule.FormatError, ErrPINAlreadySet.
func (c *Card) SetPIN(ctx context.Context, w Which, pin []byte) error {
	fid, err := pinFile(w)
	if err != nil {
		return err
	}
	return c.pinCommand(ctx, w, fid, pin, apdu.Command{CLA: 0x00, INS: 0x24, P1: 0x01, P2: 0x80}, "set pin")
}

// InitializeUpdate opens the secure channel towards the CA: it selects the management
// application and sends INITIALIZE UPDATE with the CA's host challenge, and returns the full
// response APDU (data and status word) for relay to the CA.
func (c *Card) InitializeUpdate(ctx context.Context, hostChallenge []byte) ([]byte, error) {
	cmd, err := scp.InitializeUpdateCommand(hostChallenge)
	if err != nil {
		return nil, fmt.Errorf("cardio: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sel, err := c.exchange(ctx, selectManagement())
	if err != nil {
		return nil, err
	}
	if isAbsentApplication(sel.SW) {
		return nil, fmt.Errorf("%w: no management application (select answered %04X)", ErrNotJPKICard, sel.SW)
	}
	if sel.SW != apdu.SWOK {
		return nil, fmt.Errorf("cardio: select management application: %w", sel.Err())
	}
	raw, err := c.t.Transmit(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("cardio: initialize update: %w", err)
	}
	r, err := apdu.ParseResponse(raw)
	if err != nil {
		return nil, fmt.Errorf("cardio: initialize update: %w", err)
	}
	if r.SW != apdu.SWOK {
		return nil, fmt.Errorf("cardio: initialize update: %w", r.Err())
	}
	if len(r.Data) != scp.InitUpdateResponseLen {
		return nil, fmt.Errorf("%w: initialize update answered %d bytes, want %d", ErrBadResponse, len(r.Data), scp.InitUpdateResponseLen)
	}
	return raw, nil
}

func selectManagement() apdu.Command {
	return apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x00, Data: perso.AID, Ne: 256}
}

// RunScript relays a CA-protected script to the card in order and returns the response APDUs
// of every APDU sent. It stops at the first answer other than 9000 (the response of that
// APDU is the last one returned) with a *ScriptError wrapping the *apdu.StatusError, or at a
// transport failure. The terminal cannot read or alter the script: it is MAC'd and encrypted
// for the card (TS Art. 5(iv), 6(iii)).
func (c *Card) RunScript(ctx context.Context, apdus [][]byte) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	responses := make([][]byte, 0, len(apdus))
	for i, cmd := range apdus {
		raw, err := c.t.Transmit(ctx, cmd)
		if err != nil {
			return responses, &ScriptError{Index: i, Err: err}
		}
		r, err := apdu.ParseResponse(raw)
		if err != nil {
			return responses, &ScriptError{Index: i, Err: err}
		}
		responses = append(responses, raw)
		if r.SW != apdu.SWOK {
			return responses, &ScriptError{Index: i, Err: r.Err()}
		}
	}
	return responses, nil
}

// CardSerial returns the card's 16-byte serial, as the management application announces it
// at INITIALIZE UPDATE (with a throw-away host challenge; no session is completed). It
// selects the management application, which ends any verified PIN state on the JPKI AP and any
// secure channel: call it between steps, never inside a script.
func (c *Card) CardSerial(ctx context.Context) ([]byte, error) {
	hc, err := scp.NewHostChallenge(c.rand)
	if err != nil {
		return nil, fmt.Errorf("cardio: %w", err)
	}
	raw, err := c.InitializeUpdate(ctx, hc)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(raw[:scp.SerialLen]), nil
}

// CheckSerial fails with ErrCardSwapped unless the card in the reader has serial want: the
// terminal calls it between steps of an issuance so a card swapped mid-way is noticed
// before anything is written or confirmed.
func (c *Card) CheckSerial(ctx context.Context, want []byte) error {
	got, err := c.CardSerial(ctx)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: serial %X, expected %X", ErrCardSwapped, got, want)
	}
	return nil
}
