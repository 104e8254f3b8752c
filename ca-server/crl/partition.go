package crl

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Partition splits one CA's CRL into Shards CRLs by serial range (RFC 5280
// §5.2.5 partitioned CRLs, as Boulder shards its CRLs): shard i lists the
// revoked certificates whose serial lies in Range(i), carries a critical
// IssuingDistributionPoint naming URL(i) with onlyContainsUserCerts, and
// every certificate names its shard's URL in its cRLDistributionPoints, so
// a relying party fetches and parses one shard, never the whole list
// (docs/CAPACITY.md: about 476 MB at 10,000,000 entries, 7.4 MB a shard
// at 64 shards).
//
// The ranges cut the CA's serial space [2^126, 2^127) in equal parts:
// issuance.newSerial draws 16 random octets with the top bits 01, so every
// shard receives the same share of certificates and its range is one
// indexed range scan in the store. Serials below the space belong to shard
// 0, serials above it to the last shard, so every serial is in exactly one
// shard.
type Partition struct {
	// Shards is the number of CRLs; 0 or 1 means one unpartitioned CRL.
	Shards int
	// URL is the distribution point template; "{shard}" is replaced by
	// the shard's number (decimal, from 0).
	URL string
}

// PlaceholderShard is replaced by the shard number in Partition.URL.
const PlaceholderShard = "{shard}"

var (
	serialSpaceLo   = new(big.Int).Lsh(big.NewInt(1), 126)
	serialSpaceSize = new(big.Int).Lsh(big.NewInt(1), 126)
)

func (p Partition) n() int { return max(p.Shards, 1) }

// Check reports a partition that cannot be published.
func (p Partition) Check() error {
	if p.Shards < 0 || p.Shards > 1<<16 {
		return fmt.Errorf("%w: %d CRL shards", ErrParams, p.Shards)
	}
	if p.Shards > 1 && !strings.Contains(p.URL, PlaceholderShard) {
		return fmt.Errorf("%w: partitioned CRL URL %q lacks %s", ErrParams, p.URL, PlaceholderShard)
	}
	return nil
}

// ShardOf returns the shard listing serial.
func (p Partition) ShardOf(serial *big.Int) int {
	n := p.n()
	off := new(big.Int).Sub(serial, serialSpaceLo)
	if off.Sign() < 0 {
		return 0
	}
	i := off.Mul(off, big.NewInt(int64(n))).Div(off, serialSpaceSize)
	if !i.IsInt64() || i.Int64() >= int64(n) {
		return n - 1
	}
	return int(i.Int64())
}

// Range returns the serials of shard i: lo ≤ serial < hi; lo is nil for
// the first shard (no lower bound) and hi nil for the last (no upper bound).
func (p Partition) Range(i int) (lo, hi *big.Int) {
	n := p.n()
	bound := func(k int) *big.Int {
		b := new(big.Int).Mul(serialSpaceSize, big.NewInt(int64(k)))
		return b.Div(b, big.NewInt(int64(n))).Add(b, serialSpaceLo)
	}
	if i > 0 {
		lo = bound(i)
	}
	if i < n-1 {
		hi = bound(i + 1)
	}
	return lo, hi
}

// URLFor returns the distribution point of shard i.
func (p Partition) URLFor(i int) string {
	return strings.ReplaceAll(p.URL, PlaceholderShard, strconv.Itoa(i))
}

// IDP returns the IssuingDistributionPoint of shard i: its URL and
// onlyContainsUserCerts (the CA certificates are on the ARL).
func (p Partition) IDP(i int) *IssuingDistributionPoint {
	return &IssuingDistributionPoint{URIs: []string{p.URLFor(i)}, OnlyContainsUserCerts: true}
}

// RangeEntries passes on the entries of src whose serial lies in
// [lo, hi) (nil: unbounded), for a source that cannot query a range
// itself. src is sorted by serial, so it stops at hi.
func RangeEntries(src Entries, lo, hi *big.Int) Entries {
	return func(yield func(Entry) bool) error {
		var v big.Int
		return src(func(e Entry) bool {
			v.SetBytes(e.Serial)
			if lo != nil && v.Cmp(lo) < 0 {
				return true
			}
			if hi != nil && v.Cmp(hi) >= 0 {
				return false
			}
			return yield(e)
		})
	}
}
