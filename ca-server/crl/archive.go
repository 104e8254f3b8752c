package crl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Archive errors.
var (
	ErrSeriesName = errors.New("crl: invalid series name")
	ErrExists     = errors.New("crl: a CRL with this number is already archived")
	ErrNotNewer   = errors.New("crl: CRL number not greater than the newest archived")
	ErrNotFound   = errors.New("crl: no archived CRL")
	ErrCommitted  = errors.New("crl: archive entry already committed or aborted")
)

// Meta identifies one archived CRL.
type Meta struct {
	// Series is the CRL scope: one CA's full CRL, one partition, or the
	// ARL (CRL numbers increase within a series, RFC 5280 §5.2.3).
	Series     string
	Number     *big.Int
	ThisUpdate time.Time
	NextUpdate time.Time
	Size       int64
}

// Archive keeps every CRL ever issued: the 失効情報ファイル of TS Art. 17,
// recorded on dedicated media and protected from loss and damage (TS Art.
// 17(2)). Entries are append-only: never overwritten, never deleted.
type Archive interface {
	// Create starts archiving the CRL described by m (Size ignored). The
	// caller writes the DER to the Pending and then commits or aborts it.
	Create(m Meta) (Pending, error)
	// List returns the series' CRLs in ascending number order.
	List(series string) ([]Meta, error)
	// Open returns CRL number n of series.
	Open(series string, n *big.Int) (io.ReadCloser, Meta, error)
	// InForce returns the CRL in force at instant at: of those with
	// thisUpdate ≤ at < nextUpdate, the one with the greatest number
	// (ErrNotFound if none).
	InForce(series string, at time.Time) (Meta, error)
}

// ContextArchive is an Archive whose commits are made under the caller's
// context (a database archive: the commit carries the writer's fencing
// token, ca-server/fleet); Issue uses CreateContext when it exists.
type ContextArchive interface {
	Archive
	CreateContext(ctx context.Context, m Meta) (Pending, error)
}

// Pending is a CRL being archived.
type Pending interface {
	io.Writer
	// Commit makes the CRL durable and visible; it fails with ErrExists or
	// ErrNotNewer if another CRL took the number meanwhile.
	Commit() (Meta, error)
	// Abort discards it; a no-op after Commit.
	Abort() error
}

// Issue writes the CRL described by p into the archive under series and
// commits it: the CRL becomes visible only when complete, signed and synced.
func Issue(ctx context.Context, a Archive, series string, p Params, src Entries) (Meta, Result, error) {
	h, err := prepare(p) // the times as they will be written
	if err != nil {
		return Meta{}, Result{}, err
	}
	m := Meta{Series: series, Number: p.Number, ThisUpdate: h.thisUpdate, NextUpdate: h.nextUpdate}
	var pend Pending
	if ca, ok := a.(ContextArchive); ok {
		pend, err = ca.CreateContext(ctx, m)
	} else {
		pend, err = a.Create(m)
	}
	if err != nil {
		return Meta{}, Result{}, err
	}
	res, err := Write(ctx, pend, p, src)
	if err != nil {
		_ = pend.Abort()
		return Meta{}, Result{}, err
	}
	m, err = pend.Commit()
	if err != nil {
		return Meta{}, Result{}, err
	}
	return m, res, nil
}

// FSArchive stores CRLs as files root/<series>/<number>_<thisUpdate>_<nextUpdate>.crl
// (decimal number, times as 20060102T150405Z), mode 0444. A new CRL is
// written to a temporary file, fsync'd, hard-linked to its final name (link
// fails rather than overwrite) and the directory fsync'd.
//
// Concurrency: safe for concurrent use within one process; one process at a
// time may add CRLs to a series.
type FSArchive struct {
	root string
	mu   sync.Mutex // serialises commits (number checks and links)
}

var _ Archive = (*FSArchive)(nil)

// NewFSArchive opens (creating it if needed) an archive under root.
func NewFSArchive(root string) (*FSArchive, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: empty archive root", ErrParams)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("crl: archive root: %w", err)
	}
	return &FSArchive{root: root}, nil
}

var seriesPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

const fileTime = "20060102T150405Z"

func (a *FSArchive) dir(series string) (string, error) {
	if !seriesPattern.MatchString(series) {
		return "", fmt.Errorf("%w: %q", ErrSeriesName, series)
	}
	return filepath.Join(a.root, series), nil
}

func fileName(m Meta) string {
	return fmt.Sprintf("%s_%s_%s.crl", m.Number.String(), m.ThisUpdate.UTC().Format(fileTime), m.NextUpdate.UTC().Format(fileTime))
}

func parseFileName(series, name string) (Meta, bool) {
	base, ok := strings.CutSuffix(name, ".crl")
	if !ok {
		return Meta{}, false
	}
	parts := strings.Split(base, "_")
	if len(parts) != 3 {
		return Meta{}, false
	}
	n, ok := new(big.Int).SetString(parts[0], 10)
	if !ok || n.Sign() < 0 {
		return Meta{}, false
	}
	this, err1 := time.Parse(fileTime, parts[1])
	next, err2 := time.Parse(fileTime, parts[2])
	if err1 != nil || err2 != nil {
		return Meta{}, false
	}
	return Meta{Series: series, Number: n, ThisUpdate: this, NextUpdate: next}, true
}

