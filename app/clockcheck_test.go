package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"madoguchi/app/audit"
	"madoguchi/internal/timesync"
)

// TestCheckClockRecordsChanges: CPS §6.8. A clock found unsynchronised is recorded once, its
// recovery once, a read failure as unsynchronised; checks in an unchanged state add nothing,
// and a clock synchronised from the start is not recorded at all.
func TestCheckClockRecordsChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	clockRecords := func() []audit.Record {
		recs, err := audit.List(ctx, f.t.DB(), audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []audit.Record
		for _, r := range recs {
			if r.Action == "clock.synchronised" || r.Action == "clock.unsynchronised" {
				out = append(out, r)
			}
		}
		return out
	}
	status := timesync.Status{Synchronised: false, MaxError: 16 * time.Second, EstError: 16 * time.Second}
	var readErr error
	read := func() (timesync.Status, error) { return status, readErr }

	for i := 0; i < 3; i++ {
		if _, err := f.t.CheckClock(ctx, read); err != nil {
			t.Fatal(err)
		}
	}
	recs := clockRecords()
	if len(recs) != 1 || recs[0].Action != "clock.unsynchronised" || recs[0].Result != audit.ResultError || recs[0].Detail["max_error"] != "16s" {
		t.Fatalf("after three checks of an unsynchronised clock: %+v, want one clock.unsynchronised with max_error 16s", recs)
	}
	status = timesync.Status{Synchronised: true, MaxError: 20 * time.Millisecond}
	f.t.CheckClock(ctx, read)
	f.t.CheckClock(ctx, read)
	readErr = errors.New("adjtimex: operation not permitted")
	if _, err := f.t.CheckClock(ctx, read); !errors.Is(err, readErr) {
		t.Fatalf("read failure: %v", err)
	}
	recs = clockRecords()
	if len(recs) != 3 || recs[1].Action != "clock.synchronised" || recs[1].Detail["max_error"] != "20ms" ||
		recs[2].Action != "clock.unsynchronised" || recs[2].Detail["error"] != readErr.Error() {
		t.Fatalf("records: %+v; want unsynchronised, synchronised (20ms), unsynchronised (read error)", recs)
	}

	g := newFixture(t)
	if _, err := g.t.CheckClock(ctx, func() (timesync.Status, error) { return timesync.Status{Synchronised: true}, nil }); err != nil {
		t.Fatal(err)
	}
	if r := g.lastAudit(t); r.Action == "clock.synchronised" || r.Action == "clock.unsynchronised" {
		t.Errorf("a clock synchronised from the start was recorded: %+v", r)
	}
}
