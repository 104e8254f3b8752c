package audit

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/store"
)

// Attack (issue 13, threat 1): delete one checkpoint from the middle of the
// log. On the code before this change the attack succeeded: Verify checked
// only the checkpoints present. Now the numbering and the next
// checkpoint's link report it.
func TestVerifyDetectsDeletedCheckpoint(t *testing.T) {
	f := newFixture(t, 35, 10) // checkpoints 1..3 at records 10, 20, 30
	f.exec(t, `DELETE FROM audit_checkpoints WHERE number = 2`)
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 30, "checkpoint-missing")
	firstProblem(t, rep, err, 30, "checkpoint-chain-broken")
}

// Attack: delete every checkpoint, or cut the log back to an earlier
// checkpoint. Without checkpoints the live log fails (RequireCheckpoint);
// a cut back to a checkpoint boundary is consistent in itself and is told
// apart only by a witness that holds a later checkpoint (Anchors).
func TestVerifyNeedsCheckpointsAndWitnesses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 25, 10)
	keys := []Key{{ID: "audit-1", Public: f.key.Public()}}
	full, err := VerifyWith(ctx, f.st, VerifyOptions{Keys: keys, RequireCheckpoint: true})
	if err != nil || full.TipNumber != 2 {
		t.Fatalf("intact: %+v %v", full, err)
	}
	witness := full.Anchor("backup b1")

	f.exec(t, `DELETE FROM audit_checkpoints WHERE number = 2`)
	f.exec(t, `DELETE FROM audit_records WHERE seq > 10`)
	if rep, err := VerifyWith(ctx, f.st, VerifyOptions{Keys: keys, RequireCheckpoint: true}); err != nil || rep.TipNumber != 1 {
		t.Fatalf("cut at a checkpoint, no witness: %+v %v", rep, err)
	}
	rep, err := VerifyWith(ctx, f.st, VerifyOptions{Keys: keys, Anchors: []Anchor{witness}})
	firstProblem(t, rep, err, 11, "truncated")
	if !strings.Contains(err.Error(), "backup b1") {
		t.Errorf("the witness is not named: %v", err)
	}

	f.exec(t, `DELETE FROM audit_checkpoints`)
	rep, err = VerifyWith(ctx, f.st, VerifyOptions{Keys: keys, RequireCheckpoint: true})
	firstProblem(t, rep, err, 10, "no-checkpoint")
}

// Records after the last checkpoint older than the allowance fail.
func TestVerifyStaleUnprotectedRecords(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 25, 10) // records at 09:00:02.. one second apart; 21..25 unprotected
	keys := []Key{{ID: "audit-1", Public: f.key.Public()}}
	recs, _ := f.st.AuditRecords(ctx, 20, 1)
	if _, err := VerifyWith(ctx, f.st, VerifyOptions{Keys: keys, MaxUnprotectedAge: time.Hour, Now: recs[0].At.Add(time.Hour)}); err != nil {
		t.Fatalf("within the allowance: %v", err)
	}
	rep, err := VerifyWith(ctx, f.st, VerifyOptions{Keys: keys, MaxUnprotectedAge: time.Hour, Now: recs[0].At.Add(time.Hour + time.Second)})
	firstProblem(t, rep, err, 21, "stale")
}

