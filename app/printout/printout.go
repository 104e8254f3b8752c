// Package printout renders the counter's printed documents as A4 Japanese PDFs: the issuance
// notice with the explanations of TS Art. 9 / G Art. 8, the human-readable copy of a certificate
// (CPS §4.4.1.1) and the revocation acknowledgement (CPS §4.9.3.1).
//
// The documents are built from this package's plain structs (IssuanceNotice, CertificateCopy,
// RevocationNotice); convert.go holds the few helpers that fill them from workflow cases and
// X.509 certificates. The package never takes a PIN or a private key: none of its structs has a
// field for one (TS Art. 5(iv), CPS §6.4.1.2: PINs are the applicant's alone).
//
// Fonts: the PDF writer (github.com/signintech/gopdf) embeds only TrueType ('glyf') outlines,
// and the bundled Noto Sans CJK JP faces are CFF-based OpenType, so the caller passes a
// TrueType-outline conversion (testdata/make_ttf.py makes one). Each document embeds only the
// glyphs it uses. A character the font cannot draw is refused (*MissingGlyphError) rather than
// printed as a blank: a certificate copy must never silently differ from the certificate.
//
// Concurrency: a *Printer is immutable after New and safe for concurrent use; every document is
// rendered in its own PDF writer.
package printout

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/signintech/gopdf"

	"madoguchi/app/apperr"
)

// Fonts are the TrueType-outline font files the documents are set in.
type Fonts struct {
	Regular []byte // body text
	Bold    []byte // titles, headings and grid labels
}

// Printer renders the documents. The fonts are parsed once, in New.
type Printer struct {
	fonts    *gopdf.FontContainer
	coverage [2]*coverage // by fontRegular, fontBold
}

const (
	familyRegular = "MadoguchiPrintJP-Regular"
	familyBold    = "MadoguchiPrintJP-Bold"
)

// New parses the fonts. Both must be TrueType-outline fonts with a full-Unicode character map
// (cmap format 12), so that characters outside the Basic Multilingual Plane such as 𠮷, which
// occur in real names (DOMAIN §8), can be printed.
func New(f Fonts) (*Printer, error) {
	p := &Printer{fonts: &gopdf.FontContainer{}}
	for i, face := range []struct {
		family string
		data   []byte
	}{{familyRegular, f.Regular}, {familyBold, f.Bold}} {
		if len(face.data) == 0 {
			return nil, apperr.New(apperr.InvalidInput, "printout: font %s is missing", face.family)
		}
		if string(face.data[:min(4, len(face.data))]) == "OTTO" {
			return nil, apperr.New(apperr.InvalidInput, "printout: font %s has CFF outlines; the PDF writer needs TrueType outlines (see testdata/make_ttf.py)", face.family)
		}
		cov, err := readCoverage(face.data)
		if err != nil {
			return nil, apperr.Wrap(apperr.InvalidInput, err, "printout: font "+face.family)
		}
		if err := p.fonts.AddTTFFontDataWithOption(face.family, face.data, gopdf.TtfOption{
			// Characters are checked against the coverage before drawing; this only keeps
			// gopdf's own fallback (a space) from ever being reached unnoticed.
			OnGlyphNotFoundSubstitute: func(r rune) rune { return '\uFFFD' },
		}); err != nil {
			return nil, apperr.Wrap(apperr.InvalidInput, err, "printout: font "+face.family)
		}
		p.coverage[i] = cov
	}
	return p, nil
}

// MissingGlyphError reports a character the font cannot draw. It has kind InvalidInput.
type MissingGlyphError struct {
	Rune  rune
	Field string // the document field that holds it, e.g. "氏名"
}

func (e *MissingGlyphError) Error() string {
	return fmt.Sprintf("printout: the font has no glyph for %U in field %q", e.Rune, e.Field)
}

// ErrorKind implements apperr.Kinded.
func (e *MissingGlyphError) ErrorKind() apperr.Kind { return apperr.InvalidInput }

var _ apperr.Kinded = (*MissingGlyphError)(nil)

// jst is Japan Standard Time. Japan has no daylight saving time, so a fixed zone is exact and
// needs no time-zone database on the terminal.
var jst = time.FixedZone("JST", 9*60*60)

// coverage is the set of code points a font maps to a glyph, from its cmap format 12 subtable.
type coverage struct {
	groups []cmapGroup // sorted by start, disjoint
}

type cmapGroup struct{ start, end, glyph uint32 }

func (c *coverage) has(r rune) bool {
	i := sort.Search(len(c.groups), func(i int) bool { return c.groups[i].end >= uint32(r) })
	return i < len(c.groups) && c.groups[i].start <= uint32(r) && c.groups[i].glyph+uint32(r)-c.groups[i].start != 0
}

// readCoverage reads the (3,10) format 12 cmap subtable of a TrueType font.
func readCoverage(font []byte) (*coverage, error) {
	u16 := func(b []byte, off int) (int, bool) {
		if off < 0 || off+2 > len(b) {
			return 0, false
		}
		return int(binary.BigEndian.Uint16(b[off:])), true
	}
	u32 := func(b []byte, off int) (uint32, bool) {
		if off < 0 || off+4 > len(b) {
			return 0, false
		}
		return binary.BigEndian.Uint32(b[off:]), true
	}
	bad := fmt.Errorf("not a TrueType font with a cmap format 12 subtable")
	if v, ok := u32(font, 0); !ok || v != 0x00010000 {
		return nil, bad
	}
	numTables, _ := u16(font, 4)
	var cmap []byte
	for i := range numTables {
		rec := 12 + 16*i
		tag, ok := u32(font, rec)
		if !ok {
			return nil, bad
		}
		if tag != 0x636d6170 { // "cmap"
			continue
		}
		off, _ := u32(font, rec+8)
		n, _ := u32(font, rec+12)
		if uint64(off)+uint64(n) > uint64(len(font)) {
			return nil, bad
		}
		cmap = font[off : off+n]
	}
	if cmap == nil {
		return nil, bad
	}
	subtables, _ := u16(cmap, 2)
	for i := range subtables {
		platform, _ := u16(cmap, 4+8*i)
		encoding, _ := u16(cmap, 6+8*i)
		off, ok := u32(cmap, 8+8*i)
		if !ok || platform != 3 || encoding != 10 {
			continue
		}
		st := int(off)
		if format, ok := u16(cmap, st); !ok || format != 12 {
			continue
		}
		count, ok := u32(cmap, st+12)
		if !ok || uint64(st)+16+12*uint64(count) > uint64(len(cmap)) {
			return nil, bad
		}
		c := &coverage{groups: make([]cmapGroup, count)}
		for g := range c.groups {
			at := st + 16 + 12*g
			s, _ := u32(cmap, at)
			e, _ := u32(cmap, at+4)
			gl, _ := u32(cmap, at+8)
			c.groups[g] = cmapGroup{s, e, gl}
		}
		sort.Slice(c.groups, func(i, j int) bool { return c.groups[i].start < c.groups[j].start })
		return c, nil
	}
	return nil, bad
}
