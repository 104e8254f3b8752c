package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// SQLite is the SQLite implementation of Writer.
//
// One file, WAL journal, foreign keys on, synchronous=FULL (a committed
// issuance survives power loss, not only a process crash), busy timeout.
// Writes go through a single connection with BEGIN IMMEDIATE, so writers are
// serialised in process and the check-then-insert steps inside one method
// cannot interleave; reads use a separate pool.
type SQLite struct {
	sqlStore
}

var (
	_ Writer = (*SQLite)(nil)
	_ Reader = (*SQLite)(nil)
)

// OpenSQLite opens (creating if needed) the database file at path and applies
// pending migrations. The file and its -wal and -shm files are kept mode
// 0600 (MakePrivate).
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	if err := MakePrivate(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	s := &SQLite{sqlStore{w: &dbPool{db: w, dialect: dialectSQLite}}}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout(10000)")
	rq.Add("_pragma", "foreign_keys(1)")
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s.r = &dbPool{db: r, dialect: dialectSQLite}
	return s, nil
}

// SchemaVersion returns the applied migration version (PRAGMA user_version).
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

type migration struct {
	version int
	name    string
}

// migrations lists the SQLite migrations (migrations/postgres holds the
// PostgreSQL ones).
func migrations() ([]migration, error) { return migrationsIn(migrationFiles, "migrations") }

// migrationsIn lists the migration files "NNNN_what.sql" of dir in fsys in
// order, and checks they are numbered 1..n.
func migrationsIn(fsys fs.FS, dir string) ([]migration, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: bad migration file name %q", name)
		}
		ms = append(ms, migration{v, name})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migrations not numbered 1..n: %q", m.name)
		}
	}
	return ms, nil
}

// migrate applies each migration newer than PRAGMA user_version in its own
// transaction together with the version bump, so a crash leaves the schema
// at a whole version.
func (s *SQLite) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var cur int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("store: database schema version %d is newer than this program (%d)", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		body, err := migrationFiles.ReadFile("migrations/" + m.name)
		if err != nil {
			return err
		}
		err = s.tx(ctx, func(tx *dbTx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// Times are stored as Unix nanoseconds; the zero time is NULL.

func tfrom(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func snull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func bnull(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}
