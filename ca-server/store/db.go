package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is the SQL engine behind a sqlStore. The statements are written
// once, with "?" placeholders and SQL both engines accept; the dialect
// rewrites placeholders and decides how a write transaction is serialised.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// sqlStore holds every method of Writer and of the consumer interfaces, for
// both engines: SQLite and Postgres embed it, so both have the same method
// set and run the same statements.
//
// Concurrency: safe for concurrent use. Write methods go through tx, which
// serialises them (SQLite: one write connection, BEGIN IMMEDIATE;
// PostgreSQL: SERIALIZABLE transactions retried on a serialisation
// failure), so the check-then-write steps inside one method never
// interleave with another writer's.
type sqlStore struct {
	w *dbPool // every write transaction
	r *dbPool // reads; the same pool as w on PostgreSQL
}

// dbPool is a *sql.DB whose statements are written with "?" placeholders.
type dbPool struct {
	db      *sql.DB
	dialect dialect
}

// dbTx is a *sql.Tx whose statements are written with "?" placeholders.
type dbTx struct {
	tx      *sql.Tx
	dialect dialect
}

// rebound caches PostgreSQL forms of statements: the set of statement texts
// is small (they are constants, or built from a few constant pieces).
var rebound sync.Map // string -> string

// rebind rewrites the "?" placeholders of q as $1, $2, … for PostgreSQL,
// leaving question marks inside quoted strings and identifiers alone.
func (d dialect) rebind(q string) string {
	if d != dialectPostgres || !strings.Contains(q, "?") {
		return q
	}
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			b.WriteByte(c)
		case c == '\'' || c == '"':
			quote = c
			b.WriteByte(c)
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}

func (p *dbPool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return p.db.QueryContext(ctx, p.dialect.rebind(q), args...)
}

func (p *dbPool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return p.db.QueryRowContext(ctx, p.dialect.rebind(q), args...)
}

func (p *dbPool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return p.db.ExecContext(ctx, p.dialect.rebind(q), args...)
}

// BeginTx starts a transaction on the pool.
func (p *dbPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (*dbTx, error) {
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &dbTx{tx: tx, dialect: p.dialect}, nil
}

// Close closes the pool.
func (p *dbPool) Close() error { return p.db.Close() }

func (t *dbTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.dialect.rebind(q), args...)
}

func (t *dbTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.dialect.rebind(q), args...)
}

func (t *dbTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.dialect.rebind(q), args...)
}

// Commit commits the transaction.
func (t *dbTx) Commit() error { return t.tx.Commit() }

// Rollback abandons the transaction.
func (t *dbTx) Rollback() error { return t.tx.Rollback() }

// Close closes the connection pools.
func (s *sqlStore) Close() error {
	if s.r == s.w {
		return s.w.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// maxSerialisationRetries bounds the retries of one PostgreSQL write
// transaction that lost a serialisation race; each retry sees the winner's
// commit, so a retried check-then-write reports the winner's row (for
// example ErrPendingPerson) rather than looping.
const maxSerialisationRetries = 50

// serialisationRetries counts PostgreSQL transactions run again after a
// serialisation failure, process-wide (the benchmark reports it per op).
var serialisationRetries atomic.Int64

// tx runs f in one write transaction and commits if f returns nil.
//
// SQLite: BEGIN IMMEDIATE on the single write connection, so writers are
// serialised. PostgreSQL: SERIALIZABLE, so the outcome is that of some
// serial order of the writers whatever the number of ca-server processes;
// a transaction that fails with a serialisation failure or a deadlock
// (SQLSTATE 40001, 40P01) is rolled back and f runs again from the start,
// so f must not keep state across runs except what it assigns afresh.
func (s *sqlStore) tx(ctx context.Context, f func(*dbTx) error) error {
	var opts *sql.TxOptions
	if s.w.dialect == dialectPostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	for attempt := 0; ; attempt++ {
		err := s.tryTx(ctx, opts, f)
		if err == nil || s.w.dialect != dialectPostgres || !isSerialisationFailure(err) || attempt >= maxSerialisationRetries {
			return err
		}
		serialisationRetries.Add(1)
		// Back off a little, random and growing, so the retried writers do
		// not meet again in lockstep.
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: %w (after a serialisation failure: %v)", ctx.Err(), err)
		case <-time.After(time.Duration(1+rand.IntN(min(attempt, 10)+1)) * time.Millisecond):
		}
	}
}

func (s *sqlStore) tryTx(ctx context.Context, opts *sql.TxOptions, f func(*dbTx) error) error {
	tx, err := s.w.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	// A write made under a job lease (WithFence) happens only while the
	// lease is still this holder's: in the same transaction, so a deposed
	// holder waking up late writes nothing (issue 14: fencing).
	if fc, ok := ctx.Value(fenceKey{}).(Lease); ok {
		if err := checkFence(ctx, tx, fc); err != nil {
			tx.Rollback()
			return err
		}
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// isSerialisationFailure reports whether err is PostgreSQL's
// serialization_failure or deadlock_detected.
func isSerialisationFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation,
// optionally on the named column (SQLite reports "table.column" in its
// message; the PostgreSQL migrations name every unique index and
// constraint table_column…, so "table.column" matches "table_column").
func isUnique(err error, what string) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code != "23505" {
			return false
		}
		return what == "" || strings.Contains(pe.ConstraintName, strings.ReplaceAll(what, ".", "_"))
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	if c != sqlite3.SQLITE_CONSTRAINT_UNIQUE && c != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return false
	}
	return what == "" || strings.Contains(se.Error(), what)
}
