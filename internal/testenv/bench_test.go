package testenv

import (
	"os"
	"slices"
	"sync"
	"testing"

	"madoguchi/internal/services"
)

// scopedTB runs a helper's cleanups (and restores its environment) at the end of one benchmark
// iteration instead of the end of the benchmark, so iterations do not pile up services (or, for
// pcscd, deadlock on the lock the previous iteration still holds).
type scopedTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (s *scopedTB) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *scopedTB) TempDir() string {
	dir, err := os.MkdirTemp("", "testenv-bench-")
	if err != nil {
		s.TB.Fatal(err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (s *scopedTB) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	s.Cleanup(func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	})
}

func (s *scopedTB) runCleanups() {
	s.mu.Lock()
	fs := slices.Clone(s.cleanups)
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// BenchmarkStart measures how long each helper takes until its service is ready (stopping is
// not timed). "baseline" starts /bin/true and waits for it: the cost of a fork+exec on this
// machine in the same run. Run with -benchtime=5x: each iteration starts a real service.
func BenchmarkStart(b *testing.B) {
	helpers := []struct {
		name  string
		start func(testing.TB)
	}{
		{"baseline", func(tb testing.TB) {
			out, err := services.RunTool("true", "/bin/true", nil, nil, nil)
			if err != nil {
				tb.Fatalf("%v %s", err, out)
			}
		}},
		{"PCSCD", func(tb testing.TB) { PCSCD(tb) }},
		{"SoftHSM", func(tb testing.TB) { SoftHSM(tb) }},
		{"Xvfb", func(tb testing.TB) { Xvfb(tb) }},
		{"Fprintd", func(tb testing.TB) { Fprintd(tb) }},
		{"Postgres", func(tb testing.TB) { Postgres(tb) }},
		{"CUPSD", func(tb testing.TB) { CUPSD(tb) }},
	}
	for _, h := range helpers {
		b.Run(h.name, func(b *testing.B) {
			for b.Loop() {
				s := &scopedTB{TB: b}
				h.start(s)
				b.StopTimer()
				s.runCleanups()
				b.StartTimer()
			}
		})
	}
}
