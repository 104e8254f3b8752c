package store_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"madoguchi/app/store"
)

// TestDatabaseFilesArePrivate: the terminal database holds the resident-file HMAC key,
// operators' password hashes, resident records and the audit chain, so the file and SQLite's
// WAL and shared-memory files beside it are readable by the terminal's user only (0600),
// whatever the umask; an existing database with looser modes is tightened on open.
func TestDatabaseFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	ctx := context.Background()
	dir := t.TempDir()

	check := func(path string) {
		t.Helper()
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS perm_probe(x)`); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", filepath.Base(p), m)
			}
		}
	}
	fresh := filepath.Join(dir, "terminal.db")
	check(fresh)

	loose := filepath.Join(dir, "old.db")
	if err := os.WriteFile(loose, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check(loose)
}
