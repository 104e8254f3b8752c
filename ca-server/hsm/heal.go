package hsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/miekg/pkcs11"

	"madoguchi/ca-server/internal/hsmfault"
)

// secret is the user PIN kept in memory for re-login. Every way of printing
// it prints "[redacted]"; wipe zeroes the bytes (the transient string given
// to C_Login cannot be wiped, a limit of miekg/pkcs11's API).
type secret struct{ b []byte }

func newSecret(s string) *secret { return &secret{b: []byte(s)} }

func (s *secret) wipe() {
	if s != nil {
		clear(s.b)
		s.b = nil
	}
}

// reveal returns the PIN itself, only for C_Login. There is no String
// method (a Stringer is what loggers and templates call); Format, GoString
// and LogValue are what printing and logging use.
func (s *secret) reveal() string             { return string(s.b) }
func (s *secret) GoString() string           { return "[redacted]" }
func (s *secret) Format(f fmt.State, _ rune) { io.WriteString(f, "[redacted]") }
func (s *secret) LogValue() slog.Value       { return slog.StringValue("[redacted]") }

// Observer is told of every PKCS#11 operation: its name ("sign", "generate
// rsa", "probe" …), how long it took including the wait for a session, and
// its error (nil on success). serve feeds it to its metrics. It must not
// block.
type Observer func(op string, took time.Duration, err error)

// SetObserver installs o (nil: none) for the operations from now on.
func (h *HSM) SetObserver(o Observer) {
	h.mu.Lock()
	h.observer = o
	h.mu.Unlock()
}

// Errors of the fault handling.
var (
	// ErrUnavailable: the HSM cannot serve now (a call is hung past its
	// deadline, or a lost session could not be replaced). Readiness is
	// false while Check returns it; the pool keeps trying to heal.
	ErrUnavailable = errors.New("hsm: unavailable")
	// ErrDeadline: a PKCS#11 call did not return within the call timeout.
	// The call goes on inside the module (PKCS#11 calls cannot be
	// cancelled); its session is retired when it returns.
	ErrDeadline = errors.New("hsm: call past its deadline")
)

// sessionFaultCode: the session (or the login it carries) is gone and must
// be replaced: the CKR codes of a token that rebooted, was pulled, lost its
// login or had its sessions closed from outside.
func sessionFaultCode(c uint) bool {
	switch c {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_USER_NOT_LOGGED_IN:
		return true
	}
	return false
}

func ckr(err error) (uint, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return uint(pe), true
	}
	return 0, false
}

func isSessionFault(err error) bool {
	c, ok := ckr(err)
	return ok && sessionFaultCode(c)
}

func isHandleInvalid(err error) bool {
	c, ok := ckr(err)
	return ok && (c == pkcs11.CKR_OBJECT_HANDLE_INVALID || c == pkcs11.CKR_KEY_HANDLE_INVALID)
}

// retryPolicy says whether an operation may run a second time after its
// session was replaced. Signing, MAC, reads and the generation of session
// objects may: a session object made by the failed attempt died with its
// session, so the retry cannot leave a second object. Token objects,
// imports, unwraps and destruction may not: whether the first attempt took
// effect is unknown, and the caller decides (find the object, or fail).
type retryPolicy bool

const (
	retryOnce retryPolicy = true
	noRetry   retryPolicy = false
)

// handleAt is an object handle in one login epoch.
type handleAt struct {
	epoch  uint64
	handle pkcs11.ObjectHandle
}

