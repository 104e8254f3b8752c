package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/ca-server/ceremony"
)

// runCeremonyCmd runs a registered command's run function like main does.
func runCeremonyCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c, ok := commands[args[0]]
	if !ok {
		t.Fatalf("command %q not registered", args[0])
	}
	var out, errb bytes.Buffer
	err := c.run(args[1:], &out, &errb)
	return out.String() + errb.String(), err
}

func TestCeremonyCommandsListed(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, n := range []string{"ceremony-init", "ceremony-activate", "ceremony-backup", "ceremony-restore", "ceremony-destroy", "card-batch",
		"ceremony-rollover", "ceremony-retire", "ceremony-rekey-card-masters", "ca-fingerprints"} {
		if !strings.Contains(out.String(), n) {
			t.Errorf("--help does not list %s", n)
		}
	}
}

// The whole dev ceremony through the command run functions, on real SoftHSM.
func TestDevCeremonyCommands(t *testing.T) {
	t.Setenv("SOFTHSM2_CONF", "")
	data := t.TempDir()
	out, err := runCeremonyCmd(t, "ceremony-init", "--data", data, "--dev", "--signature-ca-name", "Dev Sig CA")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if !strings.Contains(out, "NEVER USE IT FOR A PRODUCTION CA") {
		t.Fatalf("no dev warning:\n%s", out)
	}
	if !strings.Contains(out, "SHA-256 ") || !strings.Contains(out, "SHA-1 ") {
		t.Fatalf("init printed no fingerprints:\n%s", out)
	}
	if out, err := runCeremonyCmd(t, "ceremony-activate", "--data", data, "--dev"); err != nil || !strings.Contains(out, "succeeded") {
		t.Fatalf("activate: %v\n%s", err, out)
	}
	// Rollover of the signature CA; the fingerprints of the new CA and link
	// certificates are printed at the ceremony and by ca-fingerprints.
	if _, err := runCeremonyCmd(t, "ceremony-rollover", "--data", data, "--dev", "--ca", "stamp"); !errors.Is(err, errUsage) {
		t.Fatalf("rollover of an unknown ca: %v", err)
	}
	rout, err := runCeremonyCmd(t, "ceremony-rollover", "--data", data, "--dev", "--ca", "signature")
	if err != nil {
		t.Fatalf("rollover: %v\n%s", err, rout)
	}
	fout, err := runCeremonyCmd(t, "ca-fingerprints", "--data", data)
	if err != nil {
		t.Fatalf("ca-fingerprints: %v\n%s", err, fout)
	}
	st, _ := ceremony.LoadState(data)
	pub, _ := ceremony.PublishedFingerprints(st)
	if len(pub) != 5 {
		t.Fatalf("%d published certificates", len(pub))
	}
	for _, p := range pub {
		if !strings.Contains(fout, ceremony.Colons(p.SHA256)) || !strings.Contains(fout, ceremony.Colons(p.SHA1)) {
			t.Fatalf("ca-fingerprints lacks %s:\n%s", p.Path, fout)
		}
		if (p.Kind != "ca" || p.Generation == 2) && !strings.Contains(rout, ceremony.Colons(p.SHA256)) {
			t.Fatalf("rollover did not print %s:\n%s", p.Path, rout)
		}
	}
	for _, want := range []string{"generation 1 (crl-only)", "generation 2 (issuing)", "old-with-new", "new-with-old"} {
		if !strings.Contains(fout, want) {
			t.Fatalf("ca-fingerprints lacks %q:\n%s", want, fout)
		}
	}
	if out, err := runCeremonyCmd(t, "ceremony-activate", "--data", data, "--dev"); err != nil || !strings.Contains(out, "generation 1 CRL-only until") {
		t.Fatalf("activate after rollover: %v\n%s", err, out)
	}
	if _, err := runCeremonyCmd(t, "ceremony-retire", "--data", data, "--dev", "--ca", "signature", "--generation", "1"); !errors.Is(err, ceremony.ErrStillSigningCRLs) {
		t.Fatalf("retire while its certificates may be valid: %v", err)
	}
	batch := filepath.Join(t.TempDir(), "batch.txt")
	if out, err := runCeremonyCmd(t, "card-batch", "--data", data, "--dev", "--count", "3", "--out", batch); err != nil {
		t.Fatalf("card-batch: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(batch)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || len(strings.Fields(lines[0])) != 4 || len(strings.Fields(lines[0])[0]) != 32 {
		t.Fatalf("batch file:\n%s", b)
	}
	if fi, _ := os.Stat(batch); fi.Mode().Perm() != 0o600 {
		t.Fatalf("batch file mode %v", fi.Mode())
	}
	backups := t.TempDir()
	if out, err := runCeremonyCmd(t, "ceremony-backup", "--data", data, "--dev", "--out", backups); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	bf, _ := filepath.Glob(filepath.Join(backups, "backup-*.json"))
	kek, _ := filepath.Glob(filepath.Join(data, "dev-shares", "backup-kek-*.share"))
	if len(bf) != 1 || len(kek) != 1 {
		t.Fatalf("backup files %v, kek shares %v", bf, kek)
	}
	newData := t.TempDir()
	pass := "file:" + filepath.Join(data, "dev-shares", "dev.passphrase")
	if out, err := runCeremonyCmd(t, "ceremony-restore", "--data", newData, "--dev", "--backup", bf[0], "--kek-share", kek[0]+"="+pass); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if out, err := runCeremonyCmd(t, "ceremony-activate", "--data", newData, "--dev"); err != nil {
		t.Fatalf("activate restored: %v\n%s", err, out)
	}
	if _, err := runCeremonyCmd(t, "ceremony-destroy", "--data", data, "--dev"); !errors.Is(err, errUsage) {
		t.Fatalf("destroy without --confirm: %v", err)
	}
	if out, err := runCeremonyCmd(t, "ceremony-destroy", "--data", data, "--dev", "--confirm", "destroy-all-ca-keys"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	if _, err := os.Stat(bf[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("backup file survived destroy")
	}
	if _, err := runCeremonyCmd(t, "ceremony-activate", "--data", data, "--dev"); !errors.Is(err, ceremony.ErrDestroyed) {
		t.Fatalf("activate after destroy: %v", err)
	}
	if err := ceremony.VerifyRecord(ceremony.RecordPath(data)); err != nil {
		t.Fatal(err)
	}
}

// A 2-of-3 ceremony: each custodian's passphrase on a descriptor, each
// share to the custodian's own destination.
func TestCustodianCeremonyCommands(t *testing.T) {
	t.Setenv("SOFTHSM2_CONF", "")
	ceremony.UseTestCosts(t)
	data := t.TempDir()
	share := func(who string) string { return filepath.Join(t.TempDir(), who+".share") }
	alice, bob, carol := share("alice"), share("bob"), share("carol")
	out, err := runCeremonyCmd(t, "ceremony-init", "--data", data, "--custodians", "alice,bob,carol", "--threshold", "2",
		"--share-out", "alice="+alice, "--share-out", "bob="+bob, "--share-out", "carol="+carol,
		"--passphrase", "alice="+secretFD(t, alicePass), "--passphrase", "bob="+secretFD(t, bobPass), "--passphrase", "carol="+secretFD(t, carolPass))
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if _, err := runCeremonyCmd(t, "ceremony-activate", "--data", data, "--share", alice+"="+secretFD(t, alicePass)); !errors.Is(err, ceremony.ErrNotEnoughShares) {
		t.Fatalf("one custodian: %v", err)
	}
	out, err = runCeremonyCmd(t, "ceremony-activate", "--data", data, "--share", alice+"="+secretFD(t, alicePass), "--share", carol+"="+secretFD(t, carolPass))
	if err != nil || !strings.Contains(out, "alice, carol") {
		t.Fatalf("activate: %v\n%s", err, out)
	}
	own := func(n string) string { return n + "=" + share(n) }
	for name, args := range map[string][]string{
		"no data":           {"ceremony-activate"},
		"1-of-1 no dev":     {"ceremony-init", "--data", t.TempDir(), "--custodians", "a", "--threshold", "1", "--share-out", own("a"), "--passphrase", "a=" + secretFD(t, alicePass)},
		"pin-like flag":     {"ceremony-init", "--data", t.TempDir(), "--custodians", "a,b", "--threshold", "2", "--share-out", own("a"), "--share-out", own("b"), "--passphrase", "a=secret"},
		"stranger":          {"ceremony-init", "--data", t.TempDir(), "--custodians", "a,b", "--threshold", "2", "--share-out", own("a"), "--share-out", own("b"), "--passphrase", "z=" + secretFD(t, alicePass)},
		"stranger's share":  {"ceremony-init", "--data", t.TempDir(), "--custodians", "a,b", "--threshold", "2", "--share-out", own("a"), "--share-out", own("b"), "--share-out", own("z")},
		"share-out missing": {"ceremony-init", "--data", t.TempDir(), "--custodians", "a,b", "--threshold", "2", "--share-out", own("a")},
		"dev share-out":     {"ceremony-init", "--data", t.TempDir(), "--dev", "--share-out", own("a")},
		"batch no count":    {"card-batch", "--data", data, "--out", "x"},
		"stray argument":    {"ceremony-activate", "--data", data, "extra"},
		"dev with custody":  {"ceremony-init", "--data", t.TempDir(), "--dev", "--custodians", "a"},
	} {
		if _, err := runCeremonyCmd(t, args...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
