// Package app is the counter domain of the integrated terminal (統合端末, TS Art. 1(iii)) without
// any GUI: the Terminal facade that the Fyne screens (ui) and the CLI (app/cli) both call.
//
// A Terminal owns the terminal database (store), the fingerprint reader (auth.Fingerprint) and
// the clock. Operators log in (LoginFingerprint, or LoginPassword for exempted operators) and
// get a *Session; every Session method
//   - logs the session out when it was idle longer than Config.IdleTimeout (kind SessionExpired),
//   - re-reads the operator, so a withdrawn permission or a disabled operator takes effect at
//     once, and checks the permission the action needs (TS Art. 3(4), Art. 20(1)(i)),
//   - records the attempt in the audit chain, allowed or refused (TS Art. 20(2)),
//   - performs the change and its audit record in one transaction, so a refusal changes nothing.
//
// Errors are *apperr.Error values (or carry an apperr kind); assets/translations words them for
// the screens and the CLI.
//
// Concurrency: a Terminal and its Sessions are safe for concurrent use. Long waits (finger on
// the reader) happen outside database transactions.
package app

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"sync"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/clock"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/printout"
	"madoguchi/app/resident"
	"madoguchi/app/store"
	"madoguchi/app/workflow"
	"madoguchi/internal/timesync"
)

// Config configures a Terminal. Zero fields take the documented defaults.
type Config struct {
	// DBPath is the SQLite file of the terminal (required).
	DBPath string
	// Clock defaults to the system clock.
	Clock clock.Clock
	// Random is the source of salts, file ids and keys; defaults to crypto/rand.
	Random io.Reader
	// Fingerprint is the reader; defaults to fprintd on the system bus ($DBUS_SYSTEM_BUS_ADDRESS).
	Fingerprint auth.Fingerprint
	// MaxFailedLogins locks an operator after this many consecutive failures (default 5).
	MaxFailedLogins int
	// IdleTimeout logs a session out after this long without a call (default 10 minutes).
	IdleTimeout time.Duration
	// FingerTimeout bounds one fingerprint verification or enrolment (default 60 seconds).
	FingerTimeout time.Duration
	// Argon2 are the password hashing costs (default auth.DefaultArgon2).
	Argon2 auth.Argon2Params
	// ResidentFileTTL is how long an exported resident-record file stays importable
	// (default 30 minutes).
	ResidentFileTTL time.Duration
	// ResidentFileKey makes and checks the resident-record file's MAC (app/termkey: a key in a
	// PKCS#11 token, --key-uri). nil: the key in the terminal database (the default).
	ResidentFileKey resident.FileKey

	// CA is the terminal's client of the CA (a *raclient.Client from DialCA). Optional: a
	// terminal without it can do everything but the procedures that talk to the CA, which
	// are refused with kind CAUnavailable. When set, Open resolves unfinished issuances
	// before it returns (see Open). CurrentCA, when set, takes its place.
	CA CA
	// CurrentCA gives the CA client in effect now (the CA link, app/calink: the settings
	// screen can enrol the terminal or change the CA URL while it runs). Every procedure that
	// talks to the CA asks it at each call (ca.go: Terminal.ca), so a change takes effect for
	// all of them at once. nil: CA, fixed at Open.
	CurrentCA CAProvider
	// Cards opens the card in the terminal's reader for the procedures that need it
	// (card.go); nil: they are refused with ErrNoCard.
	Cards CardOpener
	// Printer is the counter's document printer (fonts loaded on first use); nil: documents
	// are refused with kind NotSupported.
	Printer func() (*printout.Printer, error)
	// MunicipalityOf, when set, gives Municipality at each use (the enrolled municipality
	// follows an enrolment at run time).
	MunicipalityOf func() string
	// CACertificates are the CA certificates installed with the terminal, per certificate
	// type (see NewIssuer).
	CACertificates map[workflow.CertType][]byte
	// Municipality is printed on the counter's documents (revocation acknowledgement,
	// certificate copy).
	Municipality string
	// Witness is the CA's witness of the audit chain (witness.go); default: the CA client in
	// effect at each send, when it is one (a *raclient.Client is).
	Witness AuditWitness
	// WitnessKeyFile keeps the CA's audit key certificates that receipts are checked against
	// (default: ca/audit-witness-keys.pem beside DBPath, with the CA link's other pins).
	WitnessKeyFile string
	// ChangeRetry is the first delay before a resident change the CA did not take is sent
	// again; it doubles per failure up to ChangeRetryMax (defaults 1 minute and 6 hours).
	ChangeRetry, ChangeRetryMax time.Duration
}

