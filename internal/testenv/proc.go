package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// OwnerEnv is the environment variable every child started by testenv carries. Its value is
// "<pid>:<start time in clock ticks since boot>" of the test process, which identifies the test
// process even after its pid is reused. scripts/services-clean.sh kills children whose owner is
// gone.
const OwnerEnv = "MADOGUCHI_TESTENV_OWNER"

// StartTimeout bounds how long a helper waits for a service to become ready. It is generous
// because the project's machines have two cores shared by several test binaries.
var StartTimeout = 60 * time.Second

// Grace periods when stopping a child: first the stop signal, then SIGKILL to the group.
const (
	stopGrace = 10 * time.Second
	killGrace = 5 * time.Second
)

// ownerValue is the value of OwnerEnv for this process.
var ownerValue = sync.OnceValue(func() string {
	start, err := processStartTime(os.Getpid())
	if err != nil {
		return strconv.Itoa(os.Getpid()) + ":0"
	}
	return strconv.Itoa(os.Getpid()) + ":" + start
})

// processStartTime returns field 22 of /proc/<pid>/stat (start time in clock ticks since boot).
func processStartTime(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", fmt.Errorf("testenv: malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	const startTimeIndex = 22 - 3 // fields after ')' start at field 3 (state)
	if len(fields) <= startTimeIndex {
		return "", fmt.Errorf("testenv: short /proc/%d/stat", pid)
	}
	return fields[startTimeIndex], nil
}

// serviceSpec describes one child process.
type serviceSpec struct {
	name        string // for messages: "pcscd", "Xvfb", ...
	path        string
	args        []string
	env         []string // added to os.Environ() and OwnerEnv
	dir         string
	logPath     string // stdout and stderr go here (appended)
	extraFiles  []*os.File
	stopSignal  syscall.Signal // sent to the leader by stop; default SIGTERM
	deathSignal syscall.Signal // parent-death signal; default SIGTERM
	credential  *syscall.Credential
}

// service is a running child. It is stopped exactly once, by stop.
type service struct {
	name       string
	cmd        *exec.Cmd
	logPath    string
	stopSignal syscall.Signal

	done    chan struct{} // closed when Wait has returned
	waitErr error         // valid after done is closed

	stopOnce sync.Once
	stopErr  error
	quiet    atomic.Bool // set by abort: the failure was already reported
}

// startService starts spec's binary. The child gets its own process group and a parent-death
// signal. The goroutine that forks it stays locked to its OS thread until the child has exited:
// Linux delivers the parent-death signal when the forking thread exits, and the Go runtime
// terminates a thread when a goroutine locked to it exits, so an unlocked start from a goroutine
// that happens to be locked (and then ends) would kill the child early.
func startService(spec serviceSpec) (*service, error) {
	if spec.stopSignal == 0 {
		spec.stopSignal = syscall.SIGTERM
	}
	if spec.deathSignal == 0 {
		spec.deathSignal = syscall.SIGTERM
	}
	logFile, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s log: %w", spec.name, err)
	}
	defer logFile.Close() // the child has its own copy after Start

	cmd := exec.Command(spec.path, spec.args...)
	cmd.Dir = spec.dir
	cmd.Env = append(os.Environ(), OwnerEnv+"="+ownerValue())
	cmd.Env = append(cmd.Env, spec.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.ExtraFiles = spec.extraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  spec.deathSignal,
		Credential: spec.credential,
	}
	s := &service{
		name:       spec.name,
		cmd:        cmd,
		logPath:    spec.logPath,
		stopSignal: spec.stopSignal,
		done:       make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("testenv: start %s: %w", spec.name, err)
	}
	return s, nil
}

// pid returns the child's process id.
func (s *service) pid() int { return s.cmd.Process.Pid }

