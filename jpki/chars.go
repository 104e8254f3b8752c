package jpki

import (
	"strconv"

	"golang.org/x/text/encoding/japanese"
)

// MaySubstitute reports whether r may stand in a certificate as a substitute
// character (代替文字). For a name the applicant chooses a similar character
// or the kana reading; for an address the substitute is fixed (R02
// II-2-5(4)(5)); either way it is a character the certificate's set can
// show. We accept a JIS X 0208 kanji (rows 16–84), hiragana, katakana and
// the prolonged-sound mark ー. A space, a digit, a letter, punctuation or a
// hyphen is never a substitute, and neither is a character outside JIS X
// 0208 (a 外字 cannot stand in for another). The CA refuses a '1' position
// at any other character: a position string that marks, say, the name
// separator or an un-substituted 𠮷 is not what the terminal meant.
func MaySubstitute(r rune) bool {
	switch {
	case r >= 0x3041 && r <= 0x3096, // hiragana
		r >= 0x30A1 && r <= 0x30FA, // katakana
		r == 0x30FC:                // ー
		return true
	}
	if r < 0x3400 {
		return false // not a CJK ideograph
	}
	b, err := japanese.EUCJP.NewEncoder().Bytes([]byte(string(r)))
	if err != nil || len(b) != 2 || b[0] < 0xa1 || b[1] < 0xa1 {
		return false
	}
	row := int(b[0]) - 0xa0
	return row >= 16 && row <= 84
}

// CheckSubstitutes checks that every '1' of positions (already parsed
// against text) falls on a character that may be a substitute.
func CheckSubstitutes(text string, substitutes []int) error {
	rs := []rune(text)
	for _, p := range substitutes {
		if p < 0 || p >= len(rs) || !MaySubstitute(rs[p]) {
			return ErrBadPositionsAt(p)
		}
	}
	return nil
}

// ErrBadPositionsAt wraps ErrBadPositions with the offending position (never
// the character: the text is personal data).
func ErrBadPositionsAt(p int) error { return &positionError{p} }

type positionError struct{ pos int }

func (e *positionError) Error() string {
	return "jpki: substitute position " + strconv.Itoa(e.pos) + " is not at a character a substitute may be"
}
func (e *positionError) Unwrap() error { return ErrBadPositions }

// Position is the offending character index.
func (e *positionError) Position() int { return e.pos }
