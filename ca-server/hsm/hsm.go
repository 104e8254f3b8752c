package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// HSM is an open, logged-in token with a session pool. Safe for concurrent
// use; see the package doc for the session rules.
type HSM struct {
	mod   *module
	slot  uint
	label string
	mech  Mechanisms

	sessions chan pkcs11.SessionHandle // idle sessions
	all      []pkcs11.SessionHandle

	mu       sync.Mutex
	closed   bool
	done     chan struct{} // closed when Close starts
	inflight sync.WaitGroup
}

// Open loads the module, finds the token by label, opens the session pool
// and logs in with the PIN read from cfg.PINSource.
func Open(cfg Config) (*HSM, error) {
	pin, err := ReadPIN(cfg.PINSource)
	if err != nil {
		return nil, err
	}
	return OpenWithPIN(cfg, pin)
}

// OpenWithPIN is Open with a PIN the caller holds in memory (for example one
// reconstructed from custodian shares at activation). The PIN is not kept.
func OpenWithPIN(cfg Config, pin string) (*HSM, error) {
	if cfg.TokenLabel == "" {
		return nil, fmt.Errorf("%w: empty token label", ErrBadInput)
	}
	if pin == "" {
		return nil, fmt.Errorf("%w: empty pin", ErrBadInput)
	}
	mod, err := loadModule(cfg)
	if err != nil {
		return nil, err
	}
	h := &HSM{mod: mod, label: cfg.TokenLabel, mech: cfg.Mechanisms, done: make(chan struct{})}
	fail := func(err error) (*HSM, error) {
		for _, s := range h.all {
			_ = mod.ctx.CloseSession(s)
		}
		mod.unload()
		return nil, err
	}
	if h.slot, err = mod.findSlot(cfg.TokenLabel); err != nil {
		return fail(err)
	}
	n := cfg.poolSize()
	h.sessions = make(chan pkcs11.SessionHandle, n)
	for range n {
		s, err := mod.ctx.OpenSession(h.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return fail(wrapErr("open session", err))
		}
		h.all = append(h.all, s)
		h.sessions <- s
	}
	// Login is per application: one C_Login serves every session.
	if err := mod.ctx.Login(h.all[0], pkcs11.CKU_USER, pin); err != nil {
		var pe pkcs11.Error
		if !errors.As(err, &pe) || pe != pkcs11.CKR_USER_ALREADY_LOGGED_IN {
			return fail(wrapErr("login", err))
		}
	}
	return h, nil
}

// TokenLabel is the label of the open token.
func (h *HSM) TokenLabel() string { return h.label }

// Close stops new calls (they get ErrClosed), waits for the calls in flight,
// then logs out, closes the sessions and finalises the module. Session
// objects vanish with their sessions. Calling Close again returns nil.
func (h *HSM) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.done)
	h.mu.Unlock()

	h.inflight.Wait()
	var errs []error
	if err := h.mod.ctx.Logout(h.all[0]); err != nil {
		var pe pkcs11.Error
		if !errors.As(err, &pe) || pe != pkcs11.CKR_USER_NOT_LOGGED_IN {
			errs = append(errs, wrapErr("logout", err))
		}
	}
	for _, s := range h.all {
		if err := h.mod.ctx.CloseSession(s); err != nil {
			errs = append(errs, wrapErr("close session", err))
		}
	}
	h.mod.unload()
	return errors.Join(errs...)
}

// withSession is the single borrow-and-return path to a session: it waits
// for an idle session (or ctx, or Close), runs fn on it, and returns it.
// fn must not keep the session.
func (h *HSM) withSession(ctx context.Context, fn func(s pkcs11.SessionHandle) error) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	h.inflight.Add(1)
	h.mu.Unlock()
	defer h.inflight.Done()

	var s pkcs11.SessionHandle
	select {
	case s = <-h.sessions:
	case <-h.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("hsm: waiting for a session: %w", ctx.Err())
	}
	defer func() { h.sessions <- s }()
	return fn(s)
}

// p11 is the raw module context, to be used only inside withSession.
func (h *HSM) p11() *pkcs11.Ctx { return h.mod.ctx }
