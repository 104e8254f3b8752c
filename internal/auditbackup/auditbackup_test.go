package auditbackup_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"madoguchi/internal/auditbackup"
	_ "modernc.org/sqlite" // driver "sqlite", for the tests only
)

const script = `
CREATE TABLE backup.entries (seq INTEGER PRIMARY KEY, text TEXT NOT NULL) STRICT;
INSERT INTO backup.entries SELECT seq, text FROM main.entries ORDER BY seq;
`

// source is a real SQLite file with n rows in entries.
func source(t *testing.T, n int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "source.db")+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE entries (seq INTEGER PRIMARY KEY, text TEXT NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := db.Exec(`INSERT INTO entries (seq, text) VALUES (?, ?)`, i, fmt.Sprintf("entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// write makes one backup of db with a verifier that counts the copy's rows.
func write(t *testing.T, db *sql.DB, dir string, at time.Time, verify func(string) error) (string, error) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if verify == nil {
		verify = func(string) error { return nil }
	}
	return auditbackup.Write(ctx, conn, dir, at, auditbackup.Copy{
		Script: script,
		Info:   [][2]string{{"format", "test backup v1"}, {"made_at", at.UTC().Format(time.RFC3339Nano)}},
		Verify: verify,
	})
}

// open reads a backup on its own.
func open(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// TestWriteCopiesVerifiesAndNames: the copy holds the script's tables and
// backup_info, is verified before it has a name, is private (0600) in a
// private directory (0700), and is named by the UTC date of at.
func TestWriteCopiesVerifiesAndNames(t *testing.T) {
	db := source(t, 7)
	dir := filepath.Join(t.TempDir(), "backups")
	at := time.Date(2026, 11, 23, 8, 30, 0, 0, time.FixedZone("JST", 9*3600)) // 2026-11-22 23:30 UTC
	var verified string
	final, err := write(t, db, dir, at, func(path string) error {
		verified = path
		var n int
		if err := open(t, path).QueryRow(`SELECT count(*) FROM entries`).Scan(&n); err != nil || n != 7 {
			return fmt.Errorf("copy holds %d entries: %v", n, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "audit-2026-11-22.db")); !errors.Is(err, os.ErrNotExist) {
			return errors.New("the copy has its name before it verified")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(final) != "audit-2026-11-22.db" {
		t.Errorf("name %q, want audit-2026-11-22.db (UTC date)", final)
	}
	if verified == "" || verified == final {
		t.Errorf("verifier saw %q, want the temporary file", verified)
	}
	if fi, err := os.Stat(final); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode: %v, %v", fi, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode: %v, %v", fi, err)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("directory holds %v, want the backup alone", got)
	}
	b := open(t, final)
	var format, madeAt string
	if err := b.QueryRow(`SELECT value FROM backup_info WHERE name = 'format'`).Scan(&format); err != nil || format != "test backup v1" {
		t.Errorf("format %q, %v", format, err)
	}
	if err := b.QueryRow(`SELECT value FROM backup_info WHERE name = 'made_at'`).Scan(&madeAt); err != nil || madeAt != "2026-11-22T23:30:00Z" {
		t.Errorf("made_at %q, %v", madeAt, err)
	}
	// The source connection is usable afterwards: detached, no transaction.
	if _, err := db.Exec(`INSERT INTO entries (seq, text) VALUES (8, 'after')`); err != nil {
		t.Fatal(err)
	}
}

// TestWriteNeverReplaces: a second backup of the same day, and one whose
// first name is already taken by any file, gets the next number; the
// existing files are untouched (link(2) never replaces).
func TestWriteNeverReplaces(t *testing.T) {
	db := source(t, 3)
	dir := t.TempDir()
	day := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	first, err := write(t, db, dir, day, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	// A stranger's file holds the second name.
	squatter := filepath.Join(dir, "audit-2026-11-22.2.db")
	if err := os.WriteFile(squatter, []byte("not mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO entries (seq, text) VALUES (4, 'later')`); err != nil {
		t.Fatal(err)
	}
	third, err := write(t, db, dir, day.Add(20*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(third) != "audit-2026-11-22.3.db" {
		t.Errorf("third backup of the day named %q", third)
	}
	if after, _ := os.ReadFile(first); !bytes.Equal(before, after) {
		t.Error("the first backup of the day changed")
	}
	if b, _ := os.ReadFile(squatter); string(b) != "not mine" {
		t.Error("an existing file was replaced")
	}
	var n int
	if err := open(t, third).QueryRow(`SELECT count(*) FROM entries`).Scan(&n); err != nil || n != 4 {
		t.Errorf("third backup holds %d entries, %v", n, err)
	}
	want := []string{"audit-2026-11-22.2.db", "audit-2026-11-22.3.db", "audit-2026-11-22.db"}
	if got := names(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("directory holds %v, want %v", got, want)
	}
}

// TestWriteWhenTheDayIsFull: when every name of the day is taken, Write
// fails with ErrDayFull inside an *Error and leaves nothing new.
func TestWriteWhenTheDayIsFull(t *testing.T) {
	db := source(t, 1)
	dir := t.TempDir()
	day := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for n := 1; n <= 999; n++ {
		name := "audit-2026-11-22.db"
		if n > 1 {
			name = fmt.Sprintf("audit-2026-11-22.%d.db", n)
		}
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := write(t, db, dir, day, nil)
	var fileErr *auditbackup.Error
	if !errors.Is(err, auditbackup.ErrDayFull) || !errors.As(err, &fileErr) {
		t.Fatalf("Write on a full day: %v", err)
	}
	if got := names(t, dir); len(got) != 999 {
		t.Errorf("directory holds %d files, want the 999 that were there", len(got))
	}
	// The next day has names again.
	if final, err := write(t, db, dir, day.Add(24*time.Hour), nil); err != nil || filepath.Base(final) != "audit-2026-11-23.db" {
		t.Errorf("next day: %q, %v", final, err)
	}
}

// TestFailedWriteLeavesNothing: a copy that fails (bad script, source
// without the table) or that its verifier refuses leaves no file in the
// directory; the verifier's error comes back unchanged, the copy's as an
// *Error; the source connection is usable afterwards.
func TestFailedWriteLeavesNothing(t *testing.T) {
	ctx := context.Background()
	db := source(t, 5)
	dir := t.TempDir()
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

	refused := errors.New("test: copy refused")
	if _, err := write(t, db, dir, at, func(string) error { return refused }); err != refused {
		t.Errorf("refused copy: %v, want the verifier's error unchanged", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("refused copy left %v", got)
	}

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = auditbackup.Write(ctx, conn, dir, at, auditbackup.Copy{
		Script: script + `INSERT INTO backup.entries SELECT seq, text FROM main.missing;`,
		Verify: func(string) error { t.Error("verifier called after a failed copy"); return nil },
	})
	var fileErr *auditbackup.Error
	if !errors.As(err, &fileErr) || fileErr.Op != "copy" {
		t.Errorf("failed copy: %v", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("failed copy left %v", got)
	}
	// Rolled back and detached: the same connection copies again.
	if _, err := conn.ExecContext(ctx, `INSERT INTO entries (seq, text) VALUES (6, 'after')`); err != nil {
		t.Fatal(err)
	}
	final, err := auditbackup.Write(ctx, conn, dir, at, auditbackup.Copy{Script: script, Verify: func(string) error { return nil }})
	if err != nil || filepath.Base(final) != "audit-2026-11-22.db" {
		t.Fatalf("backup after failures: %q, %v", final, err)
	}

	// A cancelled context copies nothing.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := auditbackup.Write(cancelled, conn, dir, at, auditbackup.Copy{Script: script, Verify: func(string) error { return nil }}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Write: %v", err)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("directory holds %v, want the one backup", got)
	}
}

// TestWriteNeedsItsArguments: missing arguments are refused before any
// file is made.
func TestWriteNeedsItsArguments(t *testing.T) {
	ctx := context.Background()
	db := source(t, 1)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dir := filepath.Join(t.TempDir(), "backups")
	ok := func(string) error { return nil }
	for name, c := range map[string]struct {
		conn *sql.Conn
		dir  string
		copy auditbackup.Copy
	}{
		"no connection": {nil, dir, auditbackup.Copy{Script: script, Verify: ok}},
		"no directory":  {conn, "", auditbackup.Copy{Script: script, Verify: ok}},
		"no script":     {conn, dir, auditbackup.Copy{Verify: ok}},
		"no verifier":   {conn, dir, auditbackup.Copy{Script: script}},
	} {
		var fileErr *auditbackup.Error
		if _, err := auditbackup.Write(ctx, c.conn, c.dir, time.Now(), c.copy); !errors.As(err, &fileErr) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused Write created the directory")
	}
}

// TestDue: due while the UTC day has no backup (also with no directory);
// not due after one, nor after a second the same day; due again the next
// UTC day. Files that only look alike do not count.
func TestDue(t *testing.T) {
	db := source(t, 2)
	dir := filepath.Join(t.TempDir(), "backups")
	day := time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC)
	due := func(at time.Time) bool {
		t.Helper()
		d, err := auditbackup.Due(dir, at)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if !due(day) {
		t.Error("not due without a directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"audit-2026-11-22.db.tmp", "audit-2026-11-22", ".audit-backup-1.tmp", "audit-2026-11-21.db"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !due(day) {
		t.Error("not due with only look-alike files")
	}
	if _, err := write(t, db, dir, day, nil); err != nil {
		t.Fatal(err)
	}
	if due(day) || due(day.Add(-23*time.Hour)) {
		t.Error("due the same UTC day after a backup")
	}
	// 2026-11-23 08:00 in Tokyo is still 2026-11-22 in UTC.
	if due(time.Date(2026, 11, 23, 8, 0, 0, 0, time.FixedZone("JST", 9*3600))) {
		t.Error("due by the local date instead of the UTC date")
	}
	if !due(day.Add(time.Minute)) {
		t.Error("not due the next UTC day")
	}
	if _, err := write(t, db, dir, day, nil); err != nil {
		t.Fatal(err)
	}
	if due(day) {
		t.Error("due after a second backup the same day")
	}
	// A directory that cannot be read is an *Error, not "due".
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var fileErr *auditbackup.Error
	if d, err := auditbackup.Due(file, day); d || !errors.As(err, &fileErr) {
		t.Errorf("Due on a file: %v, %v", d, err)
	}
}

// TestConcurrentWritesGetDistinctNames: Writes racing into one directory
// on the same day each get their own name.
func TestConcurrentWritesGetDistinctNames(t *testing.T) {
	db := source(t, 20)
	dir := t.TempDir()
	day := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	const n = 4
	var wg sync.WaitGroup
	finals := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Conn(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			finals[i], err = auditbackup.Write(context.Background(), conn, dir, day, auditbackup.Copy{Script: script, Verify: func(string) error { return nil }})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, f := range finals {
		seen[f] = true
	}
	if len(seen) != n || len(names(t, dir)) != n {
		t.Errorf("backups %v, directory %v", finals, names(t, dir))
	}
}
