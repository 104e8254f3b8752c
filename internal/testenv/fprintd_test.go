package testenv

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	fprintName   = "net.reactivated.Fprint"
	fprintDevice = "net.reactivated.Fprint.Device"
)

// fprintStatus is one EnrollStatus or VerifyStatus signal.
type fprintStatus struct {
	member string // "EnrollStatus" or "VerifyStatus"
	result string
	done   bool
}

// nextStatus waits for the next status signal of member.
func nextStatus(t *testing.T, signals <-chan *dbus.Signal, member string) fprintStatus {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case s := <-signals:
			if s.Name != fprintDevice+"."+member || len(s.Body) != 2 {
				continue
			}
			result, _ := s.Body[0].(string)
			done, _ := s.Body[1].(bool)
			return fprintStatus{member, result, done}
		case <-timeout:
			t.Fatalf("no %s signal", member)
		}
	}
}

// TestFprintdEnrollVerify proves fprintd works end to end over D-Bus and is the recipe for the
// terminal's login code (see Fingerprint's doc comment): enrol a finger with five presses,
// verify it matches, verify another finger does not.
func TestFprintdEnrollVerify(t *testing.T) {
	start := time.Now()
	fp := Fprintd(t)
	t.Logf("fprintd (with dbus-daemon and polkit stand-in) ready in %v", time.Since(start))
	if got := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); got != fp.BusAddress {
		t.Fatalf("DBUS_SYSTEM_BUS_ADDRESS = %q, want %q", got, fp.BusAddress)
	}

	conn, err := dbus.ConnectSystemBus() // honours DBUS_SYSTEM_BUS_ADDRESS
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 1. Subscribe before starting anything, or the first status can be missed.
	if err := conn.AddMatchSignal(dbus.WithMatchInterface(fprintDevice)); err != nil {
		t.Fatal(err)
	}
	signals := make(chan *dbus.Signal, 32)
	conn.Signal(signals)

	// 2. The default device.
	var devicePath dbus.ObjectPath
	if err := conn.Object(fprintName, "/net/reactivated/Fprint/Manager").
		Call("net.reactivated.Fprint.Manager.GetDefaultDevice", 0).Store(&devicePath); err != nil {
		t.Fatalf("GetDefaultDevice: %v", err)
	}
	device := conn.Object(fprintName, devicePath)
	call := func(method string, args ...any) {
		t.Helper()
		if err := device.Call(fprintDevice+"."+method, 0, args...).Err; err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}

	// 3. Claim for an operator id (a storage key, not a Unix account).
	call("Claim", "op1")

	// 4. Enrol: five presses, one stage each.
	const finger = "right-index-finger"
	call("EnrollStart", finger)
	for press := 1; ; press++ {
		if err := fp.Scan("print-op1"); err != nil {
			t.Fatal(err)
		}
		st := nextStatus(t, signals, "EnrollStatus")
		t.Logf("press %d: %s done=%v", press, st.result, st.done)
		if st.done {
			if st.result != "enroll-completed" || press != 5 {
				t.Fatalf("enrolment ended with %q after %d presses, want enroll-completed after 5", st.result, press)
			}
			break
		}
		if st.result != "enroll-stage-passed" {
			t.Fatalf("press %d: %q, want enroll-stage-passed", press, st.result)
		}
	}
	call("EnrollStop")

	var enrolled []string
	if err := device.Call(fprintDevice+".ListEnrolledFingers", 0, "op1").Store(&enrolled); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(enrolled, []string{finger}) {
		t.Fatalf("enrolled fingers %q, want [%s]", enrolled, finger)
	}

	// 5. Verify: the same print matches, another does not.
	for _, tc := range []struct{ print, want string }{
		{"print-op1", "verify-match"},
		{"print-someone-else", "verify-no-match"},
	} {
		call("VerifyStart", finger)
		if err := fp.Scan(tc.print); err != nil {
			t.Fatal(err)
		}
		st := nextStatus(t, signals, "VerifyStatus")
		if st.result != tc.want || !st.done {
			t.Fatalf("verify with %s: %q done=%v, want %q done=true", tc.print, st.result, st.done, tc.want)
		}
		call("VerifyStop")
	}

	// 6. Release.
	call("Release")
	if asked := fp.Polkit.ActionsAsked(); !slices.Contains(asked, "net.reactivated.fprint.device.enroll") ||
		!slices.Contains(asked, "net.reactivated.fprint.device.verify") {
		t.Errorf("polkit was asked %q, want the enroll and verify actions", asked)
	}
}

// TestFprintdPolkitRefusal: when the polkit stand-in refuses, Claim fails with fprintd's
// PermissionDenied error, as on a terminal whose policy forbids it.
func TestFprintdPolkitRefusal(t *testing.T) {
	fp := Fprintd(t)
	fp.Polkit.SetAuthorized(false)
	conn, err := dbus.Connect(fp.BusAddress)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var devicePath dbus.ObjectPath
	if err := conn.Object(fprintName, "/net/reactivated/Fprint/Manager").
		Call("net.reactivated.Fprint.Manager.GetDefaultDevice", 0).Store(&devicePath); err != nil {
		t.Fatal(err)
	}
	err = conn.Object(fprintName, devicePath).Call(fprintDevice+".Claim", 0, "op1").Err
	var dbusErr dbus.Error
	if !errors.As(err, &dbusErr) || dbusErr.Name != "net.reactivated.Fprint.Error.PermissionDenied" {
		t.Fatalf("Claim while polkit refuses: %v, want net.reactivated.Fprint.Error.PermissionDenied", err)
	}
}
