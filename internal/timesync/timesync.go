// Package timesync tells whether the machine's clock is synchronised to a time source, so the
// terminal and the CA can say when their audit timestamps cannot be trusted (CPS §6.8: time
// comes from a trusted source and each record carries its own timestamp).
//
// The kernel knows: an NTP or PTP daemon (chrony, systemd-timesyncd, ntpd) that disciplines the
// clock clears STA_UNSYNC and keeps the maximum error small; a clock nobody synchronises stays
// in state TIME_ERROR. Read asks with adjtimex(2) in read-only mode (no modes set), which needs
// no privilege and changes nothing.
package timesync

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Status is the kernel's view of the clock's synchronisation.
type Status struct {
	// Synchronised is true when a time daemon disciplines the clock: the kernel's state is not
	// TIME_ERROR and STA_UNSYNC is clear.
	Synchronised bool
	// MaxError is the kernel's bound on the clock's error; EstError its estimate. Without
	// synchronisation the kernel lets MaxError grow to 16 s.
	MaxError, EstError time.Duration
}

// Read returns the clock's synchronisation status from adjtimex(2).
func Read() (Status, error) {
	var tx unix.Timex // Modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return Status{}, err
	}
	return fromTimex(state, tx.Status, int64(tx.Maxerror), int64(tx.Esterror)), nil
}

// fromTimex interprets adjtimex's return value (the clock state) and its status bits and
// error bounds (microseconds).
func fromTimex(state int, status int32, maxErrorUS, estErrorUS int64) Status {
	return Status{
		Synchronised: state != unix.TIME_ERROR && status&unix.STA_UNSYNC == 0,
		MaxError:     time.Duration(maxErrorUS) * time.Microsecond,
		EstError:     time.Duration(estErrorUS) * time.Microsecond,
	}
}

// Watch remembers the last synchronisation seen, so an audit trail records changes, not every
// check. The zero Watch is ready for use and safe for concurrent use.
type Watch struct {
	mu              sync.Mutex
	checked, synced bool
}

// Check is the result of one Watch.Check.
type Check struct {
	Status
	// Err is the failure to read the status; nothing vouches for the clock then, so the check
	// counts as unsynchronised.
	Err error
	// Changed says the check is worth recording: the clock is unsynchronised at the first check
	// (a synchronised clock at start is the normal case), or its state changed since the last.
	Changed bool
}

// Synced is whether the clock counts as synchronised: read without error and synchronised.
func (c Check) Synced() bool { return c.Err == nil && c.Synchronised }

// Check reads the status with read (Read on a real machine) and compares it with the last.
func (w *Watch) Check(read func() (Status, error)) Check {
	s, err := read()
	c := Check{Status: s, Err: err}
	synced := c.Synced()
	w.mu.Lock()
	defer w.mu.Unlock()
	c.Changed = !w.checked && !synced || w.checked && synced != w.synced
	w.checked, w.synced = true, synced
	return c
}
