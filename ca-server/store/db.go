package store

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	db        *sql.DB
	dialect   dialect
	lastPrune atomic.Int64 // UnixNano of the last pruneOutcomes
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
//
// PostgreSQL failover (issue 14): a transaction whose connection is lost
// before COMMIT was rolled back by the server and runs again, on a new
// connection, for up to FailoverWait — with a multi-host URL and
// target_session_attrs=read-write that is the promoted standby once it
// accepts writes. A connection lost at COMMIT leaves the outcome unknown:
// tryTx resolves it through the transaction's commit token (tx_outcomes)
// and either reports success (it committed; what f assigned stands) or
// runs f again (it rolled back). So no write method ever applies its
// change twice or reports a committed change as failed.
func (s *sqlStore) tx(ctx context.Context, f func(*dbTx) error) (err error) {
	defer func() { err = diskFull(err) }()
	if s.w.dialect != dialectPostgres {
		return s.tryTx(ctx, nil, f)
	}
	opts := &sql.TxOptions{Isolation: sql.LevelSerializable}
	var lostSince time.Time
	for attempt := 0; ; attempt++ {
		err := s.tryTx(ctx, opts, f)
		var wait time.Duration
		switch {
		case err == nil:
			return nil
		case isSerialisationFailure(err) && attempt < maxSerialisationRetries:
			serialisationRetries.Add(1)
			// Back off a little, random and growing, so the retried writers
			// do not meet again in lockstep.
			wait = time.Duration(1+rand.IntN(min(attempt, 10)+1)) * time.Millisecond
		case isConnectionLost(err) && ctx.Err() == nil:
			if lostSince.IsZero() {
				lostSince = time.Now()
			}
			if time.Since(lostSince) > FailoverWait {
				return err
			}
			connectionRetries.Add(1)
			wait = time.Duration(50+rand.IntN(200)) * time.Millisecond
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: %w (retrying after: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// FailoverWait bounds how long a write keeps retrying on lost connections
// (a database failover: the primary gone, the standby not yet promoted) and
// how long the resolution of a COMMIT with unknown outcome may take.
var FailoverWait = 30 * time.Second

// connectionRetries and commitsResolved count, process-wide, write
// transactions run again after a lost connection and COMMITs whose unknown
// outcome was resolved through the commit token.
var connectionRetries, commitsResolved atomic.Int64

// FailoverCounts returns the process-wide counts of write transactions run
// again after a lost connection and of COMMITs with unknown outcome that
// were resolved (for metrics and tests).
func FailoverCounts() (retried, resolved int64) {
	return connectionRetries.Load(), commitsResolved.Load()
}

// errRolledBack is returned by tryTx when a COMMIT with unknown outcome
// turned out not to have committed: tx runs the transaction again.
var errRolledBack = errors.New("store: connection lost at COMMIT, transaction rolled back")

// ErrCommitUnknown: the connection was lost at COMMIT and the outcome
// could not be learned within FailoverWait (the database unreachable).
// The caller must not assume either outcome: retrying with the same
// request id resolves it (the store's idempotency).
var ErrCommitUnknown = errors.New("store: commit outcome unknown")

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
	var token []byte
	if s.w.dialect == dialectPostgres && commitTokens {
		token = make([]byte, 16)
		crand.Read(token)
		// The transaction-level lock is held until this transaction ends
		// however it ends (COMMIT, ROLLBACK, the backend's exit), which is
		// what commitOutcome waits for.
		if _, err := tx.ExecContext(ctx, `WITH l AS (SELECT pg_advisory_xact_lock(?::bigint))
			INSERT INTO tx_outcomes (token, at) SELECT ?::bytea, ?::bigint FROM l`,
			tokenLockKey(token), token, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: commit token: %w", err)
		}
	}
	err = tx.Commit()
	if err == nil {
		s.w.pruneOutcomes(ctx)
		return nil
	}
	if token == nil || isRolledBackAtCommit(err) {
		// The server answered that the transaction did not commit.
		return fmt.Errorf("store: commit: %w", err)
	}
	committed, rerr := s.w.commitOutcome(ctx, token)
	switch {
	case rerr != nil:
		return fmt.Errorf("%w: %v (resolving: %v)", ErrCommitUnknown, err, rerr)
	case committed:
		commitsResolved.Add(1)
		s.w.pruneOutcomes(ctx)
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("store: commit: %w", ctx.Err())
	default:
		commitsResolved.Add(1)
		return fmt.Errorf("%w (%v)", errRolledBack, err)
	}
}

// commitTokens is false only in BenchmarkIssuanceWritePath's baseline
// that measures what the commit token costs.
var commitTokens = true

// isRolledBackAtCommit reports whether the server answered COMMIT with an
// error that means the transaction was rolled back: a serialisation
// failure or deadlock (class 40) or a deferred constraint (class 23). Any
// other failure — a lost connection, or the server terminating the session
// (57P01 admin_shutdown) while the COMMIT waits for the synchronous standby,
// when the transaction "has already committed locally" — leaves the outcome
// unknown, and commitOutcome resolves it.
func isRolledBackAtCommit(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "40") || strings.HasPrefix(pe.Code, "23"))
}

// tokenLockKey is the advisory lock key of a commit token.
func tokenLockKey(token []byte) int64 { return int64(binary.BigEndian.Uint64(token[:8])) }

// commitOutcome learns whether the transaction with the commit token
// committed, on a new connection (after a failover, to the new primary):
// it takes the token's advisory lock, which PostgreSQL grants only once
// that transaction has ended — so a COMMIT still being processed by the
// old backend is waited for, never raced — then looks the token up, in
// READ COMMITTED so the lookup's snapshot is taken after the lock. It
// retries until FailoverWait while the database is unreachable.
func (p *dbPool) commitOutcome(ctx context.Context, token []byte) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FailoverWait)
	defer cancel()
	for {
		committed, err := p.lookupToken(ctx, token)
		if err == nil {
			return committed, nil
		}
		select {
		case <-ctx.Done():
			return false, err
		case <-time.After(time.Duration(50+rand.IntN(200)) * time.Millisecond):
		}
	}
}

