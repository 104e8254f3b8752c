package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPostgresWithStandbyFailsOver: a row committed on the primary is on
// the standby as soon as the COMMIT returns (synchronous replication); the
// multi-host DSN reaches the primary while the standby is read-only, and
// after the primary is killed and the standby promoted the same DSN
// reaches the standby, which accepts writes and still has the row.
func TestPostgresWithStandbyFailsOver(t *testing.T) {
	ctx := context.Background()
	pair := PostgresWithStandby(t)
	conn, err := pgx.Connect(ctx, pair.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	sb, err := pgx.Connect(ctx, pair.Standby.DSN)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := sb.QueryRow(ctx, `SELECT v FROM t`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("standby has %d, %v right after the COMMIT; want 42", v, err)
	}
	if _, err := sb.Exec(ctx, `INSERT INTO t VALUES (1)`); err == nil {
		t.Fatal("the standby accepted a write before promotion")
	}
	sb.Close(ctx)
	if r, err := pair.Standby.InRecovery(); err != nil || !r {
		t.Fatalf("standby in recovery %v, %v", r, err)
	}

	pair.Primary.Kill()
	if err := pair.Standby.Promote(); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, pair.DSN)
	if err != nil {
		t.Fatalf("multi-host DSN after promotion: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO t VALUES (43)`); err != nil {
		t.Fatalf("write after promotion: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v; want 2", n, err)
	}
}
