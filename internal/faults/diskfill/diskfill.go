// Package diskfill makes a disk full on purpose, for the fault campaign and the tests that check
// that a full disk changes nothing (issue 15): Fill takes a filesystem's free space away until a
// given amount is left, and MountTmpfs gives a directory its own small filesystem to fill
// without touching the machine's disks.
//
// MountTmpfs needs root, and should run in a private mount namespace so the mount stays out of
// the rest of the machine: run the process with `unshare --mount --propagation private`, or
// start it from Go with PrivateMounts (exec.Cmd's SysProcAttr; Go marks the new namespace's
// mounts private as unshare(1) does). Children of that process see the mount.
package diskfill

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// chunk is the most one file grows per step: each step re-reads the free space, so the fill
// ends within one block of leave even while something else writes.
const chunk = 64 << 20

// Free returns the bytes of the filesystem holding dir that this process can still write: the
// blocks free to unprivileged users, or all free blocks for root (which may write into the
// blocks ext4 reserves for it).
func Free(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("diskfill: statfs %s: %w", dir, err)
	}
	blocks := st.Bavail
	if os.Geteuid() == 0 {
		blocks = st.Bfree
	}
	return int64(blocks) * int64(st.Bsize), nil
}

// Fill fills the filesystem holding dir until only leave bytes (rounded up to the filesystem's
// block) are free, with files in a hidden subdirectory of dir (.diskfill-*). release removes
// them, giving the space back; it is safe to call more than once. Fill leaves nothing behind
// when it fails.
func Fill(dir string, leave int64) (release func() error, err error) {
	if leave < 0 {
		return nil, errors.New("diskfill: leave must be ≥ 0")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil, fmt.Errorf("diskfill: statfs %s: %w", dir, err)
	}
	bsize := int64(st.Bsize)
	sub, err := os.MkdirTemp(dir, ".diskfill-")
	if err != nil {
		return nil, fmt.Errorf("diskfill: %w", err)
	}
	release = func() error {
		if err := os.RemoveAll(sub); err != nil {
			return fmt.Errorf("diskfill: release: %w", err)
		}
		return nil
	}
	defer func() {
		if err != nil {
			_ = release()
			release = nil
		}
	}()
	f, err := os.OpenFile(filepath.Join(sub, "fill"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("diskfill: %w", err)
	}
	defer f.Close()
	var size int64
	for {
		free, err := Free(dir)
		if err != nil {
			return nil, err
		}
		grow := min((free-leave)/bsize*bsize, chunk)
		if grow <= 0 {
			break
		}
		if err := allocate(f, size, grow); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				// Metadata took the last blocks: the disk is as full as it gets.
				break
			}
			return nil, fmt.Errorf("diskfill: fill %s: %w", dir, err)
		}
		size += grow
	}
	return release, nil
}

// allocate gives f the blocks of [off, off+n): fallocate where the filesystem has it (tmpfs,
// ext4, xfs), else written zeros, synced so that delayed allocation cannot hide them.
func allocate(f *os.File, off, n int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, off, n)
	if err == nil || !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	zeros := make([]byte, 1<<20)
	for done := int64(0); done < n; {
		w := min(int64(len(zeros)), n-done)
		if _, err := f.WriteAt(zeros[:w], off+done); err != nil {
			return err
		}
		done += w
	}
	return f.Sync()
}

// MountTmpfs mounts a tmpfs of size bytes on dir (root only; see the package comment on mount
// namespaces). unmount takes it away again (lazily, so a file still open in it does not keep it).
func MountTmpfs(dir string, size int64) (unmount func() error, err error) {
	if size <= 0 {
		return nil, errors.New("diskfill: tmpfs size must be > 0")
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return nil, fmt.Errorf("diskfill: mount tmpfs on %s: %w", dir, err)
	}
	return func() error {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("diskfill: unmount %s: %w", dir, err)
		}
		return nil
	}, nil
}

// PrivateMounts is the SysProcAttr that starts a child process in its own mount namespace with
// every mount private, as `unshare --mount --propagation private` does: what it mounts stays
// in it.
func PrivateMounts() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
}