// do is the single way to the token: it borrows a session (waiting for one,
// for ctx or for Close), runs fn on it under the call deadline, and heals:
// a session fault replaces the session (logging in again with the PIN held
// in memory when the login was lost) and, with retryOnce, runs fn once
// more; an invalid handle of a token object after a re-login is looked up
// again by kind, label and CKA_ID (keys) and fn runs once more. fn must
// reach objects only through h.obj and must not keep the session.
func (h *HSM) do(ctx context.Context, op string, retry retryPolicy, keys []Key, fn func(s pkcs11.SessionHandle) error) error {
	start := time.Now()
	err, again := h.attempt(ctx, op, keys, fn)
	repeated := false
	for n := 0; again && n < 3; n++ {
		switch {
		case isHandleInvalid(err):
			// The token refused the stale handle before doing anything:
			// running it again with the handle found again is not a
			// repetition of the operation.
		case bool(retry) && !repeated:
			repeated = true // the one repetition after a session fault
		default:
			again = false
			continue
		}
		err, again = h.attempt(ctx, op, keys, fn)
	}
	h.mu.Lock()
	o := h.observer
	h.mu.Unlock()
	if o != nil {
		o(op, time.Since(start), err)
	}
	return err
}

// attempt runs fn once; again reports that the fault was healed and a
// second attempt can succeed.
func (h *HSM) attempt(ctx context.Context, op string, keys []Key, fn func(s pkcs11.SessionHandle) error) (err error, again bool) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed, false
	}
	h.inflight.Add(1)
	h.mu.Unlock()
	defer h.inflight.Done()

	var s pkcs11.SessionHandle
	select {
	case s = <-h.sessions:
	case <-h.done:
		return ErrClosed, false
	case <-ctx.Done():
		return fmt.Errorf("hsm: waiting for a session: %w", ctx.Err()), false
	}
	if s == 0 { // a lost session not replaced yet
		var err error
		if s, _, err = h.reopen(); err != nil {
			h.sessions <- 0
			return err, false
		}
	} else if h.suspect(s) {
		// The login was lost since s was last seen working (a token-wide
		// fault): test it before use, so one fault costs one retry.
		if _, err := h.p11().GetSessionInfo(s); err != nil {
			h.mu.Lock()
			h.faults++
			delete(h.open, s)
			h.mu.Unlock()
			_ = h.p11().CloseSession(s)
			if s, _, err = h.reopen(); err != nil {
				h.sessions <- 0
				return err, false
			}
		} else {
			h.vouch(s)
		}
	}
	// The test-only fault hook (internal/hsmfault: set by tests, never by
	// configuration) runs at the call boundary: it can return a CKR error
	// as the token would, or block like a hung token.
	run := fn
	if testFault := hsmfault.Hook(); testFault != nil {
		run = func(s pkcs11.SessionHandle) error {
			if err := testFault(op, s); err != nil {
				return wrapErr(op, err)
			}
			return fn(s)
		}
	}
	err, abandoned := h.call(s, run)
	if abandoned {
		return err, false // the session comes back (retired) when the call returns
	}
	switch {
	case isSessionFault(err):
		relogged, rerr := h.replace(s)
		if rerr != nil {
			return errors.Join(err, rerr), false
		}
		if relogged {
			h.resolve(ctx, keys)
		}
		return err, true
	case isHandleInvalid(err) && len(keys) > 0:
		if !h.loggedIn(s) {
			// The login was lost under a session that survived (it was
			// opened while the token was logging out): the object handles
			// went with the login. Log in again and find the keys.
			relogged, rerr := h.replace(s)
			if rerr != nil {
				return errors.Join(err, rerr), false
			}
			if relogged {
				h.resolve(ctx, keys)
			}
			return err, true
		}
		h.sessions <- s
		return err, h.resolve(ctx, keys)
	}
	h.sessions <- s
	return err, false
}

// call runs fn on s under the call deadline. A call past it is left
// behind: the caller gets ErrDeadline at once, the call keeps its session
// until it returns, then the session is closed and replaced (whatever the
// late call created in it dies with it, so a half-done call never leaves an
// object nobody owns), and Check reports the HSM unavailable meanwhile.
// The caller's ctx bounds the wait for a session, not a call once started:
// a call abandoned for a cancelled request would, like a hung one, cost
// its session and every session object in it.
func (h *HSM) call(s pkcs11.SessionHandle, fn func(pkcs11.SessionHandle) error) (err error, abandoned bool) {
	res := make(chan error, 1)
	go func() { res <- fn(s) }()
	t := time.NewTimer(h.callTimeout)
	defer t.Stop()
	select {
	case err := <-res:
		return err, false
	case <-t.C:
	}
	h.mu.Lock()
	h.hung++
	h.inflight.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.inflight.Done()
		<-res
		h.replace(s)
		h.mu.Lock()
		h.hung--
		h.mu.Unlock()
	}()
	return fmt.Errorf("%w (%s)", ErrDeadline, h.callTimeout), true
}

