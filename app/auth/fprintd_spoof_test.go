package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"

	"madoguchi/app/apperr"
	"madoguchi/app/auth"
	"madoguchi/internal/testenv"
)

// TestFprintdIgnoresSpoofedVerifyStatus: any process on the system bus may emit a signal
// with fprintd's device path and interface (Debian's system.conf allows every client to send
// signals). A forged "verify-match" must not log anyone in: only the status signals that
// fprintd itself sends count. Here a second bus client forges a match while the operator's
// verification waits; then a stranger's finger is pressed, and the verification must end
// with that real no-match.
func TestFprintdIgnoresSpoofedVerifyStatus(t *testing.T) {
	fp := testenv.Fprintd(t)
	ctx := context.Background()
	reader := &auth.Fprintd{BusAddress: fp.BusAddress}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var bgErr error
	background := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				if bgErr == nil {
					bgErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wait := func() {
		t.Helper()
		wg.Wait()
		if bgErr != nil {
			t.Fatal(bgErr)
		}
	}

	if err := reader.Enroll(ctx, "op1", "right-index-finger", func(e auth.EnrollProgress) {
		if e.Stage < e.Total {
			background(func() error { return fp.Scan("print-op1") })
		}
	}); err != nil {
		t.Fatal(err)
	}
	wait()

	spoofer, err := dbus.Connect(fp.BusAddress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spoofer.Close() })
	var device dbus.ObjectPath
	if err := spoofer.Object("net.reactivated.Fprint", "/net/reactivated/Fprint/Manager").
		Call("net.reactivated.Fprint.Manager.GetDefaultDevice", 0).Store(&device); err != nil {
		t.Fatal(err)
	}

	err = reader.Verify(ctx, "op1", func(e auth.ScanEvent) {
		if e != auth.ScanWaiting {
			return
		}
		background(func() error {
			if err := spoofer.Emit(device, "net.reactivated.Fprint.Device.VerifyStatus", "verify-match", true); err != nil {
				return err
			}
			// A round trip through the bus: the forged signal has been routed before the
			// real press below makes fprintd answer.
			var id string
			if err := spoofer.BusObject().Call("org.freedesktop.DBus.GetId", 0).Store(&id); err != nil {
				return err
			}
			return fp.Scan("print-stranger")
		})
	})
	wait()
	if !errors.Is(err, apperr.FingerprintNoMatch) {
		t.Fatalf("verify with a forged match signal and a stranger's finger: %v, want the real no-match", err)
	}
}
