package services

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
	"time"
)

// OwnerEnv is the environment variable every child started by this package carries. Its value
// is "<pid>:<start time in clock ticks since boot>" of the process that started it, which
// identifies that process even after its pid is reused. scripts/services-clean.sh kills
// children whose owner is gone, and ClearPCSCD treats a pcscd that carries it as ours.
const OwnerEnv = "MADOGUCHI_TESTENV_OWNER"

// DefaultStartTimeout bounds how long a helper waits for a service to become ready when its
// options leave Timeout zero. It is generous because the project's machines have two cores
// shared by several test binaries.
const DefaultStartTimeout = 60 * time.Second

// Grace periods when stopping a child: first the stop signal, then SIGKILL to the group.
const (
	stopGrace = 10 * time.Second
	killGrace = 5 * time.Second
)

// OwnerValue returns the value of OwnerEnv for this process.
var OwnerValue = sync.OnceValue(func() string {
	start, err := ProcessStartTime(os.Getpid())
	if err != nil {
		return strconv.Itoa(os.Getpid()) + ":0"
	}
	return strconv.Itoa(os.Getpid()) + ":" + start
})

// ProcessStartTime returns field 22 of /proc/<pid>/stat (start time in clock ticks since boot).
func ProcessStartTime(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", fmt.Errorf("services: malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	const startTimeIndex = 22 - 3 // fields after ')' start at field 3 (state)
	if len(fields) <= startTimeIndex {
		return "", fmt.Errorf("services: short /proc/%d/stat", pid)
	}
	return fields[startTimeIndex], nil
}