// replace closes s (ignoring its error: it is already gone or suspect),
// opens a new session into the pool (or a 0 slot if that fails) and logs
// in again when the token lost the login. relogged reports a new login
// epoch: object handles of the old one are invalid.
func (h *HSM) replace(s pkcs11.SessionHandle) (relogged bool, err error) {
	h.mu.Lock()
	h.faults++
	delete(h.open, s)
	h.mu.Unlock()
	_ = h.p11().CloseSession(s)
	ns, relogged, err := h.reopen()
	if err != nil {
		h.sessions <- 0
		return false, err
	}
	h.sessions <- ns
	return relogged, nil
}

// reopen opens a session, finding the token again if its slot changed, and
// logs in when the session is not in a user state.
func (h *HSM) reopen() (pkcs11.SessionHandle, bool, error) {
	fail := func(err error) (pkcs11.SessionHandle, bool, error) {
		h.mu.Lock()
		h.broken = err
		h.mu.Unlock()
		return 0, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	h.mu.Lock()
	slot := h.slot
	h.mu.Unlock()
	s, err := h.p11().OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		// the token may be back in another slot (slot ids change)
		slot, ferr := h.mod.findSlot(h.label)
		if ferr != nil {
			return fail(wrapErr("open session", err))
		}
		h.mu.Lock()
		h.slot = slot
		h.mu.Unlock()
		if s, err = h.p11().OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
			return fail(wrapErr("open session", err))
		}
	}
	relogged := false
	info, err := h.p11().GetSessionInfo(s)
	if err != nil || (info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS) {
		h.mu.Lock()
		pin := h.pin.reveal()
		h.mu.Unlock()
		if err := h.p11().Login(s, pkcs11.CKU_USER, pin); err != nil {
			var pe pkcs11.Error
			if !errors.As(err, &pe) || pe != pkcs11.CKR_USER_ALREADY_LOGGED_IN {
				_ = h.p11().CloseSession(s)
				return fail(wrapErr("login", err))
			}
		}
		relogged = true
	}
	h.mu.Lock()
	h.serial++
	if relogged {
		h.epoch++
	}
	h.open[s] = sessionState{serial: h.serial, epoch: h.epoch}
	h.broken = nil
	h.mu.Unlock()
	return s, relogged, nil
}

// loggedIn reports whether s is in a user state.
func (h *HSM) loggedIn(s pkcs11.SessionHandle) bool {
	info, err := h.p11().GetSessionInfo(s)
	return err == nil && (info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS)
}

// suspect: s was last known good in an earlier login epoch.
func (h *HSM) suspect(s pkcs11.SessionHandle) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open[s].epoch < h.epoch
}

// vouch records s as good in the current epoch.
func (h *HSM) vouch(s pkcs11.SessionHandle) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o, ok := h.open[s]; ok {
		o.epoch = h.epoch
		h.open[s] = o
	}
}

// obj is the newest known handle of k: its own, or the one it was found
// again under after its handle went stale (a chain when that happened
// more than once). A stale handle is never used once a newer one is known:
// a token may give its number to another object.
func (h *HSM) obj(k Key) pkcs11.ObjectHandle {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.newest(handleAt{k.epoch, k.handle}).handle
}

func (h *HSM) newest(at handleAt) handleAt {
	for range 64 { // the chain grows by one per heal; bounded anyway
		n, ok := h.remap[at]
		if !ok {
			break
		}
		at = n
	}
	return at
}

