package ceremony

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckPassphrase(t *testing.T) {
	for _, weak := range []string{"", "short", "elevenchars", "aaaaaaaaaaaaaaa", "abcdefghijklmn", "123456789012", "Password 2026!",
		"passw0rdpassw0rd", "abcabcabcabcabc", "alicealice12", "zyxwvutsrqpon", "madoguchi-ca1"} {
		if err := CheckPassphrase("alice", weak); !errors.Is(err, ErrWeakPassphrase) || !errors.Is(err, ErrBadInput) {
			t.Errorf("%q accepted: %v", weak, err)
		}
		if err := CheckPassphrase("alice", weak); err != nil && weak != "" && strings.Contains(err.Error(), weak) {
			t.Errorf("error shows the passphrase: %v", err)
		}
	}
	for _, ok := range []string{"alice: heron over the river", "tide, salt & cedar", "青い鳥が朝の川を渡る十二文字"} {
		if err := CheckPassphrase("alice", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// The library enforces the custody rules too, not only the command: a
// non-dev ceremony with a custodian without a passphrase, two custodians
// with one passphrase, or one directory for all shares, is refused before
// a token is made.
func TestNonDevCustodyRules(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Now()}
	dir := t.TempDir()
	root := t.TempDir()
	for name, c := range map[string]struct {
		o    InitOptions
		want error
	}{
		"no passphrase":     {InitOptions{Custodians: outs(t, root+"/1", []Custodian{{Name: "a"}, custodians[1]}), Threshold: 2}, ErrWeakPassphrase},
		"one for both":      {InitOptions{Custodians: outs(t, root+"/2", []Custodian{{Name: "a", Passphrase: bobPass}, custodians[1]}), Threshold: 2}, ErrWeakPassphrase},
		"one shares dir":    {InitOptions{Custodians: custodians, Threshold: 2, SharesDir: t.TempDir()}, ErrBadInput},
		"one dir, two outs": {InitOptions{Custodians: []Custodian{{Name: "alice", Passphrase: alicePass, ShareOut: root + "/x.share"}, {Name: "bob", Passphrase: bobPass, ShareOut: root + "/y.share"}}, Threshold: 2}, ErrBadInput},
		"no destination":    {InitOptions{Custodians: custodians, Threshold: 2}, ErrBadInput},
	} {
		c.o.Common = common(t, dir, clk)
		if _, err := Init(ctx, c.o); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := LoadState(dir); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("a refused init made a CA: %v", err)
	}
}
