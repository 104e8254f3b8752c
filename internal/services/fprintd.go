package services

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Fingerprint is fprintd with libfprint's virtual device on a private D-Bus system bus.
//
// The D-Bus sequence a client follows (the terminal's login code does the same; see
// internal/testenv's TestFprintdEnrollVerify for it in Go). Bus name net.reactivated.Fprint on
// the system bus (DBUS_SYSTEM_BUS_ADDRESS); manager object /net/reactivated/Fprint/Manager,
// interface net.reactivated.Fprint.Manager; device objects /net/reactivated/Fprint/Device/N,
// interface net.reactivated.Fprint.Device:
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
	BusAddress   string // the private system bus: give it to clients as DBUS_SYSTEM_BUS_ADDRESS
	DeviceSocket string // FP_VIRTUAL_DEVICE: exists only while the device is claimed
	StateDir     string // fprintd's STATE_DIRECTORY (enrolled prints)
	LogPath      string // fprintd's output (G_MESSAGES_DEBUG=all)
	BusLogPath   string // dbus-daemon's output
	Polkit       *Polkit
	// ScanTimeout bounds how long Scan and Command wait for the device socket (it exists only
	// while a client has claimed the device) and for the device to take the command; 0: 10 s.
	ScanTimeout time.Duration

	bus, fprintd *Service
}

// FprintdOptions configures StartFprintd.
type FprintdOptions struct {
	Fprintd    string        // default /usr/libexec/fprintd
	DBusDaemon string        // default dbus-daemon from PATH
	Dir        string        // required: sockets, logs and state; keep it short (sockets ≤ 107 bytes)
	Timeout    time.Duration // readiness of each part; 0: DefaultStartTimeout
}

