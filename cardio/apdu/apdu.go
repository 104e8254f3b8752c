// Package apdu encodes and parses ISO/IEC 7816-4 command and response APDUs (cases 1–4, short
// and extended length), names the status words Madoguchi's cards use, and encodes BER-TLV.
//
// Concurrency: every function is pure; values are safe to share once built. Parsers never
// alias their input: the Data of a parsed Command or Response is a fresh copy, so a transport
// may reuse its receive buffer.
package apdu

import (
	"errors"
	"fmt"
)

// Length limits of ISO/IEC 7816-4 §5.1.
const (
	MaxShortLc    = 255   // largest Nc of a short APDU
	MaxShortNe    = 256   // largest Ne of a short APDU (Le = 00)
	MaxExtendedLc = 65535 // largest Nc of an extended APDU
	MaxExtendedNe = 65536 // largest Ne of an extended APDU (Le = 0000)
)

// Errors returned by the parsers and encoders. They are sentinel values so callers can branch
// with errors.Is; the returned error wraps one of them with detail.
var (
	// ErrMalformed means the bytes are not a well-formed APDU of any case.
	ErrMalformed = errors.New("apdu: malformed apdu")
	// ErrTooLong means a field exceeds the ISO/IEC 7816-4 limits.
	ErrTooLong = errors.New("apdu: field too long")
	// ErrShortResponse means a response had fewer than 2 bytes. PLATFORM.md: a card that
	// drops the link mid-APDU makes PC/SC report success with a 0-byte response, so this must
	// be an error, never an empty success.
	ErrShortResponse = errors.New("apdu: response shorter than the status word")
)

// Command is one command APDU. The zero Ne means "no response data expected" (no Le field).
type Command struct {
	CLA, INS, P1, P2 byte
	// Data is the command data field (Nc = len(Data)); empty for cases 1 and 2.
	Data []byte
	// Ne is the maximum number of response data bytes expected: 0 (no Le), 1–256 short,
	// up to 65536 extended. 256 encodes as short Le 00, 65536 as extended Le 0000.
	Ne int
	// Extended forces the extended-length encoding even when the short one would fit.
	// Encoding switches to extended by itself when len(Data) > 255 or Ne > 256.
	Extended bool
}

// IsExtended reports whether c encodes in the extended-length form.
func (c Command) IsExtended() bool {
	return c.Extended || len(c.Data) > MaxShortLc || c.Ne > MaxShortNe
}

// Encode returns the wire bytes of c. It fails with ErrTooLong when Nc > 65535 or
// Ne > 65536 and with ErrMalformed when Ne is negative.
func (c Command) Encode() ([]byte, error) {
	return c.AppendTo(nil)
}

// AppendTo appends the wire bytes of c to dst, with the same checks as Encode.
func (c Command) AppendTo(dst []byte) ([]byte, error) {
	nc := len(c.Data)
	if nc > MaxExtendedLc {
		return nil, fmt.Errorf("%w: Nc %d > %d", ErrTooLong, nc, MaxExtendedLc)
	}
	if c.Ne < 0 {
		return nil, fmt.Errorf("%w: negative Ne %d", ErrMalformed, c.Ne)
	}
	if c.Ne > MaxExtendedNe {
		return nil, fmt.Errorf("%w: Ne %d > %d", ErrTooLong, c.Ne, MaxExtendedNe)
	}
	dst = append(dst, c.CLA, c.INS, c.P1, c.P2)
	dst = c.appendBody(dst)
	return dst, nil
}

// HeaderAndLc returns CLA INS P1 P2 followed by the Lc field exactly as Encode writes it
// (empty Lc when there is no data). Secure messaging MACs this prefix (cardio/scp).
func (c Command) HeaderAndLc() []byte {
	out := []byte{c.CLA, c.INS, c.P1, c.P2}
	nc := len(c.Data)
	if nc == 0 {
		return out
	}
	if c.IsExtended() {
		return append(out, 0, byte(nc>>8), byte(nc))
	}
	return append(out, byte(nc))
}

