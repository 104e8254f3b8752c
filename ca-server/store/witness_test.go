package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLastAuditRecordOf: the newest successful record of one terminal and action, on SQLite and
// PostgreSQL; refusals, other terminals and other actions are not it.
func TestLastAuditRecordOf(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		if _, err := s.LastAuditRecordOf(ctx, "T-1", "terminal.audit.head"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty log: %v", err)
		}
		prev := make([]byte, 32)
		for i, r := range []struct{ terminal, action, result, detail string }{
			{"T-1", "terminal.audit.head", "ok", "seq=3"},
			{"T-2", "terminal.audit.head", "ok", "seq=9"},
			{"T-1", "terminal.audit.head", "ok", "seq=5"},
			{"T-1", "terminal.audit.head", "audit_head_forked", "seq=4"},
			{"T-1", "issuance.prepare", "ok", ""},
		} {
			rec := AuditRecord{Seq: int64(i + 1), At: time.Now(), Terminal: r.terminal, Operator: "-", Action: r.action, Result: r.result,
				Detail: r.detail, PrevHash: prev, Hash: []byte{byte(i + 1)}}
			if err := s.AppendAudit(ctx, rec); err != nil {
				t.Fatal(err)
			}
			prev = rec.Hash
		}
		r, err := s.LastAuditRecordOf(ctx, "T-1", "terminal.audit.head")
		if err != nil || r.Seq != 3 || r.Detail != "seq=5" {
			t.Fatalf("last head of T-1 = %+v, %v", r, err)
		}
		if r, err := s.LastAuditRecordOf(ctx, "T-2", "terminal.audit.head"); err != nil || r.Detail != "seq=9" {
			t.Fatalf("last head of T-2 = %+v, %v", r, err)
		}
	})
}
