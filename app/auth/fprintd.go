package auth

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/godbus/dbus/v5"

	"madoguchi/app/apperr"
)

const (
	fprintService = "net.reactivated.Fprint"
	managerPath   = "/net/reactivated/Fprint/Manager"
	managerIface  = "net.reactivated.Fprint.Manager"
	deviceIface   = "net.reactivated.Fprint.Device"
	errPrefix     = "net.reactivated.Fprint.Error."
)

// Fprintd is the Fingerprint implementation over fprintd's D-Bus API on the system bus:
// Manager.GetDefaultDevice → Device.Claim(user) → VerifyStart("any") / EnrollStart(finger) →
// VerifyStatus / EnrollStatus signals → VerifyStop / EnrollStop → Release.
//
// Each call opens its own bus connection, so calls never see each other's signals; fprintd
// refuses a second claim of the device while one is in progress (kind FingerprintUnavailable).
//
// Only status signals sent by fprintd itself count: the system bus lets every client emit
// signals with any path and interface (and send them to us directly), so a signal is taken
// only from the unique bus name that owns net.reactivated.Fprint and only for the claimed
// device's path. A forged "verify-match" would otherwise log anyone in (TS Art. 3(3):
// biometric log-in of issuance operators).
type Fprintd struct {
	// BusAddress is the system bus address; "" means $DBUS_SYSTEM_BUS_ADDRESS or the default
	// system bus.
	BusAddress string
}

var _ Fingerprint = (*Fprintd)(nil)

type claimedDevice struct {
	conn    *dbus.Conn
	dev     dbus.BusObject
	owner   string // fprintd's unique bus name: the only sender whose signals count
	signals chan *dbus.Signal
}

// fromDevice reports whether sig was sent by fprintd for the claimed device.
func (d *claimedDevice) fromDevice(sig *dbus.Signal) bool {
	return sig.Sender == d.owner && sig.Path == d.dev.Path()
}

// fprintdUser is the name under which fprintd stores an operator's prints. fprintd keys prints
// by user name and treats the name as a Unix login, so an operator id that happened to equal a
// Unix account on the terminal would otherwise share that account's prints (and enrolment
// would delete them). The prefix keeps the two name spaces apart.
func fprintdUser(operatorID string) string { return "madoguchi-op-" + operatorID }

func (f *Fprintd) claim(ctx context.Context, user string) (*claimedDevice, error) {
	addr := f.BusAddress
	if addr == "" {
		addr = os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")
	}
	if addr == "" {
		addr = "unix:path=/var/run/dbus/system_bus_socket"
	}
	conn, err := dbus.Connect(addr, dbus.WithContext(ctx))
	if err != nil {
		return nil, apperr.Wrap(apperr.FingerprintUnavailable, err, "auth: connect to system bus")
	}
	// The first call goes to the well-known name, which starts fprintd by D-Bus activation
	// if it is not running; then its unique name is learnt.
	var path dbus.ObjectPath
	if err := conn.Object(fprintService, managerPath).CallWithContext(ctx, managerIface+".GetDefaultDevice", 0).Store(&path); err != nil {
		conn.Close()
		return nil, mapDBusError(ctx, err, "auth: no fingerprint reader")
	}
	var owner string
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, fprintService).Store(&owner); err != nil {
		conn.Close()
		return nil, mapDBusError(ctx, err, "auth: fingerprint service not running")
	}
	// Calls go to the unique name too, so a restarted (or replaced) service cannot take over
	// half-way through.
	d := &claimedDevice{conn: conn, dev: conn.Object(owner, path), owner: owner, signals: make(chan *dbus.Signal, 32)}
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchSender(owner), dbus.WithMatchObjectPath(path), dbus.WithMatchInterface(deviceIface)); err != nil {
		conn.Close()
		return nil, apperr.Wrap(apperr.FingerprintUnavailable, err, "auth: subscribe to reader signals")
	}
	conn.Signal(d.signals)
	if err := d.dev.CallWithContext(ctx, deviceIface+".Claim", 0, fprintdUser(user)).Err; err != nil {
		conn.Close()
		return nil, mapDBusError(ctx, err, "auth: claim fingerprint reader")
	}
	return d, nil
}

// release releases the device and closes the connection; it uses a fresh context so that a
// cancelled caller still frees the reader.
func (d *claimedDevice) release(stop string) {
	ctx := context.Background()
	if stop != "" {
		d.dev.CallWithContext(ctx, deviceIface+"."+stop, 0)
	}
	d.dev.CallWithContext(ctx, deviceIface+".Release", 0)
	d.conn.Close()
}

func mapDBusError(ctx context.Context, err error, msg string) error {
	if ctx.Err() != nil {
		return apperr.Wrap(apperr.Cancelled, ctx.Err(), msg)
	}
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case errPrefix + "NoEnrolledPrints":
			return apperr.Wrap(apperr.FingerprintNotEnrolled, err, "auth: no enrolled finger")
		}
	}
	return apperr.Wrap(apperr.FingerprintUnavailable, err, msg)
}

