package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresQuery proves the server works: pgx connects to the DSN, creates a table, writes
// and reads a row.
func TestPostgresQuery(t *testing.T) {
	start := time.Now()
	pg := Postgres(t)
	t.Logf("PostgreSQL ready in %v on port %d", time.Since(start), pg.Port)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatalf("connect %s: %v", pg.DSN, err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if db != "madoguchi_test" {
		t.Fatalf("current_database() = %q, want madoguchi_test", db)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES ($1, $2)", 7, "窓口"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := conn.QueryRow(ctx, "SELECT name FROM t WHERE id = $1", 7).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "窓口" {
		t.Fatalf("name = %q, want 窓口", name)
	}
}

// TestPostgresStop: Stop ends the server and connections fail afterwards.
func TestPostgresStop(t *testing.T) {
	pg := Postgres(t)
	if err := pg.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, pg.DSN); err == nil {
		conn.Close(ctx)
		t.Fatal("connected after Stop")
	}
}

// TestPostgresStopStart: a server stopped by Stop comes back with Start on the same port,
// with its data: the same DSN connects and reads what was written before the outage.
func TestPostgresStopStart(t *testing.T) {
	pg := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := pg.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	pg.Start(t)
	conn, err = pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatalf("connect after Start: %v", err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after Start: %d %v", v, err)
	}
}
