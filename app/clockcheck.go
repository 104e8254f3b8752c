package app

import (
	"context"

	"madoguchi/app/audit"
	"madoguchi/internal/timesync"
)

// ClockReader reads the machine clock's synchronisation (timesync.Read).
type ClockReader func() (timesync.Status, error)

// CheckClock reads whether the machine clock is synchronised to a time source and records in
// the audit trail when it is not (CPS §6.8: the records' timestamps come from a trusted time
// source; an auditor must see which records were made while the clock was free-running), and
// when it becomes synchronised again. A synchronised clock at the first check is the normal
// case and is not recorded; repeated checks in the same state add nothing (timesync.Watch). A
// failure to read the status is recorded as unsynchronised (nothing vouches for the clock) and
// returned.
func (t *Terminal) CheckClock(ctx context.Context, read ClockReader) (timesync.Status, error) {
	c := t.clockWatch.Check(read)
	if !c.Changed {
		return c.Status, c.Err
	}
	e := audit.Entry{Operator: "-", Action: "clock.synchronised", Result: audit.ResultOK,
		Detail: map[string]string{"max_error": c.MaxError.String(), "est_error": c.EstError.String()}}
	if !c.Synced() {
		e.Action, e.Result = "clock.unsynchronised", audit.ResultError
		if c.Err != nil {
			e.Detail = map[string]string{"error": c.Err.Error()}
		}
	}
	err := c.Err
	if rerr := t.record(ctx, e); rerr != nil && err == nil {
		err = rerr
	}
	return c.Status, err
}
