// Package store opens the terminal's single SQLite file (ARCHITECTURE "Data") with WAL, foreign
// keys and versioned migrations, and runs write transactions.
//
// Concurrency: the returned *DB is safe for concurrent use. It holds one connection, so all
// statements of the process are serialised; write transactions start with BEGIN IMMEDIATE so
// that a second process (the CLI next to the GUI) waits on busy_timeout instead of failing on a
// lock upgrade. Never call the *DB from inside a function passed to Tx: that would wait on the
// connection held by the transaction. Use the *sql.Tx given to the function.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// DB is the terminal database.
type DB struct{ *sql.DB }

// FileMode is the mode of the database file and of SQLite's -wal and -shm files beside it:
// the database holds the resident-file HMAC key, password hashes, resident records and the
// audit chain (DOMAIN §6, §9), so only the terminal's own user may read it.
const FileMode fs.FileMode = 0o600

// Open opens (creating if needed) the SQLite file at path and applies pending migrations.
// The file is created with FileMode, and an existing file (and its -wal and -shm files) is
// set to FileMode; SQLite creates the -wal and -shm files with the database file's mode.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("store: empty database path")
	}
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", "immediate")
	sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(1)
	db := &DB{sdb}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// privateFiles creates path with FileMode if absent and sets FileMode on it and on the -wal,
// -shm and -journal files beside it that exist.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	err = f.Chmod(FileMode)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: protect %s: %w", path, err)
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Chmod(path+side, FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: protect %s: %w", path+side, err)
		}
	}
	return nil
}

// Tx runs fn in one write transaction: committed when fn returns nil, rolled back otherwise
// (and on panic), so a refused action leaves no change. A failure because the disk is full
// satisfies errors.Is(err, syscall.ENOSPC).
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	defer func() { err = diskFull(err) }()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// Version returns the applied schema version.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	return v, err
}

func (db *DB) migrate(ctx context.Context) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			return fmt.Errorf("store: read schema version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("store: database schema version %d is newer than this program (%d)", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("store: migration %d: %w", i+1, err)
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, i+1)); err != nil {
				return fmt.Errorf("store: set schema version %d: %w", i+1, err)
			}
		}
		return nil
	})
}
