package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"madoguchi/internal/services"
)

// childModeEnv makes TestServicesDieWithTestBinary's re-executed test binary start the services
// and block until it is killed.
const childModeEnv = "MADOGUCHI_TESTENV_LIFECYCLE_CHILD"

// harnessChildren returns the processes whose OwnerEnv names the process with the given pid.
func harnessChildren(ownerPID int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || services.ProcessState(pid) == "Z" {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if strings.HasPrefix(kv, OwnerEnv+"="+strconv.Itoa(ownerPID)+":") {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// TestServicesDieWithTestBinary proves the strongest cleanup guarantee: when a test binary is
// killed with SIGKILL (no cleanup runs), every service it started dies with it through the
// parent-death signal, the pcscd lock is free again, and scripts/services-clean.sh removes the
// temporary directories it left.
func TestServicesDieWithTestBinary(t *testing.T) {
	if os.Getenv(childModeEnv) != "" {
		PCSCD(t)
		Xvfb(t)
		Fprintd(t)
		Postgres(t)
		CUPSD(t)
		fmt.Println("CHILD-READY")
		select {} // until killed
	}

	child := exec.Command(os.Args[0], "-test.run=^TestServicesDieWithTestBinary$", "-test.v", "-test.timeout=5m")
	child.Env = append(os.Environ(), childModeEnv+"=1", "TMPDIR="+t.TempDir())
	child.Stderr = os.Stderr
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = child.Process.Kill()
		}
		_ = child.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == "CHILD-READY" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("child test binary ended before its services were ready")
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("child test binary did not get ready")
	}

	children := harnessChildren(child.Process.Pid)
	names := map[string]bool{}
	for _, pid := range children {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		names[strings.TrimSpace(string(comm))] = true
	}
	for _, want := range []string{"pcscd", "Xvfb", "dbus-daemon", "fprintd", "postgres", "cupsd"} {
		if !names[want] {
			t.Fatalf("child's services %v lack %s", names, want)
		}
	}
	owner, err := services.ProcessStartTime(child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	ownerValue := strconv.Itoa(child.Process.Pid) + ":" + owner
	dirs, _ := filepath.Glob("/tmp/madoguchi-testenv-*")
	var childDirs []string
	for _, d := range dirs {
		if b, _ := os.ReadFile(filepath.Join(d, "owner")); strings.TrimSpace(string(b)) == ownerValue {
			childDirs = append(childDirs, d)
		}
	}
	if len(childDirs) == 0 {
		t.Fatal("found no temporary directory of the child")
	}

	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = child.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for {
		var alive []string
		for _, pid := range children {
			if services.Alive(pid) {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				alive = append(alive, fmt.Sprintf("%d %s", pid, strings.TrimSpace(string(comm))))
			}
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("services outlived their killed test binary: %v", alive)
		}
		time.Sleep(50 * time.Millisecond)
	}

	f, err := os.OpenFile(PCSCDLockPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		// Another test binary may have taken the free lock in the meantime: that proves it too.
		holder, _ := os.ReadFile(PCSCDLockPath)
		if strings.Contains(string(holder), fmt.Sprintf("pid %d ", child.Process.Pid)) {
			t.Fatalf("the killed binary still holds the pcscd lock: %v", err)
		}
	} else {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}

	out, err := exec.Command("../../scripts/services-clean.sh", "--keep-foreign-pcscd").CombinedOutput()
	if err != nil {
		t.Fatalf("services-clean.sh: %v\n%s", err, out)
	}
	for _, d := range childDirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("services-clean.sh left %s\n%s", d, out)
		}
	}
}