// Checkpoints of an older data dir (digest v1: no number or previous hash
// signed) keep verifying; the first chained checkpoint commits to all of
// them, so deleting one afterwards is detected.
func TestUnchainedCheckpointsUpgrade(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0, 1000)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ul, err := OpenUnsigned(ctx, f.st, func() time.Time { at = at.Add(time.Second); return at })
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		if err := ul.Record(ctx, Entry{Operator: "old", Action: "x", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // a v1 checkpoint, as the code before wrote them
			r, _ := f.st.LastAuditRecord(ctx)
			c := store.AuditCheckpoint{Seq: r.Seq, At: r.At, Hash: r.Hash, KeyID: "audit-1"}
			sig, _ := f.key.Sign(rand.Reader, checkpointDigest(c), crypto.SHA256)
			f.exec(t, `INSERT INTO audit_checkpoints (seq, at, hash, key_id, signature) VALUES (?, ?, ?, ?, ?)`, c.Seq, c.At.UnixNano(), c.Hash, c.KeyID, sig)
		}
	}
	l, err := Open(ctx, f.st, Options{Signer: f.key, KeyID: "audit-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, Entry{Operator: "new", Action: "x", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	cps, _ := f.st.AuditCheckpoints(ctx)
	if len(cps) != 4 || !Chained(cps[3]) || cps[3].Number != 4 || Chained(cps[0]) {
		t.Fatalf("checkpoints %+v", cps)
	}
	if rep, err := f.verify(t); err != nil || rep.TipNumber != 4 {
		t.Fatalf("upgraded log: %+v %v", rep, err)
	}
	f.exec(t, `DELETE FROM audit_checkpoints WHERE seq = 2`)
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 7, "checkpoint-chain-broken")
}

// Two processes signing checkpoints (a scaled-out server) never fork the
// checkpoint chain: the store refuses a number that does not follow, and
// the loser chains onto the winner.
func TestConcurrentCheckpointersChain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 3, 1000)
	other, err := Open(ctx, f.st, Options{Signer: f.key, KeyID: "audit-1", Every: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Record(ctx, Entry{Operator: "b", Action: "x", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := other.Checkpoint(ctx); err != nil { // its tip was stale: it reloads and chains
		t.Fatal(err)
	}
	if rep, err := f.verify(t); err != nil || rep.TipNumber != 2 || rep.Unprotected != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
}

// Attack: replace the log by a rewritten one and let the next daily backup
// be made from it. The backups are checked against each other: a copy that
// does not extend the newest backup before it is refused, and
// CheckBackups reports a directory whose backups disagree.
func TestBackupsExtendEachOther(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 25, 10)
	keys := []Key{{ID: "audit-1", Public: f.key.Public()}}
	dir := t.TempDir()
	day := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	b1, err := Backup(ctx, f.path, dir, BackupOptions{Keys: keys, Clock: func() time.Time { return day }})
	if err != nil {
		t.Fatal(err)
	}
	f.log.Record(ctx, Entry{Operator: "alice", Action: "x", Result: "ok"})
	f.log.Checkpoint(ctx)
	a, ok, err := NewestBackupAnchor(ctx, dir, keys)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := Backup(ctx, f.path, dir, BackupOptions{Keys: keys, Anchors: []Anchor{a}, Clock: func() time.Time { return day.AddDate(0, 0, 1) }}); err != nil {
		t.Fatal(err)
	}
	if checks, err := CheckBackups(ctx, dir, keys); err != nil || len(checks) != 2 {
		t.Fatalf("%d backups, %v", len(checks), err)
	}

	// cut back to checkpoint 1 and carry on: a consistent, shorter chain
	f.exec(t, `DELETE FROM audit_checkpoints WHERE number > 1`)
	f.exec(t, `DELETE FROM audit_records WHERE seq > 10`)
	l, _ := Open(ctx, f.st, Options{Signer: f.key, KeyID: "audit-1"})
	for i := 0; i < 20; i++ {
		l.Record(ctx, Entry{Operator: "mallory", Action: "x", Result: "ok"})
	}
	l.Checkpoint(ctx)
	a, _, _ = NewestBackupAnchor(ctx, dir, keys)
	_, err = Backup(ctx, f.path, dir, BackupOptions{Keys: keys, Anchors: []Anchor{a}, Clock: func() time.Time { return day.AddDate(0, 0, 2) }})
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "witness-mismatch") {
		t.Fatalf("backup of a forked log: %v", err)
	}
	// Made without the check (an older version), it sits in the
	// directory; CheckBackups finds it.
	if _, err := Backup(ctx, f.path, dir, BackupOptions{Keys: keys, Clock: func() time.Time { return day.AddDate(0, 0, 2) }}); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckBackups(ctx, dir, keys); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), filepath.Base(b1.Path)) && !strings.Contains(err.Error(), "audit-2026-12-02.db") {
		t.Fatalf("backups that disagree: %v", err)
	}
}

