package testenv

import (
	"path/filepath"
	"testing"

	"madoguchi/internal/services"
)

// Fixed paths of Debian's pcscd (compiled in) and the harness's machine-wide lock.
const (
	PCSCDSocket   = services.PCSCDSocket
	PCSCDPIDFile  = services.PCSCDPIDFile
	PCSCDLockPath = services.PCSCDLockPath
)

// PCSC is the running pcscd with the two vpcd readers: Readers ("Virtual PCD 00 00", "Virtual
// PCD 00 01"), Ports (35963, 35964: a virtual card connects to Ports[i] to sit in Readers[i]),
// LogPath and PID. Stop stops pcscd before the test ends (for tests of a vanished PC/SC
// service); the lock is still held until the test's cleanup. Cleanup stops it otherwise.
type PCSC = services.PCSC

// PCSCDOptions configures PCSCDWith.
type PCSCDOptions struct {
	Binary    string // default /usr/sbin/pcscd
	APDUTrace bool   // run `pcscd -f -a -i`: log every APDU to LogPath
}

// PCSCD starts the machine's pcscd for the test, with the vpcd readers listening.
//
// Only one pcscd can run on a machine (fixed socket, pid file and vpcd ports), so PCSCD first
// takes an exclusive flock on PCSCDLockPath and holds it until the test's cleanup has stopped
// and reaped pcscd. It blocks while another test — in this or another test binary — or the
// demo holds it. A pcscd left by a dead test binary is stopped and its stale files removed; a
// pcscd that the harness did not start fails the test with instructions, because stopping a
// system service from a test would be a surprise.
func PCSCD(t testing.TB) *PCSC {
	t.Helper()
	return PCSCDWith(t, PCSCDOptions{})
}

// PCSCDWith is PCSCD with options.
func PCSCDWith(t testing.TB, opts PCSCDOptions) *PCSC {
	t.Helper()
	lockPCSCD(t)
	return startPCSCD(t, opts)
}

// startPCSCD clears leftovers and starts pcscd; the caller holds the lock.
func startPCSCD(t testing.TB, opts PCSCDOptions) *PCSC {
	t.Helper()
	p, err := services.StartPCSCD(services.PCSCDOptions{
		Binary:    opts.Binary,
		APDUTrace: opts.APDUTrace,
		LogPath:   filepath.Join(t.TempDir(), "pcscd.log"),
		Timeout:   timeout(),
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cleanup(t, p.Service())
	return p
}

// lockPCSCD takes the machine-wide pcscd lock for the rest of the test.
func lockPCSCD(t testing.TB) {
	t.Helper()
	l, err := services.LockPCSCD("test "+t.Name(), func(format string, args ...any) {
		t.Logf("testenv: "+format, args...)
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(l.Unlock)
}
