package hsmissuance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/issuance"
)

// ErrPoolClosed: the pool was closed; no key is handed out any more.
var ErrPoolClosed = errors.New("hsmissuance: key pool closed")

// PoolConfig configures a Pool.
type PoolConfig struct {
	HSM *hsm.HSM
	// Size is the number of keys kept ready (1 to 1024). The pool never
	// holds more: a worker takes a free slot before it generates.
	Size int
	// Workers is the number of goroutines refilling the pool (default 1).
	// Each runs one key generation at a time on one HSM session borrowed
	// from the *hsm.HSM, so open the HSM with PoolSize ≥ Workers + the
	// sessions wanted for requests.
	Workers int
	// TokenObjects keeps ready keys as token objects (they survive a
	// restart of the HSM session, not of the pool: Start destroys every
	// leftover pool key, because a key left over by a crash may have been
	// handed out already). The default, session objects, vanish with the
	// process.
	TokenObjects bool
	// RetryDelay is the pause after a failed generation (default 1 s).
	RetryDelay time.Duration
	Logger     *slog.Logger
}

// Pool is a pre-generated pool of user keys inside the HSM, so key
// generation leaves the counter's critical path. Each key is handed out
// once and removed from the pool before it is returned; it is destroyed by
// its wrap for the card (or by Destroy). The issuance service still checks
// every key's public key against all earlier ones in the store when it uses
// it (TS Art. 5(iii)): a pooled key is no exception.
//
// Concurrency: safe for concurrent use; Close stops the workers and destroys
// the keys still in the pool.
type Pool struct {
	cfg    PoolConfig
	ready  chan *UserKey
	slots  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	generated int
	failures  int
}

var _ issuance.KeyGenerator = (*Pool)(nil)

// StartPool destroys leftover pool keys in the token and starts the workers.
func StartPool(ctx context.Context, cfg PoolConfig) (*Pool, error) {
	if cfg.HSM == nil {
		return nil, errors.New("hsmissuance: key pool needs an hsm")
	}
	if cfg.Size < 1 || cfg.Size > 1024 {
		return nil, fmt.Errorf("hsmissuance: key pool size %d out of range 1..1024", cfg.Size)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.Workers < 1 || cfg.Workers > 64 {
		return nil, fmt.Errorf("hsmissuance: key pool workers %d out of range 1..64", cfg.Workers)
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if n, err := DestroyLeftoverKeys(ctx, cfg.HSM, LabelPoolKey); err != nil {
		return nil, err
	} else if n > 0 {
		cfg.Logger.Warn("hsmissuance: destroyed leftover pool keys", "objects", n)
	}
	p := &Pool{cfg: cfg, ready: make(chan *UserKey, cfg.Size), slots: make(chan struct{}, cfg.Size)}
	for range cfg.Size {
		p.slots <- struct{}{}
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	for range cfg.Workers {
		p.wg.Add(1)
		go p.work(wctx)
	}
	return p, nil
}

func (p *Pool) work(ctx context.Context) {
	defer p.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.slots:
		}
		k, err := generate(ctx, p.cfg.HSM, LabelPoolKey, p.cfg.TokenObjects)
		if err != nil {
			p.slots <- struct{}{}
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.failures++
			p.mu.Unlock()
			p.cfg.Logger.Error("hsmissuance: pool key generation", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(p.cfg.RetryDelay):
			}
			continue
		}
		p.mu.Lock()
		p.generated++
		p.mu.Unlock()
		p.ready <- k // never blocks: at most Size slots are taken
	}
}

// GenerateUserKey implements issuance.KeyGenerator: it takes a ready key,
// waiting for a worker when the pool is empty.
func (p *Pool) GenerateUserKey(ctx context.Context) (issuance.UserKey, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrPoolClosed
	}
	for {
		select {
		case k, ok := <-p.ready:
			if !ok {
				return nil, ErrPoolClosed
			}
			p.slots <- struct{}{} // let a worker make the replacement
			// A session key dies with its session: after the HSM pool
			// replaced a faulty session (hsm heal.go) its keys are gone.
			if !p.cfg.HSM.Alive(k.kp.Private) {
				continue
			}
			// Sessions closed from outside (a token reset, another
			// process's C_CloseAllSessions) are noticed only at the next
			// call: ask the token whether the handle still names the key,
			// so a dead key is never wrapped for a card (that prepare
			// failed with CKR_KEY_HANDLE_INVALID). The call also heals the
			// session it runs on.
			if _, err := p.cfg.HSM.PublicKey(ctx, k.kp.Private); err != nil {
				p.cfg.Logger.Warn("hsmissuance: pool key lost with its session; taking the next", "err", err)
				continue
			}
			return k, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("hsmissuance: waiting for a pool key: %w", ctx.Err())
		}
	}
}

// Ready returns how many keys are ready now.
func (p *Pool) Ready() int { return len(p.ready) }

// Stats returns how many keys the workers generated and how many
// generations failed.
func (p *Pool) Stats() (generated, failures int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.generated, p.failures
}

// WaitFull blocks until the pool holds Size keys or ctx ends (start-up and
// benchmarks).
func (p *Pool) WaitFull(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for len(p.ready) < p.cfg.Size {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Close stops the workers and destroys every key still in the pool. It must
// be called before the HSM is closed.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	close(p.ready)
	var errs []error
	for k := range p.ready {
		errs = append(errs, k.Destroy(context.Background()))
	}
	return errors.Join(errs...)
}

// DestroyLeftoverKeys destroys every RSA private and public key object
// labelled label (user keys that a crash left behind) and returns how many
// objects it destroyed.
func DestroyLeftoverKeys(ctx context.Context, h *hsm.HSM, label string) (int, error) {
	n := 0
	for _, kind := range []hsm.KeyKind{hsm.KindRSAPrivate, hsm.KindRSAPublic} {
		keys, err := h.FindKeys(ctx, hsm.KeyQuery{Kind: kind, Label: label})
		if err != nil {
			return n, fmt.Errorf("hsmissuance: find leftover %s keys: %w", label, err)
		}
		for _, k := range keys {
			if err := h.Destroy(ctx, k); err != nil {
				return n, fmt.Errorf("hsmissuance: destroy leftover %s key: %w", label, err)
			}
			n++
		}
	}
	return n, nil
}
