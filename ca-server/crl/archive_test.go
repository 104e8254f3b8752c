package crl_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/crl"
)

func issueDaily(t *testing.T, a crl.Archive, ca *testCA, series string, days int) {
	t.Helper()
	for d := 0; d < days; d++ {
		p := params(ca, int64(100+d))
		p.ThisUpdate = thisUpdate.Add(time.Duration(d) * crl.DefaultIssueInterval)
		es := []crl.Entry{{Serial: []byte{byte(d + 1)}, RevokedAt: p.ThisUpdate.Add(-time.Minute), Reason: crl.ReasonSuperseded}}
		if _, _, err := crl.Issue(context.Background(), a, series, p, crl.SliceEntries(es)); err != nil {
			t.Fatalf("day %d: %v", d, err)
		}
	}
}

// TS Art. 17: every CRL issued is kept; the one in force at an instant is
// the newest whose validity covers it.
func TestArchiveInForce(t *testing.T) {
	ca := newTestCA(t)
	a, err := crl.NewFSArchive(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	issueDaily(t, a, ca, "auth-ca-2026", 3) // numbers 100, 101, 102 at day 0, 1, 2; each valid 72 h
	tests := []struct {
		at   time.Duration // after thisUpdate of CRL 100
		want int64         // -1: none
	}{
		{-time.Second, -1},
		{0, 100},
		{23 * time.Hour, 100},
		{24 * time.Hour, 101},
		{50 * time.Hour, 102},
		{4 * 24 * time.Hour, 102}, // 100 and 101 expired, 102 valid until day 5
		{5*24*time.Hour - time.Second, 102},
		{5 * 24 * time.Hour, -1},
	}
	for _, tt := range tests {
		m, err := a.InForce("auth-ca-2026", thisUpdate.Add(tt.at))
		if tt.want < 0 {
			if !errors.Is(err, crl.ErrNotFound) {
				t.Errorf("at +%v: %v, %v; want ErrNotFound", tt.at, m.Number, err)
			}
			continue
		}
		if err != nil || m.Number.Int64() != tt.want {
			t.Errorf("at +%v: %v, %v; want %d", tt.at, m.Number, err, tt.want)
		}
	}
	rc, m, err := a.Open("auth-ca-2026", big.NewInt(101))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	der, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(ca.cert); err != nil {
		t.Fatal(err)
	}
	if rl.Number.Int64() != 101 || !rl.ThisUpdate.Equal(m.ThisUpdate) || !rl.NextUpdate.Equal(m.NextUpdate) || m.Size != int64(len(der)) {
		t.Fatalf("archived %+v, CRL number %v this %v next %v", m, rl.Number, rl.ThisUpdate, rl.NextUpdate)
	}
	if _, _, err := a.Open("auth-ca-2026", big.NewInt(7)); !errors.Is(err, crl.ErrNotFound) {
		t.Fatalf("Open(7): %v", err)
	}
}

// Never overwritten: the same or a lower number is refused and the stored
// file is unchanged; a failed write leaves nothing behind.
func TestArchiveAppendOnly(t *testing.T) {
	ca := newTestCA(t)
	root := t.TempDir()
	a, err := crl.NewFSArchive(root)
	if err != nil {
		t.Fatal(err)
	}
	issueDaily(t, a, ca, "arl", 2) // 100, 101
	before, err := os.ReadDir(filepath.Join(root, "arl"))
	if err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(root, "arl", before[0].Name())
	content, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(first); err != nil || info.Mode().Perm() != 0o444 {
		t.Fatalf("mode %v, %v", info.Mode(), err)
	}

	p := params(ca, 101)
	p.ThisUpdate = thisUpdate.Add(72 * time.Hour)
	if _, _, err := crl.Issue(context.Background(), a, "arl", p, crl.SliceEntries(nil)); !errors.Is(err, crl.ErrExists) {
		t.Fatalf("same number: %v", err)
	}
	p.Number = big.NewInt(50)
	if _, _, err := crl.Issue(context.Background(), a, "arl", p, crl.SliceEntries(nil)); !errors.Is(err, crl.ErrNotNewer) {
		t.Fatalf("lower number: %v", err)
	}
	p.Number = big.NewInt(102)
	failing := func(yield func(crl.Entry) bool) error { return errors.New("disk gone") }
	if _, _, err := crl.Issue(context.Background(), a, "arl", p, failing); !errors.Is(err, crl.ErrSource) {
		t.Fatalf("failing source: %v", err)
	}
	if _, _, err := crl.Issue(context.Background(), a, "../etc", p, crl.SliceEntries(nil)); !errors.Is(err, crl.ErrSeriesName) {
		t.Fatalf("bad series: %v", err)
	}
	after, err := os.ReadDir(filepath.Join(root, "arl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d files, want %d (no leftovers)", len(after), len(before))
	}
	if got, err := os.ReadFile(first); err != nil || string(got) != string(content) {
		t.Fatal("archived CRL changed")
	}
}

// Two issuers racing for one number: exactly one wins.
func TestArchiveConcurrentSameNumber(t *testing.T) {
	ca := newTestCA(t)
	a, err := crl.NewFSArchive(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := params(ca, 1)
			p.ThisUpdate = thisUpdate.Add(time.Duration(i) * time.Second)
			_, _, errs[i] = crl.Issue(context.Background(), a, "auth", p, crl.SliceEntries(nil))
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, crl.ErrExists):
			t.Errorf("loser: %v", err)
		}
	}
	list, err := a.List("auth")
	if wins != 1 || err != nil || len(list) != 1 {
		t.Fatalf("%d winners, %d archived (%v)", wins, len(list), err)
	}
}
