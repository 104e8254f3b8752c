package main

import (
	"context"
	"log/slog"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/internal/timesync"
)

// startClockWatch checks every so often, until stop, whether the machine clock is synchronised
// to a time source (read: timesync.Read), and records each change in the CA's audit log and
// the server log (CPS §6.8: the records' timestamps come from a trusted time source; an
// auditor must see which records were made while the clock ran free). A synchronised clock at
// start is the normal case and is only logged. The first check is made before it returns, so a
// clock that is not synchronised when serve starts is recorded before the server's first
// checkpoint and daily backup, which then cover that record.
func startClockWatch(ctx context.Context, log *audit.Log, read func() (timesync.Status, error), every time.Duration,
	logger *slog.Logger) (stop func()) {
	var w timesync.Watch
	first := true
	check := func() {
		c := w.Check(read)
		switch {
		case c.Err != nil && c.Changed:
			logger.Error("clock: cannot tell whether the clock is synchronised: audit timestamps are not vouched for", "err", c.Err)
		case !c.Synced() && c.Changed:
			logger.Error("clock: not synchronised to a time source (start chrony or systemd-timesyncd): audit timestamps are not vouched for", "max_error", c.MaxError)
		case c.Synced() && (c.Changed || first):
			logger.Info("clock: synchronised", "max_error", c.MaxError)
		}
		first = false
		if !c.Changed {
			return
		}
		e := audit.Entry{Terminal: "local", Operator: "ca-server", Action: "clock.synchronised", Result: "ok",
			Detail: "max_error=" + c.MaxError.String()}
		switch {
		case c.Err != nil:
			e.Action, e.Result, e.Detail = "clock.unsynchronised", "error", "error="+c.Err.Error()
		case !c.Synced():
			e.Action, e.Result = "clock.unsynchronised", "error"
		}
		if err := log.Record(ctx, e); err != nil && ctx.Err() == nil {
			logger.Error("clock: audit record", "err", err)
		}
	}
	check()
	return startEvery(ctx, every, false, check)
}

// startEvery runs f every so often in a goroutine until stop, which waits for a run in
// progress to end; now runs it first at once, in that goroutine.
func startEvery(ctx context.Context, every time.Duration, now bool, f func()) (stop func()) {
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	tick := time.NewTicker(every)
	go func() {
		defer close(done)
		if now {
			f()
		}
		for {
			select {
			case <-cctx.Done():
				return
			case <-tick.C:
				f()
			}
		}
	}()
	return func() { cancel(); <-done; tick.Stop() }
}
