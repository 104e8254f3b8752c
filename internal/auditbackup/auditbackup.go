// Package auditbackup writes the daily audit backups of the terminal and of
// the CA as dated SQLite files that are never replaced (CPS §5.4: audit
// records are kept at least one year and backed up daily; DOMAIN §6).
//
// It is the schema-agnostic half of a backup: the callers (app/audit and
// ca-server/audit) say which tables are copied and how the copy is
// verified; this package makes the file. Write copies inside one SQLite
// transaction on the caller's connection with the new file attached as
// schema "backup" (so the copy is one consistent snapshot and only the
// backup file is written), hands the finished file to the caller's verifier,
// syncs it and links it to audit-YYYY-MM-DD.db by the UTC date
// (audit-YYYY-MM-DD.2.db, .3 … for more copies the same day). link(2)
// fails on an existing name, so an existing backup is never replaced, even
// by a concurrent Write into the same directory. A Write that fails leaves
// nothing in the directory, except when only the final sync of the
// directory fails (the backup then exists under its name).
//
// Concurrency: Write and Due may run concurrently, also on one directory;
// Write uses the connection it is given exclusively until it returns.
//
// The package imports only the standard library; the caller registers the
// SQLite driver its connection uses.
package auditbackup

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxPerDay bounds the names tried for one day (audit-DAY.db to
// audit-DAY.999.db).
const maxPerDay = 999

// ErrDayFull: every name of the day is taken (maxPerDay backups); it is
// returned inside an *Error.
var ErrDayFull = errors.New("every backup name of the day is taken")

// Error is a failure of the file handling (directory, temporary file,
// copy, sync, link), as opposed to the caller's verifier, whose error Write
// returns as it is: callers branch on it with errors.As to give it their own
// kind.
type Error struct {
	Op  string // what failed, e.g. "attach", "copy", "link"
	Err error
}

func (e *Error) Error() string { return "auditbackup: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Copy says what goes into a backup.
type Copy struct {
	// Script is the SQL run inside the copy's transaction: it creates the
	// tables in schema "backup" and fills them from the source (schema
	// "main"). The table backup.backup_info (name TEXT PRIMARY KEY, value
	// TEXT NOT NULL) is created by Write before the script runs.
	Script string
	// Info are the (name, value) rows of backup.backup_info, e.g. the
	// format the verifier recognises the file by and when it was made.
	Info [][2]string
	// Verify checks the finished copy at path, on its own (the file is
	// detached from the source), before it gets its name. A non-nil error
	// refuses the copy: the file is removed and Write returns the error
	// unchanged. Required.
	Verify func(path string) error
}

// Write makes one backup in dir (created 0700 if missing) from the
// database of src, named by at's UTC date, and returns its path. The file
// has mode 0600. src must not be inside a transaction; it is left detached
// and outside a transaction when Write returns.
func Write(ctx context.Context, src *sql.Conn, dir string, at time.Time, c Copy) (string, error) {
	if src == nil || dir == "" || c.Script == "" || c.Verify == nil {
		return "", &Error{Op: "write", Err: errors.New("needs a connection, a directory, a script and a verifier")}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", &Error{Op: "directory", Err: err}
	}
	tmp, err := os.CreateTemp(dir, ".audit-backup-*.tmp") // mode 0600
	if err != nil {
		return "", &Error{Op: "temporary file", Err: err}
	}
	tmpPath := tmp.Name()
	tmp.Close()
	// The final name is a second link: the temporary one always goes.
	defer removeSQLiteFiles(tmpPath)

	if err := copyInto(ctx, src, tmpPath, c); err != nil {
		return "", err
	}
	if err := c.Verify(tmpPath); err != nil {
		return "", err
	}
	if err := syncPath(tmpPath); err != nil {
		return "", err
	}
	final, err := linkNew(tmpPath, dir, at.UTC())
	if err != nil {
		return "", err
	}
	if err := syncPath(dir); err != nil {
		return "", err
	}
	return final, nil
}

// copyInto attaches tmpPath to conn as "backup" and runs the copy in one
// transaction: the reads of main see one snapshot, and only the backup file
// takes a write lock.
func copyInto(ctx context.Context, conn *sql.Conn, tmpPath string, c Copy) error {
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS backup`, tmpPath); err != nil {
		return &Error{Op: "attach", Err: err}
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE backup`)
	if _, err := conn.ExecContext(ctx, `PRAGMA backup.synchronous = FULL`); err != nil {
		return &Error{Op: "synchronous", Err: err}
	}
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		return &Error{Op: "begin", Err: err}
	}
	_, err := conn.ExecContext(ctx, `CREATE TABLE backup.backup_info (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT`)
	if err == nil {
		_, err = conn.ExecContext(ctx, c.Script)
	}
	if err == nil && len(c.Info) > 0 {
		q := `INSERT INTO backup.backup_info (name, value) VALUES ` + strings.Repeat(`(?, ?), `, len(c.Info)-1) + `(?, ?)`
		args := make([]any, 0, 2*len(c.Info))
		for _, kv := range c.Info {
			args = append(args, kv[0], kv[1])
		}
		_, err = conn.ExecContext(ctx, q, args...)
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, `COMMIT`)
	}
	if err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		return &Error{Op: "copy", Err: err}
	}
	return nil
}

// name is the file name of the n-th backup (from 1) dated day.
func name(day string, n int) string {
	if n == 1 {
		return "audit-" + day + ".db"
	}
	return "audit-" + day + "." + strconv.Itoa(n) + ".db"
}

// linkNew gives tmp its dated name without ever replacing a file: link(2)
// fails on an existing name, so the next number is tried.
func linkNew(tmp, dir string, at time.Time) (string, error) {
	day := at.Format(time.DateOnly)
	for n := 1; n <= maxPerDay; n++ {
		final := filepath.Join(dir, name(day, n))
		err := os.Link(tmp, final)
		if err == nil {
			return final, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", &Error{Op: "link", Err: err}
		}
	}
	return "", &Error{Op: "link " + day, Err: ErrDayFull}
}

// Due reports whether dir holds no backup dated at's UTC date, so a check
// that runs more often than daily (and across restarts) makes one backup a
// day. A missing dir is due.
func Due(dir string, at time.Time) (bool, error) {
	day := at.UTC().Format(time.DateOnly)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, &Error{Op: "directory", Err: err}
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "audit-"+day+".") && strings.HasSuffix(n, ".db") {
			return false, nil
		}
	}
	return true, nil
}

// syncPath makes a file's data, or a directory's entries, durable.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return &Error{Op: "sync", Err: err}
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &Error{Op: "sync", Err: err}
	}
	return nil
}

// removeSQLiteFiles removes a SQLite file and the side files SQLite may
// have left beside it.
func removeSQLiteFiles(path string) {
	for _, p := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
}
