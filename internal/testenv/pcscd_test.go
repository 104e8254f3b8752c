package testenv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"madoguchi/internal/services"
)

// TestPCSCDReaders proves pcscd works: a PC/SC client lists both vpcd readers.
func TestPCSCDReaders(t *testing.T) {
	start := time.Now()
	p := PCSCD(t)
	t.Logf("pcscd ready in %v (pid %d)", time.Since(start), p.PID)
	ctx, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Release()
	readers, err := ctx.ListReaders()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Virtual PCD 00 00", "Virtual PCD 00 01"} {
		if !slices.Contains(readers, want) {
			t.Errorf("readers %q lack %q", readers, want)
		}
	}
	if !slices.Equal(p.Readers, []string{"Virtual PCD 00 00", "Virtual PCD 00 01"}) || !slices.Equal(p.Ports, []int{35963, 35964}) {
		t.Errorf("PCSC = %q %v", p.Readers, p.Ports)
	}
}

// TestPCSCDTransmitWithTrace proves the whole card path and the APDU trace: a minimal vpcd card
// answers one APDU sent through pcscd, and the trace log shows it.
func TestPCSCDTransmitWithTrace(t *testing.T) {
	p := PCSCDWith(t, PCSCDOptions{APDUTrace: true})
	stopCard := runEchoCard(t, p.Ports[1])
	defer stopCard()

	ctx, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Release()
	var card *scard.Card
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		card, err = ctx.Connect(p.Readers[1], scard.ShareShared, scard.ProtocolAny)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to the card in %q: %v", p.Readers[1], err)
		}
	}
	defer card.Disconnect(scard.LeaveCard)
	command := []byte{0x00, 0xA4, 0x04, 0x0C, 0x02, 0xCA, 0xFE}
	resp, err := card.Transmit(command)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xCA, 0xFE, 0x90, 0x00}; !bytes.Equal(resp, want) {
		t.Fatalf("response % X, want % X", resp, want)
	}
	log, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "00 A4 04 0C 02 CA FE") {
		t.Fatalf("APDU trace %s lacks the command:\n%s", p.LogPath, log)
	}
}

// runEchoCard connects a minimal virtual card to a vpcd port: it answers GET ATR with a T=1 ATR
// and each command APDU with its data followed by 90 00.
func runEchoCard(t *testing.T, port int) (stop func()) {
	t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("connect the card to vpcd: %v", err)
	}
	atr := []byte{0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14}
	done := make(chan struct{})
	go func() {
		defer close(done)
		send := func(b []byte) error {
			frame := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
			_, err := conn.Write(append(frame, b...))
			return err
		}
		for {
			var n uint16
			if err := binary.Read(conn, binary.BigEndian, &n); err != nil {
				return
			}
			msg := make([]byte, n)
			if _, err := io.ReadFull(conn, msg); err != nil {
				return
			}
			var err error
			switch {
			case n == 1 && msg[0] == 0x04:
				err = send(atr)
			case n == 1: // power off, power on, reset: no answer
			case n > 5:
				err = send(append(slices.Clone(msg[5:5+int(msg[4])]), 0x90, 0x00))
			default:
				err = send([]byte{0x90, 0x00})
			}
			if err != nil && !errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
	return func() { conn.Close(); <-done }
}

// TestPCSCDClearsOrphan: a pcscd left running by a dead test binary (it carries OwnerEnv) is
// stopped, its files removed, and a new pcscd starts.
func TestPCSCDClearsOrphan(t *testing.T) {
	lockPCSCD(t)
	orphan, err := services.Start(services.Spec{Name: "pcscd", Path: "/usr/sbin/pcscd", Args: []string{"-f"},
		LogPath: t.TempDir() + "/orphan.log"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orphan.Stop() })
	if err := orphan.WaitReady(StartTimeout, services.PCSCDReady); err != nil {
		t.Fatal(err)
	}
	p := startPCSCD(t, PCSCDOptions{})
	if !orphan.Exited() {
		t.Fatal("the orphan pcscd still runs")
	}
	if p.PID == orphan.PID() {
		t.Fatal("got the orphan back")
	}
	if err := services.PCSCDReady(); err != nil {
		t.Fatalf("new pcscd: %v", err)
	}
}

// TestPCSCDRefusesForeign: a pcscd the harness did not start fails the test with a clear
// message instead of being killed.
func TestPCSCDRefusesForeign(t *testing.T) {
	lockPCSCD(t)
	if err := services.ClearPCSCD(); err != nil {
		t.Fatal(err)
	}
	foreign := exec.Command("/usr/sbin/pcscd", "-f")
	foreign.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, OwnerEnv+"=") })
	foreign.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := foreign.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = foreign.Process.Signal(syscall.SIGTERM)
		_ = foreign.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); services.PCSCDReady() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("foreign pcscd did not come up")
		}
	}
	rec := runRecorded(t, func(tb testing.TB) { startPCSCD(tb, PCSCDOptions{}) })
	assertFatalNotSkip(t, rec, "not started by testenv")
	if services.ProcessState(foreign.Process.Pid) == "" {
		t.Fatal("the foreign pcscd was killed")
	}
}

// TestPCSCDClearsStaleFiles: a pid file naming a live process that is not pcscd (a reused pid)
// and a socket file nobody listens on, as a killed pcscd leaves them, do not stop a new pcscd.
// pcscd alone refuses this combination ("Another pcscd (pid: N) seems to be running").
func TestPCSCDClearsStaleFiles(t *testing.T) {
	lockPCSCD(t)
	if err := services.ClearPCSCD(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/pcscd", 0o755); err != nil {
		t.Fatal(err)
	}
	// Our own pid: alive, so pcscd itself would refuse to start ("already running").
	if err := os.WriteFile(PCSCDPIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: PCSCDSocket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	p := startPCSCD(t, PCSCDOptions{})
	if err := services.PCSCDReady(); err != nil {
		t.Fatalf("pcscd %d after stale files: %v", p.PID, err)
	}
}