func (p *dbPool) lookupToken(ctx context.Context, token []byte) (bool, error) {
	tx, err := p.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?::bigint)`, tokenLockKey(token)); err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tx_outcomes WHERE token = ?::bytea`, token).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// outcomeRetention is how long commit tokens are kept; they are needed only
// while a COMMIT's outcome is being resolved (FailoverWait).
const outcomeRetention = 24 * time.Hour

// pruneOutcomes deletes commit tokens older than outcomeRetention, at most
// once an hour per process, in its own autocommit statement (READ
// COMMITTED: it takes part in no serialisable conflict). Failures are
// ignored: the next prune catches up.
func (p *dbPool) pruneOutcomes(ctx context.Context) {
	now := time.Now()
	last := p.lastPrune.Load()
	if now.UnixNano()-last < int64(time.Hour) || !p.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	p.ExecContext(context.WithoutCancel(ctx), `DELETE FROM tx_outcomes WHERE at < ?`, now.Add(-outcomeRetention).UnixNano())
}

// isConnectionLost reports whether err is the loss of the database
// connection (or the failure to open one) rather than an answer of the
// server: the transaction did not commit, and running it again on a new
// connection is safe.
func isConnectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// The server shutting down or a standby refusing writes while it is
		// promoted: admin_shutdown, crash_shutdown, cannot_connect_now,
		// read_only_sql_transaction.
		switch pe.Code {
		case "57P01", "57P02", "57P03", "25006":
			return true
		}
		return false
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.Is(err, errRolledBack) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) || errors.As(err, &ce) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed")
}

// isSerialisationFailure reports whether err is PostgreSQL's
// serialization_failure or deadlock_detected.
func isSerialisationFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// diskFull marks a write that failed because the disk is full (SQLite
// SQLITE_FULL, PostgreSQL disk_full 53100) so that errors.Is(err,
// syscall.ENOSPC) holds, keeping its text and what it wraps; other errors
// pass unchanged. The fault campaign (issue 15) and callers can then tell a
// full disk from other failures.
func diskFull(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	var se *sqlite.Error
	full := errors.As(err, &pe) && pe.Code == "53100" ||
		errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
	if !full {
		return err
	}
	return fullError{err}
}

type fullError struct{ err error }

func (e fullError) Error() string   { return e.err.Error() }
func (e fullError) Unwrap() []error { return []error{e.err, syscall.ENOSPC} }

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
