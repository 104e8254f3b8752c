package scp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"madoguchi/cardio/apdu"
)

// Errors of the secure channel. Card and host map them to status words with StatusFor.
// Every one of them ends the session on the card side.
var (
	// ErrCardCryptogram: the card's cryptogram does not match; the card does not hold the
	// keys diversified for the serial it claims (wrong card, cloned serial, forged answer).
	ErrCardCryptogram = errors.New("scp: card cryptogram mismatch")
	// ErrHostCryptogram: EXTERNAL AUTHENTICATE carried a wrong host cryptogram.
	ErrHostCryptogram = errors.New("scp: host cryptogram mismatch")
	// ErrBadMAC: a C-MAC (card side) or R-MAC (host side) does not verify: tampering, replay,
	// reordering, another session or another card.
	ErrBadMAC = errors.New("scp: mac mismatch")
	// ErrNoSession: a protected command arrived with no authenticated session (no or failed
	// EXTERNAL AUTHENTICATE, or the session already ended).
	ErrNoSession = errors.New("scp: no authenticated session")
	// ErrNotProtected: a command without secure messaging arrived where it is required.
	ErrNotProtected = errors.New("scp: command not protected by secure messaging")
	// ErrSMFormat: a secure messaging field is malformed (length, padding, CLA).
	ErrSMFormat = errors.New("scp: malformed secure messaging")
	// ErrSecurityLevel: EXTERNAL AUTHENTICATE asked for a level the card refuses.
	ErrSecurityLevel = errors.New("scp: security level not accepted")
	// ErrKeyVersion: INITIALIZE UPDATE named an unknown key version.
	ErrKeyVersion = errors.New("scp: key version not found")
	// ErrSessionState: a host-side call in the wrong order (Protect before
	// ExternalAuthenticate, ExternalAuthenticate twice) or on a closed session.
	ErrSessionState = errors.New("scp: session used out of order")
)

// StatusFor maps an error of this package to the status word the card answers with:
// 6982 for authentication and MAC failures, 6985 without a session, 6988 for malformed
// secure messaging, 6A88 for an unknown key version, 6A80 for a failed key unwrap, 6F00 for
// anything else.
func StatusFor(err error) uint16 {
	switch {
	case err == nil:
		return apdu.SWOK
	case errors.Is(err, ErrBadMAC), errors.Is(err, ErrHostCryptogram), errors.Is(err, ErrNotProtected):
		return apdu.SWSecurityNotSatisfied
	case errors.Is(err, ErrNoSession):
		return apdu.SWConditionsNotSatisfied
	case errors.Is(err, ErrSMFormat):
		return apdu.SWSMDataIncorrect
	case errors.Is(err, ErrSecurityLevel):
		return apdu.SWIncorrectP1P2
	case errors.Is(err, ErrKeyVersion):
		return apdu.SWReferenceNotFound
	case errors.Is(err, ErrUnwrap):
		return apdu.SWWrongData
	case errors.Is(err, apdu.ErrMalformed), errors.Is(err, apdu.ErrTooLong):
		return apdu.SWWrongLength
	}
	return apdu.SWUnknown
}

// SecurityLevel is the P1 of EXTERNAL AUTHENTICATE (GP Card Spec §E.5.2.3 / Amendment D
// §7.1.2.1): which protections apply to the rest of the session.
type SecurityLevel byte

// Security level bits.
const (
	LevelCMAC SecurityLevel = 0x01
	LevelCDEC SecurityLevel = 0x02 // command data encrypted (always with C-MAC)
	LevelRMAC SecurityLevel = 0x10
	LevelRENC SecurityLevel = 0x20 // response data encrypted (always with R-MAC)

	// LevelFull is what Madoguchi hosts use: C-MAC, C-DEC, R-MAC, R-ENC.
	LevelFull = LevelCMAC | LevelCDEC | LevelRMAC | LevelRENC
	// LevelMinimum is the least a card accepts: C-MAC, C-DEC, R-MAC. TS Art. 5(iv), 6(iii):
	// key material travels only encrypted for the card, and the CA must be able to verify
	// what the card answered, so plain or MAC-less sessions are refused.
	LevelMinimum = LevelCMAC | LevelCDEC | LevelRMAC
)

func (l SecurityLevel) valid() bool { return l == LevelFull || l == LevelMinimum }

// sessionKeys are the expanded session keys of one channel.
type sessionKeys struct {
	enc, mac, rmac cipher.Block
}