// ProcessState returns the state letter of /proc/<pid>/stat ("R", "S", "Z", ...), "" if gone.
func ProcessState(pid int) string {
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

// Alive reports whether pid is a live process (not gone, not a zombie).
func Alive(pid int) bool {
	s := ProcessState(pid)
	return s != "" && s != "Z"
}

// PIDsNamed returns the live (non-zombie) processes whose command name is name.
func PIDsNamed(name string) []int {
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
		if !Alive(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// OwnedBy returns the live processes whose OwnerEnv names the process with the given pid.
func OwnedBy(ownerPID int) []int {
	entries, _ := os.ReadDir("/proc")
	prefix := OwnerEnv + "=" + strconv.Itoa(ownerPID) + ":"
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !Alive(pid) {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if strings.HasPrefix(kv, prefix) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// Spec describes one child process.
type Spec struct {
	Name        string // for messages: "pcscd", "Xvfb", ...
	Path        string
	Args        []string
	Env         []string // added to os.Environ() and OwnerEnv
	Dir         string
	LogPath     string // stdout and stderr go here (appended)
	ExtraFiles  []*os.File
	StopSignal  syscall.Signal // sent to the leader by Stop; default SIGTERM
	DeathSignal syscall.Signal // parent-death signal; default SIGTERM
	Credential  *syscall.Credential
}

// Service is a running child. It is stopped exactly once, by Stop or Abort; all methods are
// safe for concurrent use.
type Service struct {
	name       string
	cmd        *exec.Cmd
	logPath    string
	stopSignal syscall.Signal

	done    chan struct{} // closed when Wait has returned
	waitErr error         // valid after done is closed

	stopOnce sync.Once
	stopErr  error
	stopping atomic.Bool // Stop was called: an exit from now on is expected
	aborted  atomic.Bool // set by Abort: the failure was already reported
}

// Start starts spec's binary. The child gets its own process group (a Ctrl-C at the terminal
// reaches only the supervisor, which stops the children in order) and a parent-death signal
// (it dies with the supervisor even when that is killed with SIGKILL). The goroutine that forks
// it stays locked to its OS thread until the child has exited: Linux delivers the parent-death
// signal when the forking thread exits, and the Go runtime terminates a thread when a goroutine
// locked to it exits, so an unlocked start from a goroutine that happens to be locked (and then
// ends) would kill the child early.
func Start(spec Spec) (*Service, error) {
	if spec.StopSignal == 0 {
		spec.StopSignal = syscall.SIGTERM
	}
	if spec.DeathSignal == 0 {
		spec.DeathSignal = syscall.SIGTERM
	}
	logFile, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("services: %s log: %w", spec.Name, err)
	}
	defer logFile.Close() // the child has its own copy after Start

	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), OwnerEnv+"="+OwnerValue())
	cmd.Env = append(cmd.Env, spec.Env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.ExtraFiles = spec.ExtraFiles
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  spec.DeathSignal,
		Credential: spec.Credential,
	}
	s := &Service{
		name:       spec.Name,
		cmd:        cmd,
		logPath:    spec.LogPath,
		stopSignal: spec.StopSignal,
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
		return nil, fmt.Errorf("services: start %s: %w", spec.Name, err)
	}
	return s, nil
}

// Name is the service's name for messages.
func (s *Service) Name() string { return s.name }

// PID returns the child's process id (also its process group id).
func (s *Service) PID() int { return s.cmd.Process.Pid }

// LogPath is the file that receives the child's stdout and stderr.
func (s *Service) LogPath() string { return s.logPath }

// Done is closed once the child has exited and been reaped.
func (s *Service) Done() <-chan struct{} { return s.done }

// Exited reports whether the child has exited (and been reaped).
func (s *Service) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// ExitError is the child's exit status (nil for status 0); valid once Exited.
func (s *Service) ExitError() error {
	<-s.done
	return s.waitErr
}

// Stopping reports whether Stop or Abort was called: an exit after that is expected.
func (s *Service) Stopping() bool { return s.stopping.Load() }

// Aborted reports whether Abort was called: the start failure was reported by its caller.
func (s *Service) Aborted() bool { return s.aborted.Load() }

// ErrExited is wrapped by WaitReady's error when the child exits before it is ready.
var ErrExited = errors.New("exited")

// WaitReady polls probe until it returns nil, the child exits, or timeout (0: the default)
// passes. The returned error carries the child's exit status and log tail.
func (s *Service) WaitReady(timeout time.Duration, probe func() error) error {
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		err := probe()
		if err == nil {
			return nil
		}
		if s.Exited() {
			return fmt.Errorf("services: %s %w before it was ready (%v); last probe: %v%s",
				s.name, ErrExited, s.waitErr, err, s.LogTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("services: %s not ready after %v: %v%s", s.name, timeout, err, s.LogTail())
		}
		select {
		case <-s.done:
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// Stop ends the child: the stop signal to the leader, SIGKILL to the process group after a
// grace period, and a final SIGKILL to the group once the leader is gone (no stray grandchild
// survives). It always waits until the leader has been reaped, or reports why it could not.
// An exit before Stop was called is reported as an error.
func (s *Service) Stop() error {
	s.stopOnce.Do(func() {
		diedEarly := s.Exited()
		s.stopping.Store(true)
		pgid := s.PID() // Setpgid: the group id is the leader's pid
		if !diedEarly {
			_ = syscall.Kill(s.PID(), s.stopSignal)
			select {
			case <-s.done:
			case <-time.After(stopGrace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				select {
				case <-s.done:
				case <-time.After(killGrace):
					s.stopErr = fmt.Errorf("services: %s (pid %d) survived SIGKILL for %v", s.name, s.PID(), killGrace)
					return
				}
			}
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if diedEarly {
			s.stopErr = fmt.Errorf("services: %s exited unexpectedly (%v)%s", s.name, s.waitErr, s.LogTail())
		}
	})
	return s.stopErr
}

// Abort stops the child after a failed start, whose error the caller reports itself.
func (s *Service) Abort() {
	s.aborted.Store(true)
	_ = s.Stop()
}

// LogTail returns the last few KiB of the child's log, prefixed with a newline, or "".
func (s *Service) LogTail() string {
	return FileTail(s.logPath, 4096)
}

// FileTail returns the last n bytes of the file at path, prefixed with a header line, or "".
func FileTail(path string, n int64) string {
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

// RunTool runs a short-lived command to completion with the same process-group and
// parent-death protection as a service, and returns its combined output.
func RunTool(name, path string, args []string, env []string, cred *syscall.Credential) ([]byte, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), OwnerEnv+"="+OwnerValue())
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // see Start
		defer runtime.UnlockOSThread()
		out, err := cmd.CombinedOutput()
		done <- result{out, err}
	}()
	r := <-done
	if r.err != nil {
		return r.out, fmt.Errorf("services: %s: %w: %s", name, r.err, strings.TrimSpace(string(r.out)))
	}
	return r.out, nil
}

// Redact replaces each secret in s with "***".
func Redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}
