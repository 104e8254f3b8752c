package apdu

import (
	"errors"
	"fmt"
)

// ErrTLV means BER-TLV bytes are malformed (truncated tag or length, indefinite or overlong
// length, value running past the end).
var ErrTLV = errors.New("apdu: malformed ber-tlv")

// TLV is one BER-TLV data object (ISO/IEC 7816-4 §5.2). Tag holds the tag bytes big-endian
// (e.g. 0x5F20 for the two-byte tag 5F 20, 0x83 for 83); Value is the raw value field, which
// for a constructed tag (bit 6 of the first tag byte set) is itself a TLV sequence that
// ParseTLVs can parse again.
type TLV struct {
	Tag   uint32
	Value []byte
}

// Constructed reports whether the tag's first byte has the constructed bit (0x20) set.
func (t TLV) Constructed() bool {
	return firstTagByte(t.Tag)&0x20 != 0
}

func firstTagByte(tag uint32) byte {
	switch {
	case tag > 0xFFFFFF:
		return byte(tag >> 24)
	case tag > 0xFFFF:
		return byte(tag >> 16)
	case tag > 0xFF:
		return byte(tag >> 8)
	}
	return byte(tag)
}

// AppendTLV appends tag, a definite length (short form up to 127, then 81 xx, 82 xx xx,
// 83 xx xx xx) and value to dst. It panics for a value of 16 MiB or more, which no card
// command can carry.
func AppendTLV(dst []byte, tag uint32, value []byte) []byte {
	switch {
	case tag > 0xFFFFFF:
		dst = append(dst, byte(tag>>24), byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFFFF:
		dst = append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFF:
		dst = append(dst, byte(tag>>8), byte(tag))
	default:
		dst = append(dst, byte(tag))
	}
	n := len(value)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xFF:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	case n <= 0xFFFFFF:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		panic("apdu: tlv value of 16 MiB or more")
	}
	return append(dst, value...)
}

// ParseTLVs parses a concatenation of BER-TLV objects. Padding bytes 00 and FF between
// objects are not allowed (none of our commands uses them). Values alias b.
func ParseTLVs(b []byte) ([]TLV, error) {
	var out []TLV
	for len(b) > 0 {
		t, rest, err := ParseTLV(b)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		b = rest
	}
	return out, nil
}

// ParseTLV parses the first BER-TLV object of b and returns it with the remaining bytes.
// Tags of up to 4 bytes and definite lengths of up to 3 length bytes are accepted; the
// shortest length form is not enforced. The Value aliases b.
func ParseTLV(b []byte) (TLV, []byte, error) {
	if len(b) == 0 {
		return TLV{}, nil, fmt.Errorf("%w: empty input", ErrTLV)
	}
	i := 0
	tag := uint32(b[0])
	i++
	if b[0]&0x1F == 0x1F { // multi-byte tag: continue while bit 8 is set
		for {
			if i >= len(b) {
				return TLV{}, nil, fmt.Errorf("%w: truncated tag", ErrTLV)
			}
			if i >= 4 {
				return TLV{}, nil, fmt.Errorf("%w: tag longer than 4 bytes", ErrTLV)
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return TLV{}, nil, fmt.Errorf("%w: missing length", ErrTLV)
	}
	l := int(b[i])
	i++
	if l >= 0x80 {
		nb := l & 0x7F
		if nb == 0 {
			return TLV{}, nil, fmt.Errorf("%w: indefinite length", ErrTLV)
		}
		if nb > 3 {
			return TLV{}, nil, fmt.Errorf("%w: %d length bytes", ErrTLV, nb)
		}
		if i+nb > len(b) {
			return TLV{}, nil, fmt.Errorf("%w: truncated length", ErrTLV)
		}
		l = 0
		for k := 0; k < nb; k++ {
			l = l<<8 | int(b[i+k])
		}
		i += nb
	}
	if l > len(b)-i {
		return TLV{}, nil, fmt.Errorf("%w: value of %d bytes, %d left", ErrTLV, l, len(b)-i)
	}
	return TLV{Tag: tag, Value: b[i : i+l]}, b[i+l:], nil
}

// FindTLV returns the value of the first object with tag in tlvs.
func FindTLV(tlvs []TLV, tag uint32) ([]byte, bool) {
	for _, t := range tlvs {
		if t.Tag == tag {
			return t.Value, true
		}
	}
	return nil, false
}
