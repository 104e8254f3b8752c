package services

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ebfe/scard"
)

// Fixed paths of Debian's pcscd (compiled in) and the machine-wide lock every user of pcscd in
// this project (tests and the demo) holds while its pcscd runs.
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

	svc *Service
}

// Stop stops pcscd and waits until it is reaped; the lock stays with its holder.
func (p *PCSC) Stop() error { return p.svc.Stop() }

// Service returns the supervised pcscd process.
func (p *PCSC) Service() *Service { return p.svc }

// PCSCDOptions configures StartPCSCD.
type PCSCDOptions struct {
	Binary    string        // default /usr/sbin/pcscd
	APDUTrace bool          // run `pcscd -f -a -i`: log every APDU to LogPath
	LogPath   string        // required: pcscd's output
	Timeout   time.Duration // readiness; 0: DefaultStartTimeout
}

// PCSCDLock is the held machine-wide pcscd lock.
type PCSCDLock struct {
	f    *os.File
	once sync.Once
}

// LockPCSCD takes the machine-wide pcscd lock (an exclusive flock on PCSCDLockPath), blocking
// while another process holds it; logf (may be nil) is told whom it waits for. holder describes
// the caller in the lock file for the next waiter's message. The lock file's descriptor is
// close-on-exec, so no child inherits the lock, and the kernel releases it when the process
// dies. Only one pcscd can run on a machine (fixed socket, pid file and vpcd ports).
func LockPCSCD(holder string, logf func(format string, args ...any)) (*PCSCDLock, error) {
	if err := os.MkdirAll(filepath.Dir(PCSCDLockPath), 0o755); err != nil {
		return nil, fmt.Errorf("services: pcscd lock: %w", err)
	}
	f, err := os.OpenFile(PCSCDLockPath, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("services: pcscd lock: %w", err)
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("services: pcscd lock %s: %w", PCSCDLockPath, err)
		}
		held, _ := os.ReadFile(PCSCDLockPath)
		if len(held) == 0 {
			held = []byte("another process")
		}
		if logf != nil {
			logf("waiting for the pcscd lock %s, held by %s", PCSCDLockPath, strings.TrimSpace(string(held)))
		}
		start := time.Now()
		if err := flock(f, syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("services: pcscd lock %s: %w", PCSCDLockPath, err)
		}
		if logf != nil {
			logf("got the pcscd lock after %v", time.Since(start).Round(time.Millisecond))
		}
	}
	// Record the holder for the message above (best effort).
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d (%s) %s\n", os.Getpid(), filepath.Base(os.Args[0]), holder)), 0)
	}
	return &PCSCDLock{f: f}, nil
}

// Unlock releases the lock; later calls do nothing.
func (l *PCSCDLock) Unlock() {
	l.once.Do(func() {
		_ = l.f.Truncate(0)
		_ = flock(l.f, syscall.LOCK_UN)
		_ = l.f.Close()
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

// StartPCSCD clears what a dead pcscd of ours left behind (ClearPCSCD) and starts pcscd in the
// foreground, returning once it lists both vpcd readers. The caller must hold the lock
// (LockPCSCD) for as long as this pcscd runs. Never `-x`: pcscd's auto-exit after 60 s idle
// would cut a virtual card's link.
func StartPCSCD(opts PCSCDOptions) (*PCSC, error) {
	if opts.Binary == "" {
		opts.Binary = "/usr/sbin/pcscd"
	}
	if opts.LogPath == "" {
		return nil, errors.New("services: pcscd: no log path")
	}
	if err := ClearPCSCD(); err != nil {
		return nil, err
	}
	args := []string{"-f"}
	if opts.APDUTrace {
		args = append(args, "-a", "-i")
	}
	s, err := Start(Spec{Name: "pcscd", Path: opts.Binary, Args: args, LogPath: opts.LogPath})
	if err != nil {
		return nil, err
	}
	if err := s.WaitReady(opts.Timeout, PCSCDReady); err != nil {
		s.Abort()
		return nil, err
	}
	return &PCSC{
		Readers: slices.Clone(vpcdReaders),
		Ports:   slices.Clone(vpcdPorts),
		LogPath: s.logPath,
		PID:     s.PID(),
		svc:     s,
	}, nil
}

// ErrForeignPCSCD is wrapped by ClearPCSCD's error when a pcscd that this package did not start
// runs or systemd's socket activation holds pcscd's socket.
var ErrForeignPCSCD = errors.New("a pcscd not started by madoguchi is running")

// ClearPCSCD makes the machine ready for a new pcscd. The caller holds the lock, so any pcscd
// still running is either an orphan of a dead owner (it carries OwnerEnv: stop it) or not ours
// (refuse: stopping a system service would be a surprise). A socket that accepts connections
// without a pcscd behind it belongs to systemd's socket activation (refuse). Stale files are
// removed: pcscd refuses to start while its pid file names a live process.
func ClearPCSCD() error {
	for _, pid := range PIDsNamed("pcscd") {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if !slices.ContainsFunc(strings.Split(string(env), "\x00"), func(kv string) bool {
			return strings.HasPrefix(kv, OwnerEnv+"=")
		}) {
			return fmt.Errorf("services: %w (pid %d, not started by testenv or the demo); Madoguchi needs the only pcscd of the machine: stop it (scripts/services-clean.sh; under systemd `systemctl disable --now pcscd.socket pcscd.service`)", ErrForeignPCSCD, pid)
		}
		if err := terminate(pid); err != nil {
			return err
		}
	}
	if _, err := os.Stat(PCSCDSocket); err == nil {
		if c, err := net.DialTimeout("unix", PCSCDSocket, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("services: %w: %s accepts connections but no pcscd runs: systemd socket activation? run `systemctl disable --now pcscd.socket pcscd.service`", ErrForeignPCSCD, PCSCDSocket)
		}
	}
	for _, path := range []string{PCSCDSocket, PCSCDPIDFile} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("services: remove stale %s: %w", path, err)
		}
	}
	return nil
}

// terminate stops a process that is not our child: SIGTERM, then SIGKILL, and waits until it is
// gone or a zombie (its new parent reaps it).
func terminate(pid int) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		_ = syscall.Kill(pid, sig)
		for deadline := time.Now().Add(stopGrace); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if !Alive(pid) {
				return nil
			}
		}
	}
	return fmt.Errorf("services: leftover pcscd (pid %d) survived SIGKILL", pid)
}

// PCSCDReady reports whether pcscd answers on its socket and lists both vpcd readers.
func PCSCDReady() error {
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
