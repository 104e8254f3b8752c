package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"time"

	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/fleet"
	"madoguchi/ca-server/store"
)

// fleetStore is what a replica reads and writes to act as one CA with the
// others (issue 14: one truth in the database).
type fleetStore interface {
	fleet.LeaseStore
	fleet.ChangeSource
	CurrentLease(ctx context.Context, name string) (store.Lease, error)
	PruneStatusChanges(ctx context.Context, before time.Time) (int64, error)
	crlArchiveStore
	AddOCSPResponder(ctx context.Context, r store.OCSPResponder) error
	OCSPResponders(ctx context.Context, ca string, gen int) ([]store.OCSPResponder, error)
}

var (
	_ fleetStore = (*store.SQLite)(nil)
	_ fleetStore = (*store.Postgres)(nil)
)

// jobsLease names the lease under which one replica runs the scheduled
// jobs: the sweeper, the status schedule (change-driven revocations, hold
// expiry, CRL/ARL publication) and audit checkpoints.
const jobsLease = "jobs"

// statusChangesKept is how long status_changes rows stay: far longer than
// the followers' 30 s hole window, short enough to keep the table small.
const statusChangesKept = 24 * time.Hour

// responderLease names the lease under which one replica makes a CA's
// OCSP responder key.
func responderLease(ca string, gen int) string { return fmt.Sprintf("ocsp-responder-%s-g%d", ca, gen) }

// holderID names this process as a lease holder: host, pid and a random
// part (a restarted process is a new holder).
func holderID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// crlArchiveStore is the database CRL archive.
type crlArchiveStore interface {
	ArchiveCRL(ctx context.Context, a store.ArchivedCRL, der []byte) error
	ArchivedCRLs(ctx context.Context, series string) ([]store.ArchivedCRL, error)
	ArchivedCRLDER(ctx context.Context, series string, number int64) ([]byte, store.ArchivedCRL, error)
}

// dbArchive is the CRL archive in the database (TS Art. 17): with
// PostgreSQL every replica serves the same newest CRL and ARL, whichever
// replica published it. A CRL is committed in one row, under the writer's
// context (its fencing token). legacy, when set, is the data directory's
// archive from before the store held CRLs: its CRLs are still listed and
// opened (TS Art. 17: every CRL ever issued stays retrievable).
type dbArchive struct {
	st     crlArchiveStore
	legacy crl.Archive
}

var _ crl.ContextArchive = dbArchive{}

func (a dbArchive) Create(m crl.Meta) (crl.Pending, error) {
	return a.CreateContext(context.Background(), m)
}

func (a dbArchive) CreateContext(ctx context.Context, m crl.Meta) (crl.Pending, error) {
	if m.Number == nil || !m.Number.IsInt64() || m.Number.Sign() <= 0 || m.Series == "" {
		return nil, fmt.Errorf("%w: %q #%v", crl.ErrSeriesName, m.Series, m.Number)
	}
	return &dbPending{ctx: ctx, st: a.st, m: m}, nil
}

func toMeta(a store.ArchivedCRL) crl.Meta {
	return crl.Meta{Series: a.Series, Number: big.NewInt(a.Number), ThisUpdate: a.ThisUpdate, NextUpdate: a.NextUpdate, Size: a.Size}
}

func (a dbArchive) List(series string) ([]crl.Meta, error) {
	all, err := a.st.ArchivedCRLs(context.Background(), series)
	if err != nil {
		return nil, err
	}
	var out []crl.Meta
	if a.legacy != nil {
		old, err := a.legacy.List(series)
		if err != nil {
			return nil, err
		}
		for _, m := range old {
			if len(all) == 0 || m.Number.Cmp(big.NewInt(all[0].Number)) < 0 {
				out = append(out, m)
			}
		}
	}
	for _, x := range all {
		out = append(out, toMeta(x))
	}
	return out, nil
}

func (a dbArchive) Open(series string, n *big.Int) (io.ReadCloser, crl.Meta, error) {
	if n == nil || !n.IsInt64() {
		return nil, crl.Meta{}, fmt.Errorf("%w: %s #%v", crl.ErrNotFound, series, n)
	}
	der, x, err := a.st.ArchivedCRLDER(context.Background(), series, n.Int64())
	if errors.Is(err, store.ErrNotFound) && a.legacy != nil {
		return a.legacy.Open(series, n)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, crl.Meta{}, fmt.Errorf("%w: %s #%v", crl.ErrNotFound, series, n)
	}
	if err != nil {
		return nil, crl.Meta{}, err
	}
	return io.NopCloser(bytes.NewReader(der)), toMeta(x), nil
}

func (a dbArchive) InForce(series string, at time.Time) (crl.Meta, error) {
	all, err := a.List(series)
	if err != nil {
		return crl.Meta{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if m := all[i]; !at.Before(m.ThisUpdate) && at.Before(m.NextUpdate) {
			return m, nil
		}
	}
	return crl.Meta{}, fmt.Errorf("%w: %s in force at %s", crl.ErrNotFound, series, at.UTC().Format(time.RFC3339))
}

// dbPending buffers the DER (a CRL is written once, signed, then stored in
// one row; the CRL partitioning of the capacity plan keeps rows bounded).
type dbPending struct {
	ctx  context.Context
	st   crlArchiveStore
	m    crl.Meta
	buf  bytes.Buffer
	done bool
}

func (p *dbPending) Write(b []byte) (int, error) {
	if p.done {
		return 0, crl.ErrCommitted
	}
	return p.buf.Write(b)
}

func (p *dbPending) Commit() (crl.Meta, error) {
	if p.done {
		return crl.Meta{}, crl.ErrCommitted
	}
	p.done = true
	a := store.ArchivedCRL{Series: p.m.Series, Number: p.m.Number.Int64(), ThisUpdate: p.m.ThisUpdate, NextUpdate: p.m.NextUpdate, Size: int64(p.buf.Len())}
	if err := p.st.ArchiveCRL(p.ctx, a, p.buf.Bytes()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return crl.Meta{}, fmt.Errorf("%w: %v", crl.ErrNotNewer, err)
		}
		return crl.Meta{}, err
	}
	return toMeta(a), nil
}

func (p *dbPending) Abort() error { p.done = true; return nil }
