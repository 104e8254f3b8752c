package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebfe/scard"
)

// Fixed paths of Debian's pcscd (compiled in) and the harness's machine-wide lock.
const (
	PCSCDSocket   = "/run/pcscd/pcscd.comm"
	PCSCDPIDFile  = "/run/pcscd/pcscd.pid"
	PCSCDLockPath = "/run/lock/madoguchi-pcscd.lock"
)

// The readers /etc/reader.conf.d/vpcd configures and the TCP ports their card side connects to.
var (
	vpcdReaders = []string{"Virtual PCD 00 00", "Virtual PCD 00 01"}
	vpcdPorts   = []int{35963, 35964}
)

// PCSC is the running pcscd with the two vpcd readers.
type PCSC struct {
	Readers []string // "Virtual PCD 00 00", "Virtual PCD 00 01"
	Ports   []int    // 35963, 35964: a virtual card connects to Ports[i] to sit in Readers[i]
	LogPath string   // pcscd's output; with APDUTrace, every APDU in and out
	PID     int

	svc *service
}

// Stop stops pcscd before the test ends (for tests of a vanished PC/SC service); the lock is
// still held until the test's cleanup. Cleanup stops it otherwise.
func (p *PCSC) Stop() error { return p.svc.stop() }

// PCSCDOptions configures PCSCDWith.
type PCSCDOptions struct {
	Binary    string // default /usr/sbin/pcscd
	APDUTrace bool   // run `pcscd -f -a -i`: log every APDU to LogPath
}

// PCSCD starts the machine's pcscd for the test, with the vpcd readers listening.
//
// Only one pcscd can run on a machine (fixed socket, pid file and vpcd ports), so PCSCD first
// takes an exclusive flock on PCSCDLockPath and holds it until the test's cleanup has stopped
// and reaped pcscd. It blocks while another test — in this or another test binary — holds it.
// A pcscd left by a dead test binary is stopped and its stale files removed; a pcscd that the
// harness did not start fails the test with instructions, because stopping a system service
// from a test would be a surprise.
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
	if opts.Binary == "" {
		opts.Binary = "/usr/sbin/pcscd"
	}
	if err := clearPCSCD(); err != nil {
		t.Fatalf("%v", err)
	}
	args := []string{"-f"} // never -x: auto-exit after 60 s idle would cut the card link
	if opts.APDUTrace {
		args = append(args, "-a", "-i")
	}
	s, err := startService(serviceSpec{
		name:    "pcscd",
		path:    opts.Binary,
		args:    args,
		logPath: filepath.Join(t.TempDir(), "pcscd.log"),
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.cleanup(t)
	if err := s.waitReady(pcscdReady); err != nil {
		s.abort()
		t.Fatalf("%v", err)
	}
	return &PCSC{
		Readers: slices.Clone(vpcdReaders),
		Ports:   slices.Clone(vpcdPorts),
		LogPath: s.logPath,
		PID:     s.pid(),
		svc:     s,
	}
}

// lockPCSCD takes the machine-wide pcscd lock for the rest of the test. The lock file's
// descriptor is close-on-exec, so no child inherits the lock, and the kernel releases it when
// the test process dies.
func lockPCSCD(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(PCSCDLockPath), 0o755); err != nil {
		t.Fatalf("testenv: pcscd lock: %v", err)
	}
	f, err := os.OpenFile(PCSCDLockPath, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("testenv: pcscd lock: %v", err)
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			t.Fatalf("testenv: pcscd lock %s: %v", PCSCDLockPath, err)
		}
		holder, _ := os.ReadFile(PCSCDLockPath)
		if len(holder) == 0 {
			holder = []byte("another test")
		}
		t.Logf("testenv: waiting for the pcscd lock %s, held by %s", PCSCDLockPath, strings.TrimSpace(string(holder)))
		start := time.Now()
		if err := flock(f, syscall.LOCK_EX); err != nil {
			f.Close()
			t.Fatalf("testenv: pcscd lock %s: %v", PCSCDLockPath, err)
		}
		t.Logf("testenv: got the pcscd lock after %v", time.Since(start).Round(time.Millisecond))
	}
	// Record the holder for the message above (best effort).
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d (%s) test %s\n", os.Getpid(), filepath.Base(os.Args[0]), t.Name())), 0)
	}
	t.Cleanup(func() {
		_ = f.Truncate(0)
		_ = flock(f, syscall.LOCK_UN)
		_ = f.Close()
	})
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// clearPCSCD makes the machine ready for a new pcscd. The caller holds the lock, so any pcscd
// still running is either an orphan of a dead test binary (it carries OwnerEnv: stop it) or
// not ours (refuse). A socket that accepts connections without a pcscd behind it belongs to
// systemd's socket activation (refuse). Stale files are removed: pcscd refuses to start while
// its pid file names a live process.
func clearPCSCD() error {
	for _, pid := range pidsNamed("pcscd") {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if !slices.ContainsFunc(strings.Split(string(env), "\x00"), func(kv string) bool {
			return strings.HasPrefix(kv, OwnerEnv+"=")
		}) {
			return fmt.Errorf("testenv: a pcscd not started by testenv is running (pid %d); tests need the only pcscd of the machine: stop it (scripts/services-clean.sh; under systemd `systemctl disable --now pcscd.socket pcscd.service`)", pid)
		}
		if err := terminate(pid); err != nil {
			return err
		}
	}
	if _, err := os.Stat(PCSCDSocket); err == nil {
		if c, err := net.DialTimeout("unix", PCSCDSocket, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("testenv: %s accepts connections but no pcscd runs: systemd socket activation? run `systemctl disable --now pcscd.socket pcscd.service`", PCSCDSocket)
		}
	}
	for _, path := range []string{PCSCDSocket, PCSCDPIDFile} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("testenv: remove stale %s: %w", path, err)
		}
	}
	return nil
}

// pidsNamed returns the live (non-zombie) processes whose command name is name.
func pidsNamed(name string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		if processState(pid) == "Z" {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// processState returns the state letter of /proc/<pid>/stat ("R", "S", "Z", ...), "" if gone.
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+3 > len(b) {
		return ""
	}
	return string(b[i+2 : i+3])
}

// terminate stops a process that is not our child: SIGTERM, then SIGKILL, and waits until it is
// gone or a zombie (its new parent reaps it).
func terminate(pid int) error {
	gone := func() bool { s := processState(pid); return s == "" || s == "Z" }
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		_ = syscall.Kill(pid, sig)
		for deadline := time.Now().Add(stopGrace); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if gone() {
				return nil
			}
		}
	}
	return fmt.Errorf("testenv: leftover pcscd (pid %d) survived SIGKILL", pid)
}

// pcscdReady reports whether pcscd answers on its socket and lists both vpcd readers.
func pcscdReady() error {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return err
	}
	defer ctx.Release()
	readers, err := ctx.ListReaders()
	if err != nil {
		return err
	}
	for _, want := range vpcdReaders {
		if !slices.Contains(readers, want) {
			return fmt.Errorf("reader %q not listed (have %q)", want, readers)
		}
	}
	return nil
}
