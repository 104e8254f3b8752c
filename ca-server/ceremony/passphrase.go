package ceremony

import (
	"crypto/subtle"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MinPassphraseLen is the shortest personal passphrase accepted, in
// characters, for a custodian's share and for a staff credential.
//
// Why 12 (and a small list of refused ones, NIST SP 800-63B §5.1.1.2: a
// length floor and a blocklist, no composition rules): the passphrase is
// the second factor beside possession of the share file (or presence at
// the CA's console), and it is stretched with argon2id at 64 MiB, t=3, so
// a thief of one share file tests a few guesses per second per core.
// 12 characters is above SP 800-63B's floor of 8 for a memorised secret
// with such a factor and leaves no practical brute-force margin even for
// lower-case words; the blocklist removes what guessing tries first.
const MinPassphraseLen = 12

// trivialPassphrases are refused whatever their length (after lower-casing
// and removing spaces): the ones guessed first.
var trivialPassphrases = []string{
	"password", "passphrase", "passw0rd", "123456789012", "1234567890123", "12345678901234",
	"qwertyuiopas", "qwertyuiop[]", "letmeinletmein", "changeme", "secret", "madoguchi",
	"administrator", "custodian", "iloveyou", "abcdefghijkl", "correcthorsebatterystaple",
}

// PassphraseRule states the rule for the command help.
const PassphraseRule = "at least 12 characters; not the person's name, not one character repeated, not a sequence or a common password"

// CheckPassphrase enforces PassphraseRule for person's passphrase. The
// error never contains the passphrase.
func CheckPassphrase(person, pass string) error {
	n := utf8.RuneCountInString(pass)
	if n < MinPassphraseLen {
		return fmt.Errorf("%w: the passphrase of %q has %d characters; %s", ErrWeakPassphrase, person, n, PassphraseRule)
	}
	norm := strings.ToLower(strings.Join(strings.Fields(pass), ""))
	if trivial(norm) {
		return fmt.Errorf("%w: the passphrase of %q is too easy to guess; %s", ErrWeakPassphrase, person, PassphraseRule)
	}
	if p := strings.ToLower(strings.Join(strings.Fields(person), "")); p != "" && utf8.RuneCountInString(strings.ReplaceAll(norm, p, "")) < MinPassphraseLen/2 {
		return fmt.Errorf("%w: the passphrase of %q is mostly their name; %s", ErrWeakPassphrase, person, PassphraseRule)
	}
	return nil
}

func trivial(norm string) bool {
	for _, t := range trivialPassphrases {
		// a listed word with up to 5 characters around it is as weak
		if strings.Contains(norm, t) && len(norm)-len(t) < 6 {
			return true
		}
	}
	rs := []rune(norm)
	same, up, down := true, true, true
	for i := 1; i < len(rs); i++ {
		same = same && rs[i] == rs[0]
		up = up && rs[i] == rs[i-1]+1
		down = down && rs[i] == rs[i-1]-1
	}
	if same || up || down {
		return true
	}
	// a pattern repeated ("abcabcabcabc", "1212121212121", "passw0rdpassw0rd")
	for k := 1; k <= len(rs)/2; k++ {
		rep := true
		for i := k; i < len(rs); i++ {
			if rs[i] != rs[i-k] {
				rep = false
				break
			}
		}
		if rep {
			return true
		}
	}
	return false
}

// distinctPassphrases refuses two custodians sharing one passphrase: the
// shares are sealed by each custodian's own secret, so one person who set
// them all would hold every share.
func distinctPassphrases(cs []Custodian) error {
	for i := range cs {
		for j := i + 1; j < len(cs); j++ {
			if subtle.ConstantTimeCompare([]byte(cs[i].Passphrase), []byte(cs[j].Passphrase)) == 1 {
				return fmt.Errorf("%w: %q and %q have the same passphrase: each custodian chooses their own", ErrWeakPassphrase, cs[i].Name, cs[j].Name)
			}
		}
	}
	return nil
}
