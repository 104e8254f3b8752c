package campaign

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Harness lets the campaign command use the real-service starters of internal/testenv
// (SoftHSM, PostgreSQL, pcscd+vpcd), which take a testing.TB, outside a test: the same code
// starts the same services in `go test` and in the driver, instead of a second copy of it.
// Fatal ends the run by panicking with a *Fatal that Run recovers; Close runs the clean-ups
// in reverse order, as the testing package does.
//
// The embedded testing.TB is nil: a method testenv does not call would panic, which is the
// point (a new call shows up at once, not as a silent no-op).
type Harness struct {
	testing.TB
	dir string
	log io.Writer

	mu       sync.Mutex
	cleanups []func()
	n        int
}

// Fatal is what a Harness panics with on t.Fatal.
type Fatal struct{ Msg string }

func (f *Fatal) Error() string { return f.Msg }

// NewHarness returns a harness whose temporary directories are under dir.
func NewHarness(dir string, log io.Writer) *Harness { return &Harness{dir: dir, log: log} }

func (h *Harness) Helper()      {}
func (h *Harness) Name() string { return "faults" }
func (h *Harness) Failed() bool { return false }
func (h *Harness) Parallel()    {}
func (h *Harness) Logf(format string, args ...any) {
	fmt.Fprintf(h.log, format+"\n", args...)
}
func (h *Harness) Log(args ...any) { fmt.Fprintln(h.log, args...) }
func (h *Harness) Errorf(format string, args ...any) {
	panic(&Fatal{fmt.Sprintf(format, args...)})
}
func (h *Harness) Error(args ...any)                 { panic(&Fatal{fmt.Sprint(args...)}) }
func (h *Harness) Fatalf(format string, args ...any) { panic(&Fatal{fmt.Sprintf(format, args...)}) }
func (h *Harness) Fatal(args ...any)                 { panic(&Fatal{fmt.Sprint(args...)}) }
func (h *Harness) FailNow()                          { panic(&Fatal{"FailNow"}) }
func (h *Harness) Setenv(k, v string)                { os.Setenv(k, v) }

// TempDir returns a new directory under the harness's directory (kept after the run: its
// logs are the evidence of a violation).
func (h *Harness) TempDir() string {
	h.mu.Lock()
	h.n++
	n := h.n
	h.mu.Unlock()
	dir := filepath.Join(h.dir, fmt.Sprintf("tmp%03d", n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.Fatalf("harness: %v", err)
	}
	return dir
}

func (h *Harness) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}

// Close runs the clean-ups, newest first.
func (h *Harness) Close() {
	h.mu.Lock()
	c := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	for i := len(c) - 1; i >= 0; i-- {
		func() {
			defer func() { _ = recover() }()
			c[i]()
		}()
	}
}
