package terminal

import (
	"context"
	"errors"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/audit"
	"madoguchi/internal/timesync"
)

// countingSender is a residentChangeSender that counts its calls and cancels the context after
// the third, so the loop's wake-up and its stop are both observable.
type countingSender struct {
	calls  int
	cancel context.CancelFunc
}

func (c *countingSender) SendResidentChanges(context.Context) ([]app.ChangeDelivery, error) {
	c.calls++
	if c.calls == 3 {
		c.cancel()
	}
	return []app.ChangeDelivery{{Outcome: app.ChangeDelivered}}, nil
}

// TestResidentChangesSentUntilStopped: the outbox is sent at once at start, again on every tick,
// and the loop returns when the terminal's context ends.
func TestResidentChangesSentUntilStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &countingSender{cancel: cancel}
	done := make(chan struct{})
	go func() {
		sendResidentChangesEvery(ctx, s, time.Millisecond)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the sender did not stop when its context ended")
	}
	if s.calls != 3 {
		t.Errorf("SendResidentChanges called %d times, want 3 (once at start, then per tick until stopped)", s.calls)
	}
}

// countingBackups is an auditBackupMaker that counts its calls and cancels the context after the
// third.
type countingBackups struct {
	calls  int
	cancel context.CancelFunc
}

func (c *countingBackups) BackupAuditIfDue(context.Context) (audit.BackupResult, bool, error) {
	c.calls++
	if c.calls == 3 {
		c.cancel()
	}
	return audit.BackupResult{}, false, nil
}

// TestAuditBackupCheckedUntilStopped: the terminal checks for the day's audit backup at start and
// on every tick, with or without a CA, and stops with the terminal's context.
func TestAuditBackupCheckedUntilStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b := &countingBackups{cancel: cancel}
	done := make(chan struct{})
	go func() {
		backupAuditEvery(ctx, b, time.Millisecond)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the backup loop did not stop when its context ended")
	}
	if b.calls != 3 {
		t.Errorf("BackupAuditIfDue called %d times, want 3 (once at start, then per tick until stopped)", b.calls)
	}
}

// countingClock is a clockChecker that counts its checks, asks the reader it is given and
// cancels the context after the third check.
type countingClock struct {
	calls  int
	cancel context.CancelFunc
}

func (c *countingClock) CheckClock(ctx context.Context, read app.ClockReader) (timesync.Status, error) {
	c.calls++
	if c.calls == 3 {
		c.cancel()
	}
	return read()
}

// TestClockCheckedUntilStopped: the terminal checks the clock's synchronisation at start and on
// every tick through the reader it is given, and stops with the terminal's context.
func TestClockCheckedUntilStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &countingClock{cancel: cancel}
	reads := 0
	read := func() (timesync.Status, error) { reads++; return timesync.Status{Synchronised: reads > 1}, nil }
	done := make(chan struct{})
	go func() {
		checkClockEvery(ctx, c, read, time.Millisecond)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the clock check did not stop when its context ended")
	}
	if c.calls != 3 || reads != 3 {
		t.Errorf("CheckClock called %d times reading %d times, want 3 and 3", c.calls, reads)
	}
}

// countingWitness is an auditWitnesser that fails its first send (the CA unreachable), then
// succeeds, and cancels the context after the third send.
type countingWitness struct {
	calls  int
	ops    []string
	cancel context.CancelFunc
}

func (c *countingWitness) WitnessAudit(_ context.Context, operator string) (app.WitnessResult, error) {
	c.calls++
	c.ops = append(c.ops, operator)
	if c.calls == 3 {
		c.cancel()
	}
	if c.calls == 1 {
		return app.WitnessResult{}, errors.New("CA unreachable")
	}
	return app.WitnessResult{Seq: int64(c.calls), Sent: true}, nil
}

// TestAuditHeadWitnessedUntilStopped: the terminal sends its audit chain head to the CA at start
// and on every tick as the terminal itself ("-"), a failed send is retried on the next tick,
// and the loop stops with the terminal's context.
func TestAuditHeadWitnessedUntilStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &countingWitness{cancel: cancel}
	done := make(chan struct{})
	go func() {
		witnessAuditEvery(ctx, w, time.Millisecond)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the witness loop did not stop when its context ended")
	}
	if w.calls != 3 || w.ops[0] != "-" || w.ops[2] != "-" {
		t.Errorf("WitnessAudit called %d times as %q, want 3 as \"-\"", w.calls, w.ops)
	}
}
