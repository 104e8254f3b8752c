// Package issue is the counter terminal's issuance orchestration: it puts the certificates of
// an approved new-issuance or renewal case on the applicant's card through the CA
// (raclient) and the card (cardio), with a crash-safe journal so that every started issuance
// ends in exactly one of delivered or revoked before delivery (DESIGN "Issuance, end to end";
// ARCHITECTURE "Issuance API"; DOMAIN §4).
//
// One CA issuance per certificate type, each on its own secure channel. For each type:
// journal "started" → open a channel at the CA → SELECT the management application and
// INITIALIZE UPDATE with the CA's host challenge → journal the prepare request ("channel
// opened") → prepare → journal "prepared" with the CA's issuance id → relay the script
// ("written"); then the applicant sets the PINs ("pin set"); the card is read back through the
// standard JPKI read protocol and compared with what the CA issued ("verified"); then each
// issuance is confirmed with the card's protected responses ("delivered") and audited. Any
// failure before confirm aborts every undelivered issuance of the call at the CA (revoked,
// reason 0 "destroyed before delivery", CPS §4.9.9) and journals "aborted".
//
// Every journal step is a committed SQLite transaction (WAL, synchronous=FULL), written before
// the action it announces, so after a crash Recover knows what the CA may have done. Steps that
// need no durability of their own share a transaction with a neighbour (one fsync each commit;
// BenchmarkCounterIssuance): the case approval with the first "started", an item's "written"
// with the next item's "started", each of "pin set" and "verified" for all items at once, and
// the last "delivered" with the case's completion. Recover treats prepared, written, pin set and
// verified alike, so nothing it decides depends on which of those last reached the disk.
//
// Secrets: PINs travel from the applicant screen (PINEntry) to the card and nowhere else: not
// stored, not logged, not journaled, not audited (DOMAIN §2; CPS §6.4.1.2). The script holds
// the key wrapped for the card; it is relayed and then cleared, never stored (TS Art. 6(iii)).
//
// Concurrency: an Orchestrator is safe for concurrent use, but Issue and Recover take an
// exclusive lock per terminal database (flock on a file beside it), so one issuance runs at a
// time per terminal, across processes; a second caller gets ErrBusy.
package issue

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/clock"
	"madoguchi/app/pinrule"
	"madoguchi/app/resident"
	"madoguchi/app/store"
	"madoguchi/app/workflow"
	"madoguchi/cardio"
	"madoguchi/cardio/apdu"
	cardpin "madoguchi/cardio/pinrule"
	"madoguchi/cardio/scp"
	"madoguchi/jpki"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// CA is the part of the CA client the orchestration uses (raclient.Client).
type CA interface {
	OpenChannel(ctx context.Context, operator string) (wire.ChannelResponse, error)
	Prepare(ctx context.Context, operator string, req wire.PrepareRequest) (wire.PrepareResponse, error)
	Confirm(ctx context.Context, operator, issuanceID string, req wire.ConfirmRequest) (wire.IssuanceStatus, error)
	Abort(ctx context.Context, operator, issuanceID string, req wire.AbortRequest) (wire.IssuanceStatus, error)
	Status(ctx context.Context, operator, issuanceID string) (wire.IssuanceStatus, error)
}

var _ CA = (*raclient.Client)(nil)

// Card is the part of the card API the orchestration uses (cardio.Card).
type Card interface {
	CardSerial(ctx context.Context) ([]byte, error)
	CheckSerial(ctx context.Context, want []byte) error
	InitializeUpdate(ctx context.Context, hostChallenge []byte) ([]byte, error)
	RunScript(ctx context.Context, apdus [][]byte) ([][]byte, error)
	PINTriesLeft(ctx context.Context, w cardio.Which) (int, error)
	SetPIN(ctx context.Context, w cardio.Which, pin []byte) error
	VerifyPIN(ctx context.Context, w cardio.Which, pin []byte) error
	ReadCertificate(ctx context.Context, fid uint16) ([]byte, error)
}

var _ Card = (*cardio.Card)(nil)

// PINRequest is one request to the applicant-facing screen.
type PINRequest struct {
	Kind pinrule.Kind
	// Existing: the card's PIN of this kind is set already (renewal without PIN reset); the
	// applicant enters it so the card can be read back. Otherwise the applicant chooses a new
	// PIN and types it twice.
	Existing bool
	// Attempt counts from 1.
	Attempt int
	// Refused is why the previous entry was refused, with an apperr kind and detail code: a
	// *pinrule.Error (the rule a new PIN broke), or for the card's current PIN BadCredentials
	// "wrong_existing_pin" with the tries left (wrapping the *cardio.PINError) or WeakPIN with
	// the card's format rule; nil on the first attempt.
	Refused error
}

// PINEntry asks the applicant for a PIN on the applicant-facing screen. The operator never
// sees it (CPS §6.4.1.2; R02 II-2-3(3)). For Existing requests confirm is ignored. An error
// (the applicant gave up, ctx ended) aborts the issuance.
type PINEntry func(ctx context.Context, req PINRequest) (pin, confirm pinrule.PIN, err error)

