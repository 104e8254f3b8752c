package issue

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// terminalLock is an exclusive flock(2) on a file next to the terminal database. Issue and
// Recover hold it, so that a recovery (in this or another process: the CLI beside the GUI)
// never aborts an issuance that is still running. The kernel drops it when the holder dies,
// so a killed terminal never leaves it behind.
type terminalLock struct{ f *os.File }

func acquire(path string) (*terminalLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("issue: open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("issue: lock %s: %w", path, err)
	}
	return &terminalLock{f: f}, nil
}

func (l *terminalLock) release() {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}
