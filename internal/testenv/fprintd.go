package testenv

import (
	"testing"
	"time"

	"madoguchi/internal/services"
)

// Fingerprint is fprintd with libfprint's virtual device on a private D-Bus system bus; see
// services.Fingerprint for the D-Bus sequence a client follows. Scan(finger) is one press of a
// finger on the virtual device, Command(raw) one raw device command.
type Fingerprint = services.Fingerprint

// Polkit is the in-process polkit stand-in on the private bus: SetAuthorized(false) makes it
// refuse, ActionsAsked lists the checked actions.
type Polkit = services.Polkit

// FprintdOptions configures FprintdWith; the zero value is Debian's fprintd and dbus-daemon.
type FprintdOptions struct {
	Fprintd    string // default /usr/libexec/fprintd
	DBusDaemon string // default dbus-daemon from PATH
}

// ScanTimeout bounds how long Scan waits for the virtual device's socket (it exists only while
// a client has claimed the device) and for the device to take the press. Fprintd copies it
// into the returned Fingerprint's ScanTimeout.
var ScanTimeout = 10 * time.Second

// Fprintd starts a private dbus-daemon of type system, a polkit stand-in that authorises every
// request, and fprintd with the virtual fingerprint device, and sets DBUS_SYSTEM_BUS_ADDRESS
// for the rest of the test. It returns when fprintd owns net.reactivated.Fprint and lists a
// device.
func Fprintd(t testing.TB) *Fingerprint {
	t.Helper()
	return FprintdWith(t, FprintdOptions{})
}

// FprintdWith is Fprintd with options.
func FprintdWith(t testing.TB, opts FprintdOptions) *Fingerprint {
	t.Helper()
	f, err := services.StartFprintd(services.FprintdOptions{
		Fprintd:    opts.Fprintd,
		DBusDaemon: opts.DBusDaemon,
		Dir:        shortTempDir(t, "fp"), // socket paths must stay under 108 bytes
		Timeout:    timeout(),
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	f.ScanTimeout = ScanTimeout
	svcs := f.Services()
	// Cleanups run last-in first-out: fprintd, then the stand-in, then the bus.
	cleanup(t, svcs[0])
	t.Cleanup(f.Polkit.Close)
	cleanup(t, svcs[1])
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", f.BusAddress)
	return f
}
