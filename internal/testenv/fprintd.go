package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Fingerprint is fprintd with libfprint's virtual device on a private D-Bus system bus.
//
// The D-Bus sequence a client follows (the terminal's login code does the same; see
// TestFprintdEnrollVerify for it in Go). Bus name net.reactivated.Fprint on the system bus
// (DBUS_SYSTEM_BUS_ADDRESS); manager object /net/reactivated/Fprint/Manager, interface
// net.reactivated.Fprint.Manager; device objects /net/reactivated/Fprint/Device/N, interface
// net.reactivated.Fprint.Device:
//
//  1. Subscribe first: match signals of interface net.reactivated.Fprint.Device, members
//     EnrollStatus and VerifyStatus, both (s result, b done).
//  2. Manager.GetDefaultDevice() → o device.
//  3. Device.Claim(s username). The username is only fprintd's storage key (operators need not
//     be Unix accounts). Polkit is asked for every Claim/Enroll/Verify.
//  4. Enrol: Device.EnrollStart(s finger), e.g. "right-index-finger"; the virtual device needs 5
//     presses: 4 × EnrollStatus("enroll-stage-passed", false), then
//     EnrollStatus("enroll-completed", true). Other results ("enroll-retry-scan",
//     "enroll-swipe-too-short", "enroll-finger-not-centered", "enroll-remove-and-retry") are
//     retries with done=false; "enroll-failed", "enroll-data-full", "enroll-disconnected",
//     "enroll-unknown-error" end it with done=true. Then Device.EnrollStop() — always, also
//     after done.
//  5. Verify: Device.VerifyStart(s finger) ("any" for any enrolled finger); one press gives
//     VerifyStatus("verify-match", true) or ("verify-no-match", true); retries have done=false,
//     and "verify-disconnected"/"verify-unknown-error" end it. Then Device.VerifyStop() — always.
//  6. Device.Release().
//
// Safe for concurrent use; Scan calls are serialised by the device (one press at a time).
type Fingerprint struct {
	BusAddress   string // the private system bus, also exported as DBUS_SYSTEM_BUS_ADDRESS
	DeviceSocket string // FP_VIRTUAL_DEVICE: exists only while the device is claimed
	StateDir     string // fprintd's STATE_DIRECTORY (enrolled prints)
	LogPath      string // fprintd's output (G_MESSAGES_DEBUG=all)
	BusLogPath   string // dbus-daemon's output
	Polkit       *Polkit
}

// FprintdOptions configures FprintdWith; the zero value is Debian's fprintd and dbus-daemon.
type FprintdOptions struct {
	Fprintd    string // default /usr/libexec/fprintd
	DBusDaemon string // default dbus-daemon from PATH
}

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
	if opts.Fprintd == "" {
		opts.Fprintd = "/usr/libexec/fprintd"
	}
	if opts.DBusDaemon == "" {
		opts.DBusDaemon = "dbus-daemon"
	}
	dir := shortTempDir(t, "fp") // socket paths must stay under 108 bytes
	f := &Fingerprint{
		BusAddress:   "unix:path=" + filepath.Join(dir, "system_bus_socket"),
		DeviceSocket: filepath.Join(dir, "virtual-device.sock"),
		StateDir:     filepath.Join(dir, "state"),
		LogPath:      filepath.Join(dir, "fprintd.log"),
		BusLogPath:   filepath.Join(dir, "dbus-daemon.log"),
	}
	if err := os.Mkdir(f.StateDir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	startSystemBus(t, opts.DBusDaemon, dir, f)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", f.BusAddress)

	polkit, err := startPolkit(f.BusAddress)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(polkit.close)
	f.Polkit = polkit

	// A bus connection of our own to watch fprintd come up.
	conn, err := dbus.Connect(f.BusAddress)
	if err != nil {
		t.Fatalf("testenv: connect %s: %v", f.BusAddress, err)
	}
	defer conn.Close()

	s, err := startService(serviceSpec{
		name: "fprintd",
		path: opts.Fprintd,
		args: []string{"--no-timeout"},
		env: []string{
			"DBUS_SYSTEM_BUS_ADDRESS=" + f.BusAddress,
			"FP_VIRTUAL_DEVICE=" + f.DeviceSocket,
			"STATE_DIRECTORY=" + f.StateDir,
			"G_MESSAGES_DEBUG=all",
		},
		logPath: f.LogPath,
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.cleanup(t)
	err = s.waitReady(func() error {
		var device dbus.ObjectPath
		return conn.Object("net.reactivated.Fprint", "/net/reactivated/Fprint/Manager").
			Call("net.reactivated.Fprint.Manager.GetDefaultDevice", 0).Store(&device)
	})
	if err != nil {
		s.abort()
		t.Fatalf("%v", err)
	}
	return f
}

// startSystemBus starts dbus-daemon with a config of type system that listens on f.BusAddress
// and allows everything, and waits until it prints its address.
func startSystemBus(t testing.TB, binary, dir string, f *Fingerprint) {
	t.Helper()
	conf := filepath.Join(dir, "system-bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(systemBusConfig, f.BusAddress)), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer r.Close()
	s, err := startService(serviceSpec{
		name:       "dbus-daemon",
		path:       binary,
		args:       []string{"--nofork", "--nopidfile", "--nosyslog", "--config-file=" + conf, "--print-address=3"},
		logPath:    f.BusLogPath,
		extraFiles: []*os.File{w},
	})
	w.Close()
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.cleanup(t)
	printed := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		printed <- strings.TrimSpace(line)
	}()
	var address string
	err = s.waitReady(func() error {
		if address == "" {
			select {
			case address = <-printed:
			default:
				return errors.New("no address printed yet")
			}
		}
		if !strings.HasPrefix(address, f.BusAddress) {
			return fmt.Errorf("dbus-daemon listens on %q, want %q", address, f.BusAddress)
		}
		return nil
	})
	if err != nil {
		s.abort()
		t.Fatalf("%v", err)
	}
}

// systemBusConfig is a system bus that lets everyone own, send and receive anything: the test
// process is the only client. %s is the listen address.
const systemBusConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="method_return"/>
    <allow send_type="signal"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="signal"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
`

// ScanTimeout bounds how long Scan waits for the virtual device's socket (it exists only while
// a client has claimed the device) and for the device to take the press.
var ScanTimeout = 10 * time.Second

// Scan is one press of finger (any id: a verify matches when it equals the enrolled one) on the
// virtual device. The device must be claimed. It sends `SCAN <finger>` and waits until the
// device closes the connection, which it does once it has taken the command; send the next
// press only after the previous one's status signal if you need them in order.
func (f *Fingerprint) Scan(finger string) error {
	if finger == "" || strings.ContainsAny(finger, " \n") {
		return fmt.Errorf("testenv: scan: invalid finger id %q", finger)
	}
	return f.Command("SCAN " + finger)
}

// Command sends one raw command to the virtual device (see libfprint's virtual-device driver:
// SCAN <id>, ERROR <n>, RETRY <n>, SLEEP <ms>, SET_ENROLL_STAGES <n>, UNPLUG, ...) and waits
// for the device to close the connection.
func (f *Fingerprint) Command(command string) error {
	deadline := time.Now().Add(ScanTimeout)
	var conn net.Conn
	for {
		var err error
		conn, err = net.Dial("unix", f.DeviceSocket)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: virtual fingerprint device %s not available (is it claimed?): %w", f.DeviceSocket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, command); err != nil {
		return fmt.Errorf("testenv: virtual fingerprint device: send %q: %w", command, err)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return fmt.Errorf("testenv: virtual fingerprint device: %q not taken: %w", command, err)
	}
	return nil
}