// Create implements Archive.
func (a *FSArchive) Create(m Meta) (Pending, error) {
	dir, err := a.dir(m.Series)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Number == nil || m.Number.Sign() < 0:
		return nil, fmt.Errorf("%w: archive needs a non-negative CRL number", ErrParams)
	case m.ThisUpdate.IsZero() || !m.NextUpdate.After(m.ThisUpdate):
		return nil, fmt.Errorf("%w: archive needs thisUpdate < nextUpdate", ErrParams)
	}
	m.ThisUpdate = m.ThisUpdate.UTC().Truncate(time.Second)
	m.NextUpdate = m.NextUpdate.UTC().Truncate(time.Second)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("crl: archive: %w", err)
	}
	if err := a.checkNewer(m); err != nil { // fail early; checked again at commit
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".pending-*")
	if err != nil {
		return nil, fmt.Errorf("crl: archive: %w", err)
	}
	return &fsPending{a: a, dir: dir, f: f, meta: m}, nil
}

func (a *FSArchive) checkNewer(m Meta) error {
	all, err := a.List(m.Series)
	if err != nil {
		return err
	}
	for _, old := range all {
		switch c := old.Number.Cmp(m.Number); {
		case c == 0:
			return fmt.Errorf("%w: %s number %v", ErrExists, m.Series, m.Number)
		case c > 0:
			return fmt.Errorf("%w: %s number %v, newest %v", ErrNotNewer, m.Series, m.Number, all[len(all)-1].Number)
		}
	}
	return nil
}

// List implements Archive.
func (a *FSArchive) List(series string) ([]Meta, error) {
	dir, err := a.dir(series)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("crl: archive: %w", err)
	}
	var out []Meta
	for _, e := range ents {
		m, ok := parseFileName(series, e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("crl: archive: %w", err)
		}
		m.Size = info.Size()
		out = append(out, m)
	}
	sortMetas(out)
	return out, nil
}

func sortMetas(ms []Meta) {
	for i := 1; i < len(ms); i++ { // few thousand per series: insertion sort is fine
		for j := i; j > 0 && ms[j].Number.Cmp(ms[j-1].Number) < 0; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// Open implements Archive.
func (a *FSArchive) Open(series string, n *big.Int) (io.ReadCloser, Meta, error) {
	all, err := a.List(series)
	if err != nil {
		return nil, Meta{}, err
	}
	for _, m := range all {
		if n != nil && m.Number.Cmp(n) == 0 {
			return a.open(m)
		}
	}
	return nil, Meta{}, fmt.Errorf("%w: %s number %v", ErrNotFound, series, n)
}

func (a *FSArchive) open(m Meta) (io.ReadCloser, Meta, error) {
	f, err := os.Open(filepath.Join(a.root, m.Series, fileName(m)))
	if err != nil {
		return nil, Meta{}, fmt.Errorf("crl: archive: %w", err)
	}
	return f, m, nil
}

// InForce implements Archive.
func (a *FSArchive) InForce(series string, at time.Time) (Meta, error) {
	all, err := a.List(series)
	if err != nil {
		return Meta{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		m := all[i]
		if !at.Before(m.ThisUpdate) && at.Before(m.NextUpdate) {
			return m, nil
		}
	}
	return Meta{}, fmt.Errorf("%w: %s in force at %s", ErrNotFound, series, at.UTC().Format(time.RFC3339))
}

type fsPending struct {
	a    *FSArchive
	dir  string
	f    *os.File
	meta Meta
	n    int64
	done bool
}

func (p *fsPending) Write(b []byte) (int, error) {
	if p.done {
		return 0, ErrCommitted
	}
	n, err := p.f.Write(b)
	p.n += int64(n)
	return n, err
}

func (p *fsPending) Commit() (Meta, error) {
	if p.done {
		return Meta{}, ErrCommitted
	}
	p.done = true
	tmp := p.f.Name()
	defer os.Remove(tmp)
	if err := p.f.Chmod(0o444); err != nil {
		p.f.Close()
		return Meta{}, fmt.Errorf("crl: archive: %w", err)
	}
	if err := p.f.Sync(); err != nil {
		p.f.Close()
		return Meta{}, fmt.Errorf("crl: archive: fsync: %w", err)
	}
	if err := p.f.Close(); err != nil {
		return Meta{}, fmt.Errorf("crl: archive: %w", err)
	}
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	if err := p.a.checkNewer(p.meta); err != nil {
		return Meta{}, err
	}
	final := filepath.Join(p.dir, fileName(p.meta))
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Meta{}, fmt.Errorf("%w: %s", ErrExists, final)
		}
		return Meta{}, fmt.Errorf("crl: archive: %w", err)
	}
	if err := syncDir(p.dir); err != nil {
		return Meta{}, err
	}
	m := p.meta
	m.Size = p.n
	return m, nil
}

func (p *fsPending) Abort() error {
	if p.done {
		return nil
	}
	p.done = true
	p.f.Close()
	if err := os.Remove(p.f.Name()); err != nil {
		return fmt.Errorf("crl: archive: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("crl: archive: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("crl: archive: fsync dir: %w", err)
	}
	return nil
}