// resolve looks the token objects among keys up again (kind, label,
// CKA_ID, CKA_TOKEN) after an invalid-handle error or a re-login; it
// reports whether any handle changed. A new handle starts a new epoch, so
// handles stamped from now on never collide with the stale numbers.
// Session objects are gone with their session and stay invalid; a
// destroyed token key is not found and stays invalid.
func (h *HSM) resolve(ctx context.Context, keys []Key) bool {
	changed := false
	for _, k := range keys {
		if !k.token {
			continue
		}
		tmpl := append(k.Kind.template(), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_LABEL, k.Label), pkcs11.NewAttribute(pkcs11.CKA_ID, k.ID))
		var found []pkcs11.ObjectHandle
		err, _ := h.attempt(ctx, "find key again", nil, func(s pkcs11.SessionHandle) error {
			var err error
			found, err = h.findObjects(s, tmpl)
			return err
		})
		if err != nil || len(found) != 1 {
			continue
		}
		h.mu.Lock()
		own := handleAt{k.epoch, k.handle}
		last := h.newest(own)
		switch {
		case last.handle != found[0]:
			h.epoch++
			h.remap[last] = handleAt{h.epoch, found[0]}
			changed = true
		case last != own:
			// another caller found it again since this one's attempt,
			// which may have used the stale handle: worth one more try
			changed = true
		}
		h.mu.Unlock()
	}
	return changed
}

// Alive reports whether k's object can still exist: a session object
// lives only as long as the session it was made in, and the pool replaces
// sessions after faults. Token objects are always reported alive (a
// destroyed one fails with ErrKeyHandleInvalid when used).
func (h *HSM) Alive(k Key) bool {
	if k.token || k.owner == 0 {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range h.open {
		if o.serial == k.owner {
			return true
		}
	}
	return false
}

// Check is the readiness probe: nil when the HSM can sign now. It fails
// while a call is past its deadline or a lost session cannot be replaced,
// and otherwise borrows a session, checks that it is logged in (C_GetSessionInfo)
// and heals it if not, so a probe also repairs an idle pool.
func (h *HSM) Check(ctx context.Context) error {
	h.mu.Lock()
	closed, hung, broken := h.closed, h.hung, h.broken
	h.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case hung > 0:
		return fmt.Errorf("%w: %d call(s) past the deadline", ErrUnavailable, hung)
	case broken != nil:
		// try once more: the token may be back
	}
	return h.do(ctx, "probe", retryOnce, nil, func(s pkcs11.SessionHandle) error {
		info, err := h.p11().GetSessionInfo(s)
		if err != nil {
			return wrapErr("probe", err)
		}
		if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
			return &Error{Op: "probe", Code: pkcs11.CKR_USER_NOT_LOGGED_IN}
		}
		return nil
	})
}

// Faults returns how many session faults the pool has healed or tried to
// heal since Open (metrics).
func (h *HSM) Faults() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.faults
}

// sessionState is an open session's incarnation serial (session objects
// made in it carry it) and the login epoch it was last known good in.
type sessionState struct{ serial, epoch uint64 }

// stamp fills in where a new handle of s lives: its login epoch, and for a
// session object the session incarnation it dies with.
func (h *HSM) stamp(k *Key, s pkcs11.SessionHandle, token bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k.epoch, k.token = h.epoch, token
	if !token {
		k.owner = h.open[s].serial
	}
}

// findObjects runs C_FindObjects* for tmpl on s.
func (h *HSM) findObjects(s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := h.p11().FindObjectsInit(s, tmpl); err != nil {
		return nil, wrapErr("find objects", err)
	}
	var handles []pkcs11.ObjectHandle
	for {
		batch, _, err := h.p11().FindObjects(s, 64)
		if err != nil {
			_ = h.p11().FindObjectsFinal(s)
			return nil, wrapErr("find objects", err)
		}
		if len(batch) == 0 {
			break
		}
		handles = append(handles, batch...)
	}
	if err := h.p11().FindObjectsFinal(s); err != nil {
		return nil, wrapErr("find objects", err)
	}
	return handles, nil
}