// Config configures an Orchestrator.
type Config struct {
	DB    *store.DB   // the terminal database (required)
	CA    CA          // the CA client (required)
	Clock clock.Clock // default clock.System
	// CACertificates are the CA certificates installed with the terminal, per certificate
	// type. When one is set, the CA certificate read back from the card must equal it byte
	// for byte; in any case the user certificate on the card must verify under the CA
	// certificate on the card.
	CACertificates map[workflow.CertType][]byte
	// LockPath is the issuance lock file; default: the database file + ".issuance.lock".
	LockPath string
	// MaxPINAttempts bounds the entries refused by the PIN rules before the issuance is
	// aborted (default 5).
	MaxPINAttempts int
	// NewRequestID draws request ids (default raclient.NewRequestID).
	NewRequestID func() (string, error)

	// stop, set by tests of this package, is called after each journal step; a non-nil
	// result stops the run on the spot, as if the terminal had died there.
	stop func(e Entry) error
	// committed, set by tests of this package (and BenchmarkCounterIssuance through
	// export_test.go), is called after each committed transaction of the orchestration (each
	// one costs an fsync of the terminal database) with the time it took.
	committed func(took time.Duration)
}

// Orchestrator runs issuances and recovery for one terminal.
type Orchestrator struct {
	cfg Config
}

// New checks cfg and returns an Orchestrator.
func New(ctx context.Context, cfg Config) (*Orchestrator, error) {
	if cfg.DB == nil || cfg.CA == nil {
		return nil, errors.New("issue: a database and a CA client are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.MaxPINAttempts <= 0 {
		cfg.MaxPINAttempts = 5
	}
	if cfg.NewRequestID == nil {
		cfg.NewRequestID = raclient.NewRequestID
	}
	if cfg.LockPath == "" {
		var file string
		if err := cfg.DB.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil || file == "" {
			return nil, fmt.Errorf("issue: cannot locate the database file for the issuance lock: %v", err)
		}
		cfg.LockPath = file + ".issuance.lock"
	}
	for t, der := range cfg.CACertificates {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("issue: CA certificate for %s: %w", t, err)
		}
	}
	return &Orchestrator{cfg: cfg}, nil
}

// Request is one issuance at the counter.
type Request struct {
	Operator string // the logged-in operator (Reception permission checked by the caller)
	CaseID   int64
	Card     Card
	PINs     PINEntry
	// CardExpiry is the card's own expiry date (printed on the card); certificates never
	// outlive it (CPS §6.3.2.2).
	CardExpiry time.Time
	// Progress, when set, is told each step as it begins, on the issuing goroutine, so a
	// screen can show where the issuance is (StepPrepare per certificate type, StepScript per
	// type, then StepPIN, StepVerify and StepConfirm for the whole card; certType is "" for
	// those). It must not block: the CA's prepared issuance waits on its deadline meanwhile.
	Progress func(step Step, certType workflow.CertType)
}

// progress reports step to the caller's Progress, if any.
func (r *run) progress(step Step, t workflow.CertType) {
	if r.req.Progress != nil {
		r.req.Progress(step, t)
	}
}

// Delivered is one certificate delivered to the card.
type Delivered struct {
	CertType    workflow.CertType
	RequestID   string
	IssuanceID  string
	Serial      string // certificate serial, hex
	Certificate []byte // DER, as read back from the card
}

// Result is a successful issuance.
type Result struct {
	CaseID     int64
	CardSerial string // hex, upper case
	Delivered  []Delivered
}

// typeInfo maps a certificate type to the CA's name, the card's key and files.
type typeInfo struct {
	wire    string
	which   cardio.Which
	pinKind pinrule.Kind
}

var types = map[workflow.CertType]typeInfo{
	workflow.UserAuthCert:  {wire: "auth", which: cardio.UserAuth, pinKind: pinrule.UserAuth},
	workflow.SignatureCert: {wire: "sign", which: cardio.Signature, pinKind: pinrule.Signature},
}

// item is one CA issuance of the current run.
type item struct {
	typ        workflow.CertType
	entry      Entry
	cert       []byte   // DER the CA issued
	responses  [][]byte // card responses to the script
	cardHasKey bool     // FINALIZE may have committed: the card may hold this issuance's key
}

type run struct {
	o      *Orchestrator
	req    Request
	c      *workflow.Case
	birth  time.Time
	serial []byte
	// approveFrom is the case state the operator's start approves ("" when it was approved
	// already); the approval is committed with the first journal row (startTx).
	approveFrom workflow.State
	items       []*item
	crashed     bool
	// contents is what the card showed before this run wrote anything (ownership.go).
	contents *wire.CardContents
}

// errStopped marks a run stopped by the test hook: nothing more may happen, as after a crash.
var errStopped = errors.New("issue: stopped by test hook")

