package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/store"
)

func seed(t *testing.T, n int) (*store.DB, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	base := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		op := []string{"alice", "bob"}[i%2]
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			return audit.Append(ctx, tx, audit.Entry{At: base.Add(time.Duration(i) * time.Minute), Operator: op,
				Action: "resident.search", Target: "x", Result: audit.ResultOK, Detail: map[string]string{"i": string(rune('a' + i))}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return db, path
}

func TestVerifyIntact(t *testing.T) {
	db, _ := seed(t, 6)
	rep, err := audit.Verify(context.Background(), db)
	if err != nil || rep.Records != 6 || rep.Problem != nil {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestVerifyDetectsTampering edits the real SQLite file through a second connection, the way
// someone with file access would, and checks that Verify names the first bad record.
func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name    string
		tamper  []string
		wantSeq int64
		reason  string
	}{
		{"edit detail", []string{`UPDATE audit_log SET detail='{"i":"z"}' WHERE seq=3`}, 3, "edited"},
		{"edit result", []string{`UPDATE audit_log SET result='ok', operator='mallory' WHERE seq=2`}, 2, "edited"},
		{"delete middle", []string{`DELETE FROM audit_log WHERE seq=4`}, 4, "sequence gap"},
		{"delete and renumber", []string{`DELETE FROM audit_log WHERE seq=4`, `UPDATE audit_log SET seq=seq-1 WHERE seq>4`}, 4, "missing or reordered"},
		{"reorder", []string{
			`UPDATE audit_log SET seq=100 WHERE seq=2`, `UPDATE audit_log SET seq=2 WHERE seq=3`, `UPDATE audit_log SET seq=3 WHERE seq=100`}, 2, "missing or reordered"},
		{"truncate tail", []string{`DELETE FROM audit_log WHERE seq=6`}, 6, "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, path := seed(t, 6)
			db.Close()
			raw, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range c.tamper {
				if _, err := raw.Exec(s); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()
			db2, err := store.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			rep, err := audit.Verify(context.Background(), db2)
			if !errors.Is(err, apperr.AuditBroken) {
				t.Fatalf("Verify err = %v, want AuditBroken", err)
			}
			if rep.Problem == nil || rep.Problem.Seq != c.wantSeq || rep.Problem.Reason != c.reason {
				t.Fatalf("problem = %+v, want seq %d %q", rep.Problem, c.wantSeq, c.reason)
			}
		})
	}
}

func TestHistoryOfOneOperatorAndExport(t *testing.T) {
	db, _ := seed(t, 5)
	ctx := context.Background()
	recs, err := audit.List(ctx, db, audit.Filter{Operator: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Seq != 2 || recs[1].Seq != 4 {
		t.Fatalf("bob's history = %+v", recs)
	}
	for _, r := range recs {
		if r.Operator != "bob" {
			t.Fatalf("foreign record %+v", r)
		}
	}
	var buf bytes.Buffer
	if err := audit.Export(ctx, db, audit.Filter{}, audit.JSONLines, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("jsonl lines = %d", len(lines))
	}
	var r audit.Record
	if err := json.Unmarshal([]byte(lines[2]), &r); err != nil || r.Seq != 3 || r.Detail["i"] != "c" {
		t.Fatalf("line 3 = %s (%v)", lines[2], err)
	}
	buf.Reset()
	if err := audit.Export(ctx, db, audit.Filter{Operator: "alice"}, audit.CSV, &buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "seq" || rows[1][2] != "alice" {
		t.Fatalf("csv = %v, %v", rows, err)
	}
	if err := audit.Export(ctx, db, audit.Filter{}, "xml", &buf); !errors.Is(err, apperr.InvalidInput) {
		t.Fatalf("unknown format err = %v", err)
	}
}