// Attack: the server shows a witness a chain that does not extend the one
// it kept (rewritten or cut back), or two kept copies disagree. On the
// code before this change nothing was published or kept. Now Extends and
// LoadKept report ErrFork.
func TestWitnessDetectsFork(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 25, 10)
	keys := []Key{{ID: "audit-1", Public: f.key.Public()}}
	keep := t.TempDir()
	p, err := PublishedSince(ctx, f.st, 0)
	if err != nil || len(p.Checkpoints) != 1 || p.Checkpoints[0].Number != 2 {
		t.Fatalf("%+v %v", p, err)
	}
	if err := Extends(nil, "", p, keys); err != nil {
		t.Fatal(err)
	}
	if _, err := Keep(keep, p); err != nil {
		t.Fatal(err)
	}
	f.log.Record(ctx, Entry{Operator: "a", Action: "x", Result: "ok"})
	f.log.Checkpoint(ctx)
	kept, err := LoadKept(keep, keys)
	if err != nil || len(kept) != 1 {
		t.Fatal(err)
	}
	tip := kept[0].Tip()
	p, _ = PublishedSince(ctx, f.st, tip.Number)
	if err := Extends(&tip, kept[0].Path, p, keys); err != nil || len(p.Checkpoints) != 2 {
		t.Fatalf("extension: %v", err)
	}
	if _, err := Keep(keep, p); err != nil {
		t.Fatal(err)
	}
	if kept, err := LoadKept(keep, keys); err != nil || len(kept) != 2 {
		t.Fatalf("kept %d, %v", len(kept), err)
	}
	tip = p.Checkpoints[1]

	// cut back to checkpoint 2, carry on: checkpoint 3 again, differently
	f.exec(t, `DELETE FROM audit_checkpoints WHERE number > 2`)
	f.exec(t, `DELETE FROM audit_records WHERE seq > 20`)
	l, _ := Open(ctx, f.st, Options{Signer: f.key, KeyID: "audit-1"})
	l.Record(ctx, Entry{Operator: "mallory", Action: "x", Result: "ok"})
	l.Record(ctx, Entry{Operator: "mallory", Action: "x", Result: "ok"})
	l.Checkpoint(ctx)
	p, _ = PublishedSince(ctx, f.st, tip.Number)
	if err := Extends(&tip, "kept", p, keys); !errors.Is(err, ErrFork) {
		t.Fatalf("fork not reported: %v", err)
	}
	// cut back further: the server's newest is older than the kept one
	f.exec(t, `DELETE FROM audit_checkpoints WHERE number > 1`)
	p, _ = PublishedSince(ctx, f.st, tip.Number)
	if err := Extends(&tip, "kept", p, keys); !errors.Is(err, ErrFork) || !strings.Contains(err.Error(), "cut back") {
		t.Fatalf("rollback not reported: %v", err)
	}
	// a second witness's copy of the forked chain, beside the first's
	other := t.TempDir()
	l.Record(ctx, Entry{Operator: "mallory", Action: "x", Result: "ok"})
	l.Checkpoint(ctx) // the forked chain reaches a new checkpoint 2
	p, _ = PublishedSince(ctx, f.st, 1)
	path, err := Keep(other, p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(keep, "checkpoints-000000000099.json"), b, 0o600)
	if _, err := LoadKept(keep, keys); !errors.Is(err, ErrFork) {
		t.Fatalf("two kept copies that disagree: %v", err)
	}
}
