package app

import (
	"context"
	"sync"

	"madoguchi/app/audit"
	"madoguchi/internal/timesync"
)

// ClockReader reads the machine clock's synchronisation (timesync.Read).
type ClockReader func() (timesync.Status, error)

// clockState remembers the last synchronisation seen, so the audit trail records changes,
// not every check.
type clockState struct {
	mu      sync.Mutex
	checked bool
	synced  bool
}

// CheckClock reads whether the machine clock is synchronised to a time source and records in
// the audit trail when it is not (CPS §6.8: the records' timestamps come from a trusted time
// source; an auditor must see which records were made while the clock was free-running), and
// when it becomes synchronised again. A synchronised clock at the first check is the normal
// case and is not recorded; repeated checks in the same state add nothing. A failure to read
// the status is recorded as unsynchronised (nothing vouches for the clock) and returned.
func (t *Terminal) CheckClock(ctx context.Context, read ClockReader) (timesync.Status, error) {
	s, err := read()
	synced := err == nil && s.Synchronised
	t.clockSync.mu.Lock()
	changed := !t.clockSync.checked && !synced || t.clockSync.checked && synced != t.clockSync.synced
	t.clockSync.checked, t.clockSync.synced = true, synced
	t.clockSync.mu.Unlock()
	if !changed {
		return s, err
	}
	e := audit.Entry{Operator: "-", Action: "clock.synchronised", Result: audit.ResultOK,
		Detail: map[string]string{"max_error": s.MaxError.String(), "est_error": s.EstError.String()}}
	if !synced {
		e.Action, e.Result = "clock.unsynchronised", audit.ResultError
		if err != nil {
			e.Detail = map[string]string{"error": err.Error()}
		}
	}
	if rerr := t.record(ctx, e); rerr != nil && err == nil {
		err = rerr
	}
	return s, err
}
