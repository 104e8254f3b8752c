package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"madoguchi/ca-server/store"
)

type fixture struct {
	st   *store.SQLite
	raw  *sql.DB // direct access, as an attacker with the file would have
	log  *Log
	key  *ecdsa.PrivateKey
	path string
}

func newFixture(t *testing.T, n int, every int) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ca.db")
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	l, err := Open(ctx, st, Options{Signer: key, KeyID: "audit-1", Clock: clock, Every: every, Interval: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		op := "alice"
		if i%3 == 0 {
			op = "bob"
		}
		if err := l.Record(ctx, Entry{Terminal: "t1", Operator: op, Action: "issuance.prepare", Target: fmt.Sprintf("is-%d", i), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	// The attacker holds the file: the append-only triggers
	// (0005_audit_anchor.sql) stop SQL through the store, not them.
	DropAuditTriggers(t, raw)
	return &fixture{st: st, raw: raw, log: l, key: key, path: path}
}

// DropAuditTriggers drops the SQLite append-only triggers of the audit
// tables, as an attacker with write access to the file can.
func DropAuditTriggers(t testing.TB, raw *sql.DB) {
	t.Helper()
	for _, tr := range []string{"audit_records_append_only_u", "audit_records_append_only_d", "audit_checkpoints_append_only_u", "audit_checkpoints_append_only_d"} {
		if _, err := raw.Exec(`DROP TRIGGER ` + tr); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.raw.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) verify(t *testing.T) (Report, error) {
	t.Helper()
	return Verify(context.Background(), f.st, f.key.Public())
}

func firstProblem(t *testing.T, rep Report, err error, seq int64, kind string) {
	t.Helper()
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("tampering not detected: %v", err)
	}
	for _, p := range rep.Problems {
		if p.Seq == seq && p.Kind == kind {
			return
		}
	}
	t.Fatalf("want %s at %d, got %v", kind, seq, rep.Problems)
}

func TestIntactLogVerifies(t *testing.T) {
	f := newFixture(t, 25, 10)
	rep, err := f.verify(t)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 25 || rep.Checkpoints != 2 || rep.LastCheckpoint != 20 || rep.Unprotected != 5 {
		t.Fatalf("report %+v", rep)
	}
	// the chain continues across a reopen
	l, err := Open(context.Background(), f.st, Options{Signer: f.key, Every: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), Entry{Operator: "carol", Action: "x", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rep, err := f.verify(t); err != nil || rep.Unprotected != 0 || rep.Records != 26 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}
	bob, _ := f.st.AuditRecordsByOperator(context.Background(), "bob", 0, 100)
	if len(bob) != 8 {
		t.Fatalf("bob has %d records, want 8", len(bob))
	}
}

func TestVerifyDetectsEdit(t *testing.T) {
	f := newFixture(t, 25, 10)
	f.exec(t, `UPDATE audit_records SET result = 'denied' WHERE seq = 7`)
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 7, "edited")
}

func TestVerifyDetectsRewrittenChain(t *testing.T) {
	f := newFixture(t, 25, 10)
	// the attacker edits record 7 and recomputes every later hash
	recs, _ := f.st.AuditRecords(context.Background(), 0, 100)
	prev := recs[5].Hash
	for _, r := range recs[6:] {
		if r.Seq == 7 {
			r.Operator = "mallory"
		}
		r.PrevHash = prev
		r.Hash = RecordHash(r)
		f.exec(t, `UPDATE audit_records SET operator = ?, prev_hash = ?, hash = ? WHERE seq = ?`, r.Operator, r.PrevHash, r.Hash, r.Seq)
		prev = r.Hash
	}
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 10, "checkpoint-mismatch")
}

func TestVerifyDetectsDeletion(t *testing.T) {
	f := newFixture(t, 25, 10)
	f.exec(t, `DELETE FROM audit_records WHERE seq IN (12, 13)`)
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 12, "missing")
	firstProblem(t, rep, err, 14, "chain-broken")
}

func TestVerifyDetectsReordering(t *testing.T) {
	f := newFixture(t, 25, 10)
	f.exec(t, `UPDATE audit_records SET seq = -1 WHERE seq = 4`)
	f.exec(t, `UPDATE audit_records SET seq = 4 WHERE seq = 5`)
	f.exec(t, `UPDATE audit_records SET seq = 5 WHERE seq = -1`)
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 4, "edited")
}

func TestVerifyDetectsTruncation(t *testing.T) {
	f := newFixture(t, 25, 10)
	f.exec(t, `DELETE FROM audit_records WHERE seq > 17`)
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 18, "truncated")
}

func TestVerifyDetectsForgedCheckpoint(t *testing.T) {
	f := newFixture(t, 25, 10)
	f.exec(t, `UPDATE audit_checkpoints SET hash = zeroblob(32) WHERE seq = 20`)
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 20, "bad-signature")
}

// CPS §6.8: each record carries its own timestamp, from the injected clock,
// inside its hash: changing the time of a record is an edit.
func TestRecordTimeIsProtected(t *testing.T) {
	f := newFixture(t, 5, 10)
	recs, err := f.st.AuditRecords(context.Background(), 0, 10)
	if err != nil || len(recs) != 5 {
		t.Fatalf("records %d %v", len(recs), err)
	}
	base := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	for i, r := range recs {
		// the clock's first tick went to Open
		if want := base.Add(time.Duration(i+2) * time.Second); !r.At.Equal(want) {
			t.Fatalf("record %d at %v, want the clock's %v", r.Seq, r.At, want)
		}
	}
	f.exec(t, `UPDATE audit_records SET at = at + 3600000000000 WHERE seq = 3`)
	rep, err := f.verify(t)
	firstProblem(t, rep, err, 3, "edited")
}
