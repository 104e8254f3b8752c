package timesync

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFromTimex: only a clock in a good state with STA_UNSYNC clear counts as synchronised.
func TestFromTimex(t *testing.T) {
	for _, c := range []struct {
		name   string
		state  int
		status int32
		want   bool
	}{
		{"disciplined by a daemon", unix.TIME_OK, unix.STA_PLL, true},
		{"leap second pending", unix.TIME_INS, unix.STA_PLL | unix.STA_INS, true},
		{"never synchronised", unix.TIME_ERROR, unix.STA_UNSYNC, false},
		{"daemon gone, state not yet updated", unix.TIME_OK, unix.STA_UNSYNC, false},
		{"error state, unsync bit clear", unix.TIME_ERROR, 0, false},
	} {
		got := fromTimex(c.state, c.status, 16_000_000, 500)
		if got.Synchronised != c.want {
			t.Errorf("%s: synchronised %v, want %v", c.name, got.Synchronised, c.want)
		}
		if got.MaxError != 16*time.Second || got.EstError != 500*time.Microsecond {
			t.Errorf("%s: errors %v / %v, want 16s / 500µs", c.name, got.MaxError, got.EstError)
		}
	}
}

// TestReadThisMachine: the real adjtimex call answers without privilege, and its answer agrees
// with the kernel's state (a synchronised clock has a bounded error below the 16 s the kernel
// lets an unsynchronised one reach).
func TestReadThisMachine(t *testing.T) {
	s, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this machine: synchronised %v, max error %v, estimated %v", s.Synchronised, s.MaxError, s.EstError)
	if s.Synchronised && s.MaxError >= 16*time.Second {
		t.Errorf("synchronised with the maximum error of an unsynchronised clock (%v)", s.MaxError)
	}
}

// TestWatchReportsChanges: a synchronised clock at start is not a change; losing, failing to
// read and regaining synchronisation are, once each.
func TestWatchReportsChanges(t *testing.T) {
	synced := Status{Synchronised: true, MaxError: 20 * time.Millisecond}
	free := Status{MaxError: 16 * time.Second}
	readErr := errors.New("adjtimex: operation not permitted")
	steps := []struct {
		s              Status
		err            error
		synced, change bool
	}{
		{synced, nil, true, false},
		{synced, nil, true, false},
		{free, nil, false, true},
		{free, nil, false, false},
		{synced, readErr, false, false}, // still not vouched for
		{synced, nil, true, true},
		{Status{}, readErr, false, true},
	}
	var w Watch
	for i, st := range steps {
		c := w.Check(func() (Status, error) { return st.s, st.err })
		if c.Synced() != st.synced || c.Changed != st.change || c.Err != st.err {
			t.Errorf("check %d: synced %v changed %v err %v, want %v %v %v", i, c.Synced(), c.Changed, c.Err, st.synced, st.change, st.err)
		}
	}
	var first Watch
	if c := first.Check(func() (Status, error) { return free, nil }); !c.Changed {
		t.Error("an unsynchronised clock at the first check is not reported")
	}
}