// Issue puts the certificates of case req.CaseID that are not delivered yet on the card.
// The case must be a new issuance or a renewal whose identity check and TS Art. 9
// explanations are recorded (state Explained, which Issue approves as the operator's decision,
// or Approved); when every requested certificate is delivered the case is completed.
//
// Errors are *Error (see its fields for what happened at the CA and to the card).
func (o *Orchestrator) Issue(ctx context.Context, req Request) (*Result, error) {
	if req.Card == nil || req.PINs == nil || req.Operator == "" {
		return nil, &Error{Step: StepCase, Kind: apperr.InvalidInput, Err: errors.New("issue: a card, a pin entry and an operator are required")}
	}
	lock, err := acquire(o.cfg.LockPath)
	if err != nil {
		return nil, &Error{Step: StepCase, Kind: apperr.InvalidTransition, Err: err}
	}
	defer lock.release()
	r := &run{o: o, req: req}
	res, err := r.issue(ctx)
	if err != nil {
		if r.crashed {
			return nil, err
		}
		return nil, r.fail(ctx, err)
	}
	return res, nil
}

// stepError carries the step a failure happened in through the run.
type stepError struct {
	step Step
	err  error
}

func (e *stepError) Error() string { return string(e.step) + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func at(step Step, err error) error {
	if err == nil {
		return nil
	}
	var se *stepError
	if errors.As(err, &se) {
		return err
	}
	return &stepError{step: step, err: err}
}

func (r *run) now() time.Time { return r.o.cfg.Clock.Now() }

// tx runs fn in one committed transaction of the terminal database (WAL, synchronous=FULL:
// one fsync per commit).
func (o *Orchestrator) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	began := time.Now()
	if err := o.cfg.DB.Tx(ctx, fn); err != nil {
		return err
	}
	if o.cfg.committed != nil {
		o.cfg.committed(time.Since(began))
	}
	return nil
}

// journal advances the item's row in its own transaction (durable before the next action), with an
// optional audit record in the same transaction.
func (r *run) journal(ctx context.Context, it *item, to State, c change, rec *audit.Entry) error {
	return r.journalWith(ctx, []*item{it}, to, c, rec, nil)
}

