package jpki

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"unicode/utf8"
)

// ReadTextExtension reads a text attribute kept in its own extension (旧氏 and
// 通称 in our profile: value a DER UTF8String, substitute positions a
// SEQUENCE OF INTEGER, strictly ascending, in the extension subsOID). An
// absent extension gives "", nil. A critical or malformed one is
// ErrMalformed.
func ReadTextExtension(cert *x509.Certificate, oid, subsOID asn1.ObjectIdentifier) (string, []int, error) {
	var value string
	var subs []int
	var seenValue, seenSubs bool
	for _, e := range cert.Extensions {
		switch {
		case e.Id.Equal(oid):
			if e.Critical || seenValue {
				return "", nil, fmt.Errorf("%w: extension %v critical or repeated", ErrMalformed, oid)
			}
			var raw asn1.RawValue
			rest, err := asn1.Unmarshal(e.Value, &raw)
			if err != nil || len(rest) != 0 || raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagUTF8String || raw.IsCompound ||
				len(raw.Bytes) == 0 || !utf8.Valid(raw.Bytes) {
				return "", nil, fmt.Errorf("%w: extension %v is not one UTF8String", ErrMalformed, oid)
			}
			value, seenValue = string(raw.Bytes), true
		case subsOID != nil && e.Id.Equal(subsOID):
			if e.Critical || seenSubs {
				return "", nil, fmt.Errorf("%w: extension %v critical or repeated", ErrMalformed, subsOID)
			}
			rest, err := asn1.Unmarshal(e.Value, &subs)
			if err != nil || len(rest) != 0 || len(subs) == 0 {
				return "", nil, fmt.Errorf("%w: extension %v is not SEQUENCE OF INTEGER", ErrMalformed, subsOID)
			}
			seenSubs = true
		}
	}
	if seenSubs {
		if !seenValue {
			return "", nil, fmt.Errorf("%w: positions %v without value", ErrMalformed, subsOID)
		}
		n, prev := utf8.RuneCountInString(value), -1
		for _, p := range subs {
			if p <= prev || p >= n {
				return "", nil, fmt.Errorf("%w: position %d", ErrBadPositions, p)
			}
			prev = p
		}
	}
	return value, subs, nil
}
