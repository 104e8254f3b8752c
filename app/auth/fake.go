package auth

import (
	"context"
	"sync"

	"madoguchi/app/apperr"
)

// Fake is an in-process Fingerprint for unit tests of the log-in policy. The test decides what
// the next Verify presents with Present; the real proof runs against fprintd's virtual device.
// Safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	enrolled map[string]string // user → finger id
	next     string            // finger id the next Verify sees; "" → ctx timeout path
	Stages   int
}

var _ Fingerprint = (*Fake)(nil)

// NewFake returns a Fake with 5 enrolment stages.
func NewFake() *Fake { return &Fake{enrolled: map[string]string{}, Stages: 5} }

// Present sets the finger the next Verify or Enroll sees.
func (f *Fake) Present(finger string) { f.mu.Lock(); f.next = finger; f.mu.Unlock() }

// Verify implements Fingerprint.
func (f *Fake) Verify(ctx context.Context, user string, progress func(ScanEvent)) error {
	f.mu.Lock()
	want, ok := f.enrolled[user]
	got := f.next
	f.mu.Unlock()
	if !ok {
		return apperr.New(apperr.FingerprintNotEnrolled, "auth: no enrolled finger")
	}
	if progress != nil {
		progress(ScanWaiting)
	}
	if got == "" {
		<-ctx.Done()
		return apperr.Wrap(apperr.Cancelled, ctx.Err(), "auth: no finger within the time limit")
	}
	if got != want {
		return apperr.New(apperr.FingerprintNoMatch, "auth: fingerprint does not match")
	}
	return nil
}

// Enroll implements Fingerprint: it enrols the presented finger (or finger if none presented).
func (f *Fake) Enroll(ctx context.Context, user, finger string, progress func(EnrollProgress)) error {
	if !ValidFinger(finger) {
		return apperr.New(apperr.InvalidInput, "auth: unknown finger name %q", finger)
	}
	f.mu.Lock()
	id := f.next
	if id == "" {
		id = finger
	}
	f.enrolled[user] = id
	f.mu.Unlock()
	for i := 1; progress != nil && i <= f.Stages; i++ {
		progress(EnrollProgress{Stage: i, Total: f.Stages})
	}
	return nil
}
