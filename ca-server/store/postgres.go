package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations/postgres/*.sql
var postgresMigrationFiles embed.FS

// Postgres is the PostgreSQL implementation of Writer, for a CA scaled out
// to several ca-server processes on one database (DESIGN: "PostgreSQL to
// scale out"). It has exactly the methods of SQLite and runs the same
// statements (see sqlStore); the schema is migrations/postgres, the
// PostgreSQL form of migrations/*.sql with the same constraints, partial
// unique indexes and triggers (revocation is never undone, status requests
// are append-only).
//
// Concurrency: safe for concurrent use, from any number of processes. Every
// write method is one SERIALIZABLE transaction, retried inside the method
// when PostgreSQL reports a serialisation failure or a deadlock: where the
// SQLite implementation relies on its single writer for check-then-write
// steps (one valid certificate per person, channel single use, audit seq),
// serialisable isolation gives the same outcome across processes. Reads use
// the same pool, each statement on its own snapshot.
type Postgres struct {
	sqlStore
}

var (
	_ Writer = (*Postgres)(nil)
	_ Reader = (*Postgres)(nil)
)

// PostgresMaxConns bounds the connections one Postgres store opens.
const PostgresMaxConns = 10

// migrationLockKey is the pg_advisory_lock key held while migrating, so two
// ca-server processes starting together apply each migration once: the
// second waits, then finds the schema current. ("madoguchi" in ASCII, the
// first eight bytes.)
const migrationLockKey int64 = 0x6d61646f67756368

// IsPostgresURL reports whether database names a PostgreSQL database
// (a postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgresURL(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// OpenPostgres connects to the PostgreSQL database at url (a pgx URL or
// key=value connection string) and applies pending migrations under an
// advisory lock.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	if url == "" {
		return nil, errors.New("store: empty database url")
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("store: cannot parse the postgres database url")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(PostgresMaxConns)
	db.SetMaxIdleConns(PostgresMaxConns)
	pool := &dbPool{db: db, dialect: dialectPostgres}
	s := &Postgres{sqlStore{w: pool, r: pool}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// SchemaVersion returns the applied migration version.
func (s *Postgres) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, "SELECT version FROM store_schema_version").Scan(&v)
	return v, err
}

// migrate applies each migration newer than the recorded version in its own
// transaction together with the version bump, holding a session advisory
// lock on one connection for the whole run.
func (s *Postgres) migrate(ctx context.Context) error {
	ms, err := migrationsIn(postgresMigrationFiles, "migrations/postgres")
	if err != nil {
		return err
	}
	conn, err := s.w.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("store: migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS store_schema_version (
		one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
		version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: version table: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO store_schema_version (version) VALUES (0) ON CONFLICT DO NOTHING`); err != nil {
		return fmt.Errorf("store: version table: %w", err)
	}
	var cur int
	if err := conn.QueryRowContext(ctx, "SELECT version FROM store_schema_version").Scan(&cur); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("store: database schema version %d is newer than this program (%d)", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		body, err := postgresMigrationFiles.ReadFile("migrations/postgres/" + m.name)
		if err != nil {
			return err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE store_schema_version SET version = $1", m.version); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// RedactedURL is a PostgreSQL URL without its password, for logs and
// records: "postgres://user@host:port/db". Anything it cannot parse becomes
// "postgres".
func RedactedURL(database string) string {
	u, err := url.Parse(database)
	if err != nil || u.Host == "" {
		return "postgres"
	}
	out := u.Scheme + "://"
	if u.User != nil {
		out += u.User.Username() + "@"
	}
	return out + u.Host + u.Path
}