func newSessionKeys(senc, smac, srmac []byte) (sessionKeys, error) {
	if len(senc) != KeyLen || len(smac) != KeyLen || len(srmac) != KeyLen {
		return sessionKeys{}, fmt.Errorf("scp: session keys must be %d bytes", KeyLen)
	}
	e, _ := aes.NewCipher(senc)
	m, _ := aes.NewCipher(smac)
	r, _ := aes.NewCipher(srmac)
	return sessionKeys{enc: e, mac: m, rmac: r}, nil
}

// cryptogram computes an 8-byte card or host cryptogram with S-MAC.
func (k sessionKeys) cryptogram(constant byte, context []byte) []byte {
	return cmacBlock(k.mac, KDFInput(constant, CryptoLen*8, 1, context))[:CryptoLen]
}

// icv returns the CBC initial vector AES(S-ENC, counter block) of command number counter;
// a response's block has 80 in its first byte (Amendment D §6.2.6, §6.2.7).
func (k sessionKeys) icv(counter uint32, response bool) []byte {
	b := make([]byte, 16)
	if response {
		b[0] = 0x80
	}
	binary.BigEndian.PutUint32(b[12:], counter)
	k.enc.Encrypt(b, b)
	return b
}

// pad applies ISO/IEC 9797-1 padding method 2 to a multiple of 16 bytes (always adds 80).
func pad(data []byte) []byte {
	n := (len(data)/16 + 1) * 16
	out := make([]byte, n)
	copy(out, data)
	out[len(data)] = 0x80
	return out
}

// unpad removes ISO/IEC 9797-1 padding method 2, reporting false when absent.
func unpad(data []byte) ([]byte, bool) {
	for i := len(data) - 1; i >= 0 && i >= len(data)-16; i-- {
		switch data[i] {
		case 0x00:
			continue
		case 0x80:
			return data[:i], true
		}
		return nil, false
	}
	return nil, false
}

// protectCommand applies C-DEC (when level asks and there is data) and C-MAC to cmd, with
// chain the MAC chaining value and counter the command's encryption counter. It returns the
// protected command and the new chaining value (the full 16-byte C-MAC).
func (k sessionKeys) protectCommand(cmd apdu.Command, level SecurityLevel, chain []byte, counter uint32) (apdu.Command, []byte, error) {
	if cmd.CLA&0x04 != 0 {
		return apdu.Command{}, nil, fmt.Errorf("%w: cla %02X already marks secure messaging", ErrSMFormat, cmd.CLA)
	}
	body := cmd.Data
	if level&LevelCDEC != 0 && len(body) > 0 {
		body = pad(body)
		cipher.NewCBCEncrypter(k.enc, k.icv(counter, false)).CryptBlocks(body, body)
	}
	if len(body)+MACLen > apdu.MaxExtendedLc {
		return apdu.Command{}, nil, fmt.Errorf("%w: protected data of %d bytes", apdu.ErrTooLong, len(body)+MACLen)
	}
	out := apdu.Command{CLA: cmd.CLA | 0x04, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Extended: cmd.Extended}
	out.Data = make([]byte, len(body)+MACLen)
	copy(out.Data, body)
	mac := k.commandMAC(chain, out.HeaderAndLc(), body)
	copy(out.Data[len(body):], mac[:MACLen])
	out.Ne = cmd.Ne // Le is not MAC'd; callers expecting an R-MAC set Ne themselves
	return out, mac, nil
}

// commandMAC = CMAC(S-MAC, chain ‖ CLA INS P1 P2 Lc ‖ data-without-MAC).
func (k sessionKeys) commandMAC(chain, header, body []byte) []byte {
	msg := make([]byte, 0, len(chain)+len(header)+len(body))
	msg = append(append(append(msg, chain...), header...), body...)
	return cmacBlock(k.mac, msg)
}

