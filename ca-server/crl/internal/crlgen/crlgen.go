// Package crlgen generates deterministic revoked-entry lists for the CRL
// tests, benchmarks and the crlbench command: n entries with 16-byte
// serials in ascending order and a mix of reason codes, identical between the
// streaming source and the crypto/x509 slice so both writers sign the same
// list.
//
// Concurrency: every function is pure; the returned source may be iterated
// concurrently.
package crlgen

import (
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"time"

	"madoguchi/ca-server/crl"
)

// Base is the revocation time of entry 0; entry i is Base + i seconds.
var Base = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// reasonMix: a plausible JPKI mix (renewals dominate).
var reasonMix = [20]crl.Reason{
	4, 4, 4, 4, 4, 4, 4, // superseded 35 %
	3, 3, 3, 3, 3, // affiliationChanged 25 %
	5, 5, 5, // cessationOfOperation 15 %
	1, 1, // keyCompromise 10 %
	0, 0, // destroyed before delivery 10 %
	6, // certificateHold 5 %
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Entry fills serial (16 bytes) and returns entry i of the list for seed.
// Serials ascend with i: the top 8 bytes are 0x40… + i<<20 + noise below
// bit 20, the low 8 bytes pseudo-random.
func Entry(seed uint64, i int, serial *[16]byte) crl.Entry {
	r := splitmix(seed ^ uint64(i)*0x2545f4914f6cdd1d)
	hi := uint64(0x40)<<56 | uint64(i)<<20 | r>>44
	binary.BigEndian.PutUint64(serial[:8], hi)
	binary.BigEndian.PutUint64(serial[8:], splitmix(r))
	return crl.Entry{
		Serial:    serial[:],
		RevokedAt: Base.Add(time.Duration(i) * time.Second),
		Reason:    reasonMix[r%uint64(len(reasonMix))],
	}
}

// Source streams n entries for seed without holding them.
func Source(n int, seed uint64) crl.Entries {
	return func(yield func(crl.Entry) bool) error {
		var buf [16]byte
		for i := 0; i < n; i++ {
			if !yield(Entry(seed, i, &buf)) {
				return nil
			}
		}
		return nil
	}
}

// Stdlib returns the same n entries as crypto/x509 wants them, in memory.
func Stdlib(n int, seed uint64) []x509.RevocationListEntry {
	out := make([]x509.RevocationListEntry, n)
	var buf [16]byte
	for i := range out {
		e := Entry(seed, i, &buf)
		out[i] = x509.RevocationListEntry{
			SerialNumber:   new(big.Int).SetBytes(e.Serial),
			RevocationTime: e.RevokedAt,
			ReasonCode:     int(e.Reason),
		}
	}
	return out
}
