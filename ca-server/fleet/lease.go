// Package fleet coordinates several ca-server replicas on one database
// (issue 14) with PostgreSQL as the only coordinator — no home-made
// consensus:
//
//   - Lease: the scheduled jobs (sweeper, CRL/ARL publication, change-driven
//     checks, audit checkpoints, OCSP responder-key rotation) run on the one
//     replica holding a lease row; the holder renews it, another replica
//     takes it once it has expired (kill -9: within TTL + Every), and every
//     write a job makes carries the lease's fencing number, checked by the
//     store in the write's own transaction (store.WithFence), so a holder
//     that stalled past its lease writes nothing.
//   - Follow: every replica follows the status_changes rows the database
//     writes by trigger on any status change, and re-signs that serial's
//     OCSP answers (TS Art. 36: an immediate answer, on every replica).
//
// With SQLite (one machine) the same code runs: one process holds the lease
// and the local `ca-server hold` reaches serve's OCSP through the same rows.
package fleet

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/internal/wallclock"
)

// LeaseStore is the part of the store a Lease uses.
type LeaseStore interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (store.Lease, error)
	ReleaseLease(ctx context.Context, l store.Lease) error
}

// LeaseConfig configures a Lease.
type LeaseConfig struct {
	Store  LeaseStore
	Name   string // the job lease, e.g. "jobs"
	Holder string // unique per process (HolderID)
	// TTL is how long a lease lasts without renewal (default 10 s); Every
	// how often the holder renews and the others try (default TTL/5). A
	// dead holder's lease is taken over within TTL + Every.
	TTL, Every time.Duration
	Clock      func() time.Time
	Logger     *slog.Logger
	// OnChange, when set, is called when this process gains or loses the
	// lease (logs, metrics).
	OnChange func(held bool, l store.Lease)
}

// Lease keeps trying to hold one job lease until Stop.
type Lease struct {
	cfg    LeaseConfig
	mu     sync.Mutex
	cur    store.Lease
	held   bool
	until  time.Time // monotonic: after it this process no longer counts itself the holder
	cancel context.CancelFunc
	done   chan struct{}
}

// Start begins acquiring and renewing the lease; the first attempt is made
// before Start returns.
func Start(ctx context.Context, cfg LeaseConfig) (*Lease, error) {
	if cfg.Store == nil || cfg.Name == "" || cfg.Holder == "" {
		return nil, errors.New("fleet: lease needs a store, a name and a holder")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Every <= 0 {
		cfg.Every = cfg.TTL / 5
	}
	if cfg.Every >= cfg.TTL/2 {
		return nil, errors.New("fleet: lease renewal must be well within its duration")
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Lease{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	l.try(cctx)
	go l.run(cctx)
	return l, nil
}

func (l *Lease) run(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.try(ctx)
		}
	}
}

func (l *Lease) try(ctx context.Context) {
	start := time.Now() // monotonic: the lease counts from before the call
	actx, cancel := context.WithTimeout(ctx, l.cfg.Every)
	got, err := l.cfg.Store.AcquireLease(actx, l.cfg.Name, l.cfg.Holder, l.cfg.TTL, l.cfg.Clock())
	cancel()
	l.mu.Lock()
	was := l.held && time.Now().Before(l.until)
	switch {
	case err == nil:
		l.cur, l.held = got, true
		// a margin of one renewal interval for clock and scheduling slack
		l.until = start.Add(l.cfg.TTL - l.cfg.Every)
	case errors.Is(err, store.ErrLeaseHeld):
		l.held = false
	default:
		// The database is unreachable: keep the lease until it runs out
		// (its writes are fenced anyway), then stop counting on it.
		if ctx.Err() == nil {
			l.cfg.Logger.Warn("fleet: lease renewal", "lease", l.cfg.Name, "err", err)
		}
	}
	now := l.held && time.Now().Before(l.until)
	cur := l.cur
	l.mu.Unlock()
	if now != was {
		l.cfg.Logger.Info("fleet: lease", "lease", l.cfg.Name, "held", now, "fence", cur.Fence, "holder", l.cfg.Holder)
		if l.cfg.OnChange != nil {
			l.cfg.OnChange(now, cur)
		}
	}
}

// Held returns the lease and whether this process holds it now.
func (l *Lease) Held() (store.Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur, l.held && time.Now().Before(l.until)
}

// Fenced returns ctx carrying the lease's fencing token and true when this
// process holds the lease; ctx and false otherwise. Writes made under the
// returned context fail with store.ErrFenced once another replica has
// taken the lease.
func (l *Lease) Fenced(ctx context.Context) (context.Context, bool) {
	cur, ok := l.Held()
	if !ok {
		return ctx, false
	}
	return store.WithFence(ctx, cur), true
}

// Gate forwards the ticks of in while this process holds the lease, until
// ctx ends: a job driven by the returned channel runs on one replica.
func (l *Lease) Gate(ctx context.Context, in <-chan time.Time) <-chan time.Time {
	out := make(chan time.Time)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case t := <-in:
				if _, ok := l.Held(); !ok {
					continue
				}
				select {
				case out <- t:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// Stop stops renewing and releases the lease if this process holds it, so
// another replica takes over at its next try.
func (l *Lease) Stop() {
	l.cancel()
	<-l.done
	cur, ok := l.Held()
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
	if ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.cfg.Store.ReleaseLease(ctx, cur); err != nil {
			l.cfg.Logger.Warn("fleet: lease release", "lease", l.cfg.Name, "err", err)
		}
	}
}
