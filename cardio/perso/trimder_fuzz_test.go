package perso

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// FuzzTrimDER: the card's trimming of an unwrapped PUT KEY plaintext (PKCS#8 DER plus up to
// 7 zero bytes an HSM may add before an RFC 5649 wrap) agrees with a DER reader
// (cryptobyte): whatever it accepts is a prefix of the input followed by at most 7 zero
// bytes, and every well-formed DER SEQUENCE followed by 0–7 zero bytes is accepted and
// trimmed to exactly that SEQUENCE.
func FuzzTrimDER(f *testing.F) {
	// A real PKCS#8 key (1024 bits keeps the seed run fast; the length forms are the same).
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Add(append(bytes.Clone(der), make([]byte, 7)...))
	f.Add(append(bytes.Clone(der), make([]byte, 8)...))
	f.Add(append(bytes.Clone(der), 0, 0, 1))
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x81, 0x01, 0x05, 0x00})
	f.Add([]byte{0x30, 0x83, 0x00, 0x00, 0x01, 0x00})
	f.Add([]byte{0x30})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		got, err := trimDER(b)
		if !bytes.Equal(in, b) {
			t.Fatal("trimDER changed its input")
		}
		if err == nil {
			if len(got) < 2 || got[0] != 0x30 || !bytes.Equal(got, b[:len(got)]) || len(b)-len(got) > 7 {
				t.Fatalf("accepted %x as %x", b, got)
			}
			for _, z := range b[len(got):] {
				if z != 0 {
					t.Fatalf("accepted non-zero padding in %x", b)
				}
			}
		}
		s := cryptobyte.String(b)
		var elem cryptobyte.String
		if s.ReadASN1Element(&elem, cbasn1.SEQUENCE) && len(s) <= 7 && bytes.Count(s, []byte{0}) == len(s) && len(elem) < 1<<16+4 {
			if err != nil || !bytes.Equal(got, elem) {
				t.Fatalf("DER sequence %x + %d zero bytes: trimmed to %x, %v", []byte(elem), len(s), got, err)
			}
		}
	})
}
