package crl

import (
	"time"
)

// DER tags used here (X.690).
const (
	tagBoolean             = 0x01
	tagInteger             = 0x02
	tagBitString           = 0x03
	tagOctetString         = 0x04
	tagOID                 = 0x06
	tagEnumerated          = 0x0a
	tagUTCTime             = 0x17
	tagGeneralizedTime     = 0x18
	tagSequence            = 0x30
	tagContext0Constructed = 0xa0
)

var (
	// sha256WithRSAEncryption with NULL parameters (RFC 4055 §5).
	sigAlgSHA256RSA = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}

	oidAuthorityKeyID           = []byte{0x55, 0x1d, 0x23} // 2.5.29.35
	oidCRLNumber                = []byte{0x55, 0x1d, 0x14} // 2.5.29.20
	oidIssuingDistributionPoint = []byte{0x55, 0x1d, 0x1c} // 2.5.29.28

	// reasonCodeExtensions[r] is the crlEntryExtensions field carrying
	// reasonCode r (2.5.29.21); nil for 0, which is written without one.
	reasonCodeExtensions = func() [ReasonCertificateHold + 1][]byte {
		var t [ReasonCertificateHold + 1][]byte
		for r := ReasonKeyCompromise; r <= ReasonCertificateHold; r++ {
			t[r] = []byte{0x30, 0x0c, 0x30, 0x0a, tagOID, 0x03, 0x55, 0x1d, 0x15,
				tagOctetString, 0x03, tagEnumerated, 0x01, byte(r)}
		}
		return t
	}()
)

// appendHeader appends a DER tag and definite length in the shortest form.
func appendHeader(b []byte, tag byte, n int64) []byte {
	b = append(b, tag)
	if n < 0x80 {
		return append(b, byte(n))
	}
	var octets int
	for v := n; v > 0; v >>= 8 {
		octets++
	}
	b = append(b, 0x80|byte(octets))
	for i := octets - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}

// appendInteger appends a non-negative INTEGER from its magnitude (no
// leading zeros; empty means zero).
func appendInteger(b, mag []byte) []byte {
	mag = trimLeadingZeros(mag)
	if len(mag) == 0 {
		return append(b, tagInteger, 1, 0)
	}
	pad := mag[0]&0x80 != 0
	n := len(mag)
	if pad {
		n++
	}
	b = appendHeader(b, tagInteger, int64(n))
	if pad {
		b = append(b, 0)
	}
	return append(b, mag...)
}

// timeEncodable: RFC 5280 §4.1.2.5 encodes 1950–2049 as UTCTime and other
// years as GeneralizedTime with four digits.
func timeEncodable(t time.Time) bool {
	y := t.Year()
	return y >= 1950 && y <= 9999
}

// appendTime appends t (UTC, whole seconds) as RFC 5280 §5.1.2.4 requires:
// UTCTime through 2049, GeneralizedTime from 2050. The precondition
// timeEncodable(t) is checked by callers.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	if year < 2050 {
		b = append(b, tagUTCTime, 13)
		b = append2(b, year%100)
	} else {
		b = append(b, tagGeneralizedTime, 15)
		b = append2(b, year/100)
		b = append2(b, year%100)
	}
	b = append2(b, int(month))
	b = append2(b, day)
	b = append2(b, hour)
	b = append2(b, minute)
	b = append2(b, second)
	return append(b, 'Z')
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

// appendEntry appends one revokedCertificates element. serial has no
// leading zeros and at most 20 octets, so every length is short-form.
func appendEntry(b, serial []byte, at time.Time, r Reason) []byte {
	start := len(b)
	b = append(b, tagSequence, 0) // length patched below
	b = appendInteger(b, serial)
	b = appendTime(b, at)
	b = append(b, reasonCodeExtensions[r]...)
	b[start+1] = byte(len(b) - start - 2)
	return b
}

// appendExtension appends Extension ::= SEQUENCE { extnID, critical
// DEFAULT FALSE, extnValue OCTET STRING }.
func appendExtension(b, oid []byte, critical bool, value []byte) []byte {
	var body []byte
	body = appendHeader(body, tagOID, int64(len(oid)))
	body = append(body, oid...)
	if critical {
		body = append(body, tagBoolean, 1, 0xff)
	}
	body = appendHeader(body, tagOctetString, int64(len(value)))
	body = append(body, value...)
	b = appendHeader(b, tagSequence, int64(len(body)))
	return append(b, body...)
}

// appendOctetStringInSequence encodes AuthorityKeyIdentifier ::= SEQUENCE {
// keyIdentifier [0] IMPLICIT OCTET STRING }.
func appendOctetStringInSequence(keyID []byte) []byte {
	var inner []byte
	inner = appendHeader(inner, 0x80, int64(len(keyID)))
	inner = append(inner, keyID...)
	out := appendHeader(nil, tagSequence, int64(len(inner)))
	return append(out, inner...)
}

// encodeIDP encodes IssuingDistributionPoint (RFC 5280 §5.2.5; implicit
// tags): distributionPoint [0] { fullName [0] GeneralNames of URIs [6] },
// onlyContainsUserCerts [1], onlyContainsCACerts [2]. DEFAULT FALSE
// booleans are omitted (DER).
func encodeIDP(idp *IssuingDistributionPoint) []byte {
	var body []byte
	if len(idp.URIs) > 0 {
		var names []byte
		for _, u := range idp.URIs {
			names = appendHeader(names, 0x86, int64(len(u)))
			names = append(names, u...)
		}
		fullName := appendHeader(nil, 0xa0, int64(len(names)))
		fullName = append(fullName, names...)
		body = appendHeader(body, 0xa0, int64(len(fullName)))
		body = append(body, fullName...)
	}
	if idp.OnlyContainsUserCerts {
		body = append(body, 0x81, 1, 0xff)
	}
	if idp.OnlyContainsCACerts {
		body = append(body, 0x82, 1, 0xff)
	}
	out := appendHeader(nil, tagSequence, int64(len(body)))
	return append(out, body...)
}

func isIA5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
