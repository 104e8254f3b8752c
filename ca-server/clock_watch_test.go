package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/internal/timesync"
)

// TestClockWatchRecordsChanges: CPS §6.8: serve records in the CA audit log when the clock
// stops being synchronised, when its status cannot be read, and when it is synchronised
// again; a synchronised clock at start and repeated checks in the same state add nothing.
func TestClockWatchRecordsChanges(t *testing.T) {
	ctx := context.Background()
	l, err := openLocal(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	var mu sync.Mutex
	reads := []struct {
		s   timesync.Status
		err error
	}{
		{timesync.Status{Synchronised: true, MaxError: 5 * time.Millisecond}, nil},
		{timesync.Status{Synchronised: true, MaxError: 6 * time.Millisecond}, nil},
		{timesync.Status{MaxError: 16 * time.Second}, nil},
		{timesync.Status{MaxError: 16 * time.Second}, nil},
		{timesync.Status{Synchronised: true, MaxError: 7 * time.Millisecond}, nil},
		{timesync.Status{}, errors.New("adjtimex: no such device")},
	}
	n := 0
	done := make(chan struct{})
	read := func() (timesync.Status, error) {
		mu.Lock()
		defer mu.Unlock()
		if n == len(reads) {
			close(done)
		}
		r := reads[min(n, len(reads)-1)]
		n++
		return r.s, r.err
	}
	var logs bytes.Buffer // written only by the watch, read after stop
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	stop := startClockWatch(ctx, l.audit, read, time.Millisecond, logger)
	<-done
	stop()

	recs, err := l.st.AuditRecords(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Action+" "+r.Result+" "+r.Detail)
	}
	want := []string{
		"clock.unsynchronised error max_error=16s",
		"clock.synchronised ok max_error=7ms",
		"clock.unsynchronised error error=adjtimex: no such device",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range []string{"clock: synchronised", "clock: not synchronised", "clock: cannot tell"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("server log lacks %q:\n%s", s, logs.String())
		}
	}
}
