// Package clockskew reads the fault campaign's clock skew file: a file holding one Go duration
// (`-90s`, `2h`, `0`) that the faultcampaign build of the terminal and of ca-server adds to
// their wall clock (internal/wallclock). A driver jumps a running process's clock by rewriting
// the file; the process re-reads it at most every Interval. Never linked into a production
// build: only the faultcampaign.go files import it.
package clockskew

import (
	"os"
	"strings"
	"sync"
	"time"
)

// Interval is the longest time a changed file goes unnoticed.
const Interval = 100 * time.Millisecond

// File returns an offset function for path. A missing, empty or unreadable file means no skew;
// a file that does not hold a duration keeps the last good value (a driver rewriting the file
// in place may be caught half-way; atomic renames avoid that). The file is read at most once
// per Interval, measured on the monotonic clock.
func File(path string) func() time.Duration {
	var (
		mu     sync.Mutex
		skew   time.Duration
		readAt time.Time
	)
	return func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if !readAt.IsZero() && time.Since(readAt) < Interval {
			return skew
		}
		readAt = time.Now()
		b, err := os.ReadFile(path)
		if err != nil {
			skew = 0
			return skew
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			skew = 0
		} else if d, err := time.ParseDuration(s); err == nil {
			skew = d
		}
		return skew
	}
}
