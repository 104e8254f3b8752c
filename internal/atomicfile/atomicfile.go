// Package atomicfile replaces a file so that a crash leaves either the old or the new content,
// never a torn one: settings, pinned certificates, key files and the virtual card's state file
// are all read back at the next start.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteAll is Write after creating path's directory (0700) if it does not exist.
func WriteAll(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return Write(path, data, mode)
}

// Write writes data with mode to a new temporary file beside path (whose directory must
// exist: a vanished directory is an error, not something to recreate), syncs it, renames it
// over path and syncs the directory. On any error the temporary file is removed and path is
// unchanged.
func Write(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("atomicfile: %w", err)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable only once the directory entry is.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
