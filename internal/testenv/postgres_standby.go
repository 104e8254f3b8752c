package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"madoguchi/internal/services"
)

// PGPair is a PostgreSQL primary with a streaming standby (real replication: the standby is a
// pg_basebackup -R of the primary and streams its WAL), for database failover tests.
type PGPair struct {
	Primary *PG
	Standby *PG
	// DSN names both servers, primary first, with target_session_attrs=read-write: a client
	// (pgx) connects to whichever accepts writes, so after Standby.Promote it finds the new
	// primary without being reconfigured.
	DSN string
}

// PostgresWithStandby starts a primary (as Postgres), takes a base backup of it with
// pg_basebackup -R (standby.signal and primary_conninfo written), starts that as a hot standby
// on another port, waits until it streams, and then makes the replication synchronous
// (synchronous_standby_names = '*'): a COMMIT is acknowledged only once the standby has the WAL
// on disk, so no acknowledged transaction is lost when the primary dies and the standby is
// promoted — what a CA needs of its database (docs/CAPACITY.md). The database of the primary
// exists on the standby too.
func PostgresWithStandby(t testing.TB) *PGPair {
	t.Helper()
	opts := PostgresOptions{BinDir: "/usr/lib/postgresql/15/bin", Database: "madoguchi_test"}
	for _, tool := range []string{"pg_basebackup"} {
		if _, err := services.RunTool(tool, filepath.Join(opts.BinDir, tool), []string{"--version"}, nil, nil); err != nil {
			t.Fatalf("testenv: postgres standby: %v", err)
		}
	}
	primary := PostgresWith(t, opts)
	cred, err := postgresCredential()
	if err != nil {
		t.Fatalf("%v", err)
	}
	dir := shortTempDir(t, "pgs")
	if cred != nil {
		if err := chownDir(dir, cred); err != nil {
			t.Fatalf("testenv: postgres standby: %v", err)
		}
	}
	dataDir := filepath.Join(dir, "data")
	if out, err := services.RunTool("pg_basebackup", filepath.Join(opts.BinDir, "pg_basebackup"), []string{
		"-D", dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync",
		"-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", "postgres",
	}, nil, cred); err != nil {
		t.Fatalf("testenv: pg_basebackup: %v %s", err, out)
	}
	standby := runPG(t, opts, dir, dataDir, cred)

	ctx, cancel := context.WithTimeout(context.Background(), timeout())
	defer cancel()
	conn, err := pgx.Connect(ctx, primary.AdminDSN)
	if err != nil {
		t.Fatalf("testenv: postgres: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if err := waitFor(ctx, func() error {
		var state string
		err := conn.QueryRow(ctx, `SELECT state FROM pg_stat_replication LIMIT 1`).Scan(&state)
		if err == nil && state != "streaming" {
			err = fmt.Errorf("standby %s", state)
		}
		return err
	}); err != nil {
		t.Fatalf("testenv: postgres standby does not stream: %v%s", err, standby.svc.LogTail())
	}
	for _, q := range []string{`ALTER SYSTEM SET synchronous_standby_names = '*'`, `SELECT pg_reload_conf()`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("testenv: postgres: %s: %v", q, err)
		}
	}
	if err := waitFor(ctx, func() error {
		var state string
		err := conn.QueryRow(ctx, `SELECT sync_state FROM pg_stat_replication LIMIT 1`).Scan(&state)
		if err == nil && state != "sync" {
			err = fmt.Errorf("standby is %s", state)
		}
		return err
	}); err != nil {
		t.Fatalf("testenv: postgres standby is not synchronous: %v", err)
	}
	return &PGPair{
		Primary: primary,
		Standby: standby,
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write",
			primary.Port, standby.Port, opts.Database),
	}
}

// WithUser returns the pair's multi-host DSN for another role (PG.Roles).
func (p *PGPair) WithUser(role string) string {
	return strings.Replace(p.DSN, "postgres://postgres@", "postgres://"+role+"@", 1)
}

// Kill ends the server at once with SIGKILL to its process group (postmaster and backends),
// a crash as a lost machine would be: no shutdown checkpoint, clients see their connections
// reset.
func (p *PG) Kill() {
	_ = syscall.Kill(-p.svc.PID(), syscall.SIGKILL)
	p.svc.Abort() // reaps it; the test's cleanup does not report the death
}

// Promote ends recovery on a standby (pg_promote, waiting until it accepts writes).
func (p *PG) Promote() error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout())
	defer cancel()
	conn, err := pgx.Connect(ctx, p.AdminDSN)
	if err != nil {
		return fmt.Errorf("testenv: promote: %w", err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_promote(true, 60)`).Scan(&ok); err != nil || !ok {
		return fmt.Errorf("testenv: promote: %v (promoted %v)", err, ok)
	}
	return nil
}

// InRecovery reports whether the server is a standby (pg_is_in_recovery).
func (p *PG) InRecovery() (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout())
	defer cancel()
	conn, err := pgx.Connect(ctx, p.AdminDSN)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	var r bool
	err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&r)
	return r, err
}

// waitFor polls probe every 50 ms until it succeeds or ctx ends.
func waitFor(ctx context.Context, probe func() error) error {
	for {
		err := probe()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func chownDir(dir string, cred *syscall.Credential) error {
	return syscall.Chown(dir, int(cred.Uid), int(cred.Gid))
}
