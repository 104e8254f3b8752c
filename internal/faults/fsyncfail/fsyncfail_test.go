package fsyncfail_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"madoguchi/app/audit"
	"madoguchi/app/store"
	caaudit "madoguchi/ca-server/audit"
	castore "madoguchi/ca-server/store"
	"madoguchi/internal/faults/fsyncfail"
)

const childEnv = "FSYNCFAIL_TEST_CHILD"

// inChild runs the calling test again in a child process with FSYNCFAIL_TEST_CHILD=dir (Arm
// cannot be undone, so it must not touch this process) and reports false in the parent after
// the child passed; true in the child.
func inChild(t *testing.T, dir string) bool {
	t.Helper()
	if os.Getenv(childEnv) != "" {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("child with fsync failing:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child test: %v", err)
	}
	return false
}

func TestArmFailsSyncsNotWrites(t *testing.T) {
	if !inChild(t, "-") {
		return
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync before Arm: %v", err)
	}
	if err := fsyncfail.Arm(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("after")); err != nil {
		t.Fatalf("write after Arm: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync after Arm: %v, want EIO", err)
	}
	if err := syscall.Fdatasync(int(f.Fd())); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fdatasync after Arm: %v, want EIO", err)
	}
	// Other threads too (TSYNC): a goroutine locked to a fresh thread.
	done := make(chan error)
	go func() {
		// runtime.LockOSThread is not needed for the check: any thread the runtime gives us
		// carries the filter.
		done <- f.Sync()
	}()
	if err := <-done; !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync on another goroutine: %v, want EIO", err)
	}
}

// TestStoresWithFsyncFailing: the terminal's and the CA's SQLite stores (synchronous=FULL, WAL)
// report a commit whose fsync failed as an error (SQLITE_IOERR_FSYNC, "disk I/O error (1034)"),
// and the refused commit does not come back when the next process opens the files (no record
// reported failed shows up later, the fsyncgate trap): the chains stay intact with only the
// records written before, and take the next record.
func TestStoresWithFsyncFailing(t *testing.T) {
	dir := t.TempDir()
	if os.Getenv(childEnv) != "" {
		dir = os.Getenv(childEnv)
	}
	ctx := context.Background()
	termDB := filepath.Join(dir, "terminal.db")
	caDB := filepath.Join(dir, "ca.db")
	appendTerm := func(db *store.DB, what string) error {
		return db.Tx(ctx, func(tx *sql.Tx) error {
			return audit.Append(ctx, tx, audit.Entry{Operator: "-", Action: "fsync.test", Target: what, Result: audit.ResultOK})
		})
	}
	if os.Getenv(childEnv) == "" {
		db, err := store.Open(ctx, termDB)
		if err != nil {
			t.Fatal(err)
		}
		if err := appendTerm(db, "before"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		st, err := castore.OpenSQLite(ctx, caDB)
		if err != nil {
			t.Fatal(err)
		}
		l, err := caaudit.OpenUnsigned(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Record(ctx, caaudit.Entry{Terminal: "local", Operator: "t", Action: "fsync.test", Target: "before", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	if inChild(t, dir) {
		db, err := store.Open(ctx, termDB)
		if err != nil {
			t.Fatal(err)
		}
		st, err := castore.OpenSQLite(ctx, caDB)
		if err != nil {
			t.Fatal(err)
		}
		l, err := caaudit.OpenUnsigned(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := fsyncfail.Arm(); err != nil {
			t.Fatal(err)
		}
		err = appendTerm(db, "during")
		t.Logf("terminal commit with fsync failing: %v", err)
		if err == nil {
			t.Error("terminal store: a commit whose fsync failed reported success")
		}
		err = l.Record(ctx, caaudit.Entry{Terminal: "local", Operator: "t", Action: "fsync.test", Target: "during", Result: "ok"})
		t.Logf("CA commit with fsync failing: %v", err)
		if err == nil {
			t.Error("CA store: a commit whose fsync failed reported success")
		}
		return // no Close: the process ends as a crashed one would, with its page cache intact
	}
	// The next process (this one, no filter) opens both files.
	db, err := store.Open(ctx, termDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db)
	if err != nil || rep.Records != 1 {
		t.Fatalf("terminal after the failed fsync: %d records, %v; want the 1 written before", rep.Records, err)
	}
	if err := appendTerm(db, "after"); err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(ctx, db); err != nil || rep.Records != 2 {
		t.Fatalf("terminal after one more record: %d records, %v", rep.Records, err)
	}
	st, err := castore.OpenSQLite(ctx, caDB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	crep, err := caaudit.VerifyWith(ctx, st, caaudit.VerifyOptions{})
	if err != nil || crep.Records != 1 {
		t.Fatalf("CA after the failed fsync: %d records, %v; want the 1 written before", crep.Records, err)
	}
	l, err := caaudit.OpenUnsigned(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, caaudit.Entry{Terminal: "local", Operator: "t", Action: "fsync.test", Target: "after", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	if crep, err := caaudit.VerifyWith(ctx, st, caaudit.VerifyOptions{}); err != nil || crep.Records != 2 {
		t.Fatalf("CA after one more record: %d records, %v", crep.Records, err)
	}
}

func TestArmWhenPresent(t *testing.T) {
	if !inChild(t, "-") {
		return
	}
	dir := t.TempDir()
	trigger := filepath.Join(dir, "fail-fsync")
	armed := make(chan error, 1)
	fsyncfail.ArmWhenPresent(trigger, func(err error) { armed <- err })
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync before the trigger file exists: %v", err)
	}
	if err := os.WriteFile(trigger, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-armed; err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("fsync after the trigger: %v, want EIO", err)
	}
}