// Terminal is the counter domain facade.
type Terminal struct {
	db  *store.DB
	cfg Config

	issuer     *issue.Orchestrator // built by Open over the CA in effect then; nil without one
	recovered  []issue.Resolution
	busy       bool // recovery skipped: another process holds the issuance lock
	clockWatch timesync.Watch

	witnessMu    sync.Mutex     // one witness exchange at a time (log-out and periodic send)
	witnessKeyMu sync.Mutex     // the pinned key file
	witnessWG    sync.WaitGroup // log-outs' background sends; Close waits
}

// Open opens the terminal database at cfg.DBPath (creating and migrating it as needed).
//
// With a CA (cfg.CA, or cfg.CurrentCA's client at this moment), Open also builds the issuance orchestration (Issuer) and runs
// RecoverIssuances before it returns, so no operator can log in while an issuance a previous
// run left unfinished is still undecided (DESIGN "Issuance, end to end" step 6): every started
// issuance ends delivered or revoked before delivery. The outcomes are kept for the start
// screen (Recovered). An issuance running in another process on the same database (the CLI
// beside the GUI) holds the issuance lock; recovery is then left to that process and
// RecoveryDeferred reports it. A database failure during recovery fails Open.
func Open(ctx context.Context, cfg Config) (*Terminal, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Random == nil {
		cfg.Random = auth.RandomReader
	}
	if cfg.Fingerprint == nil {
		cfg.Fingerprint = &auth.Fprintd{}
	}
	if cfg.MaxFailedLogins <= 0 {
		cfg.MaxFailedLogins = 5
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.FingerTimeout <= 0 {
		cfg.FingerTimeout = 60 * time.Second
	}
	if cfg.ResidentFileTTL <= 0 {
		cfg.ResidentFileTTL = 30 * time.Minute
	}
	if cfg.ChangeRetry <= 0 {
		cfg.ChangeRetry = time.Minute
	}
	if cfg.ChangeRetryMax <= 0 {
		cfg.ChangeRetryMax = 6 * time.Hour
	}
	if cfg.WitnessKeyFile == "" {
		cfg.WitnessKeyFile = defaultWitnessKeyFile(cfg.DBPath)
	}
	db, err := store.Open(ctx, cfg.DBPath)
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "app: open terminal database")
	}
	t := &Terminal{db: db, cfg: cfg}
	if ca, _ := t.ca(); ca != nil { // a CA link that cannot build its client now: no recovery (the start screen says why)
		if t.issuer, err = t.NewIssuer(ctx, ca, cfg.CACertificates); err != nil {
			db.Close()
			return nil, apperr.Wrap(apperr.InvalidInput, err, "app: issuance")
		}
		t.recovered, err = t.RecoverIssuances(ctx, t.issuer)
		switch {
		case errors.Is(err, issue.ErrBusy):
			t.busy = true
		case err != nil:
			db.Close()
			return nil, apperr.Wrap(apperr.Internal, err, "app: recover unfinished issuances")
		}
	}
	return t, nil
}

// Issuer returns the issuance orchestration built by Open over the CA in effect then (nil
// without a CA); Session.Issue follows a CA changed since.
func (t *Terminal) Issuer() *issue.Orchestrator { return t.issuer }

// Recovered returns what Open's recovery did with the issuances a previous run left
// unfinished, for the start screen: show each Resolution's Message. Empty without a CA or
// when nothing was unfinished.
func (t *Terminal) Recovered() []issue.Resolution { return t.recovered }

// RecoveryDeferred reports that Open skipped recovery because another process was issuing.
func (t *Terminal) RecoveryDeferred() bool { return t.busy }

// Close waits for the audit witness sends of log-outs (each bounded by witnessTimeout) and
// closes the database.
func (t *Terminal) Close() error {
	t.witnessWG.Wait()
	return t.db.Close()
}

// DB exposes the store for tests and the issuance orchestration in this module.
func (t *Terminal) DB() *store.DB { return t.db }

// now returns the current time from the injected clock.
func (t *Terminal) now() time.Time { return t.cfg.Clock.Now() }

