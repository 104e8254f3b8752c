package store

import (
	"errors"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// diskFull marks an error SQLite reported as SQLITE_FULL (the disk or the database file is
// full) so that errors.Is(err, syscall.ENOSPC) holds, keeping its text and everything it wraps
// (an *apperr.Error stays reachable through errors.As). Other errors pass unchanged.
func diskFull(err error) error {
	var se *sqlite.Error
	if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_FULL {
		return err
	}
	return fullError{err}
}

type fullError struct{ err error }

func (e fullError) Error() string   { return e.err.Error() }
func (e fullError) Unwrap() []error { return []error{e.err, syscall.ENOSPC} }
