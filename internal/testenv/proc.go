package testenv

import (
	"os"
	"testing"
	"time"

	"madoguchi/internal/services"
)

// OwnerEnv is the environment variable every child started by testenv carries. Its value is
// "<pid>:<start time in clock ticks since boot>" of the test process, which identifies the test
// process even after its pid is reused. scripts/services-clean.sh kills children whose owner is
// gone.
const OwnerEnv = services.OwnerEnv

// StartTimeout bounds how long a helper waits for a service to become ready. It is generous
// because the project's machines have two cores shared by several test binaries.
var StartTimeout = services.DefaultStartTimeout

// ownerValue is the value of OwnerEnv for this process.
func ownerValue() string { return services.OwnerValue() }

// cleanup registers stopping s with t: stop, report an unexpected death, and show the log tail
// when the test failed.
func cleanup(t testing.TB, s *services.Service) {
	t.Cleanup(func() {
		if err := s.Stop(); err != nil && !s.Aborted() {
			t.Errorf("testenv: %v", err)
		}
		if tail := s.LogTail(); t.Failed() && tail != "" {
			t.Logf("testenv: %s log:%s", s.Name(), tail)
		}
	})
}

// shortTempDir makes a directory /tmp/madoguchi-testenv-<kind>-<random>, removed in t.Cleanup.
// Unix socket paths are limited to 107 bytes and t.TempDir() embeds the test name (and TMPDIR
// may be long), so sockets live here instead; /tmp is also reachable by the postgres user,
// unlike t.TempDir()'s root-only parent. The prefix marks the directory as the harness's for
// scripts/services-clean.sh, and an "owner" file records the test process.
func shortTempDir(t testing.TB, kind string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "madoguchi-testenv-"+kind+"-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.WriteFile(dir+"/owner", []byte(ownerValue()+"\n"), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

// timeout returns StartTimeout as read now (tests may change it).
func timeout() time.Duration { return StartTimeout }