// record appends one audit record in its own transaction (used for refusals, after the
// refused change has been rolled back).
func (t *Terminal) record(ctx context.Context, e audit.Entry) error {
	if e.At.IsZero() {
		e.At = t.now()
	}
	// A cancelled caller (timeout at the reader) is still recorded.
	ctx = context.WithoutCancel(ctx)
	return t.db.Tx(ctx, func(tx *sql.Tx) error { return audit.Append(ctx, tx, e) })
}

// refusalDetail adds the refusal's kind and message to a detail map.
func refusalDetail(detail map[string]string, err error) map[string]string {
	d := make(map[string]string, len(detail)+2)
	for k, v := range detail {
		d[k] = v
	}
	d["error_kind"] = apperr.KindOf(err).String()
	d["error"] = err.Error()
	return d
}

func resultOf(err error) string {
	if apperr.KindOf(err) == apperr.Internal {
		return audit.ResultError
	}
	return audit.ResultRefused
}

// OperatorInfo is the public profile of an operator (no password material).
type OperatorInfo = operator.Operator

// NeedsBootstrap reports whether the terminal has no operator yet.
func (t *Terminal) NeedsBootstrap(ctx context.Context) (bool, error) {
	n, err := operator.Count(ctx, t.db)
	return n == 0, err
}

// BootstrapRequest creates the first supervisor on a fresh terminal.
//
// Exactly one log-in method: Finger (enrolled on the reader now; the supervisor presses the
// finger while Bootstrap runs), or Password with ExemptReason (TS Art. 3(3): only when
// biometrics is impracticable, with the reason recorded).
type BootstrapRequest struct {
	ID, Name     string
	Finger       string
	Password     string
	ExemptReason string
	Progress     func(auth.EnrollProgress)
}

// Bootstrap creates the first supervisor (permissions Supervisor and Audit) when the terminal
// has no operator. It is refused with kind AlreadyExists afterwards: later operators are
// created by a logged-in supervisor. Recorded in the audit chain as operator "-".
func (t *Terminal) Bootstrap(ctx context.Context, req BootstrapRequest) error {
	detail := map[string]string{"name": req.Name}
	err := t.bootstrap(ctx, req, detail)
	if err != nil {
		t.record(ctx, audit.Entry{Operator: "-", Action: "operator.bootstrap", Target: req.ID, Result: resultOf(err), Detail: refusalDetail(detail, err)})
	}
	return err
}

func (t *Terminal) bootstrap(ctx context.Context, req BootstrapRequest, detail map[string]string) error {
	if need, err := t.NeedsBootstrap(ctx); err != nil {
		return err
	} else if !need {
		return apperr.New(apperr.AlreadyExists, "app: terminal already has operators")
	}
	if err := operator.ValidateID(req.ID); err != nil {
		return err
	}
	var hash, salt []byte
	switch {
	case req.Finger != "" && req.Password != "":
		return apperr.New(apperr.InvalidInput, "app: bootstrap takes a finger or a password, not both")
	case req.Finger != "":
		fctx, cancel := context.WithTimeout(ctx, t.cfg.FingerTimeout)
		err := t.cfg.Fingerprint.Enroll(fctx, req.ID, req.Finger, req.Progress)
		cancel()
		if err != nil {
			return err
		}
		detail["finger"] = req.Finger
	case req.Password != "":
		if req.ExemptReason == "" {
			return apperr.New(apperr.ReasonRequired, "app: a password-only supervisor needs a recorded exemption reason")
		}
		var err error
		if hash, salt, err = auth.HashPassword(req.Password, t.cfg.Argon2, t.cfg.Random); err != nil {
			return err
		}
		detail["exempt_reason"] = req.ExemptReason
	default:
		return apperr.New(apperr.InvalidInput, "app: bootstrap needs a finger or a password")
	}
	now := t.now()
	return t.db.Tx(ctx, func(tx *sql.Tx) error {
		if n, err := operator.Count(ctx, tx); err != nil || n != 0 {
			return apperr.New(apperr.AlreadyExists, "app: terminal already has operators")
		}
		if err := operator.Create(ctx, tx, "-", now, req.ID, req.Name); err != nil {
			return err
		}
		for _, p := range []operator.Permission{operator.Supervisor, operator.Audit} {
			if err := operator.Grant(ctx, tx, "-", now, req.ID, p); err != nil {
				return err
			}
		}
		if req.Finger != "" {
			if err := operator.SetFinger(ctx, tx, req.ID, req.Finger); err != nil {
				return err
			}
		} else if err := operator.SetExemption(ctx, tx, "-", req.ID, req.ExemptReason, hash, salt); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{At: now, Operator: "-", Action: "operator.bootstrap", Target: req.ID, Result: audit.ResultOK, Detail: detail})
	})
}

