// Package fsyncfail makes a process's fsyncs fail, for the fault campaign (issue 15): after Arm,
// every fsync(2), fdatasync(2), sync_file_range(2), syncfs(2) and sync(2) of the process, on
// every thread, returns EIO, as a disk that started failing would; writes themselves still
// succeed (into the page cache). It stays so until the process ends: a seccomp filter cannot be
// lifted, and a disk that failed a sync is not trusted again before a restart either.
//
// Why seccomp: Go makes its system calls itself, not through libc, so an LD_PRELOAD shim never
// sees them; the kernel here has no device mapper (dm-flakey, dm-error) or fault injection
// (CONFIG_FAULT_INJECTION) to fail a block device instead. A seccomp filter acts at the system
// call boundary, which is exactly where Go, SQLite (modernc, pure Go) and everything else meet
// the disk. Only the faultcampaign builds (faultcampaign.go) and tests call Arm.
package fsyncfail

import (
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Classic BPF for seccomp (linux/filter.h, linux/seccomp.h).
const (
	bpfLdWAbs   = 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfJeqK     = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	bpfRetK     = 0x06 // BPF_RET | BPF_K
	retAllow    = 0x7fff0000
	retErrno    = 0x00050000
	offNr       = 0 // struct seccomp_data: int nr
	offArch     = 4 // __u32 arch
	modeFilter  = 1 // SECCOMP_SET_MODE_FILTER
	flagTSync   = 1 // SECCOMP_FILTER_FLAG_TSYNC: every thread of the process
	archX86_64  = 0xc000003e
	archAArch64 = 0xc00000b7
)

// syncCalls are the system calls that make written data durable.
func syncCalls() []uint32 {
	return []uint32{unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNC_FILE_RANGE, unix.SYS_SYNCFS, unix.SYS_SYNC}
}

func nativeArch() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return archX86_64, nil
	case "arm64":
		return archAArch64, nil
	}
	return 0, fmt.Errorf("fsyncfail: no seccomp filter for %s", runtime.GOARCH)
}

// Arm installs the filter on every thread of the process. It fails (and changes nothing) where
// seccomp filters are not available.
func Arm() error {
	arch, err := nativeArch()
	if err != nil {
		return err
	}
	calls := syncCalls()
	// A system call of another architecture (none, from Go) is allowed; one of calls fails
	// with EIO; everything else is allowed.
	prog := []unix.SockFilter{
		{Code: bpfLdWAbs, K: offArch},
		{Code: bpfJeqK, Jt: 1, Jf: 0, K: arch},
		{Code: bpfRetK, K: retAllow},
		{Code: bpfLdWAbs, K: offNr},
	}
	for i, nr := range calls {
		// jump to the EIO return (just after the last comparison and the allow) when equal
		toEIO := uint8(len(calls) - i)
		prog = append(prog, unix.SockFilter{Code: bpfJeqK, Jt: toEIO, Jf: 0, K: nr})
	}
	prog = append(prog,
		unix.SockFilter{Code: bpfRetK, K: retAllow},
		unix.SockFilter{Code: bpfRetK, K: retErrno | uint32(unix.EIO)},
	)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("fsyncfail: no_new_privs: %w", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, modeFilter, flagTSync, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("fsyncfail: seccomp: %w", e)
	}
	runtime.KeepAlive(prog)
	return nil
}

// ArmWhenPresent arms the filter as soon as path exists, checked now and then every 100 ms in
// a goroutine for the life of the process: a campaign driver fails a running process's fsyncs
// at the moment it chooses by creating the file. onArm (may be nil) is told once, with Arm's
// error.
func ArmWhenPresent(path string, onArm func(error)) {
	check := func() bool {
		if _, err := os.Stat(path); err != nil {
			return false
		}
		err := Arm()
		if onArm != nil {
			onArm(err)
		}
		return true
	}
	if check() {
		return
	}
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			if check() {
				return
			}
		}
	}()
}
