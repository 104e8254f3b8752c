package resident

import (
	"golang.org/x/text/encoding/japanese"

	"madoguchi/app/apperr"
)

// Outside is one character of a name or address outside the system's character set (外字).
type Outside struct {
	Pos  int  // rune index in the string
	Char rune // the character
}

// InCharset reports whether r is in the certificate character set: printable ASCII and
// JIS X 0208 (rows 1–8 and 16–84). Characters of the vendor extension rows (髙, 﨑), of
// JIS X 0212/0213 and outside the BMP (𠮷) are not (R02 II-2-5(4)).
func InCharset(r rune) bool {
	if r >= 0x20 && r < 0x7f {
		return true
	}
	b, err := japanese.EUCJP.NewEncoder().Bytes([]byte(string(r)))
	if err != nil || len(b) != 2 || b[0] < 0xa1 {
		return false
	}
	row := int(b[0]) - 0xa0
	return (row >= 1 && row <= 8) || (row >= 16 && row <= 84)
}

// FindOutside lists the characters of s outside the character set, with their positions.
func FindOutside(s string) []Outside {
	var out []Outside
	for i, r := range []rune(s) {
		if !InCharset(r) {
			out = append(out, Outside{Pos: i, Char: r})
		}
	}
	return out
}

// similar maps 外字 to the similar JIS X 0208 characters commonly used in their place.
var similar = map[rune][]rune{
	'髙': {'高'}, '﨑': {'崎'}, '𠮷': {'吉'}, '德': {'徳'}, '濵': {'浜', '濱'}, '邊': {'辺', '邉'},
	'隆': {'隆'}, '櫻': {'桜'}, '塚': {'塚'}, '琢': {'琢'}, '淸': {'清'}, '晴': {'晴'},
}

// Candidates returns the substitutes the applicant may choose for a name character: similar
// characters first, then the kana reading is always possible (R02 II-2-5(4)).
func Candidates(r rune) []string {
	var out []string
	for _, s := range similar[r] {
		if InCharset(s) {
			out = append(out, string(s))
		}
	}
	return out
}

// FixedSubstitute returns the pre-determined substitute for an address character
// (R02 II-2-5(5): for addresses the substitute is fixed in advance).
func FixedSubstitute(r rune) (string, error) {
	for _, s := range similar[r] {
		if InCharset(s) {
			return string(s), nil
		}
	}
	return "", apperr.New(apperr.InvalidInput, "resident: no fixed substitute for %q (U+%04X)", r, r)
}

// Substitution records one substituted character; the positions go into the certificate
// (R02 II-2-5(4)(5)).
type Substitution struct {
	Field       string `json:"field"` // "name", "alias_name", "former_surname", "address"
	Pos         int    `json:"pos"`   // rune index in the original value
	Original    string `json:"original"`
	Substitute  string `json:"substitute"`
	ChosenByApp bool   `json:"chosen_by_applicant"`
}

// Apply returns s with each substitution of field applied (positions refer to the original).
func Apply(s, field string, subs []Substitution) (string, error) {
	out, _, err := ApplyWithPositions(s, field, subs)
	return out, err
}

// ApplyWithPositions is Apply that also returns the substitute positions of the result, as the
// certificate records them (R02 II-2-5(4)(5); J-LIS profile: .5.5.2 name, .5.5.6 address):
// one '0' or '1' per character of the substituted text, '1' on every character of a
// substitute (a kana reading of two characters gives "11"). Empty s gives "", "".
func ApplyWithPositions(s, field string, subs []Substitution) (string, string, error) {
	rs := []rune(s)
	repl := map[int]string{}
	for _, sub := range subs {
		if sub.Field != field {
			continue
		}
		if sub.Pos < 0 || sub.Pos >= len(rs) || string(rs[sub.Pos]) != sub.Original {
			return "", "", apperr.New(apperr.InvalidInput, "resident: substitution at %d does not match %s", sub.Pos, field)
		}
		if InCharset(rs[sub.Pos]) {
			// Only a 外字 is substituted: a '1' in the certificate's positions must mark a
			// character that really stands for another (R02 II-2-5(4)(5)).
			return "", "", apperr.New(apperr.InvalidInput, "resident: %s character at %d is in the character set and needs no substitute", field, sub.Pos)
		}
		for _, r := range sub.Substitute {
			if !InCharset(r) {
				return "", "", apperr.New(apperr.InvalidInput, "resident: substitute %q is itself outside the character set", sub.Substitute)
			}
		}
		repl[sub.Pos] = sub.Substitute
	}
	out := make([]rune, 0, len(rs))
	var pos []byte
	for i, r := range rs {
		if v, ok := repl[i]; ok {
			for _, c := range v {
				out = append(out, c)
				pos = append(pos, '1')
			}
			continue
		}
		if !InCharset(r) {
			return "", "", apperr.New(apperr.InvalidInput, "resident: %s character %q at %d has no substitute", field, r, i)
		}
		out = append(out, r)
		pos = append(pos, '0')
	}
	return string(out), string(pos), nil
}
