package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The database and its -wal and -shm files are 0600 (they hold terminal,
// issuance and audit records), and a database made 0644 by an older
// version is narrowed at the next open.
func TestDatabaseFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tok := make([]byte, 32)
	if err := s.CreateEnrolmentToken(ctx, EnrolmentToken{TokenSHA256: tok, Municipality: "131016", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if fi.Mode().Perm() != PrivateFileMode {
				t.Fatalf("%s: %s mode %v, want %v", when, filepath.Base(p), fi.Mode().Perm(), PrivateFileMode)
			}
		}
	}
	check("new database")
	s.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	s, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.LastAuditRecord(ctx); err != nil && !isNotFound(err) {
		t.Fatal(err)
	}
	check("reopened 0644 database")
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
