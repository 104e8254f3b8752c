package crl_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"math/big"
	"testing"
	"time"

	"madoguchi/ca-server/crl"
)

// fuzzEntries decodes an arbitrary entry list from b: per entry a length byte (serial of
// 0–22 octets, leading zeros allowed), the serial, 4 bytes of signed seconds from
// thisUpdate and a reason byte (0–7; its high bit moves the time to 1949).
func fuzzEntries(b []byte) []crl.Entry {
	var es []crl.Entry
	for len(b) > 0 && len(es) < 200 {
		n := int(b[0]) % 23
		b = b[1:]
		serial := make([]byte, n)
		b = b[copy(serial, b):]
		var tail [5]byte
		b = b[copy(tail[:], b):]
		at := thisUpdate.Add(time.Duration(int32(binary.BigEndian.Uint32(tail[:4]))) * time.Second)
		if tail[4]&0x80 != 0 {
			at = time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC)
		}
		es = append(es, crl.Entry{Serial: serial, RevokedAt: at, Reason: crl.Reason(tail[4] & 7)})
	}
	return es
}

// refValid is RFC 5280 and CPS §4.9.9 stated directly: each serial a positive INTEGER of
// at most 20 octets in DER (§4.1.2.2, §5.1.2.6), reason 0–6, revocation time encodable
// (1950–9999, §5.1.2.4), serials strictly ascending (the writer's streaming contract).
func refValid(es []crl.Entry) bool {
	var prev *big.Int
	for _, e := range es {
		s := new(big.Int).SetBytes(e.Serial)
		der := s.Bytes()
		if s.Sign() == 0 || len(der) > 20 || len(der) == 20 && der[0]&0x80 != 0 {
			return false
		}
		if e.Reason < 0 || e.Reason > 6 || e.RevokedAt.Year() < 1950 || e.RevokedAt.Year() > 9999 {
			return false
		}
		if prev != nil && prev.Cmp(s) >= 0 {
			return false
		}
		prev = s
	}
	return true
}

// FuzzWriteCRL: the streaming CRL writer for arbitrary entry sets. It accepts exactly the
// lists the RFC 5280 rules above accept; an accepted list gives byte for byte the CRL
// crypto/x509 makes from the same list (RSA PKCS #1 v1.5 is deterministic), which
// x509.ParseRevocationList reads back to the same entries, number and times and whose
// signature verifies under the issuer; a refused list writes nothing.
func FuzzWriteCRL(f *testing.F) {
	ca := newTestCA(f)
	f.Add(uint64(1), []byte{})
	f.Add(uint64(42), []byte{1, 0x10, 0, 0, 0, 0, 1, 2, 0x00, 0x20, 0xff, 0xff, 0xff, 0xf0, 6})
	f.Add(uint64(7), []byte{16, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x7f, 0xff, 0xff, 0xff, 4})
	f.Add(uint64(7), []byte{20, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 0, 0, 0, 0, 1})
	f.Add(uint64(7), []byte{1, 5, 0, 0, 0, 0, 1, 1, 5, 0, 0, 0, 0, 1})    // duplicate serial
	f.Add(uint64(7), []byte{1, 0, 0, 0, 0, 0, 1, 1, 5, 0, 0, 0, 0, 0x81}) // zero serial, 1949
	f.Add(uint64(1<<63), []byte{21, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 0, 0, 0, 0, 7})
	f.Fuzz(func(t *testing.T, number uint64, raw []byte) {
		es := fuzzEntries(raw)
		p := params(ca, 0)
		p.Number = new(big.Int).SetUint64(number)
		var buf bytes.Buffer
		res, err := crl.Write(context.Background(), &buf, p, crl.SliceEntries(es))
		if ok := refValid(es); ok != (err == nil) {
			t.Fatalf("%d entries: reference says valid=%v, Write: %v", len(es), ok, err)
		}
		if err != nil {
			if !errors.Is(err, crl.ErrEntry) && !errors.Is(err, crl.ErrOrder) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if buf.Len() != 0 {
				t.Fatalf("refused list wrote %d bytes", buf.Len())
			}
			return
		}
		der := buf.Bytes()
		if res.Bytes != int64(len(der)) || res.Entries != len(es) {
			t.Fatalf("result %+v for %d bytes, %d entries", res, len(der), len(es))
		}
		std := make([]x509.RevocationListEntry, len(es))
		for i, e := range es {
			std[i] = x509.RevocationListEntry{SerialNumber: new(big.Int).SetBytes(e.Serial), RevocationTime: e.RevokedAt, ReasonCode: int(e.Reason)}
		}
		want, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: p.Number, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(crl.DefaultValidity), RevokedCertificateEntries: std,
		}, ca.cert, ca.key)
		if err != nil {
			t.Fatalf("crypto/x509 refuses the list: %v", err)
		}
		if !bytes.Equal(der, want) {
			t.Fatalf("streaming CRL differs from crypto/x509's (%d and %d bytes)", len(der), len(want))
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := rl.CheckSignatureFrom(ca.cert); err != nil {
			t.Fatal(err)
		}
		if rl.Number.Cmp(p.Number) != 0 || !rl.ThisUpdate.Equal(thisUpdate) || len(rl.RevokedCertificateEntries) != len(es) {
			t.Fatalf("parsed number %v, thisUpdate %v, %d entries", rl.Number, rl.ThisUpdate, len(rl.RevokedCertificateEntries))
		}
		for i, e := range rl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(std[i].SerialNumber) != 0 || !e.RevocationTime.Equal(es[i].RevokedAt) || e.ReasonCode != int(es[i].Reason) {
				t.Fatalf("entry %d parsed as %v %v %d", i, e.SerialNumber, e.RevocationTime, e.ReasonCode)
			}
		}
	})
}
