package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

func writeBatch(t *testing.T, n int) (string, []vcard.StockEntry) {
	t.Helper()
	var entries []vcard.StockEntry
	for i := range n {
		serial := vcardtest.Serial(byte(0x70 + i))
		keys, err := vcardtest.Issuer.CardKeys(serial)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, vcard.StockEntry{Serial: serial, Keys: keys})
	}
	var buf bytes.Buffer
	if err := vcard.WriteKeyBatch(&buf, entries); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "batch.txt")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, entries
}

func TestStockMakesBlankCards(t *testing.T) {
	batch, entries := writeBatch(t, 3)
	out := filepath.Join(t.TempDir(), "stock")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"stock", "--count", "2", "--out", out, "--keys", batch}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	paths := strings.Fields(stdout.String())
	if len(paths) != 2 {
		t.Fatalf("printed %q, want 2 paths", stdout.String())
	}
	for i, p := range paths {
		if p != vcard.StatePathFor(out, entries[i].Serial) {
			t.Fatalf("path %s", p)
		}
		c, err := vcard.Open(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.Serial(), entries[i].Serial) || c.Lifecycle() != vcard.LifecycleBlank {
			t.Fatalf("card %d: serial %X lifecycle %s", i, c.Serial(), c.Lifecycle())
		}
		if st, _, _ := c.PINStatus(vcard.EFUserAuthPIN); st != vcard.PINNotSet {
			t.Fatalf("card %d: pin %s", i, st)
		}
		info, err := os.Stat(p)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("state file mode %v %v, want 0600 (it holds card keys)", info.Mode(), err)
		}
	}
	// A card is manufactured once.
	stderr.Reset()
	if code := run(context.Background(), []string{"stock", "--count", "1", "--out", out, "--keys", batch}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "already exists") {
		t.Fatalf("second stock run: exit %d, %s", code, stderr.String())
	}
}

func TestStockRefusesBadInput(t *testing.T) {
	batch, _ := writeBatch(t, 1)
	bad := filepath.Join(t.TempDir(), "bad.txt")
	os.WriteFile(bad, []byte("00112233 44\n"), 0o600)
	dup := filepath.Join(t.TempDir(), "dup.txt")
	b, _ := os.ReadFile(batch)
	os.WriteFile(dup, append(b, b...), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stock", "--count", "2", "--out", t.TempDir(), "--keys", batch}, "has 1 cards, 2 asked"},
		{[]string{"stock", "--count", "1", "--out", t.TempDir(), "--keys", bad}, "line 1: 2 fields"},
		{[]string{"stock", "--count", "1", "--out", t.TempDir(), "--keys", dup}, "appears twice"},
		{[]string{"stock", "--out", t.TempDir(), "--keys", batch}, "needs --count"},
		{[]string{"run", "--port", "35963"}, "needs --state"},
		{[]string{"run", "--state", batch, "--fault", "explode"}, "unknown fault"},
		{[]string{"run", "--state", batch, "--fault", "garbage@0"}, "want garbage@N"},
		{[]string{"run", "--state", batch, "--fault", "seed=x"}, "want seed=S"},
		{[]string{"fly"}, "unknown command"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestRunPlugsCardIntoSecondReader runs `vcard run` against the real pcscd on the second vpcd
// reader with an injected fault, and reads the card through cardio.
func TestRunPlugsCardIntoSecondReader(t *testing.T) {
	env := testenv.PCSCD(t)
	path := filepath.Join(t.TempDir(), "card.json")
	l := vcardtest.Personalised(t, path, 0x7A)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"run", "--state", path, "--port", fmt.Sprint(env.Ports[1]), "--fault", "sw@1=6A88"}, &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() { cancel(); <-done })
	vcardtest.WaitPresent(t, env.Readers[1], true)
	pc := vcardtest.Connect(t, env.Readers[1])
	rsp, err := pc.Transmit(context.Background(), []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01})
	if err != nil || !bytes.Equal(rsp, []byte{0x6A, 0x88}) {
		t.Fatalf("first apdu with sw@1=6A88: % X %v", rsp, err)
	}
	api := cardio.New(pc)
	serial, err := api.CardSerial(context.Background())
	if err != nil || !bytes.Equal(serial, vcardtest.Serial(0x7A)) {
		t.Fatalf("serial %X %v", serial, err)
	}
	got, err := api.ReadCertificate(context.Background(), cardio.FileUserAuthCert)
	if err != nil || !bytes.Equal(got, l.AuthCert) {
		t.Fatalf("certificate: %v", err)
	}
	pc.Close(false)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run exited %d: %s", code, stderr.String())
	}
	done <- 0
}

// TestRunCorruptsAnswers runs `vcard run --fault seed=5 --fault truncate@1 --fault garbage@2`:
// the first answer arrives cut short and the second as random bytes, each an error (or a
// status word that is not 9000) of that APDU at the PC/SC layer, and the third is the card's
// own again.
func TestRunCorruptsAnswers(t *testing.T) {
	env := testenv.PCSCD(t)
	path := filepath.Join(t.TempDir(), "card.json")
	vcardtest.Personalised(t, path, 0x7B)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"run", "--state", path, "--port", fmt.Sprint(env.Ports[1]),
			"--fault", "seed=5", "--fault", "truncate@1", "--fault", "garbage@2"}, &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() { cancel(); <-done })
	vcardtest.WaitPresent(t, env.Readers[1], true)
	pc := vcardtest.Connect(t, env.Readers[1])
	selectAP := []byte{0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}
	if rsp, err := pc.Transmit(context.Background(), selectAP); err == nil {
		t.Fatalf("truncated answer: % X without an error", rsp)
	}
	if rsp, err := pc.Transmit(context.Background(), selectAP); err == nil && bytes.Equal(rsp, []byte{0x90, 0x00}) {
		t.Fatal("garbage answer: 90 00")
	}
	if rsp, err := pc.Transmit(context.Background(), selectAP); err != nil || !bytes.Equal(rsp, []byte{0x90, 0x00}) {
		t.Fatalf("third apdu: % X %v", rsp, err)
	}
}
