package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// SQLite readiness: ready when the write lock can be taken and the schema
// is current; not ready while another writer holds the lock or the schema
// version differs; ready again after.
func TestSQLiteReady(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ca.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("fresh store: %v", err)
	}
	if n, err := s.UncheckpointedAuditRecords(ctx); err != nil || n != 0 {
		t.Fatalf("uncheckpointed records of a fresh store: %d, %v", n, err)
	}
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	// the probe gives up when its context ends (serve gives it 5 s) or
	// at the busy timeout, whichever is first
	short, cancel := context.WithTimeout(ctx, time.Second)
	err = s.Ready(short)
	cancel()
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("locked by another writer: %v, want ErrNotReady (not writable)", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("after the other writer let go: %v", err)
	}
	var v int
	conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	if _, err := conn.ExecContext(ctx, "PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "schema version") {
		t.Fatalf("schema from a newer program: %v", err)
	}
	conn.ExecContext(ctx, "PRAGMA user_version = "+itoa(v))
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("schema back: %v", err)
	}
}

// PostgreSQL readiness against a real server: ready on the primary, not
// ready once the server is gone.
func TestPostgresReady(t *testing.T) {
	ctx := context.Background()
	pg := testenv.Postgres(t)
	s, err := OpenPostgres(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("primary: %v", err)
	}
	if n, err := s.UncheckpointedAuditRecords(ctx); err != nil || n != 0 {
		t.Fatalf("uncheckpointed records of a fresh store: %d, %v", n, err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); !errors.Is(err, ErrNotReady) {
		t.Fatalf("server stopped: %v, want ErrNotReady", err)
	}
}

func itoa(v int) string {
	b := []byte{}
	if v == 0 {
		return "0"
	}
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}