// LookupOperator returns the public profile of an operator for the log-in screen (which method
// to offer). It authenticates nothing and is not audited.
func (t *Terminal) LookupOperator(ctx context.Context, id string) (OperatorInfo, error) {
	o, err := operator.Get(ctx, t.db, id)
	if err != nil {
		return OperatorInfo{}, err
	}
	return o, nil
}

// loginGate checks that id may attempt a log-in at all.
func loginGate(o operator.Operator) error {
	switch {
	case !o.Active:
		return apperr.New(apperr.OperatorDisabled, "app: operator %q is disabled", o.ID)
	case o.Locked:
		return apperr.New(apperr.LockedOut, "app: operator %q is locked after repeated failures; a supervisor must unlock", o.ID)
	}
	return nil
}

// LoginFingerprint verifies operator id's finger on the reader (TS Art. 3(3)). A no-match counts
// towards the lockout; a timeout (no finger) does not. progress may be nil.
func (t *Terminal) LoginFingerprint(ctx context.Context, id string, progress func(auth.ScanEvent)) (*Session, error) {
	const action = "login.fingerprint"
	o, err := operator.Get(ctx, t.db, id)
	if err == nil {
		err = loginGate(o)
	}
	if err == nil && o.Finger == "" {
		err = apperr.New(apperr.FingerprintNotEnrolled, "app: operator %q has no enrolled finger", id)
	}
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, t.cfg.FingerTimeout)
		err = t.cfg.Fingerprint.Verify(fctx, id, progress)
		cancel()
	}
	return t.finishLogin(ctx, action, id, err, errors.Is(err, apperr.FingerprintNoMatch))
}

// LoginPassword logs in an operator whom a supervisor exempted from biometrics (TS Art. 3(3)).
// Others are refused with kind PasswordNotAllowed. Unknown ids and wrong passwords are both
// BadCredentials; wrong passwords count towards the lockout.
func (t *Terminal) LoginPassword(ctx context.Context, id, password string) (*Session, error) {
	const action = "login.password"
	o, err := operator.Get(ctx, t.db, id)
	if errors.Is(err, apperr.NotFound) {
		err = apperr.New(apperr.BadCredentials, "app: unknown operator or wrong password")
	}
	if err == nil {
		err = loginGate(o)
	}
	if err == nil && !o.PasswordExempt {
		err = apperr.New(apperr.PasswordNotAllowed, "app: operator %q must log in with a fingerprint", id)
	}
	countFailure := false
	if err == nil {
		hash, salt, verr := operator.PasswordVerifier(ctx, t.db, id)
		ok := false
		if verr == nil {
			ok, verr = auth.CheckPassword(password, hash, salt)
		}
		switch {
		case verr != nil:
			err = verr
		case !ok:
			err = apperr.New(apperr.BadCredentials, "app: unknown operator or wrong password")
			countFailure = true
		}
	}
	return t.finishLogin(ctx, action, id, err, countFailure)
}

func (t *Terminal) finishLogin(ctx context.Context, action, id string, err error, countFailure bool) (*Session, error) {
	now := t.now()
	if err != nil {
		detail := map[string]string{}
		if countFailure {
			var locked bool
			wctx := context.WithoutCancel(ctx)
			txErr := t.db.Tx(wctx, func(tx *sql.Tx) error {
				var e error
				locked, e = operator.RecordFailure(wctx, tx, id, t.cfg.MaxFailedLogins)
				return e
			})
			if txErr == nil && locked {
				detail["locked"] = "true"
				err = apperr.Wrap(apperr.LockedOut, err, "app: operator locked after repeated failures")
			}
		}
		t.record(ctx, audit.Entry{At: now, Operator: id, Action: action, Target: id, Result: resultOf(err), Detail: refusalDetail(detail, err)})
		return nil, err
	}
	err = t.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := operator.ResetFailures(ctx, tx, id); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{At: now, Operator: id, Action: action, Target: id, Result: audit.ResultOK})
	})
	if err != nil {
		return nil, err
	}
	return &Session{t: t, operatorID: id, lastActive: now}, nil
}
