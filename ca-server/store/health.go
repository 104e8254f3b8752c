package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotReady: the store cannot take writes now (unreachable, read-only —
// a PostgreSQL standby, a locked or failing SQLite file — or its schema is
// not the one this program was built for). serve's /readyz reports it.
var ErrNotReady = errors.New("store: not ready")

// Ready is the readiness check of a SQLite store: the file answers, a write
// transaction can start (BEGIN IMMEDIATE takes the write lock, which another
// writer or a read-only file refuses) and the schema is current. It writes
// nothing.
func (s *SQLite) Ready(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return s.ready(ctx, len(ms), s.SchemaVersion, func(ctx context.Context) error {
		c, err := s.w.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return err
		}
		// a write that changes nothing but needs the file writable
		_, err = c.ExecContext(ctx, "PRAGMA user_version = "+fmt.Sprint(len(ms)))
		_, rerr := c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return errors.Join(err, rerr)
	})
}

// Ready is the readiness check of a PostgreSQL store: the server answers,
// it is a primary that takes writes (not in recovery, transaction_read_only
// off, a transaction id can be assigned: a promoted standby passes, the old
// primary turned standby fails) and the schema is current.
func (s *Postgres) Ready(ctx context.Context) error {
	ms, err := migrationsIn(postgresMigrationFiles, "migrations/postgres")
	if err != nil {
		return err
	}
	return s.ready(ctx, len(ms), s.SchemaVersion, func(ctx context.Context) error {
		tx, err := s.w.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var recovery bool
		var ro string
		if err := tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").Scan(&recovery, &ro); err != nil {
			return err
		}
		if recovery || ro != "off" {
			return errors.New("database is read-only (a standby?)")
		}
		var xid string
		return tx.QueryRowContext(ctx, "SELECT txid_current()::text").Scan(&xid)
	})
}

func (s *sqlStore) ready(ctx context.Context, want int, version func(context.Context) (int, error), writable func(context.Context) error) error {
	if err := s.w.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: unreachable: %v", ErrNotReady, err)
	}
	if err := writable(ctx); err != nil {
		return fmt.Errorf("%w: not writable: %v", ErrNotReady, err)
	}
	v, err := version(ctx)
	if err != nil {
		return fmt.Errorf("%w: schema version: %v", ErrNotReady, err)
	}
	if v != want {
		return fmt.Errorf("%w: schema version %d, this program needs %d", ErrNotReady, v, want)
	}
	return nil
}

// UncheckpointedAuditRecords counts the audit records after the newest
// checkpoint (metrics: what a crash before the next checkpoint would leave
// without a signature; CPS §5.4).
func (s *sqlStore) UncheckpointedAuditRecords(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM audit_records WHERE seq > coalesce((SELECT max(seq) FROM audit_checkpoints), 0)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: uncheckpointed audit records: %w", err)
	}
	return n, nil
}
