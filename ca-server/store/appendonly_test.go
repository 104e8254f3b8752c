package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"madoguchi/internal/testenv"
)

// appendAuditRows gives s two records and a chained checkpoint.
func appendAuditRows(t *testing.T, s Writer) {
	t.Helper()
	ctx := context.Background()
	for i := int64(1); i <= 2; i++ {
		if err := s.AppendAudit(ctx, AuditRecord{Seq: i, At: t0, Operator: "alice", Action: "x", PrevHash: []byte{}, Hash: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAuditCheckpoint(ctx, AuditCheckpoint{Seq: 2, At: t0, Hash: []byte{2}, KeyID: "k", Signature: []byte{1}, Number: 1, PrevHash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
}

var auditTamper = []string{
	`UPDATE audit_records SET operator = 'mallory' WHERE seq = 1`,
	`DELETE FROM audit_records WHERE seq = 2`,
	`UPDATE audit_checkpoints SET key_id = 'mallory' WHERE number = 1`,
	`DELETE FROM audit_checkpoints`,
}

// TestAuditAppendOnlySQLite: Attack (issue 13, threat 1): rewrite or
// delete audit records and checkpoints with SQL on the store's file. On
// the code before this change the attack succeeded: every statement was
// accepted. Now triggers refuse them (whoever holds the file can drop
// the triggers: the HSM checkpoints and outside witnesses detect that).
func TestAuditAppendOnlySQLite(t *testing.T) {
	s, path := openTest(t)
	appendAuditRows(t, s)
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range auditTamper {
		if _, err := raw.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	if recs, _ := s.AuditRecords(context.Background(), 0, 10); len(recs) != 2 || recs[0].Operator != "alice" {
		t.Fatalf("records changed: %+v", recs)
	}
}

// TestAuditAppendOnlyPostgresServingRole: Attack (issue 13, threat 1):
// with the credentials serve uses, UPDATE, DELETE or TRUNCATE the audit
// tables, or switch their triggers off. On the code before this change the
// attack succeeded: serve ran as the one role that owned every table. Now
// the serving role holds only SELECT and INSERT on them and owns nothing
// (MigratePostgres), so every statement is refused with
// insufficient_privilege; the store opened as that role works and does not
// migrate; the owner role itself is refused by the triggers.
func TestAuditAppendOnlyPostgresServingRole(t *testing.T) {
	ctx := context.Background()
	pg := testenv.Postgres(t)
	roles := pg.Roles(t)
	if _, err := OpenPostgres(ctx, roles.ServingDSN); err == nil {
		t.Fatal("the serving role created the schema")
	}
	if err := MigratePostgres(ctx, roles.OwnerDSN, roles.Serving); err != nil {
		t.Fatal(err)
	}
	if err := MigratePostgres(ctx, roles.ServingDSN, roles.Serving); err == nil {
		t.Fatal("migrate as the serving role accepted")
	}
	if err := MigratePostgres(ctx, roles.OwnerDSN, roles.Owner); err == nil {
		t.Fatal("the owner accepted as its own serving role")
	}
	s, err := OpenPostgres(ctx, roles.ServingDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ServingAsOwner(s) {
		t.Fatal("serving role reported as owner")
	}
	appendAuditRows(t, s)
	enrol(t, s, "t1") // ordinary tables stay writable

	conn, err := pgx.Connect(ctx, roles.ServingDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range append(auditTamper, `TRUNCATE audit_records`, `TRUNCATE audit_checkpoints`,
		`ALTER TABLE audit_records DISABLE TRIGGER USER`, `DROP TRIGGER audit_records_append_only_u ON audit_records`,
		`CREATE TABLE shadow (x int)`) {
		_, err := conn.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("serving role: %s: %v, want insufficient_privilege", q, err)
		}
	}
	owner, err := pgx.Connect(ctx, roles.OwnerDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	for _, q := range append(auditTamper, `TRUNCATE audit_records CASCADE`) {
		if _, err := owner.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("owner: %s: %v, want refused by the trigger", q, err)
		}
	}
	if recs, _ := s.AuditRecords(ctx, 0, 10); len(recs) != 2 || recs[0].Operator != "alice" {
		t.Fatalf("records changed: %+v", recs)
	}
	// The single-DSN development path: the owner opens, migrates, and is
	// told it serves as the owner.
	o, err := OpenPostgres(ctx, roles.OwnerDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if !ServingAsOwner(o) {
		t.Fatal("owner not reported as owner")
	}
}

// Checkpoints are numbered without gaps: a number that does not follow
// the last is ErrConflict (two signers never fork the chain), and
// AuditCheckpointsFrom reads the chain's tail.
func TestAuditCheckpointNumbers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		for i := int64(1); i <= 3; i++ {
			if err := s.AppendAudit(ctx, AuditRecord{Seq: i, At: t0, Operator: "a", Action: "x", PrevHash: []byte{}, Hash: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		cp := func(seq, number int64) AuditCheckpoint {
			return AuditCheckpoint{Seq: seq, At: t0, Hash: []byte{byte(seq)}, KeyID: "k", Signature: []byte{1}, Number: number, PrevHash: make([]byte, 32)}
		}
		if err := s.AppendAuditCheckpoint(ctx, cp(1, 2)); !errors.Is(err, ErrConflict) {
			t.Fatalf("number 2 first: %v", err)
		}
		for i := int64(1); i <= 3; i++ {
			if err := s.AppendAuditCheckpoint(ctx, cp(i, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AppendAuditCheckpoint(ctx, cp(3, 3)); !errors.Is(err, ErrConflict) {
			t.Fatalf("number 3 again: %v", err)
		}
		if err := s.AppendAuditCheckpoint(ctx, AuditCheckpoint{Seq: 3, At: t0, Hash: []byte{3}, KeyID: "k", Signature: []byte{1}}); err == nil {
			t.Fatal("an unchained checkpoint accepted")
		}
		newest, err := s.AuditCheckpointsFrom(ctx, 0, 10)
		if err != nil || len(newest) != 1 || newest[0].Number != 3 {
			t.Fatalf("newest %+v %v", newest, err)
		}
		tail, err := s.AuditCheckpointsFrom(ctx, 2, 10)
		if err != nil || len(tail) != 2 || tail[0].Number != 2 || tail[1].Number != 3 {
			t.Fatalf("from 2: %+v %v", tail, err)
		}
	})
}
