package services

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStopKillsTheWholeGroup: Stop ends the leader and every process of its group (a grandchild
// that ignores SIGTERM included), and reaps the leader.
func TestStopKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	s, err := Start(Spec{Name: "sh", Path: "/bin/sh",
		Args:    []string{"-c", `(trap '' TERM; exec sleep 300) & echo $! > ` + pidFile + `; wait`},
		LogPath: filepath.Join(dir, "sh.log")})
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	if err := s.WaitReady(10*time.Second, func() error {
		b, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return errors.New("no pid yet")
		}
		grandchild, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := OwnedBy(os.Getpid()); len(got) < 2 {
		t.Errorf("OwnedBy(self) = %v, want the shell and its sleep", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !s.Exited() || !s.Stopping() {
		t.Fatal("leader not reaped")
	}
	for deadline := time.Now().Add(5 * time.Second); Alive(grandchild); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived Stop", grandchild)
		}
	}
}

// TestEarlyExitIsReported: a child that exits before it is ready makes WaitReady return
// ErrExited at once, and Stop reports the unexpected exit unless the start was aborted.
func TestEarlyExitIsReported(t *testing.T) {
	s, err := Start(Spec{Name: "false", Path: "/bin/false", LogPath: filepath.Join(t.TempDir(), "false.log")})
	if err != nil {
		t.Fatal(err)
	}
	err = s.WaitReady(time.Minute, func() error { return errors.New("never ready") })
	if !errors.Is(err, ErrExited) {
		t.Fatalf("WaitReady = %v, want ErrExited", err)
	}
	if err := s.Stop(); err == nil || !strings.Contains(err.Error(), "exited unexpectedly") {
		t.Fatalf("Stop = %v, want an unexpected-exit error", err)
	}
	if _, err := Start(Spec{Name: "missing", Path: "/no/such/binary", LogPath: filepath.Join(t.TempDir(), "m.log")}); err == nil {
		t.Fatal("Start of a missing binary succeeded")
	}
}

// TestScanVirtualFingerRefusesBadIDs: a finger id with a space or newline would inject a second
// device command.
func TestScanVirtualFingerRefusesBadIDs(t *testing.T) {
	for _, id := range []string{"", "a b", "a\nUNPLUG"} {
		if err := ScanVirtualFinger("/nonexistent", id, time.Millisecond); err == nil || !strings.Contains(err.Error(), "invalid finger id") {
			t.Errorf("ScanVirtualFinger(%q) = %v", id, err)
		}
	}
}
