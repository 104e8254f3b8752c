package crl

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"
)

// HexEach is the shape of a store iterator that yields serials as
// hexadecimal text (any case, with or without leading zeros) in ascending
// numeric order, e.g. the store's RevokedSnapshot.Each.
type HexEach func(ctx context.Context, yield func(serial string, at time.Time, reason int) bool) error

// HexEntries adapts a HexEach to Entries, decoding each serial into a reused
// buffer. A serial that is not hexadecimal stops the iteration with ErrEntry.
func HexEntries(ctx context.Context, each HexEach) Entries {
	return func(yield func(Entry) bool) error {
		var buf [maxSerialOctets + 1]byte
		var bad error
		err := each(ctx, func(serial string, at time.Time, reason int) bool {
			s := serial
			if len(s)%2 == 1 {
				s = "0" + s
			}
			if len(s)/2 > len(buf) {
				bad = fmt.Errorf("%w: serial %q longer than 20 octets", ErrEntry, serial)
				return false
			}
			n, err := hex.Decode(buf[:], []byte(s))
			if err != nil {
				bad = fmt.Errorf("%w: serial %q: %w", ErrEntry, serial, err)
				return false
			}
			return yield(Entry{Serial: buf[:n], RevokedAt: at, Reason: Reason(reason)})
		})
		if bad != nil {
			return bad
		}
		return err
	}
}
