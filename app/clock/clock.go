// Package clock gives the counter domain an injectable source of time, so validity windows,
// idle log-out and file expiry are testable (DESIGN habit 6).
package clock

import (
	"sync"
	"time"

	"madoguchi/internal/wallclock"
)

// Clock tells the current time. Implementations are safe for concurrent use.
type Clock interface{ Now() time.Time }

// System is the machine clock (CPS §6.8: the terminal's time source is synchronised by the OS).
type System struct{}

// Now returns the wall clock (internal/wallclock: time.Now() in every production build).
func (System) Now() time.Time { return wallclock.Now() }

// Fake is a manually advanced clock for tests. Safe for concurrent use.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a Fake set to t.
func NewFake(t time.Time) *Fake { return &Fake{t: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }

// Advance moves the fake time forward by d.
func (f *Fake) Advance(d time.Duration) { f.mu.Lock(); f.t = f.t.Add(d); f.mu.Unlock() }

// Set sets the fake time.
func (f *Fake) Set(t time.Time) { f.mu.Lock(); f.t = t; f.mu.Unlock() }

var (
	_ Clock = System{}
	_ Clock = (*Fake)(nil)
)