// exited reports whether the child has exited (and been reaped).
func (s *service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// errExited is returned by waitReady when the child exits before it is ready.
var errExited = errors.New("exited")

// waitReady polls probe until it returns nil, the child exits, or StartTimeout passes. The
// returned error carries the child's exit status and log tail.
func (s *service) waitReady(probe func() error) error {
	deadline := time.Now().Add(StartTimeout)
	delay := 5 * time.Millisecond
	for {
		err := probe()
		if err == nil {
			return nil
		}
		if s.exited() {
			return fmt.Errorf("testenv: %s %w before it was ready (%v); last probe: %v%s",
				s.name, errExited, s.waitErr, err, s.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s not ready after %v: %v%s", s.name, StartTimeout, err, s.logTail())
		}
		select {
		case <-s.done:
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// stop ends the child: the stop signal to the leader, SIGKILL to the process group after
// stopGrace, and a final SIGKILL to the group once the leader is gone (no stray grandchild
// survives). It always waits until the leader has been reaped, or reports why it could not.
// An exit before stop was called is reported as an error.
func (s *service) stop() error {
	s.stopOnce.Do(func() {
		diedEarly := s.exited()
		pgid := s.pid() // Setpgid: the group id is the leader's pid
		if !diedEarly {
			_ = syscall.Kill(s.pid(), s.stopSignal)
			select {
			case <-s.done:
			case <-time.After(stopGrace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				select {
				case <-s.done:
				case <-time.After(killGrace):
					s.stopErr = fmt.Errorf("testenv: %s (pid %d) survived SIGKILL for %v", s.name, s.pid(), killGrace)
					return
				}
			}
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if diedEarly {
			s.stopErr = fmt.Errorf("testenv: %s exited during the test (%v)%s", s.name, s.waitErr, s.logTail())
		}
	})
	return s.stopErr
}

// abort stops the child after a failed start, whose error the caller reports itself.
func (s *service) abort() {
	s.quiet.Store(true)
	_ = s.stop()
}

// cleanup registers stopping s with t: stop, report an unexpected death, and show the log tail
// when the test failed.
func (s *service) cleanup(t testing.TB) {
	t.Cleanup(func() {
		if err := s.stop(); err != nil && !s.quiet.Load() {
			t.Errorf("%v", err)
		}
		if tail := s.logTail(); t.Failed() && tail != "" {
			t.Logf("testenv: %s log:%s", s.name, tail)
		}
	})
}

// logTail returns the last few KiB of the child's log, prefixed with a newline, or "".
func (s *service) logTail() string {
	return fileTail(s.logPath, 4096)
}

func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return ""
	}
	off := max(st.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return ""
	}
	return "\n--- " + path + " (tail) ---\n" + strings.TrimRight(string(b), "\n")
}

// shortTempDir makes a directory /tmp/madoguchi-testenv-<kind>-<random>, removed in t.Cleanup.
// Unix socket paths are limited to 107 bytes and t.TempDir() embeds the test name (and TMPDIR
// may be long), so sockets live here instead; /tmp is also reachable by the postgres user,
// unlike t.TempDir()'s root-only parent. The prefix marks the directory as the harness's for
// scripts/services-clean.sh, and an "owner" file records the test process.
func shortTempDir(t testing.TB, kind string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "madoguchi-testenv-"+kind+"-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.WriteFile(dir+"/owner", []byte(ownerValue()+"\n"), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

// runTool runs a short-lived command to completion with the same process-group and
// parent-death protection as a service, and returns its combined output.
func runTool(name, path string, args []string, env []string, cred *syscall.Credential) ([]byte, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), OwnerEnv+"="+ownerValue())
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // see startService
		defer runtime.UnlockOSThread()
		out, err := cmd.CombinedOutput()
		done <- result{out, err}
	}()
	r := <-done
	if r.err != nil {
		return r.out, fmt.Errorf("testenv: %s: %w: %s", name, r.err, strings.TrimSpace(string(r.out)))
	}
	return r.out, nil
}

// redact replaces each secret in s with "***".
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}
