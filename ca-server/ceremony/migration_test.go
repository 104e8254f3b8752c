package ceremony

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/ca-server/cardkeys"
	"madoguchi/ca-server/hsm"
)

// makeLegacyMasterKeys turns a fresh CA into one initialised before card
// master keys were backed up: non-extractable master keys, state version 1.
func makeLegacyMasterKeys(t *testing.T, dataDir string, shares []PresentedShare) {
	t.Helper()
	ctx := context.Background()
	st, err := LoadState(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, _, err := combineShares(PurposeToken, shares)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := parseTokenSecret(secret)
	h, err := hsm.OpenWithPIN(tokenConfig(Common{DataDir: dataDir}, st), ts.user)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i, k := range st.Keys {
		if !isMasterRole(k.Role) {
			continue
		}
		old, err := h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindAES, Label: k.Label})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Destroy(ctx, old); err != nil {
			t.Fatal(err)
		}
		nk, err := h.GenerateAES(ctx, k.Label, hsm.KeyOptions{Token: true, Usage: hsm.UseDerive}) // the old, non-extractable way
		if err != nil {
			t.Fatal(err)
		}
		st.Keys[i].ID, st.Keys[i].BackupWrappable = nk.ID, false
	}
	st.Version = 1
	if err := saveState(dataDir, st); err != nil {
		t.Fatal(err)
	}
}

// A CA initialised before master-key backup: backup refuses clearly, can
// leave the master keys out on request (the restored CA then says it has
// none), and re-keying the master keys makes full backups possible again.
func TestCeremonyLegacyMasterKeys(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	dataDir, sharesDir := t.TempDir(), t.TempDir()
	if _, err := Init(ctx, InitOptions{Common: common(t, dataDir, clk), Custodians: outs(t, sharesDir, custodians), Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	token := []PresentedShare{{Path: sharePath(t, sharesDir, PurposeToken, "alice"), Passphrase: alicePass}, {Path: sharePath(t, sharesDir, PurposeToken, "carol"), Passphrase: carolPass}}
	makeLegacyMasterKeys(t, dataDir, token)

	kekCustodians := []Custodian{{Name: "dave", Passphrase: davePass}, {Name: "erin", Passphrase: erinPass}}
	outDir := t.TempDir()
	backup := func(without bool) (string, string, error) {
		kekDir := t.TempDir()
		p, err := Backup(ctx, BackupOptions{Common: common(t, dataDir, clk), Shares: token, Custodians: outs(t, kekDir, kekCustodians), Threshold: 2,
			OutDir: outDir, WithoutMasterKeys: without})
		return p, kekDir, err
	}
	if _, _, err := backup(false); !errors.Is(err, ErrMasterKeysNotWrappable) {
		t.Fatalf("backup of legacy master keys: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(outDir, "*")); len(m) != 0 {
		t.Fatalf("refused backup left files: %v", m)
	}
	path, kekDir, err := backup(true)
	if err != nil {
		t.Fatal(err)
	}
	var bf BackupFile
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &bf); err != nil || !bf.MasterKeysAbsent || len(bf.Keys) != 5 { // 2 CA, person hash, audit checkpoint, TLS CA
		t.Fatalf("backup without master keys: %v absent=%v keys=%d", err, bf.MasterKeysAbsent, len(bf.Keys))
	}
	kek := []PresentedShare{{Path: sharePath(t, kekDir, PurposeBackupKEK, "dave"), Passphrase: davePass}, {Path: sharePath(t, kekDir, PurposeBackupKEK, "erin"), Passphrase: erinPass}}
	newDir, newShares := t.TempDir(), t.TempDir()
	if _, err := Restore(ctx, RestoreOptions{Common: common(t, newDir, clk), BackupFile: path, KEKShares: kek,
		Custodians: outs(t, newShares, custodians), Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	newToken := []PresentedShare{{Path: sharePath(t, newShares, PurposeToken, "alice"), Passphrase: alicePass}, {Path: sharePath(t, newShares, PurposeToken, "carol"), Passphrase: carolPass}}
	batch := filepath.Join(t.TempDir(), "batch.txt")
	if err := CardBatch(ctx, CardBatchOptions{Common: common(t, newDir, clk), Shares: newToken, Count: 1, Out: batch}); !errors.Is(err, ErrNoMasterKeys) {
		t.Fatalf("card batch without master keys: %v", err)
	}
	a, err := Activate(ctx, ActivateOptions{Common: common(t, newDir, clk), Shares: newToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CardKeys(ctx); !errors.Is(err, ErrNoMasterKeys) {
		t.Fatalf("card keys without master keys: %v", err)
	}
	a.HSM.Close()

	// The way forward on both CAs: re-key the master keys.
	for _, c := range []struct {
		dir   string
		token []PresentedShare
	}{{newDir, newToken}, {dataDir, token}} {
		st, err := RekeyMasterKeys(ctx, RekeyMasterKeysOptions{Common: common(t, c.dir, clk), Shares: c.token})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, k := range st.Keys {
			if isMasterRole(k.Role) {
				n++
				if !k.BackupWrappable {
					t.Fatalf("re-keyed %s not wrappable", k.Role)
				}
			}
		}
		if n != 3 {
			t.Fatalf("%d master keys after re-key", n)
		}
		if err := CardBatch(ctx, CardBatchOptions{Common: common(t, c.dir, clk), Shares: c.token, Count: 1, Out: filepath.Join(t.TempDir(), "b")}); err != nil {
			t.Fatal(err)
		}
		a, err := Activate(ctx, ActivateOptions{Common: common(t, c.dir, clk), Shares: c.token})
		if err != nil {
			t.Fatal(err)
		}
		// Exactly one object per master label is left (cardkeys finds them by label).
		_, err = cardkeys.New(ctx, a.HSM)
		a.HSM.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	path, _, err = backup(false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	bf = BackupFile{}
	if err := json.Unmarshal(b, &bf); err != nil || bf.MasterKeysAbsent || len(bf.Keys) != 8 {
		t.Fatalf("full backup after re-key: %v absent=%v keys=%d", err, bf.MasterKeysAbsent, len(bf.Keys))
	}
}
