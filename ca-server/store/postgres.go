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
//
// Roles: the role that owns the store's tables runs the migrations
// (MigratePostgres, `ca-server db migrate`); the serving role, which
// `ca-server serve` and the local commands should use, owns no schema and
// no table and may only SELECT and INSERT on the append-only tables
// (AppendOnlyTables: the audit log, CPS §5.4), so a process holding its
// credentials cannot UPDATE, DELETE or TRUNCATE audit records nor drop the
// triggers that refuse it. Opened as the serving role, the store never
// migrates: the schema must be current. Opened as the owner (a single DSN,
// for development and tests) it migrates as before and ServingAsOwner
// reports it, so serve can warn.
type Postgres struct {
	sqlStore
	owner bool
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
	s := &Postgres{sqlStore: sqlStore{w: pool, r: pool}}
	owner, err := s.ownsSchema(ctx)
	if err == nil && owner {
		s.owner = true
		err = s.migrate(ctx)
	} else if err == nil {
		err = s.checkCurrent(ctx)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// AppendOnlyTables are the tables the serving role may only read and
// append to (MigratePostgres); their triggers refuse UPDATE, DELETE and
// TRUNCATE for every role.
var AppendOnlyTables = []string{"audit_records", "audit_checkpoints", "status_requests", "crl_archive", "ocsp_responders"}

// ServingAsOwner reports whether s was opened as the role that owns its
// tables (or a superuser): that role can drop the append-only triggers,
// so production serves as a serving role (MigratePostgres). A function,
// not a method: both stores keep the same method set.
func ServingAsOwner(s *Postgres) bool { return s.owner }

// ownsSchema reports whether the connected role may migrate: it is a
// superuser, owns store_schema_version, or the store has no tables yet.
func (s *Postgres) ownsSchema(ctx context.Context) (bool, error) {
	var super bool
	var owner *string
	err := s.r.QueryRowContext(ctx, `SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
		(SELECT tableowner::text FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'store_schema_version')`).Scan(&super, &owner)
	if err != nil {
		return false, fmt.Errorf("store: connect: %w", err)
	}
	if super || owner == nil {
		return true, nil
	}
	var me string
	if err := s.r.QueryRowContext(ctx, `SELECT current_user::text`).Scan(&me); err != nil {
		return false, fmt.Errorf("store: connect: %w", err)
	}
	return *owner == me, nil
}

// checkCurrent refuses a schema older than this program when the store
// may not migrate it (a serving role).
func (s *Postgres) checkCurrent(ctx context.Context) error {
	ms, err := migrationsIn(postgresMigrationFiles, "migrations/postgres")
	if err != nil {
		return err
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: read schema version (as a role that does not own the store: has `ca-server db migrate --serving-role` granted it?): %w", err)
	}
	if v != len(ms) {
		return fmt.Errorf("store: database schema version %d, this program needs %d: the serving role does not migrate; run `ca-server db migrate --database OWNER_URL --serving-role ROLE` as the owner role", v, len(ms))
	}
	return nil
}

// MigratePostgres applies pending migrations as the owner role at ownerURL
// and, when servingRole is not empty, sets that role's privileges: USAGE
// on the schema, SELECT, INSERT, UPDATE and DELETE on the store's tables
// except AppendOnlyTables (SELECT and INSERT only) and store_schema_version
// (SELECT), sequences for identity columns. It refuses a serving role that
// is a superuser or the owner, or that owns a schema (it could shadow the
// store's tables through search_path).
func MigratePostgres(ctx context.Context, ownerURL, servingRole string) error {
	s, err := OpenPostgres(ctx, ownerURL)
	if err != nil {
		return err
	}
	defer s.Close()
	if !s.owner {
		return errors.New("store: migrate: the role of the database URL does not own the store's tables (give the owner role's URL)")
	}
	if servingRole == "" {
		return nil
	}
	var super bool
	var owned []string
	var me string
	if err := s.r.QueryRowContext(ctx, `SELECT rolsuper, current_user::text FROM pg_roles WHERE rolname = ?`, servingRole).Scan(&super, &me); err != nil {
		return fmt.Errorf("store: serving role %q: %w", servingRole, notFound(err, "role"))
	}
	if me == servingRole || super {
		return fmt.Errorf("store: serving role %q must be neither the owner nor a superuser", servingRole)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT nspname::text FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = ?)`, servingRole)
	if err != nil {
		return fmt.Errorf("store: serving role: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		owned = append(owned, n)
	}
	rows.Close()
	if len(owned) > 0 {
		return fmt.Errorf("store: serving role %q owns schema %s: it must own none", servingRole, strings.Join(owned, ", "))
	}
	var schema string
	if err := s.r.QueryRowContext(ctx, `SELECT current_schema()::text`).Scan(&schema); err != nil {
		return err
	}
	role, sch := pgx.Identifier{servingRole}.Sanitize(), pgx.Identifier{schema}.Sanitize()
	stmts := []string{
		"REVOKE ALL ON ALL TABLES IN SCHEMA " + sch + " FROM " + role,
		"REVOKE CREATE ON SCHEMA " + sch + " FROM " + role,
		"GRANT USAGE ON SCHEMA " + sch + " TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + sch + " TO " + role,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA " + sch + " TO " + role,
		"REVOKE INSERT, UPDATE, DELETE ON store_schema_version FROM " + role,
	}
	for _, t := range AppendOnlyTables {
		stmts = append(stmts, "REVOKE UPDATE, DELETE, TRUNCATE ON "+pgx.Identifier{t}.Sanitize()+" FROM "+role)
	}
	tx, err := s.w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: grant: %w", err)
	}
	defer tx.Rollback()
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store: grant to %s: %s: %w", servingRole, q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: grant: %w", err)
	}
	return nil
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