// StartFprintd starts a private dbus-daemon of type system in opts.Dir, a polkit stand-in that
// authorises every request, and fprintd with the virtual fingerprint device. It returns when
// fprintd owns net.reactivated.Fprint and lists a device. It sets no environment variable.
// On error nothing is left running.
func StartFprintd(opts FprintdOptions) (f *Fingerprint, err error) {
	if opts.Fprintd == "" {
		opts.Fprintd = "/usr/libexec/fprintd"
	}
	if opts.DBusDaemon == "" {
		opts.DBusDaemon = "dbus-daemon"
	}
	if opts.Dir == "" {
		return nil, errors.New("services: fprintd: no directory")
	}
	dir := opts.Dir
	f = &Fingerprint{
		BusAddress:   "unix:path=" + filepath.Join(dir, "system_bus_socket"),
		DeviceSocket: filepath.Join(dir, "virtual-device.sock"),
		StateDir:     filepath.Join(dir, "state"),
		LogPath:      filepath.Join(dir, "fprintd.log"),
		BusLogPath:   filepath.Join(dir, "dbus-daemon.log"),
	}
	if n := len(f.DeviceSocket); n > 107 {
		return nil, fmt.Errorf("services: fprintd: socket path %s is %d bytes, over the 107 of a unix socket", f.DeviceSocket, n)
	}
	if err := os.MkdirAll(f.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	defer func() {
		if err != nil {
			f.abort()
		}
	}()
	if f.bus, err = startSystemBus(opts, dir, f); err != nil {
		return nil, err
	}
	if f.Polkit, err = startPolkit(f.BusAddress); err != nil {
		return nil, err
	}

	// A bus connection of our own to watch fprintd come up.
	conn, err := dbus.Connect(f.BusAddress)
	if err != nil {
		return nil, fmt.Errorf("services: connect %s: %w", f.BusAddress, err)
	}
	defer conn.Close()

	f.fprintd, err = Start(Spec{
		Name: "fprintd",
		Path: opts.Fprintd,
		Args: []string{"--no-timeout"},
		Env: []string{
			"DBUS_SYSTEM_BUS_ADDRESS=" + f.BusAddress,
			"FP_VIRTUAL_DEVICE=" + f.DeviceSocket,
			"STATE_DIRECTORY=" + f.StateDir,
			"G_MESSAGES_DEBUG=all",
		},
		LogPath: f.LogPath,
	})
	if err != nil {
		return nil, err
	}
	err = f.fprintd.WaitReady(opts.Timeout, func() error {
		var device dbus.ObjectPath
		return conn.Object("net.reactivated.Fprint", "/net/reactivated/Fprint/Manager").
			Call("net.reactivated.Fprint.Manager.GetDefaultDevice", 0).Store(&device)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Services returns the supervised processes, in start order: dbus-daemon, fprintd.
func (f *Fingerprint) Services() []*Service { return []*Service{f.bus, f.fprintd} }

// Stop stops fprintd, the polkit stand-in and the bus, in that order, and returns the first
// error (an unexpected earlier exit of either process, or one that would not die).
func (f *Fingerprint) Stop() error {
	var errs []error
	if f.fprintd != nil {
		errs = append(errs, f.fprintd.Stop())
	}
	if f.Polkit != nil {
		f.Polkit.Close()
	}
	if f.bus != nil {
		errs = append(errs, f.bus.Stop())
	}
	return errors.Join(errs...)
}

// abort stops whatever a failed StartFprintd had started; the caller reports the failure.
func (f *Fingerprint) abort() {
	if f.fprintd != nil {
		f.fprintd.Abort()
	}
	if f.Polkit != nil {
		f.Polkit.Close()
	}
	if f.bus != nil {
		f.bus.Abort()
	}
}

// startSystemBus starts dbus-daemon with a config of type system that listens on f.BusAddress
// and allows everything, and waits until it prints its address.
func startSystemBus(opts FprintdOptions, dir string, f *Fingerprint) (*Service, error) {
	conf := filepath.Join(dir, "system-bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(systemBusConfig, f.BusAddress)), 0o644); err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	// A socket left by a killed bus would make dbus-daemon fail to listen.
	_ = os.Remove(strings.TrimPrefix(f.BusAddress, "unix:path="))
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	defer r.Close()
	s, err := Start(Spec{
		Name:       "dbus-daemon",
		Path:       opts.DBusDaemon,
		Args:       []string{"--nofork", "--nopidfile", "--nosyslog", "--config-file=" + conf, "--print-address=3"},
		LogPath:    f.BusLogPath,
		ExtraFiles: []*os.File{w},
	})
	w.Close()
	if err != nil {
		return nil, err
	}
	printed := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		printed <- strings.TrimSpace(line)
	}()
	var address string
	err = s.WaitReady(opts.Timeout, func() error {
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
		s.Abort()
		return nil, err
	}
	return s, nil
}

// systemBusConfig is a system bus that lets everyone own, send and receive anything: only the
// owner's processes use it. %s is the listen address.
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

// Scan is one press of finger (any id: a verify matches when it equals the enrolled one) on the
// virtual device. The device must be claimed. It sends `SCAN <finger>` and waits until the
// device closes the connection, which it does once it has taken the command; send the next
// press only after the previous one's status signal if you need them in order.
func (f *Fingerprint) Scan(finger string) error {
	return ScanVirtualFinger(f.DeviceSocket, finger, f.ScanTimeout)
}

// Command sends one raw command to the virtual device (see libfprint's virtual-device driver:
// SCAN <id>, ERROR <n>, RETRY <n>, SLEEP <ms>, SET_ENROLL_STAGES <n>, UNPLUG, ...) and waits
// for the device to close the connection.
func (f *Fingerprint) Command(command string) error {
	return VirtualDeviceCommand(f.DeviceSocket, command, f.ScanTimeout)
}

// ScanVirtualFinger is Fingerprint.Scan for a device socket path alone (what a terminal started
// with MADOGUCHI_VIRTUAL_FINGER knows); timeout 0 means 10 s.
func ScanVirtualFinger(socket, finger string, timeout time.Duration) error {
	if finger == "" || strings.ContainsAny(finger, " \n") {
		return fmt.Errorf("services: scan: invalid finger id %q", finger)
	}
	return VirtualDeviceCommand(socket, "SCAN "+finger, timeout)
}

// VirtualDeviceCommand is Fingerprint.Command for a device socket path alone; timeout 0 means
// 10 s.
func VirtualDeviceCommand(socket, command string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	var conn net.Conn
	for {
		var err error
		conn, err = net.Dial("unix", socket)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("services: virtual fingerprint device %s not available (is it claimed?): %w", socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, command); err != nil {
		return fmt.Errorf("services: virtual fingerprint device: send %q: %w", command, err)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return fmt.Errorf("services: virtual fingerprint device: %q not taken: %w", command, err)
	}
	return nil
}
