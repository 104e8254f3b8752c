package hsm

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// DefaultCallTimeout bounds one PKCS#11 call when Config.CallTimeout is
// zero: far above an RSA-2048 key generation on a loaded SoftHSM or network
// HSM (well under a second), far below what a counter clerk waits for.
const DefaultCallTimeout = 30 * time.Second

// HSM is an open, logged-in token with a session pool. Safe for concurrent
// use; see the package doc for the session rules and how faults heal.
type HSM struct {
	mod   *module
	slot  uint
	label string
	mech  Mechanisms
	// pin is the user PIN, held only in memory so a lost login can be
	// restored without the custodians (heal.go). A pointer, so printing
	// an HSM with %+v shows an address, never the bytes.
	pin         *secret
	callTimeout time.Duration

	// sessions holds the idle sessions; a 0 entry is a slot whose session
	// was lost and could not be replaced yet (the next borrower tries).
	sessions chan pkcs11.SessionHandle

	mu       sync.Mutex
	open     map[pkcs11.SessionHandle]sessionState // open sessions
	serial   uint64                                // last incarnation serial given out
	epoch    uint64                                // login epoch: +1 at every re-login (object handles change)
	remap    map[handleAt]handleAt                 // token objects found again after a re-login
	hung     int                                   // calls past their deadline still inside the module
	broken   error                                 // why the last session replacement failed; nil when it worked
	faults   uint64                                // session faults seen
	observer Observer
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
// reconstructed from custodian shares at activation). The HSM keeps a copy
// in memory only, to log in again after the token lost the login (an HSM
// reboot, a closed session); Close wipes it. It is never logged or printed.
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
	h := &HSM{mod: mod, label: cfg.TokenLabel, mech: cfg.Mechanisms, done: make(chan struct{}),
		pin: newSecret(pin), callTimeout: cfg.CallTimeout,
		open: map[pkcs11.SessionHandle]sessionState{}, remap: map[handleAt]handleAt{}}
	if h.callTimeout <= 0 {
		h.callTimeout = DefaultCallTimeout
	}
	fail := func(err error) (*HSM, error) {
		for s := range h.open {
			_ = mod.ctx.CloseSession(s)
		}
		h.pin.wipe()
		mod.unload()
		return nil, err
	}
	if h.slot, err = mod.findSlot(cfg.TokenLabel); err != nil {
		return fail(err)
	}
	n := cfg.poolSize()
	h.sessions = make(chan pkcs11.SessionHandle, n)
	var first pkcs11.SessionHandle
	for i := range n {
		s, err := mod.ctx.OpenSession(h.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return fail(wrapErr("open session", err))
		}
		if i == 0 {
			first = s
		}
		h.serial++
		h.open[s] = sessionState{serial: h.serial}
		h.sessions <- s
	}
	// Login is per application: one C_Login serves every session.
	if err := mod.ctx.Login(first, pkcs11.CKU_USER, h.pin.reveal()); err != nil {
		var pe pkcs11.Error
		if !errors.As(err, &pe) || pe != pkcs11.CKR_USER_ALREADY_LOGGED_IN {
			return fail(wrapErr("login", err))
		}
	}
	return h, nil
}

// TokenLabel is the label of the open token.
func (h *HSM) TokenLabel() string { return h.label }

// String names the token; it never shows the PIN or session state.
func (h *HSM) String() string { return fmt.Sprintf("hsm token %q", h.label) }

// Close stops new calls (they get ErrClosed), waits for the calls in flight
// (including calls past their deadline: C_Finalize under a running call
// crashes the module), then logs out, closes the sessions, finalises the
// module and wipes the PIN. Session objects vanish with their sessions.
// Calling Close again returns nil.
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
	loggedOut := false
	for s := range h.open {
		if !loggedOut {
			loggedOut = true
			if err := h.mod.ctx.Logout(s); err != nil {
				var pe pkcs11.Error
				if !errors.As(err, &pe) || (pe != pkcs11.CKR_USER_NOT_LOGGED_IN && !sessionFaultCode(uint(pe))) {
					errs = append(errs, wrapErr("logout", err))
				}
			}
		}
		if err := h.mod.ctx.CloseSession(s); err != nil {
			var pe pkcs11.Error
			if !errors.As(err, &pe) || !sessionFaultCode(uint(pe)) {
				errs = append(errs, wrapErr("close session", err))
			}
		}
	}
	h.pin.wipe()
	h.mod.unload()
	return errors.Join(errs...)
}

// p11 is the raw module context, to be used only inside do.
func (h *HSM) p11() *pkcs11.Ctx { return h.mod.ctx }
