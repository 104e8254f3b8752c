package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"madoguchi/ca-server/ceremony"
	"madoguchi/internal/testenv"
)

// Custodian controls (TS Art. 27, 45; CPS §5.2.1.1, §6.2), run through the
// real commands on a real SoftHSM token.

const (
	alicePass = "alice: heron over the river"
	bobPass   = "bob keeps seven blue lanterns"
	carolPass = "carol: tide, salt & cedar"
)

// Attack: a non-dev key ceremony run by one person with no passphrases:
// every share unsealed, all of them written into one directory, so whoever
// reads that directory holds M shares (the token PINs). On the code before
// this change the attack succeeded: `ceremony-init --custodians alice,bob
// --threshold 2 --shares-out DIR` made the CA with two unsealed shares in
// DIR.
func TestCeremonyInitWithoutPassphrasesRefused(t *testing.T) {
	testenv.SoftHSM(t)
	ceremony.UseTestCosts(t)
	data, shares := t.TempDir(), t.TempDir()
	_, err := runCeremonyCmd(t, "ceremony-init", "--data", data, "--custodians", "alice,bob", "--threshold", "2", "--shares-out", shares)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--share-out NAME=PATH") {
		t.Fatalf("non-dev ceremony with one shares dir and no passphrases: %v", err)
	}
	own := func(name string) string { return filepath.Join(t.TempDir(), name+".share") }
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no passphrase, no terminal": {nil, "no terminal to ask on"},
		"empty passphrase":           {[]string{"--passphrase", "alice=" + secretFD(t, ""), "--passphrase", "bob=" + secretFD(t, bobPass)}, "empty secret"},
		"short passphrase":           {[]string{"--passphrase", "alice=" + secretFD(t, "short one"), "--passphrase", "bob=" + secretFD(t, bobPass)}, "at least 12 characters"},
		"trivial passphrase":         {[]string{"--passphrase", "alice=" + secretFD(t, "password1234"), "--passphrase", "bob=" + secretFD(t, bobPass)}, "too easy to guess"},
		"one passphrase for both":    {[]string{"--passphrase", "alice=" + secretFD(t, bobPass), "--passphrase", "bob=" + secretFD(t, bobPass)}, "the same passphrase"},
		"passphrase from env":        {[]string{"--passphrase", "alice=env:HOME", "--passphrase", "bob=" + secretFD(t, bobPass)}, "never from a file or the environment"},
	} {
		args := append([]string{"ceremony-init", "--data", data, "--custodians", "alice,bob", "--threshold", "2",
			"--share-out", "alice=" + own("alice"), "--share-out", "bob=" + own("bob")}, c.args...)
		if _, err := runCeremonyCmd(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if _, err := ceremony.LoadState(data); !errors.Is(err, ceremony.ErrNotInitialised) {
		t.Fatalf("a refused ceremony made a CA: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(shares, "*")); len(m) != 0 {
		t.Fatalf("a refused ceremony wrote %v", m)
	}
}

// Attack: every custodian's share written into one directory (one USB
// stick, one backup folder): whoever takes it holds M shares. On the code
// before this change the attack succeeded (--shares-out DIR wrote all
// three there; see TestCeremonyInitWithoutPassphrasesRefused); now two
// --share-out destinations in one directory, or an existing file, are
// refused, and the honest ceremony gives each custodian one sealed 0600
// file, activated with each custodian's passphrase on a descriptor.
func TestSharesInOneDirectoryRefused(t *testing.T) {
	testenv.SoftHSM(t)
	ceremony.UseTestCosts(t)
	data := t.TempDir()
	one := t.TempDir()
	pass := func() []string {
		return []string{"--passphrase", "alice=" + secretFD(t, alicePass), "--passphrase", "bob=" + secretFD(t, bobPass), "--passphrase", "carol=" + secretFD(t, carolPass)}
	}
	init := func(outs ...string) (string, error) {
		args := []string{"ceremony-init", "--data", data, "--custodians", "alice,bob,carol", "--threshold", "2"}
		for i, n := range []string{"alice", "bob", "carol"} {
			args = append(args, "--share-out", n+"="+outs[i])
		}
		return runCeremonyCmd(t, append(args, pass()...)...)
	}
	alice, bob, carol := filepath.Join(t.TempDir(), "alice.share"), filepath.Join(t.TempDir(), "bob.share"), filepath.Join(t.TempDir(), "carol.share")
	if _, err := init(filepath.Join(one, "a.share"), filepath.Join(one, "b.share"), carol); !errors.Is(err, ceremony.ErrBadInput) || !strings.Contains(err.Error(), "one directory") {
		t.Fatalf("two shares in one directory: %v", err)
	}
	link := filepath.Join(t.TempDir(), "same")
	os.Symlink(one, link)
	if _, err := init(filepath.Join(one, "a.share"), filepath.Join(link, "b.share"), carol); !errors.Is(err, ceremony.ErrBadInput) {
		t.Fatalf("two shares in one directory through a link: %v", err)
	}
	os.WriteFile(bob, []byte("old"), 0o600)
	if _, err := init(alice, bob, carol); !errors.Is(err, ceremony.ErrBadInput) || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("existing share file: %v", err)
	}
	os.Remove(bob)
	if _, err := init(alice, filepath.Join(data, "bob.share"), carol); !errors.Is(err, ceremony.ErrBadInput) {
		t.Fatalf("share in the data directory: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(one, "*")); len(m) != 0 {
		t.Fatalf("refused ceremonies wrote %v", m)
	}
	if out, err := init(alice, bob, carol); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, p := range []string{alice, bob, carol} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", p, fi, err)
		}
		sf, err := ceremony.ReadShareFile(p)
		if err != nil || sf.Sealed == nil || sf.Share != nil {
			t.Fatalf("%s not sealed: %v", p, err)
		}
	}
	if _, err := runCeremonyCmd(t, "ceremony-activate", "--data", data, "--share", alice+"="+secretFD(t, alicePass), "--share", carol+"="+secretFD(t, bobPass)); !errors.Is(err, ceremony.ErrBadShare) {
		t.Fatalf("activation with another custodian's passphrase: %v", err)
	}
	if _, err := runCeremonyCmd(t, "ceremony-activate", "--data", data, "--share", alice, "--share", carol); err == nil || !strings.Contains(err.Error(), "no terminal to ask on") {
		t.Fatalf("activation asks each custodian: %v", err)
	}
	out, err := runCeremonyCmd(t, "ceremony-activate", "--data", data, "--share", alice+"="+secretFD(t, alicePass), "--share", carol+"="+secretFD(t, carolPass))
	if err != nil || !strings.Contains(out, "alice, carol") {
		t.Fatalf("activate: %v\n%s", err, out)
	}

	// Attack: a share file whose argon2 memory cost says 48 GiB. On the
	// code before this change ReadShareFile accepted it and activation
	// handed the cost to argon2.IDKey, which allocates it before the
	// passphrase is checked (seen: the old ReadShareFile returned the file
	// without error; the allocation itself was not run on the shared test
	// machine). Now it is refused while reading, naming file and parameter,
	// and nothing near that size is allocated.
	sf, _ := ceremony.ReadShareFile(bob)
	sf.Sealed.MemKiB = 48 << 20
	b, _ := json.Marshal(sf)
	bomb := filepath.Join(t.TempDir(), "bob-bomb.share")
	os.WriteFile(bomb, b, 0o600)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = runCeremonyCmd(t, "ceremony-activate", "--data", data, "--share", alice+"="+secretFD(t, alicePass), "--share", bomb+"="+secretFD(t, bobPass))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ceremony.ErrBadShare) || !strings.Contains(err.Error(), bomb) || !strings.Contains(err.Error(), "argon2 memory 50331648 KiB") {
		t.Fatalf("share with a 48 GiB argon2 cost: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<30 {
		t.Fatalf("refusing the crafted share allocated %d bytes", grew)
	}
	// the same without a passphrase on the command line: refused before
	// anybody is asked
	if _, err := runCeremonyCmd(t, "ceremony-activate", "--data", data, "--share", bomb); !errors.Is(err, ceremony.ErrBadShare) {
		t.Fatalf("crafted share before the prompt: %v", err)
	}
	for name, mut := range map[string]func(p *ceremony.SealParam){
		"argon2 time":    func(p *ceremony.SealParam) { p.Time = 1 << 30 },
		"argon2 threads": func(p *ceremony.SealParam) { p.Threads = 255 },
		"argon2 salt":    func(p *ceremony.SealParam) { p.Salt = make([]byte, 1<<12) },
		"nonce":          func(p *ceremony.SealParam) { p.Nonce = nil },
	} {
		sf, _ := ceremony.ReadShareFile(bob)
		mut(sf.Sealed)
		b, _ := json.Marshal(sf)
		p := filepath.Join(t.TempDir(), "x.share")
		os.WriteFile(p, b, 0o600)
		if _, err := ceremony.ReadShareFile(p); !errors.Is(err, ceremony.ErrBadShare) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s out of bounds: %v", name, err)
		}
	}
}