// unprotectCommand verifies and removes C-MAC and C-DEC; it returns the plain command and
// the new chaining value.
func (k sessionKeys) unprotectCommand(cmd apdu.Command, level SecurityLevel, chain []byte, counter uint32) (apdu.Command, []byte, error) {
	if cmd.CLA&0x04 == 0 {
		return apdu.Command{}, nil, ErrNotProtected
	}
	if len(cmd.Data) < MACLen {
		return apdu.Command{}, nil, fmt.Errorf("%w: %d data bytes, a c-mac needs %d", ErrSMFormat, len(cmd.Data), MACLen)
	}
	body := cmd.Data[:len(cmd.Data)-MACLen]
	mac := k.commandMAC(chain, cmd.HeaderAndLc(), body)
	if subtle.ConstantTimeCompare(mac[:MACLen], cmd.Data[len(body):]) != 1 {
		return apdu.Command{}, nil, ErrBadMAC
	}
	plain := apdu.Command{CLA: cmd.CLA &^ 0x04, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Ne: cmd.Ne, Extended: cmd.Extended}
	if len(body) > 0 {
		if level&LevelCDEC == 0 {
			plain.Data = append([]byte(nil), body...)
		} else {
			if len(body)%16 != 0 {
				return apdu.Command{}, nil, fmt.Errorf("%w: encrypted data of %d bytes", ErrSMFormat, len(body))
			}
			dec := make([]byte, len(body))
			cipher.NewCBCDecrypter(k.enc, k.icv(counter, false)).CryptBlocks(dec, body)
			p, ok := unpad(dec)
			if !ok {
				clear(dec)
				return apdu.Command{}, nil, fmt.Errorf("%w: bad padding", ErrSMFormat)
			}
			plain.Data = p
		}
	}
	return plain, mac, nil
}

// isErrorSW reports whether sw is an error status word, whose response carries no R-MAC and
// no data (Amendment D §6.2.5: every SW except 9000, 62xx and 63xx is an error).
func isErrorSW(sw uint16) bool {
	return sw != apdu.SWOK && sw>>8 != 0x62 && sw>>8 != 0x63
}

// protectResponse applies R-ENC and R-MAC to r with the chaining value of the command it
// answers. Error status words go out bare.
func (k sessionKeys) protectResponse(r apdu.Response, level SecurityLevel, chain []byte, counter uint32) apdu.Response {
	if isErrorSW(r.SW) || level&LevelRMAC == 0 {
		if isErrorSW(r.SW) {
			return apdu.Response{SW: r.SW}
		}
		return r
	}
	body := r.Data
	if level&LevelRENC != 0 && len(body) > 0 {
		body = pad(body)
		cipher.NewCBCEncrypter(k.enc, k.icv(counter, true)).CryptBlocks(body, body)
	}
	mac := k.responseMAC(chain, body, r.SW)
	out := make([]byte, len(body)+MACLen)
	copy(out, body)
	copy(out[len(body):], mac[:MACLen])
	return apdu.Response{Data: out, SW: r.SW}
}

// responseMAC = CMAC(S-RMAC, chain ‖ data ‖ SW1 SW2).
func (k sessionKeys) responseMAC(chain, body []byte, sw uint16) []byte {
	msg := make([]byte, 0, len(chain)+len(body)+2)
	msg = append(append(append(msg, chain...), body...), byte(sw>>8), byte(sw))
	return cmacBlock(k.rmac, msg)
}

// unprotectResponse verifies R-MAC and removes R-ENC. An error status word comes back as a
// *apdu.StatusError (it carries no MAC, so it proves nothing about the card).
func (k sessionKeys) unprotectResponse(r apdu.Response, level SecurityLevel, chain []byte, counter uint32) (apdu.Response, error) {
	if isErrorSW(r.SW) {
		if len(r.Data) != 0 {
			return apdu.Response{}, fmt.Errorf("%w: error status %04X with data", ErrSMFormat, r.SW)
		}
		return r, &apdu.StatusError{SW: r.SW}
	}
	if level&LevelRMAC == 0 {
		return r, nil
	}
	if len(r.Data) < MACLen {
		return apdu.Response{}, fmt.Errorf("%w: response of %d data bytes has no r-mac", ErrSMFormat, len(r.Data))
	}
	body := r.Data[:len(r.Data)-MACLen]
	mac := k.responseMAC(chain, body, r.SW)
	if subtle.ConstantTimeCompare(mac[:MACLen], r.Data[len(body):]) != 1 {
		return apdu.Response{}, ErrBadMAC
	}
	out := apdu.Response{SW: r.SW}
	if len(body) > 0 {
		if level&LevelRENC == 0 {
			out.Data = append([]byte(nil), body...)
		} else {
			if len(body)%16 != 0 {
				return apdu.Response{}, fmt.Errorf("%w: encrypted response of %d bytes", ErrSMFormat, len(body))
			}
			dec := make([]byte, len(body))
			cipher.NewCBCDecrypter(k.enc, k.icv(counter, true)).CryptBlocks(dec, body)
			p, ok := unpad(dec)
			if !ok {
				return apdu.Response{}, fmt.Errorf("%w: bad response padding", ErrSMFormat)
			}
			out.Data = p
		}
	}
	return out, nil
}