func statusOf(sig *dbus.Signal) (string, bool, bool) {
	if len(sig.Body) < 2 {
		return "", false, false
	}
	result, ok1 := sig.Body[0].(string)
	done, ok2 := sig.Body[1].(bool)
	return result, done, ok1 && ok2
}

// Verify implements Fingerprint.
func (f *Fprintd) Verify(ctx context.Context, user string, progress func(ScanEvent)) error {
	if progress == nil {
		progress = func(ScanEvent) {}
	}
	d, err := f.claim(ctx, user)
	if err != nil {
		return err
	}
	if err := d.dev.CallWithContext(ctx, deviceIface+".VerifyStart", 0, "any").Err; err != nil {
		d.release("")
		return mapDBusError(ctx, err, "auth: start verification")
	}
	defer d.release("VerifyStop")
	progress(ScanWaiting)
	for {
		select {
		case <-ctx.Done():
			return apperr.Wrap(apperr.Cancelled, ctx.Err(), "auth: no finger within the time limit")
		case sig, ok := <-d.signals:
			if !ok {
				return apperr.New(apperr.FingerprintUnavailable, "auth: bus connection lost")
			}
			if sig.Name != deviceIface+".VerifyStatus" || !d.fromDevice(sig) {
				continue
			}
			result, done, ok := statusOf(sig)
			if !ok {
				return apperr.New(apperr.FingerprintUnavailable, "auth: malformed VerifyStatus signal")
			}
			switch result {
			case "verify-match":
				return nil
			case "verify-no-match":
				return apperr.New(apperr.FingerprintNoMatch, "auth: fingerprint does not match")
			case "verify-retry-scan", "verify-swipe-too-short", "verify-finger-not-centered", "verify-remove-and-retry":
				if done {
					return apperr.New(apperr.FingerprintUnavailable, "auth: verification ended after %s", result)
				}
				progress(ScanRetry)
			default: // verify-disconnected, verify-unknown-error
				return apperr.New(apperr.FingerprintUnavailable, "auth: verification failed: %s", result)
			}
		}
	}
}

// Enroll implements Fingerprint. Earlier prints of user are deleted first so that one operator
// has exactly the finger the supervisor enrolled.
func (f *Fprintd) Enroll(ctx context.Context, user, finger string, progress func(EnrollProgress)) error {
	if !ValidFinger(finger) {
		return apperr.New(apperr.InvalidInput, "auth: unknown finger name %q", finger)
	}
	if progress == nil {
		progress = func(EnrollProgress) {}
	}
	d, err := f.claim(ctx, user)
	if err != nil {
		return err
	}
	total := 5
	if v, err := d.dev.GetProperty(deviceIface + ".num-enroll-stages"); err == nil {
		if n, ok := v.Value().(int32); ok && n > 0 {
			total = int(n)
		}
	}
	if err := d.dev.CallWithContext(ctx, deviceIface+".DeleteEnrolledFingers2", 0).Err; err != nil {
		var de dbus.Error
		if !errors.As(err, &de) || de.Name != errPrefix+"NoEnrolledPrints" {
			d.release("")
			return mapDBusError(ctx, err, "auth: delete earlier prints")
		}
	}
	if err := d.dev.CallWithContext(ctx, deviceIface+".EnrollStart", 0, finger).Err; err != nil {
		d.release("")
		return mapDBusError(ctx, err, "auth: start enrolment")
	}
	defer d.release("EnrollStop")
	stage := 0
	progress(EnrollProgress{Stage: 0, Total: total})
	for {
		select {
		case <-ctx.Done():
			return apperr.Wrap(apperr.Cancelled, ctx.Err(), "auth: enrolment not finished within the time limit")
		case sig, ok := <-d.signals:
			if !ok {
				return apperr.New(apperr.FingerprintUnavailable, "auth: bus connection lost")
			}
			if sig.Name != deviceIface+".EnrollStatus" || !d.fromDevice(sig) {
				continue
			}
			result, done, ok := statusOf(sig)
			if !ok {
				return apperr.New(apperr.FingerprintUnavailable, "auth: malformed EnrollStatus signal")
			}
			switch result {
			case "enroll-stage-passed":
				stage++
				progress(EnrollProgress{Stage: stage, Total: total})
			case "enroll-completed":
				progress(EnrollProgress{Stage: total, Total: total})
				return nil
			case "enroll-retry-scan", "enroll-swipe-too-short", "enroll-finger-not-centered", "enroll-remove-and-retry":
				if done {
					return apperr.New(apperr.FingerprintUnavailable, "auth: enrolment ended after %s", result)
				}
				progress(EnrollProgress{Stage: stage, Total: total, Retry: true})
			case "enroll-duplicate":
				return apperr.New(apperr.InvalidInput, "auth: this finger is already enrolled for another operator")
			default:
				return apperr.New(apperr.FingerprintUnavailable, "auth: enrolment failed: %s", result)
			}
		}
	}
}

// String describes the reader without secrets.
func (f *Fprintd) String() string { return fmt.Sprintf("fprintd(%s)", f.BusAddress) }
