package audit

// Outside witnesses of the log (CPS §5.4; issue 13): copies of the chain
// that live outside the database, against which the live log is checked
// before the server signs anything (ca-server serve), and against each
// other.
//
//   - The daily backups (backup.go): each verifies on its own, and each
//     later one extends each earlier one: the same records and the same
//     checkpoint chain up to the earlier one's end. A new backup is refused
//     unless it extends the newest one before it (BackupOptions.Anchors),
//     and CheckBackups checks a whole directory.
//   - The checkpoints published on the public listener, which auditors keep
//     with `ca-server audit witness` (witness.go).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ListBackups returns the audit backup files of dir (audit-YYYY-MM-DD.db,
// audit-YYYY-MM-DD.N.db), oldest first: by date, then by N. A missing dir
// holds none.
func ListBackups(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: backup directory: %w", err)
	}
	type named struct {
		day  string
		n    int
		path string
	}
	var out []named
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, "audit-") || !strings.HasSuffix(name, ".db") {
			continue
		}
		mid := strings.TrimSuffix(strings.TrimPrefix(name, "audit-"), ".db")
		day, num, _ := strings.Cut(mid, ".")
		n := 1
		if num != "" {
			if n, err = strconv.Atoi(num); err != nil || n < 2 {
				continue
			}
		}
		if len(day) != len("2006-01-02") {
			continue
		}
		out = append(out, named{day, n, filepath.Join(dir, name)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].day != out[j].day {
			return out[i].day < out[j].day
		}
		return out[i].n < out[j].n
	})
	paths := make([]string, len(out))
	for i, b := range out {
		paths[i] = b.path
	}
	return paths, nil
}

// BackupAnchor verifies the backup at path on its own under keys (and
// against anchors, what earlier witnesses hold) and returns what it holds,
// as a witness of the log.
func BackupAnchor(ctx context.Context, path string, keys []Key, anchors ...Anchor) (Anchor, Report, error) {
	bf, err := OpenBackup(path)
	if err != nil {
		return Anchor{}, Report{}, err
	}
	defer bf.Close()
	rep, err := VerifyWith(ctx, bf, VerifyOptions{Keys: keys, Anchors: anchors})
	if err != nil {
		return Anchor{}, rep, fmt.Errorf("audit: backup %s: %w", path, err)
	}
	return rep.Anchor("backup " + path), rep, nil
}

// NewestBackupAnchor is BackupAnchor of the newest backup in dir; ok is
// false when dir holds none.
func NewestBackupAnchor(ctx context.Context, dir string, keys []Key) (a Anchor, ok bool, err error) {
	files, err := ListBackups(dir)
	if err != nil || len(files) == 0 {
		return Anchor{}, false, err
	}
	a, _, err = BackupAnchor(ctx, files[len(files)-1], keys)
	return a, err == nil, err
}

// BackupCheck is one backup of CheckBackups.
type BackupCheck struct {
	Path   string
	Report Report
}

// CheckBackups verifies every backup in dir on its own and checks that
// each extends the one before it (and so, link by link, every earlier
// one): the same records and checkpoint chain up to the earlier one's end.
// It stops at the first that does not, with an error wrapping ErrTampered
// naming both files.
func CheckBackups(ctx context.Context, dir string, keys []Key) ([]BackupCheck, error) {
	files, err := ListBackups(dir)
	if err != nil {
		return nil, err
	}
	var out []BackupCheck
	var prev []Anchor
	for _, f := range files {
		a, rep, err := BackupAnchor(ctx, f, keys, prev...)
		if err != nil {
			return out, err
		}
		out = append(out, BackupCheck{Path: f, Report: rep})
		prev = []Anchor{a}
	}
	return out, nil
}
