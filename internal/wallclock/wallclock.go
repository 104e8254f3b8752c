// Package wallclock is the one seam through which the terminal and the CA read the wall clock
// where a default clock is needed (app/clock.System, the CA packages' default Clock/Now, serve's
// own reads). In production it is time.Now and nothing else: no flag, environment variable or
// setting changes it.
//
// Why a seam and not libfaketime: Go reads the time through the vDSO, not through libc, so
// LD_PRELOAD shims such as libfaketime never see a Go binary's clock reads. The fault campaign's
// clock jumps (issue 15) therefore come through SetOffset, which only the `faultcampaign` build
// of each binary calls (faultcampaign.go in the root package and in ca-server;
// TestOffsetSetOnlyByFaultCampaignBuilds keeps it so).
package wallclock

import (
	"sync/atomic"
	"time"
)

var offset atomic.Pointer[func() time.Duration]

// Now returns the wall-clock time: time.Now(), moved by the offset function when one is set.
// The result keeps its monotonic reading, moved by the same offset, so a time taken before a
// jump and one taken after it differ by the jump, as their stored (wall) forms would.
func Now() time.Time {
	t := time.Now()
	if f := offset.Load(); f != nil {
		return t.Add((*f)())
	}
	return t
}

// SetOffset makes Now add f() (called at every Now; nil: no offset) and returns a function
// restoring the previous one. Fault-campaign builds and tests only.
func SetOffset(f func() time.Duration) (restore func()) {
	var p *func() time.Duration
	if f != nil {
		p = &f
	}
	old := offset.Swap(p)
	return func() { offset.Store(old) }
}