func (c Command) appendBody(dst []byte) []byte {
	nc := len(c.Data)
	ext := c.IsExtended()
	if nc > 0 {
		if ext {
			dst = append(dst, 0, byte(nc>>8), byte(nc))
		} else {
			dst = append(dst, byte(nc))
		}
		dst = append(dst, c.Data...)
	}
	if c.Ne > 0 {
		switch {
		case !ext:
			dst = append(dst, byte(c.Ne)) // 256 → 00
		case nc == 0:
			dst = append(dst, 0, byte(c.Ne>>8), byte(c.Ne)) // 65536 → 00 00 00
		default:
			dst = append(dst, byte(c.Ne>>8), byte(c.Ne)) // 65536 → 00 00
		}
	}
	return dst
}

// ParseCommand parses a command APDU of any of the cases 1, 2S, 3S, 4S, 2E, 3E, 4E
// (ISO/IEC 7816-4 §5.1). It returns ErrMalformed (wrapped) when the length fields do not
// match the byte count, including an extended Lc of zero. The returned Data is a copy.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, fmt.Errorf("%w: %d bytes, header needs 4", ErrMalformed, len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2S
		c.Ne = shortNe(body[0])
		return c, nil
	case body[0] != 0: // case 3S or 4S
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
			c.Data = clone(body[1:])
			return c, nil
		case 2 + lc:
			c.Data = clone(body[1 : 1+lc])
			c.Ne = shortNe(body[1+lc])
			return c, nil
		}
		return Command{}, fmt.Errorf("%w: short Lc %d but %d body bytes", ErrMalformed, lc, len(body))
	case len(body) == 3: // case 2E
		c.Extended = true
		c.Ne = extendedNe(body[1], body[2])
		return c, nil
	case len(body) > 3: // case 3E or 4E
		c.Extended = true
		lc := int(body[1])<<8 | int(body[2])
		if lc == 0 {
			return Command{}, fmt.Errorf("%w: extended Lc of zero", ErrMalformed)
		}
		switch len(body) {
		case 3 + lc:
			c.Data = clone(body[3:])
			return c, nil
		case 5 + lc:
			c.Data = clone(body[3 : 3+lc])
			c.Ne = extendedNe(body[3+lc], body[4+lc])
			return c, nil
		}
		return Command{}, fmt.Errorf("%w: extended Lc %d but %d body bytes", ErrMalformed, lc, len(body))
	}
	return Command{}, fmt.Errorf("%w: %d body bytes starting 00", ErrMalformed, len(body))
}

func shortNe(b byte) int {
	if b == 0 {
		return MaxShortNe
	}
	return int(b)
}

func extendedNe(hi, lo byte) int {
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return MaxExtendedNe
	}
	return n
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// Response is one response APDU: data followed by the status word SW1 SW2.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits a response APDU. It returns ErrShortResponse for fewer than 2 bytes.
// The returned Data is a copy.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: %d bytes", ErrShortResponse, len(b))
	}
	n := len(b) - 2
	return Response{Data: clone(b[:n]), SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}

// Encode returns data || SW1 SW2 in a new slice.
func (r Response) Encode() []byte {
	out := make([]byte, len(r.Data), len(r.Data)+2)
	copy(out, r.Data)
	return append(out, byte(r.SW>>8), byte(r.SW))
}

// OK reports whether the status word is 9000.
func (r Response) OK() bool { return r.SW == SWOK }

// Err returns nil for 9000 and a *StatusError for every other status word. Warnings (62xx,
// 63xx) are errors too: callers that expect one (e.g. 63Cx from VERIFY) branch on it.
func (r Response) Err() error {
	if r.SW == SWOK {
		return nil
	}
	return &StatusError{SW: r.SW}
}

// Status returns a response that is only the status word sw.
func Status(sw uint16) Response { return Response{SW: sw} }
