package testenv

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recordingTB is a testing.TB that records Fatal and Skip instead of ending the real test. Like
// the real ones, its Fatal* and Skip* end the calling goroutine (runtime.Goexit). Everything
// else (TempDir, Cleanup, Setenv, Logf, Helper) goes to the real test.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	fatals []string
	skips  []string
	failed bool
}

func (r *recordingTB) record(list *[]string, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*list = append(*list, msg)
	r.failed = r.failed || list == &r.fatals
}

func (r *recordingTB) Fatal(args ...any) { r.record(&r.fatals, fmt.Sprint(args...)); runtime.Goexit() }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.record(&r.fatals, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recordingTB) FailNow()         { r.record(&r.fatals, "FailNow"); runtime.Goexit() }
func (r *recordingTB) Skip(args ...any) { r.record(&r.skips, fmt.Sprint(args...)); runtime.Goexit() }
func (r *recordingTB) Skipf(format string, args ...any) {
	r.record(&r.skips, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recordingTB) SkipNow()          { r.record(&r.skips, "SkipNow"); runtime.Goexit() }
func (r *recordingTB) Error(args ...any) { r.record(&r.fatals, fmt.Sprint(args...)) }
func (r *recordingTB) Errorf(format string, args ...any) {
	r.record(&r.fatals, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fail() { r.mu.Lock(); r.failed = true; r.mu.Unlock() }
func (r *recordingTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// runRecorded runs f with a recordingTB in its own goroutine (Fatal ends that goroutine) and
// returns what was recorded.
func runRecorded(t *testing.T, f func(tb testing.TB)) *recordingTB {
	rec := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(rec)
	}()
	<-done
	return rec
}

func assertFatalNotSkip(t *testing.T, rec *recordingTB, want string) {
	t.Helper()
	if len(rec.skips) != 0 {
		t.Fatalf("helper skipped (%q); a service that cannot start must fail the test", rec.skips)
	}
	if len(rec.fatals) == 0 {
		t.Fatal("helper returned although its service could not start")
	}
	if !strings.Contains(rec.fatals[0], want) {
		t.Fatalf("fatal message %q does not mention %q", rec.fatals[0], want)
	}
}

// TestStartFailureIsFatal: a missing binary fails the test, it does not skip it.
func TestStartFailureIsFatal(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-Xvfb")
	rec := runRecorded(t, func(tb testing.TB) { XvfbWith(tb, XvfbOptions{Binary: missing}) })
	assertFatalNotSkip(t, rec, "no-such-Xvfb")
}

// TestEarlyExitIsFatal: a binary that exits before it is ready fails the test with its exit
// status, and the helper does not wait for the start timeout.
func TestEarlyExitIsFatal(t *testing.T) {
	rec := runRecorded(t, func(tb testing.TB) { XvfbWith(tb, XvfbOptions{Binary: "/bin/false"}) })
	assertFatalNotSkip(t, rec, "exited before it was ready")
}

// TestPostgresMissingBinDirIsFatal: a wrong PostgreSQL installation fails the test.
func TestPostgresMissingBinDirIsFatal(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-bin")
	rec := runRecorded(t, func(tb testing.TB) { PostgresWith(tb, PostgresOptions{BinDir: missing}) })
	assertFatalNotSkip(t, rec, "no-such-bin")
}

// TestCUPSDFailuresAreFatal: a missing cupsd, and one that exits at once, fail the test.
func TestCUPSDFailuresAreFatal(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-cupsd")
	rec := runRecorded(t, func(tb testing.TB) { CUPSDWith(tb, CUPSDOptions{Binary: missing}) })
	assertFatalNotSkip(t, rec, "no-such-cupsd")
	rec = runRecorded(t, func(tb testing.TB) { CUPSDWith(tb, CUPSDOptions{Binary: "/bin/false"}) })
	assertFatalNotSkip(t, rec, "exited before it was ready")
}