// journalWith advances the rows of its to state to in one transaction (one fsync), with an
// optional audit record and more work (with, may be nil) in the same transaction, then runs
// the test hook for each row.
func (r *run) journalWith(ctx context.Context, its []*item, to State, c change, rec *audit.Entry, with func(tx *sql.Tx) error) error {
	es := make([]Entry, len(its))
	err := r.o.tx(ctx, func(tx *sql.Tx) error {
		for i, it := range its {
			var err error
			if es[i], err = advance(ctx, tx, it.entry.RequestID, to, c, r.now()); err != nil {
				return err
			}
		}
		if rec != nil {
			if err := audit.Append(ctx, tx, *rec); err != nil {
				return err
			}
		}
		if with != nil {
			return with(tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, it := range its {
		it.entry = es[i]
	}
	for _, it := range its {
		if err := r.hook(it.entry); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) hook(e Entry) error {
	if r.o.cfg.stop != nil {
		if err := r.o.cfg.stop(e); err != nil {
			r.crashed = true
			return errStopped
		}
	}
	return nil
}

func (r *run) issue(ctx context.Context) (*Result, error) {
	if err := r.loadCase(ctx); err != nil {
		return nil, at(StepCase, err)
	}
	serial, err := r.req.Card.CardSerial(ctx)
	if err != nil {
		return nil, at(StepCard, err)
	}
	r.serial = serial
	serialHex := strings.ToUpper(hex.EncodeToString(serial))
	// Issue 17: what the card holds is read before anything is written (ownership.go).
	contents, err := readCardContents(ctx, r.req.Card)
	if err != nil {
		return nil, at(StepCard, err)
	}
	r.contents = contents

	// One CA issuance per type, each on its own channel, each written by its own script. The
	// first is started here, each later one with the previous one's "written" (one commit).
	for i, it := range r.items {
		r.progress(StepPrepare, it.typ)
		if i == 0 {
			if err := r.start(ctx, it); err != nil {
				return nil, err
			}
		}
		var next *item
		if i+1 < len(r.items) {
			next = r.items[i+1]
		}
		if err := r.prepareAndWrite(ctx, it, serialHex, next); err != nil {
			return nil, err
		}
	}
	r.progress(StepPIN, "")
	pins, err := r.setPINs(ctx)
	defer pins.clear()
	if err != nil {
		return nil, at(StepPIN, err)
	}
	r.progress(StepVerify, "")
	if err := r.verify(ctx, pins); err != nil {
		return nil, at(StepVerify, err)
	}
	pins.clear()
	res := &Result{CaseID: r.c.ID, CardSerial: serialHex}
	r.progress(StepConfirm, "")
	for i, it := range r.items {
		// The last delivery completes the case in the same commit, so a crash cannot leave
		// every certificate delivered and the case still approved.
		if err := r.confirm(ctx, it, i == len(r.items)-1); err != nil {
			return nil, at(StepConfirm, err)
		}
		res.Delivered = append(res.Delivered, Delivered{CertType: it.typ, RequestID: it.entry.RequestID, IssuanceID: it.entry.IssuanceID,
			Serial: certSerial(it.cert), Certificate: it.cert})
	}
	return res, nil
}

func certSerial(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	return c.SerialNumber.Text(16)
}

// loadCase checks the case, approves it in memory if needed (saved by startTx), and lists the
// types still to deliver.
func (r *run) loadCase(ctx context.Context) error {
	caseTarget := strconv.FormatInt(r.req.CaseID, 10)
	// Read only (the approval is written by startTx): a consistent snapshot, no fsync.
	return r.o.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		c, err := workflow.Load(ctx, tx, r.req.CaseID)
		if err != nil {
			return err
		}
		if c.Kind != workflow.NewIssuance && c.Kind != workflow.Renewal {
			return apperr.New(apperr.InvalidTransition, "issue: case %d is a %s, not an issuance", c.ID, c.Kind)
		}
		if r.birth, err = c.Applicant.Birth(); err != nil {
			return err
		}
		entries, err := List(ctx, tx, Filter{CaseID: c.ID})
		if err != nil {
			return err
		}
		delivered := map[workflow.CertType]bool{}
		for _, e := range entries {
			if !final(e.State) {
				return apperr.Wrap(apperr.InvalidTransition, ErrUnresolved, "issue: case "+caseTarget)
			}
			if e.State == workflow.IssDelivered {
				delivered[e.CertType] = true
			}
		}
		switch c.State {
		case workflow.Explained:
			// Starting the issuance is the operator's decision to proceed (R02 II-8-1(3)); it
			// is saved and audited with the first journal row (startTx).
			r.approveFrom = c.State
			if err := c.Approve(r.req.Operator); err != nil {
				return err
			}
		case workflow.Approved:
		default:
			return apperr.New(apperr.InvalidTransition, "issue: case %d is %s; identity check and explanations (TS Art. 9) come first", c.ID, c.State)
		}
		r.c = c
		// user-auth first, then signature: a stable order for the applicant's PIN screens
		for _, t := range []workflow.CertType{workflow.UserAuthCert, workflow.SignatureCert} {
			if slices.Contains(c.CertTypes, t) && !delivered[t] {
				r.items = append(r.items, &item{typ: t})
			}
		}
		if len(r.items) == 0 {
			return apperr.Wrap(apperr.InvalidTransition, ErrNothingToIssue, "issue: case "+caseTarget)
		}
		return nil
	})
}

// start journals "started" for one type in its own transaction.
func (r *run) start(ctx context.Context, it *item) error {
	e, err := r.newEntry(it)
	if err != nil {
		return at(StepCase, err)
	}
	if err := r.o.tx(ctx, func(tx *sql.Tx) error { return r.startTx(ctx, tx, e) }); err != nil {
		return at(StepCase, err)
	}
	return at(StepCase, r.started(it, e))
}

// newEntry draws the request id of it's issuance; the row is written by startTx.
func (r *run) newEntry(it *item) (Entry, error) {
	id, err := r.o.cfg.NewRequestID()
	if err != nil {
		return Entry{}, err
	}
	return Entry{RequestID: id, CaseID: r.c.ID, CertType: it.typ, Operator: r.req.Operator, State: workflow.IssStarted}, nil
}

// startTx writes the "started" row of e and its audit record in tx, after the case's approval
// when the operator's start approves it.
func (r *run) startTx(ctx context.Context, tx *sql.Tx, e Entry) error {
	caseTarget := strconv.FormatInt(r.c.ID, 10)
	if r.approveFrom != "" {
		c, err := workflow.Load(ctx, tx, r.c.ID)
		if err != nil {
			return err
		}
		if c.State != r.approveFrom {
			return apperr.New(apperr.InvalidTransition, "issue: case %d became %s meanwhile", c.ID, c.State)
		}
		if err := c.Approve(r.req.Operator); err != nil {
			return err
		}
		if err := workflow.Save(ctx, tx, c, "approve", r.approveFrom, r.req.Operator, r.now()); err != nil {
			return err
		}
		if err := audit.Append(ctx, tx, audit.Entry{At: r.now(), Operator: r.req.Operator, Action: "case.approve", Target: caseTarget,
			Result: audit.ResultOK, Detail: map[string]string{"from": string(r.approveFrom), "to": string(c.State), "by": "issuance start"}}); err != nil {
			return err
		}
	}
	if err := begin(ctx, tx, e, r.now()); err != nil {
		return err
	}
	return audit.Append(ctx, tx, audit.Entry{At: r.now(), Operator: r.req.Operator, Action: "issuance.start", Target: caseTarget,
		Result: audit.ResultOK, Detail: map[string]string{"request_id": e.RequestID, "cert_type": string(e.CertType)}})
}

// started records that e's row is committed: the run now owns it (fail aborts it).
func (r *run) started(it *item, e Entry) error {
	r.approveFrom = ""
	e.StartedAt = r.now().UTC()
	it.entry = e
	return r.hook(e)
}

// applicant builds the CA's applicant data from the case: names and address with the 外字
// substitutions applied (R02 II-2-5(4)(5)); the 附票 address for people abroad (TS Art. 3(1)).
func (r *run) applicant() (wire.Applicant, error) {
	a := r.c.Applicant
	addr := a.Address
	if a.Status == resident.StatusAbroad {
		addr = a.FuhyoAddress
	}
	var err error
	sub := func(v, field string) (string, string) {
		if err != nil || v == "" {
			return v, ""
		}
		out, pos, e := resident.ApplyWithPositions(v, field, r.c.Substitutions)
		err = e
		return out, pos
	}
	w := wire.Applicant{ResidentCode: a.RecordCode, NameKana: a.NameKana, BirthDate: a.BirthDate, CardExpiry: r.req.CardExpiry.Format("2006-01-02")}
	// The certificate records where substitutes stand (.5.5.2 name, .5.5.6 address); the CA
	// checks and writes them. Sent only when there is a substitute, so a request without one is
	// what older CAs accept.
	w.Name, w.NameSubstitutes = sub(a.Name, "name")
	w.Address, w.AddressSubstitutes = sub(addr, "address")
	w.FormerSurname, _ = sub(a.FormerSurname, "former_surname")
	w.Alias, _ = sub(a.AliasName, "alias_name")
	if !strings.Contains(w.NameSubstitutes, "1") {
		w.NameSubstitutes = ""
	}
	if !strings.Contains(w.AddressSubstitutes, "1") {
		w.AddressSubstitutes = ""
	}
	switch a.Sex {
	case "M":
		w.Sex = "1"
	case "F":
		w.Sex = "2"
	default:
		return w, apperr.New(apperr.InvalidInput, "issue: unknown sex code %q", a.Sex)
	}
	if r.req.CardExpiry.IsZero() {
		return w, apperr.New(apperr.InvalidInput, "issue: the card's expiry date is required (CPS §6.3.2.2)")
	}
	return w, err
}

// prepareAndWrite prepares it at the CA and relays the script; its "written" is committed
// with next's "started" (next may be nil).
func (r *run) prepareAndWrite(ctx context.Context, it *item, serialHex string, next *item) error {
	op := r.req.Operator
	applicant, err := r.applicant()
	if err != nil {
		return at(StepCase, err)
	}
	ch, err := r.o.cfg.CA.OpenChannel(ctx, op)
	if err != nil {
		return at(StepChannel, err)
	}
	iu, err := r.req.Card.InitializeUpdate(ctx, ch.HostChallenge)
	if err != nil {
		return at(StepCard, err)
	}
	if len(iu) < scp.SerialLen || !bytes.Equal(iu[:scp.SerialLen], r.serial) {
		return at(StepCard, fmt.Errorf("%w: initialize update answered for another serial", cardio.ErrCardSwapped))
	}
	preq := wire.PrepareRequest{RequestID: it.entry.RequestID, ChannelID: ch.ChannelID, CardSerial: serialHex, InitUpdateResponse: iu,
		CertType: types[it.typ].wire, Supersedes: r.c.Kind == workflow.Renewal || r.c.NewCard, Kind: wireKind(r.c), Applicant: applicant,
		CardContents: r.contents}
	body, err := json.Marshal(preq)
	if err != nil {
		return at(StepPrepare, err)
	}
	// Journaled before it is sent: after a crash, recovery replays exactly this request.
	if err := r.journal(ctx, it, workflow.IssChannelOpened, change{CardSerial: serialHex, PrepareRequest: string(body)}, nil); err != nil {
		return at(StepPrepare, err)
	}
	presp, err := r.o.cfg.CA.Prepare(ctx, op, preq)
	if err != nil {
		return at(StepPrepare, err)
	}
	// TS Art. 5(iv), 6(iii): the terminal deletes the encrypted key blob once written, and
	// on every path that ends before it was written.
	defer func() {
		for _, a := range presp.Script {
			clear(a)
		}
	}()
	if presp.IssuanceID == "" || len(presp.Script) == 0 {
		return at(StepPrepare, fmt.Errorf("%w: prepare without issuance id or script", ErrCAAnswer))
	}
	if err := r.journal(ctx, it, workflow.IssPrepared, change{IssuanceID: presp.IssuanceID}, nil); err != nil {
		return at(StepPrepare, err)
	}
	if _, err := x509.ParseCertificate(presp.Certificate); err != nil {
		return at(StepPrepare, fmt.Errorf("%w: certificate: %v", ErrCAAnswer, err))
	}
	it.cert = presp.Certificate
	// Issue 17: never relay a script to a card that is neither blank nor the applicant's; the
	// prepared issuance is aborted (reason 0) by the caller.
	if err := checkCardOwner(r.contents, presp.CardOwner); err != nil {
		return at(StepPrepare, err)
	}

	r.progress(StepScript, it.typ)
	responses, err := r.req.Card.RunScript(ctx, presp.Script)
	last := len(presp.Script) - 1
	var se *cardio.ScriptError
	switch {
	case err == nil:
		it.cardHasKey = true
	case errors.As(err, &se) && se.Index == last && !finalizeRefused(se.Err):
		// FINALIZE was sent and no answer, or no answer the protocol defines for a refusal,
		// came back: it may have committed.
		it.cardHasKey = true
	}
	if err != nil {
		return at(StepScript, err)
	}
	it.responses = responses
	if next == nil {
		return at(StepScript, r.journal(ctx, it, workflow.IssWritten, change{}, nil))
	}
	ne, err := r.newEntry(next)
	if err != nil {
		return at(StepScript, err)
	}
	if err := r.journalWith(ctx, []*item{it}, workflow.IssWritten, change{}, nil, func(tx *sql.Tx) error { return r.startTx(ctx, tx, ne) }); err != nil {
		return at(StepScript, err)
	}
	return at(StepScript, r.started(next, ne))
}

// wireKind is what the counter took the application as. The CA decides from its own record
// whether the 6th-birthday rule applies (CPS §6.3.2.2 ①) and refuses a renewal with three
// months or more left; this only states the kind.
func wireKind(c *workflow.Case) string {
	switch {
	case c.Kind == workflow.Renewal:
		return wire.KindRenewal
	case c.NewCard:
		return wire.KindNewCard
	}
	return wire.KindNew
}

// finalizeRefused reports whether err is a refusal of FINALIZE that commits nothing: one of
// the status words docs/CARD-PROTOCOL.md §5 defines for it (6985 nothing staged, 6581 commit
// failed) or a secure-messaging check that fails before the command runs (6982, 6987, 6988;
// ISO/IEC 7816-4 §5.6, GlobalPlatform SCP03 §6.2.4). Any other answer — a status word the
// card does not give to FINALIZE, or two bytes that are no ISO 7816-4 status word at all —
// may be a garbled answer to a FINALIZE that committed (the fault campaign found one: issue
// 15), so the card may hold the key.
func finalizeRefused(err error) bool {
	var sw *apdu.StatusError
	if !errors.As(err, &sw) {
		return false
	}
	switch sw.SW {
	case apdu.SWConditionsNotSatisfied, apdu.SWMemoryFailure, apdu.SWSecurityNotSatisfied, apdu.SWSMDataMissing, apdu.SWSMDataIncorrect:
		return true
	}
	return false
}

// heldPINs keeps the signature PIN between setting it and reading the signature certificate
// back (the card guards that file with the PIN). Cleared right after; never stored.
type heldPINs struct{ sign []byte }

func (p *heldPINs) clear() {
	if p != nil {
		clear(p.sign)
		p.sign = nil
	}
}

// setPINs has the applicant set the PIN of each issued key on the JPKI AP (CPS §6.4.1.2),
// after the PIN rules of TS Art. 4 (app/pinrule) accepted it.
func (r *run) setPINs(ctx context.Context) (*heldPINs, error) {
	held := &heldPINs{}
	if err := r.req.Card.CheckSerial(ctx, r.serial); err != nil {
		return held, err
	}
	for _, it := range r.items {
		info := types[it.typ]
		_, err := r.req.Card.PINTriesLeft(ctx, info.which)
		existing := true
		switch {
		case errors.Is(err, cardio.ErrPINNotSet):
			existing = false
		case err != nil:
			return held, err
		}
		if existing && it.typ == workflow.UserAuthCert {
			continue // the applicant keeps the PIN; the user-auth certificate reads without it
		}
		pin, err := r.askPIN(ctx, info, existing)
		if err != nil {
			return held, err
		}
		if it.typ == workflow.SignatureCert {
			held.sign = pin
		} else {
			clear(pin)
		}
	}
	return held, r.journalWith(ctx, r.items, workflow.IssPINSet, change{}, nil, nil)
}

func (r *run) askPIN(ctx context.Context, info typeInfo, existing bool) ([]byte, error) {
	var refused error
	for attempt := 1; attempt <= r.o.cfg.MaxPINAttempts; attempt++ {
		pin, confirm, err := r.req.PINs(ctx, PINRequest{Kind: info.pinKind, Existing: existing, Attempt: attempt, Refused: refused})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPINCancelled, err)
		}
		b := []byte(pin.Reveal())
		if existing {
			err := r.req.Card.VerifyPIN(ctx, info.which, b)
			if err == nil {
				return b, nil
			}
			clear(b)
			if refused = currentPINRefusal(err, info.pinKind); refused != nil {
				continue
			}
			return nil, err
		}
		if err := pinrule.Check(info.pinKind, pin, confirm, pinrule.Applicant{BirthDate: r.birth}); err != nil {
			clear(b)
			refused = err
			continue
		}
		if err := r.req.Card.SetPIN(ctx, info.which, b); err != nil {
			clear(b)
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: %d entries refused", ErrPINCancelled, r.o.cfg.MaxPINAttempts)
}

// isFormat reports a PIN the card's format rule refused before sending (it costs no try).
func isFormat(err error) bool { return errors.Is(err, cardpin.ErrFormat) }

// currentPINRefusal is the refusal of the card's current PIN to ask again with, at app's edge:
// a wrong PIN with tries left is BadCredentials "wrong_existing_pin" with the tries (the
// applicant's message says how many), a PIN the card's format rule refused is WeakPIN with that
// rule's code. nil: not a refusal to ask again after (the PIN is blocked, or the card failed).
func currentPINRefusal(err error, kind pinrule.Kind) error {
	var pe *cardio.PINError
	switch {
	case errors.As(err, &pe) && pe.TriesLeft > 0:
		e := apperr.WithDetail(apperr.BadCredentials, "wrong_existing_pin", err, "issue: wrong current PIN")
		e.Args = map[string]string{"Tries": strconv.Itoa(pe.TriesLeft)}
		return e
	case isFormat(err):
		return apperr.WithDetail(apperr.WeakPIN, formatRule(kind), err, "issue: the card's format rule refused the current PIN")
	}
	return nil
}

// formatRule is the pinrule detail code of the card's format rule for kind.
func formatRule(kind pinrule.Kind) string {
	if kind == pinrule.Signature {
		return "length"
	}
	return "four_digits"
}

// verify reads the card back through the standard JPKI read protocol (docs/CARD-PROTOCOL.md
// §2) and checks it holds exactly what the CA issued, on the same card (DOMAIN §4.7: verify
// what was written; only then delivered).
func (r *run) verify(ctx context.Context, pins *heldPINs) error {
	if err := r.req.Card.CheckSerial(ctx, r.serial); err != nil {
		return err
	}
	if pins.sign != nil {
		if err := r.req.Card.VerifyPIN(ctx, cardio.Signature, pins.sign); err != nil {
			return err
		}
	}
	for _, it := range r.items {
		certFID, caFID := cardio.FileUserAuthCert, cardio.FileUserAuthCACert
		if it.typ == workflow.SignatureCert {
			certFID, caFID = cardio.FileSignatureCert, cardio.FileSignatureCACert
		}
		got, err := r.req.Card.ReadCertificate(ctx, certFID)
		if err != nil {
			return err
		}
		gotCA, err := r.req.Card.ReadCertificate(ctx, caFID)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, it.cert) {
			return fmt.Errorf("%w: %s certificate", ErrReadBack, it.typ)
		}
		ca, err := x509.ParseCertificate(gotCA)
		if err != nil {
			return fmt.Errorf("%w: %s CA certificate: %v", ErrReadBack, it.typ, err)
		}
		if want := r.o.cfg.CACertificates[it.typ]; want != nil && !bytes.Equal(gotCA, want) {
			return fmt.Errorf("%w: %s CA certificate is not the installed one", ErrReadBack, it.typ)
		}
		leaf, err := x509.ParseCertificate(got)
		if err != nil {
			return fmt.Errorf("%w: %s certificate: %v", ErrReadBack, it.typ, err)
		}
		if err := leaf.CheckSignatureFrom(ca); err != nil {
			return fmt.Errorf("%w: %s certificate does not verify under the CA certificate on the card: %v", ErrReadBack, it.typ, err)
		}
		if it.typ == workflow.SignatureCert {
			if err := r.checkBasicInfo(leaf); err != nil {
				return err
			}
		}
	}
	return r.journalWith(ctx, r.items, workflow.IssVerified, change{}, nil, nil)
}

// signatureLayout is the subjectAltName layout of the shared contract's personal-attribute OIDs
// (jpki.StandardAttributes): the ones the CA's default signature profile writes.
func signatureLayout() (jpki.Layout, error) {
	attrs, err := jpki.StandardAttributes()
	if err != nil {
		return jpki.Layout{}, err
	}
	l, ok := attrs.Layout()
	if !ok {
		return jpki.Layout{}, fmt.Errorf("no personal-attribute OIDs")
	}
	return l, nil
}

// checkBasicInfo reads the signature certificate's four items and substitute positions with the
// shared reader (jpki) and checks they are the applicant's as sent (TS Art. 11; R02
// II-2-5(4)(5)): what the card holds is what the resident record says.
func (r *run) checkBasicInfo(leaf *x509.Certificate) error {
	layout, err := signatureLayout()
	if err != nil {
		return err
	}
	got, err := jpki.ReadBasicInfo(leaf, layout)
	if err != nil {
		return fmt.Errorf("%w: signature certificate: %v", ErrReadBack, err)
	}
	w, err := r.applicant()
	if err != nil {
		return err
	}
	bd, err := time.Parse("2006-01-02", w.BirthDate)
	if err != nil {
		return fmt.Errorf("%w: birth date: %v", ErrReadBack, err)
	}
	dob, err := jpki.BirthDate(bd.Year(), int(bd.Month()), bd.Day())
	if err != nil {
		return fmt.Errorf("%w: birth date: %v", ErrReadBack, err)
	}
	name := jpki.CertificateName(w.Name)
	pos := func(p, text string) string {
		if p == "" {
			return jpki.Positions(utf8.RuneCountInString(text), nil)
		}
		return p
	}
	want := jpki.BasicInfo{Name: name, BirthDate: dob, Sex: w.Sex, Address: w.Address,
		NamePositions: pos(w.NameSubstitutes, name), AddressPositions: pos(w.AddressSubstitutes, w.Address)}
	if *got != want {
		// Which item differs, never the values (personal data).
		return fmt.Errorf("%w: signature certificate's personal data differ from the applicant's", ErrReadBack)
	}
	return nil
}

func confirmID(requestID string) string { return requestID + ".c" }
func abortID(requestID string) string   { return requestID + ".a" }

// confirm reports the card's protected responses; the CA verifies every R-MAC and the
// attestation before it marks the issuance delivered.
func (r *run) confirm(ctx context.Context, it *item, last bool) error {
	st, err := r.o.cfg.CA.Confirm(ctx, r.req.Operator, it.entry.IssuanceID, wire.ConfirmRequest{RequestID: confirmID(it.entry.RequestID), CardResponses: it.responses})
	if err != nil {
		return err
	}
	if st.State != "delivered" {
		return fmt.Errorf("%w: confirm answered state %q", ErrCAAnswer, st.State)
	}
	rec := audit.Entry{At: r.now(), Operator: r.req.Operator, Action: "issuance.delivered", Target: strconv.FormatInt(r.c.ID, 10), Result: audit.ResultOK,
		Detail: map[string]string{"request_id": it.entry.RequestID, "issuance_id": it.entry.IssuanceID, "cert_type": string(it.typ),
			"serial": certSerial(it.cert), "card_serial": it.entry.CardSerial}}
	var with func(tx *sql.Tx) error
	if last {
		with = func(tx *sql.Tx) error { return r.completeCase(ctx, tx) }
	}
	return r.journalWith(ctx, []*item{it}, workflow.IssDelivered, change{}, &rec, with)
}

// completeCase completes the case in tx when every requested certificate is delivered.
func (r *run) completeCase(ctx context.Context, tx *sql.Tx) error {
	entries, err := List(ctx, tx, Filter{CaseID: r.c.ID})
	if err != nil {
		return err
	}
	delivered := map[workflow.CertType]bool{}
	for _, e := range entries {
		if e.State == workflow.IssDelivered {
			delivered[e.CertType] = true
		}
	}
	for _, t := range r.c.CertTypes {
		if !delivered[t] {
			return nil
		}
	}
	c, err := workflow.Load(ctx, tx, r.c.ID)
	if err != nil {
		return err
	}
	from := c.State
	if err := c.Complete(); err != nil {
		return err
	}
	if err := workflow.Save(ctx, tx, c, "complete", from, r.req.Operator, r.now()); err != nil {
		return err
	}
	return audit.Append(ctx, tx, audit.Entry{At: r.now(), Operator: r.req.Operator, Action: "case.complete", Target: strconv.FormatInt(c.ID, 10),
		Result: audit.ResultOK, Detail: map[string]string{"from": string(from), "to": string(c.State), "by": "issuance delivered"}})
}

// fail aborts every undelivered issuance of the run at the CA and builds the *Error.
func (r *run) fail(ctx context.Context, cause error) error {
	step := StepCase
	var se *stepError
	if errors.As(cause, &se) {
		step, cause = se.step, se.err
	}
	e := &Error{Step: step, Kind: kindOf(cause), Err: cause}
	// The abort must reach the CA even when the caller's context ended (operator cancelled).
	actx := context.WithoutCancel(ctx)
	for _, it := range r.items {
		if it.entry.RequestID == "" || final(it.entry.State) {
			continue
		}
		res := r.o.resolve(actx, it.entry, it.cardHasKey, cause.Error(), r.req.Operator)
		if errors.Is(res.Err, errStopped) {
			return errStopped // the test hook "killed" the terminal while aborting
		}
		switch res.Outcome {
		case OutcomeAborted:
			e.Aborted = true
			e.CardCleanup = e.CardCleanup || res.CardCleanup
		case OutcomePending:
			e.AbortPending = true
			e.CardCleanup = e.CardCleanup || it.cardHasKey
		}
	}
	return e
}

func kindOf(err error) apperr.Kind {
	var k apperr.Kinded
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrPINCancelled):
		return apperr.Cancelled
	case errors.As(err, &k):
		return k.ErrorKind()
	case errors.Is(err, ErrCardNotApplicants), errors.Is(err, raclient.ErrCardOtherPerson), errors.Is(err, raclient.ErrCardStateUnknown):
		return apperr.CardNotApplicants
	case errors.Is(err, raclient.ErrDuplicatePerson), errors.Is(err, raclient.ErrPendingPerson):
		return apperr.AlreadyExists
	case errors.Is(err, raclient.ErrRenewalTooEarly):
		return apperr.RenewalTooEarly
	case errors.Is(err, raclient.ErrInvalidApplicant), errors.Is(err, cardio.ErrCardSwapped):
		return apperr.InvalidInput
	case errors.Is(err, raclient.ErrForbidden):
		return apperr.PermissionDenied
	}
	return apperr.Internal
}
