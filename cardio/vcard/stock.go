package vcard

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// StockEntry is one card of a key batch: its serial and diversified static keys, as the
// card manufacturer receives them from the CA's card-key batch (ca-server).
type StockEntry struct {
	Serial []byte
	Keys   StaticKeys
}

// ParseKeyBatch reads a card-key batch: one card per line, "serial-hex enc-hex mac-hex
// dek-hex" (16-byte serial, 16-byte keys), blank lines and lines starting with # ignored.
// A malformed line fails the whole batch with its line number; duplicate serials are refused.
func ParseKeyBatch(r io.Reader) ([]StockEntry, error) {
	var out []StockEntry
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("vcard: key batch line %d: %d fields, want 4", n, len(f))
		}
		var b [4][]byte
		for i, s := range f {
			v, err := hex.DecodeString(s)
			if err != nil || len(v) != 16 {
				return nil, fmt.Errorf("vcard: key batch line %d: field %d is not 16 bytes of hex", n, i+1)
			}
			b[i] = v
		}
		key := string(b[0])
		if seen[key] {
			return nil, fmt.Errorf("vcard: key batch line %d: serial %X appears twice", n, b[0])
		}
		seen[key] = true
		out = append(out, StockEntry{Serial: b[0], Keys: StaticKeys{ENC: b[1], MAC: b[2], DEK: b[3]}})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vcard: key batch: %w", err)
	}
	return out, nil
}

// WriteKeyBatch writes entries in the format ParseKeyBatch reads. The output holds card
// keys: write it only to a file with mode 0600.
func WriteKeyBatch(w io.Writer, entries []StockEntry) error {
	for _, e := range entries {
		if _, err := fmt.Fprintf(w, "%x %x %x %x\n", e.Serial, e.Keys.ENC, e.Keys.MAC, e.Keys.DEK); err != nil {
			return fmt.Errorf("vcard: key batch: %w", err)
		}
	}
	return nil
}

// StatePathFor is the state file of the card with serial in a stock directory.
func StatePathFor(dir string, serial []byte) string {
	return filepath.Join(dir, fmt.Sprintf("%X.json", serial))
}

// MakeStock creates a blank card state file in dir for each entry, named by serial, and
// returns the paths. It refuses to overwrite an existing card: a card is manufactured once.
func MakeStock(dir string, entries []StockEntry) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vcard: stock: %w", err)
	}
	var paths []string
	for _, e := range entries {
		p := StatePathFor(dir, e.Serial)
		if _, err := New(Config{Serial: e.Serial, Keys: e.Keys, StatePath: p}); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
