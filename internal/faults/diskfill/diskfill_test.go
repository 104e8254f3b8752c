package diskfill_test

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
	"madoguchi/internal/faults/diskfill"
)

const childEnv = "DISKFILL_TEST_CHILD"

// privateTmpfs runs the calling test again in a child process in its own mount namespace
// (diskfill.PrivateMounts) and returns ok = false in the parent, which has nothing more to do:
// the child's result is the test's. In the child it mounts a tmpfs of size bytes on a new
// directory and returns it, unmounted at cleanup. Tests run as root (the project's harness does
// throughout); a mount that fails fails the test.
func privateTmpfs(t *testing.T, size int64) (dir string, ok bool) {
	t.Helper()
	if os.Getenv(childEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		cmd.SysProcAttr = diskfill.PrivateMounts()
		out, err := cmd.CombinedOutput()
		t.Logf("in a private mount namespace:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
			t.Fatalf("child test: %v", err)
		}
		return "", false
	}
	dir = t.TempDir()
	unmount, err := diskfill.MountTmpfs(dir, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Error(err)
		}
	})
	return dir, true
}

func TestFillLeavesAndReleases(t *testing.T) {
	dir, ok := privateTmpfs(t, 8<<20)
	if !ok {
		return
	}
	before, err := diskfill.Free(dir)
	if err != nil || before < 7<<20 {
		t.Fatalf("fresh 8 MiB tmpfs: %d free, %v", before, err)
	}
	const leave = 100_000
	release, err := diskfill.Fill(dir, leave)
	if err != nil {
		t.Fatal(err)
	}
	free, _ := diskfill.Free(dir)
	if free < leave || free >= leave+int64(os.Getpagesize()) {
		t.Fatalf("%d bytes free after Fill(%d)", free, leave)
	}
	err = os.WriteFile(filepath.Join(dir, "big"), make([]byte, 2*leave), 0o600)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing twice what is left: %v, want ENOSPC", err)
	}
	if err := os.Remove(filepath.Join(dir, "big")); err != nil { // what the failed write took
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "small"), make([]byte, leave/2), 0o600); err != nil {
		t.Fatalf("writing half of what is left: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".diskfill") {
			t.Fatalf("%s left behind", e.Name())
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, 2*leave), 0o600); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, err := diskfill.Fill(dir, 1<<40); err != nil {
		t.Fatalf("leaving more than is free fills nothing and succeeds: %v", err)
	}
	if _, err := diskfill.Fill(dir, -1); err == nil {
		t.Fatal("negative leave accepted")
	}
}

// bigDetail is larger than anything written before, so SQLite must grow its WAL to take it
// and cannot reuse WAL space from earlier transactions.
var bigDetail = strings.Repeat("x", 2<<20)

// TestTerminalStoreFullDiskChangesNothing: the terminal database (app/store, SQLite in WAL
// mode) on a full disk refuses the write with a clear error, keeps every earlier record and an
// intact audit chain, and takes the same write once the space is back, in the same process.
func TestTerminalStoreFullDiskChangesNothing(t *testing.T) {
	dir, ok := privateTmpfs(t, 32<<20)
	if !ok {
		return
	}
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "terminal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	appendOne := func(detail string) error {
		return db.Tx(ctx, func(tx *sql.Tx) error {
			return audit.Append(ctx, tx, audit.Entry{Operator: "-", Action: "disk.test", Result: audit.ResultOK, Detail: map[string]string{"d": detail}})
		})
	}
	for range 3 {
		if err := appendOne("before"); err != nil {
			t.Fatal(err)
		}
	}
	release, err := diskfill.Fill(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = appendOne(bigDetail)
	if err == nil {
		t.Fatal("a 2 MiB record written on a full disk")
	}
	if !isDiskFull(err) {
		t.Errorf("disk-full error does not say so: %v", err)
	}
	t.Logf("terminal store on a full disk: %v", err)
	checkTerminal(t, db, 3)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := appendOne(bigDetail); err != nil {
		t.Fatalf("after release: %v", err)
	}
	checkTerminal(t, db, 4)
}

func checkTerminal(t *testing.T, db *store.DB, records int64) {
	t.Helper()
	ctx := context.Background()
	rep, err := audit.Verify(ctx, db)
	if err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	if rep.Records != records {
		t.Fatalf("%d audit records, want %d", rep.Records, records)
	}
	var ic string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ic); err != nil || ic != "ok" {
		t.Fatalf("integrity_check: %q %v", ic, err)
	}
}

// TestCAStoreFullDiskChangesNothing: the CA's SQLite store on a full disk refuses an audit
// record with a clear error, the chain stays intact and complete, and the next record after
// the space is back chains on the last good one.
func TestCAStoreFullDiskChangesNothing(t *testing.T) {
	dir, ok := privateTmpfs(t, 32<<20)
	if !ok {
		return
	}
	ctx := context.Background()
	st, err := castore.OpenSQLite(ctx, filepath.Join(dir, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := caaudit.OpenUnsigned(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	record := func(detail string) error {
		return l.Record(ctx, caaudit.Entry{Terminal: "local", Operator: "test", Action: "disk.test", Target: "t", Result: "ok", Detail: detail})
	}
	for range 3 {
		if err := record("before"); err != nil {
			t.Fatal(err)
		}
	}
	release, err := diskfill.Fill(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = record(bigDetail)
	if err == nil {
		t.Fatal("a 2 MiB record written on a full disk")
	}
	if !isDiskFull(err) {
		t.Errorf("disk-full error does not say so: %v", err)
	}
	t.Logf("CA store on a full disk: %v", err)
	checkCA(t, st, 3)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := record(bigDetail); err != nil {
		t.Fatalf("after release: %v", err)
	}
	checkCA(t, st, 4)
}

func checkCA(t *testing.T, st *castore.SQLite, records int64) {
	t.Helper()
	rep, err := caaudit.VerifyWith(context.Background(), st, caaudit.VerifyOptions{})
	if err != nil {
		t.Fatalf("CA audit chain: %v", err)
	}
	if rep.Records != records {
		t.Fatalf("%d CA audit records, want %d", rep.Records, records)
	}
}

// isDiskFull: the error names the full disk (ENOSPC, or SQLite's SQLITE_FULL text).
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "disk is full")
}
