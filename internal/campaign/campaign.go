// Package campaign is the fault campaign (issue 15): counter issuances — and a share of
// revocations — through the terminal's real orchestrator and CLI, against a real `ca-server
// serve` (SoftHSM; SQLite or PostgreSQL) and real pcscd+vpcd virtual cards, each case with
// one fault drawn from the seed at a random point: the card (pulled, link dropped, garbage or
// truncated answer, wrong status word, swapped), the network (tcpfault between terminal and
// CA), processes (kill -9 of the terminal CLI or of serve), the HSM, the disk, the clock and
// the database. After the fault the driver recovers as an operator would (the card pushed
// back, serve restarted, `recover`, a new case on a fresh card) and checks the invariants
// (invariants.go) from the CA's store, the terminal's journal and the card itself.
//
// The command is internal/cmd/faults; TestShortCampaign runs a short fixed-seed campaign.
package campaign

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"madoguchi/internal/faults/diskfill"
)

// Options is one campaign run.
type Options struct {
	Seed  uint64
	From  int // first case number (replay: -from K -n 1)
	N     int // number of cases
	Kinds []Kind
	// Patience: how long the operator waits for a hung command before killing it and
	// recovering (the raclient's own per-attempt timeout is 30 s).
	Patience time.Duration
	// RevokeShare is the share of cases that revoke an earlier delivered person's
	// certificates instead of issuing.
	RevokeShare float64
	// PINResetShare is the share of cases that reset one PIN of an earlier delivered
	// person's card at the counter (DrawV2 only).
	PINResetShare float64
	// Draw is how kinds and operations are drawn: DrawV1 replays the runs recorded with
	// the first kind list exactly (KindsV1, issue or revoke only).
	Draw DrawVersion
	// AuditEvery: both audit chains are verified after every AuditEvery-th case (and at the
	// end); 1 verifies after every case.
	AuditEvery int
	// StopAt, if set, is when the run stops starting cases (the end-of-run checks follow):
	// a long run that must end by a given time records how many cases it ran.
	StopAt time.Time
	// RoundRobin draws case k's kind as Kinds[k mod len] instead of at random, so a short run
	// covers every kind (the CI campaign); the fault's parameters are still drawn.
	RoundRobin bool
	Log        io.Writer
}

// Violation stops a run: the seed, case and fault replay it.
type Violation struct {
	Seed     uint64
	Draw     DrawVersion
	Case     int
	Fault    Fault
	Problems []string
}

func (v *Violation) Error() string {
	draw := ""
	if v.Draw == DrawV1 {
		draw = " -draw v1"
	}
	return fmt.Sprintf("invariant violated in case %d (seed %d, fault %s): %s\nreplay: go run ./internal/cmd/faults%s -seed %d -from %d -n 1",
		v.Case, v.Seed, v.Fault, strings.Join(v.Problems, "; "), draw, v.Seed, v.Case)
}

// Runner runs cases on one stack.
type Runner struct {
	s       *Stack
	opt     Options
	slot    *slot
	st      *stores
	typical time.Duration
	people  []person // delivered, not revoked
	secrets []string
	Report  *Report
}

// person is a resident with both certificates delivered in this run.
type person struct {
	code            string
	sigPIN, authPIN string
	serials         map[string]string
	// cards: the state file of the card each certificate type is on (a retry after a
	// partial delivery puts the rest on a fresh card), so the card can go back in the
	// reader for a PIN reset.
	cards map[string]string
}

// NewRunner prepares a runner; the kinds this build cannot inject are dropped (and logged).
func NewRunner(s *Stack, opt Options) (*Runner, error) {
	if opt.Patience <= 0 {
		opt.Patience = 12 * time.Second
	}
	if opt.AuditEvery <= 0 {
		opt.AuditEvery = 1
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if len(opt.Kinds) == 0 {
		opt.Kinds = opt.Draw.kinds()
	}
	if opt.Draw == DrawV1 {
		// The first draw knew neither the fsync fault nor PIN resets: with them a "v1"
		// run would not be the recorded one.
		for _, k := range opt.Kinds {
			if !slices.Contains(KindsV1, k) {
				return nil, fmt.Errorf("campaign: draw v1 has no kind %s", k)
			}
		}
		if opt.PINResetShare > 0 {
			return nil, fmt.Errorf("campaign: draw v1 has no PIN resets (-pin-reset-share 0)")
		}
	}
	use, dropped := usableKinds(opt.Kinds, s.cfg.DB, func(k Kind) bool { return k != KindDiskFull || s.cfg.Tmpfs })
	if len(dropped) > 0 {
		fmt.Fprintf(opt.Log, "fault kinds not available in this build or database, left out: %v\n", dropped)
	}
	if len(use) == 0 {
		return nil, fmt.Errorf("campaign: no fault kind available")
	}
	opt.Kinds = use
	st, err := openStores(s)
	if err != nil {
		return nil, err
	}
	s.t.Cleanup(st.Close)
	r := &Runner{s: s, opt: opt, slot: newSlot(s), st: st, typical: 2 * time.Second, Report: NewReport(opt.Seed, s.cfg.DB)}
	r.Report.Requested = opt.N
	s.t.Cleanup(r.slot.eject)
	return r, nil
}

// Run runs the cases, then the end-of-run checks. A violation stops it (*Violation).
func (r *Runner) Run(ctx context.Context) error {
	began := time.Now()
	defer func() { r.Report.Elapsed = time.Since(began) }()
	for k := r.opt.From; k < r.opt.From+r.opt.N; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !r.opt.StopAt.IsZero() && time.Now().After(r.opt.StopAt) {
			r.Report.StoppedEarly = true
			fmt.Fprintf(r.opt.Log, "-- the time limit: stopping after %d of %d cases\n", k-r.opt.From, r.opt.N)
			break
		}
		kinds := r.opt.Kinds
		if r.opt.RoundRobin {
			kinds = []Kind{kinds[k%len(kinds)]}
		}
		f := Draw(r.opt.Seed, k, kinds, r.typical, r.s.cfg.Deadline)
		res, err := r.runCase(ctx, k, f)
		if err != nil {
			return fmt.Errorf("case %d (%s): %w", k, f, err)
		}
		r.Report.Add(res)
		fmt.Fprintf(r.opt.Log, "case %4d %-9s %-60s → %-10s in %6.1fs%s\n", k, res.Op, f, res.Outcome, res.Resolve.Seconds(), violationsText(res.Violations))
		if len(res.Violations) > 0 {
			return &Violation{Seed: r.opt.Seed, Draw: r.opt.Draw, Case: k, Fault: f, Problems: res.Violations}
		}
		done := k - r.opt.From + 1
		if done%25 == 0 {
			el := time.Since(began)
			fmt.Fprintf(r.opt.Log, "-- %d cases in %v (%.1f cases/min)\n", done, el.Round(time.Second), float64(done)/el.Minutes())
		}
	}
	// End of run: both audit chains, the global invariants once more, and the logs.
	var v []string
	v = append(v, auditVerify(r.s)...)
	g, err := r.st.globalViolations(ctx, r.sweepGrace())
	if err != nil {
		return err
	}
	v = append(v, g...)
	leaks, err := secretsInLogs(r.s.cfg.Dir, r.secrets)
	if err != nil {
		return err
	}
	v = append(v, leaks...)
	r.Report.Elapsed = time.Since(began)
	if len(v) > 0 {
		r.Report.EndViolations = len(v)
		return &Violation{Seed: r.opt.Seed, Draw: r.opt.Draw, Case: r.opt.From + r.opt.N, Fault: Fault{Kind: KindNone}, Problems: v}
	}
	return nil
}

func violationsText(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return "  VIOLATION: " + strings.Join(v, "; ")
}

func (r *Runner) sweepGrace() time.Duration { return 15 * time.Second }

// CaseResult is one case's line in the report.
type CaseResult struct {
	K          int
	Op         string
	Fault      Fault
	Outcome    string // delivered | revoked | not-issued | partial
	Fired      bool
	Lost, Dup  int
	Violations []string
	Resolve    time.Duration
}

var pinAlphabet = []byte("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")

// userAuthPINs are 4-digit PINs no weak-PIN rule refuses (no run, no repeat, not a date).
var userAuthPINs = []string{"4856", "5937", "6385", "9174", "8352", "4793", "3894", "7358"}

func casePINs(seed uint64, k int) (sig, auth string) {
	r := rand.New(rand.NewPCG(seed^0x5eed, uint64(k)))
	b := make([]byte, 10)
	for i := range b {
		b[i] = pinAlphabet[r.IntN(len(pinAlphabet))]
	}
	b[3], b[7] = '7', 'K' // at least one digit and one letter
	return string(b), userAuthPINs[r.IntN(len(userAuthPINs))]
}

func (r *Runner) runCase(ctx context.Context, k int, f Fault) (CaseResult, error) {
	op, rnd := drawOp(r.opt, k, len(r.people), f)
	switch op {
	case "revoke":
		return r.revokeCase(ctx, k, f, rnd)
	case "pin-reset":
		return r.pinResetCase(ctx, k, f, rnd)
	}
	return r.issueCase(ctx, k, f)
}

// drawOp draws case k's operation ("issue", "revoke", "pin-reset") from the seed, given how
// many delivered people there are to act on, and returns the generator the operation draws
// its person from. One number picks the operation: [0, revoke) revokes (no card in it, so not
// with a card fault), [revoke, revoke+PIN reset) resets a PIN. With no PIN-reset share this is
// exactly DrawV1's choice (the same first number of the same generator, drawn only when
// there is someone).
func drawOp(opt Options, k, people int, f Fault) (string, *rand.Rand) {
	rnd := rand.New(rand.NewPCG(opt.Seed^0x0b, uint64(k)))
	if people == 0 {
		return "issue", rnd
	}
	u := rnd.Float64()
	switch {
	case u < opt.RevokeShare && !f.Kind.card():
		return "revoke", rnd
	case opt.Draw != DrawV1 && u >= opt.RevokeShare && u < opt.RevokeShare+opt.PINResetShare:
		return "pin-reset", rnd
	}
	return "issue", rnd
}

var caseOpened = regexp.MustCompile(`case (\d+) opened`)

// openIssuance opens an identity-checked, explained new-issuance case for resident code.
func (r *Runner) openIssuance(code string, types []string) (int64, error) {
	file := r.s.cfg.Dir + "/resident-export.json"
	for _, args := range [][]string{{"-user", "rc1", "resident", "export", code, "-o", file}} {
		if res := r.s.CLI(CLIRun{Stdin: rcPass, Args: args}); res.Code != 0 {
			return 0, fmt.Errorf("cli %v: %s", args, lastLines(res.Out+res.Err, 3))
		}
	}
	res := r.s.CLI(CLIRun{Stdin: rcPass, Args: []string{"-user", "rc1", "case", "open", "-kind", "new_issuance", "-file", file, "-types", strings.Join(types, ",")}})
	m := caseOpened.FindStringSubmatch(res.Out)
	if res.Code != 0 || m == nil {
		return 0, fmt.Errorf("case open: %s", lastLines(res.Out+res.Err, 3))
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	ids := strconv.FormatInt(id, 10)
	for _, args := range [][]string{
		{"-user", "rc1", "case", "identity", ids, "-document", "drivers_licence", "-ref", "5678"},
		{"-user", "rc1", "case", "explain", ids},
	} {
		if res := r.s.CLI(CLIRun{Stdin: rcPass, Args: args}); res.Code != 0 {
			return 0, fmt.Errorf("cli %v: %s", args, lastLines(res.Out+res.Err, 3))
		}
	}
	return id, nil
}

func (r *Runner) issueRun(caseID int64, sig, auth string, killAfter time.Duration) Result {
	pins := fmt.Sprintf("signature:%s\nsignature:%s\nuser-auth:%s\nuser-auth:%s\n", sig, sig, auth, auth)
	return r.s.CLI(CLIRun{Stdin: rcPass, PINs: pins, WithCA: true, KillAfter: killAfter, Patience: r.opt.Patience,
		Args: []string{"-user", "rc1", "issue", "-case", strconv.FormatInt(caseID, 10), "-reader", r.s.Reader,
			"-card-expiry", time.Now().AddDate(10, 0, 0).Format("2006-01-02")}})
}

// issueCase: a new issuance of both certificates for a fresh resident onto a blank card,
// with the fault; then recovery; then, unless delivered, the operator's retry on a new case
// and a fresh card, which must deliver.
func (r *Runner) issueCase(ctx context.Context, k int, f Fault) (CaseResult, error) {
	res := CaseResult{K: k, Op: "issue", Fault: f}
	code := ResidentCode(k)
	sig, auth := casePINs(r.opt.Seed, k)
	r.secrets = append(r.secrets, sig)
	both := []string{"signature", "user_auth"}
	caseID, err := r.openIssuance(code, both)
	if err != nil {
		return res, err
	}
	card, path := r.s.NewCard()
	if err := r.slot.insert(card, path, f.vcardSpec(), f.CardSeed); err != nil {
		return res, err
	}
	fr, err := r.faulted(f, func(killAfter time.Duration) Result { return r.issueRun(caseID, sig, auth, killAfter) })
	res.Fired = fr.Fired
	if err != nil {
		return res, err
	}
	run, began := fr.Result, fr.Began
	if run.Code == 0 && !res.Fired {
		// The typical duration of an issuance, where timed faults fall: learnt from every
		// issuance no fault touched, not only the control row's (a run started at case K
		// otherwise kept the 2 s first guess for dozens of cases, and on a fast machine most
		// kills then fell after the issuance had ended: 2 of 16 fired in cases 904–999).
		r.typical = (r.typical*7 + run.Elapsed*3) / 10
	}
	if err := r.slot.reinsert(path); err != nil {
		return res, err
	}
	if run.Code != 0 {
		if err := r.recover(); err != nil {
			return res, err
		}
	}
	out, err := r.resolve(ctx, caseID, sig, both)
	if err != nil {
		return res, err
	}
	cards := map[string]string{}
	for typ := range out.Serials {
		cards[typ] = path
	}
	res.Resolve = time.Since(began)
	res.Violations, res.Lost, res.Dup = out.Violations, out.Lost, out.Duplicated
	switch {
	case out.Delivered == 2:
		res.Outcome = "delivered"
		r.people = append(r.people, person{code: code, sigPIN: sig, authPIN: auth, serials: out.Serials, cards: cards})
	case out.Delivered == 0 && out.Revoked > 0:
		res.Outcome = "revoked"
	case out.Delivered == 0:
		res.Outcome = "not-issued"
	default:
		res.Outcome = "partial"
	}
	if run.Code == 0 && out.Delivered != 2 {
		res.Violations = append(res.Violations, fmt.Sprintf("the issue command succeeded but %d certificates were delivered", out.Delivered))
	}
	if len(res.Violations) == 0 {
		res.Violations = append(res.Violations, r.afterCase(ctx, k)...)
	}
	if len(res.Violations) > 0 || res.Outcome == "delivered" {
		return res, nil
	}
	// The operator's retry: a new case for the same resident for the certificates not
	// delivered (a partial case delivered one: the orchestrator delivers type by type), a
	// fresh card, no fault; up to three times, each failure recovered like the first (a
	// loaded machine can stall a database for seconds: the operator tries again). Anything
	// but delivery by then means the fault left the system unable to issue.
	delivered := out.Serials
	var failures []string
	for attempt := 1; attempt <= 3; attempt++ {
		var missing []string
		for _, typ := range both {
			if delivered[typ] == "" {
				missing = append(missing, typ)
			}
		}
		caseID, err = r.openIssuance(code, missing)
		if err != nil {
			failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
			continue
		}
		card, path = r.s.NewCard()
		if err := r.slot.insert(card, path, "", 0); err != nil {
			return res, err
		}
		again := r.issueRun(caseID, sig, auth, 0)
		if again.Code != 0 {
			failures = append(failures, fmt.Sprintf("attempt %d: exit %d: %s", attempt, again.Code, lastLines(again.Out+again.Err, 2)))
			if err := r.recover(); err != nil {
				return res, err
			}
		}
		out, err = r.resolve(ctx, caseID, sig, missing)
		if err != nil {
			return res, err
		}
		res.Violations = append(res.Violations, out.Violations...)
		if len(res.Violations) > 0 {
			return res, nil
		}
		for typ, serial := range out.Serials {
			delivered[typ] = serial
			cards[typ] = path
		}
		if len(delivered) == len(both) {
			r.people = append(r.people, person{code: code, sigPIN: sig, authPIN: auth, serials: delivered, cards: cards})
			r.slot.eject()
			return res, nil
		}
	}
	res.Violations = append(res.Violations, "three retries on fresh cards without a fault did not deliver: "+strings.Join(failures, "; "))
	r.slot.eject()
	return res, nil
}

// recover runs the terminal's `recover` until it succeeds (the CA may still be coming back).
func (r *Runner) recover() error {
	var last Result
	for i := 0; i < 8; i++ {
		last = r.s.CLI(CLIRun{WithCA: true, Patience: r.opt.Patience, Args: []string{"recover"}})
		if last.Code == 0 {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("recover keeps failing: exit %d: %s", last.Code, lastLines(last.Out+last.Err, 3))
}

// resolve waits until the case's CA issuances are no longer pending (the sweeper's deadline,
// for an issuance the terminal could not abort), running `recover` again meanwhile, then
// checks the case.
func (r *Runner) resolve(ctx context.Context, caseID int64, sig string, types []string) (caseOutcome, error) {
	limit := time.Now().Add(r.s.cfg.Deadline + r.sweepGrace())
	for {
		rows, err := r.st.journal(ctx, caseID)
		if err != nil {
			return caseOutcome{}, err
		}
		open := false
		for _, j := range rows {
			if j.State != "delivered" && j.State != "aborted" {
				open = true
			}
		}
		pending, err := r.st.pendingAtCA(ctx, rows)
		if err != nil {
			return caseOutcome{}, err
		}
		if (!open && !pending) || time.Now().After(limit) {
			break
		}
		time.Sleep(500 * time.Millisecond)
		if open {
			if err := r.recover(); err != nil {
				return caseOutcome{}, err
			}
		}
	}
	return r.st.checkIssuance(ctx, r.s, caseID, types, sig)
}

// faultedRun is one operation of a case run under its fault.
type faultedRun struct {
	Result
	Fired bool      // the fault fired before the operation ended
	Began time.Time // when the operation started, the fault armed
}

// faulted runs one operation of a case under fault f: the fault armed, run called with the
// moment a kill-terminal fault kills the command (0: none), the timed fault started and
// stopped, the fault healed.
func (r *Runner) faulted(f Fault, run func(killAfter time.Duration) Result) (faultedRun, error) {
	heal, err := r.arm(f)
	if err != nil {
		return faultedRun{}, err
	}
	out := faultedRun{Began: time.Now()}
	var killAfter time.Duration
	if f.Kind == KindKillTerminal {
		killAfter = f.When + time.Millisecond
	}
	timed := r.timed(f)
	out.Result = run(killAfter)
	out.Fired = r.fired(f, timed, out.Result)
	if err := heal(); err != nil {
		return out, fmt.Errorf("heal: %w", err)
	}
	return out, nil
}

// afterCase: the global invariants and, every AuditEvery cases, both audit chains.
func (r *Runner) afterCase(ctx context.Context, k int) []string {
	v, err := r.st.globalViolations(ctx, r.sweepGrace())
	if err != nil {
		return []string{"reading the stores: " + err.Error()}
	}
	if (k+1)%r.opt.AuditEvery == 0 {
		v = append(v, auditVerify(r.s)...)
	}
	return v
}

// revokeCase: an earlier delivered person's two certificates revoked at the counter (reason
// 5, the holder's request), with the fault; after recovery both must be revoked, once.
func (r *Runner) revokeCase(ctx context.Context, k int, f Fault, rnd *rand.Rand) (CaseResult, error) {
	res := CaseResult{K: k, Op: "revoke", Fault: f}
	i := rnd.IntN(len(r.people))
	p := r.people[i]
	r.people = append(r.people[:i], r.people[i+1:]...)
	caseID, err := r.openRevocation(p.code)
	if err != nil {
		return res, err
	}
	types := make([]string, 0, 2)
	for typ := range p.serials {
		types = append(types, typ)
	}
	sort.Strings(types)
	revokeArgs := func(caseID string, types []string) []string {
		args := []string{"-user", "rc1", "revoke", "-case", caseID, "-written", "失効申請書 No." + strconv.Itoa(k)}
		for _, typ := range types {
			args = append(args, "-cert", typ+":"+p.serials[typ])
		}
		return args
	}
	fr, err := r.faulted(f, func(killAfter time.Duration) Result {
		return r.s.CLI(CLIRun{Stdin: rcPass, WithCA: true, KillAfter: killAfter, Patience: r.opt.Patience, Args: revokeArgs(caseID, types)})
	})
	res.Fired = fr.Fired
	if err != nil {
		return res, err
	}
	run, began := fr.Result, fr.Began
	// The operator runs the revocation again for what the CA still holds valid: on the same
	// case first, then (a case the failure closed) on a new one.
	for attempt := 0; run.Code != 0 && attempt < 6; attempt++ {
		var left []string
		for _, typ := range types {
			c, err := r.st.caBySerial(ctx, p.serials[typ])
			if err != nil {
				return res, err
			}
			if c != nil && c.State != "revoked" {
				left = append(left, typ)
			}
		}
		if len(left) == 0 {
			break
		}
		if attempt >= 2 {
			if caseID, err = r.openRevocation(p.code); err != nil {
				return res, err
			}
		}
		time.Sleep(500 * time.Millisecond)
		run = r.s.CLI(CLIRun{Stdin: rcPass, WithCA: true, Patience: r.opt.Patience, Args: revokeArgs(caseID, left)})
	}
	res.Resolve = time.Since(began)
	for _, typ := range types {
		c, err := r.st.caBySerial(ctx, p.serials[typ])
		if err != nil {
			return res, err
		}
		switch {
		case c == nil:
			res.Violations = append(res.Violations, fmt.Sprintf("CA has no certificate %s", p.serials[typ]))
		case c.State != "revoked":
			res.Violations = append(res.Violations, fmt.Sprintf("%s certificate %s still %s after the revocation and its retries", typ, c.Serial, c.State))
		}
	}
	res.Outcome = "revoked"
	if len(res.Violations) == 0 {
		res.Violations = append(res.Violations, r.afterCase(ctx, k)...)
	}
	return res, nil
}

// openRevocation opens an identity-checked, approved revocation case for resident code.
func (r *Runner) openRevocation(code string) (string, error) {
	return r.openMaintenance(code, "revocation")
}

// fired reports whether the fault came before the operation ended: a timed fault's moment, the
// proxy's byte, the terminal's kill. Card APDU faults and HSM and disk faults count as fired
// once armed (the driver cannot see whether the N-th APDU or call came).
func (r *Runner) fired(f Fault, t *timedFault, run Result) bool {
	timedFired := t.stop()
	switch f.Kind {
	case KindNetDrop, KindNetReset, KindNetStall, KindNetDelay:
		return r.s.CAProxy.Fired()
	case KindKillTerminal:
		return run.Killed
	}
	return timedFired
}

// timedFault is a fault that fires at a moment during the operation.
type timedFault struct {
	cancel chan struct{}
	done   chan bool
}

func (t *timedFault) stop() bool {
	if t == nil {
		return true
	}
	close(t.cancel)
	return <-t.done
}

// timed starts the goroutine of a timed fault; stop cancels it if the operation ended first
// and reports whether it fired.
func (r *Runner) timed(f Fault) *timedFault {
	var act func()
	switch f.Kind {
	case KindCardPull:
		act = r.slot.pull
	case KindCardSwap:
		act = func() {
			card, path := r.s.NewCard()
			_ = r.slot.insert(card, path, "", 0)
		}
	case KindKillServe:
		act = func() {
			r.s.StopServe(syscall.SIGKILL)
			time.Sleep(500 * time.Millisecond)
			r.s.StartServe() // the service manager restarts it
		}
	case KindClockJump:
		act = func() { r.s.SetClockSkew(f.OnCA, f.Skew) }
	case KindFsyncError:
		act = func() { r.s.SetFsyncFault(f.OnCA, true) }
	case KindDBRestart:
		act = func() {
			_ = r.s.pg.Stop()
			time.Sleep(time.Second)
			r.s.pg.Start(r.s.t)
		}
	case KindDBCut:
		act = func() { r.s.PGProxy.ResetAll() }
	case KindKillTerminal:
		return nil // CLIRun.KillAfter
	default:
		return nil
	}
	t := &timedFault{cancel: make(chan struct{}), done: make(chan bool, 1)}
	go func() {
		select {
		case <-time.After(f.When):
			act()
			t.done <- true
		case <-t.cancel:
			t.done <- false
		}
	}()
	return t
}

// arm sets the faults that are in place from the operation's start, and returns what undoes
// every fault of the case (proxies disarmed, clocks back, serve restarted without the HSM
// fault, disk released).
func (r *Runner) arm(f Fault) (heal func() error, err error) {
	var release func() error
	switch f.Kind {
	case KindNetDrop, KindNetReset, KindNetStall, KindNetDelay:
		r.s.CAProxy.Arm(f.Net)
	case KindHSMError, KindHSMStall:
		r.s.StopServe(syscall.SIGTERM)
		r.s.SetServeEnv("MADOGUCHI_HSM_FAULT=" + f.HSM)
		if err := r.s.TryStartServe(); err != nil {
			// The fault fired during serve's own start-up: the operator sees serve fail and
			// starts it again once the HSM is back.
			fmt.Fprintf(r.opt.Log, "serve did not start under %s: %v\n", f.HSM, err)
			r.s.SetServeEnv()
			r.s.StartServe()
		}
	case KindDiskFull:
		dir := r.s.termDir
		if f.OnCA {
			dir = r.s.caData
		}
		if release, err = diskfill.Fill(dir, f.Leave); err != nil {
			return nil, fmt.Errorf("fill %s: %w", dir, err)
		}
	}
	return func() error {
		r.s.CAProxy.Disarm()
		if r.s.PGProxy != nil {
			r.s.PGProxy.Disarm()
		}
		if release != nil {
			if err := release(); err != nil {
				return err
			}
		}
		if f.Kind == KindClockJump {
			r.s.SetClockSkew(f.OnCA, 0)
			time.Sleep(200 * time.Millisecond) // the hook re-reads the file every 100 ms
		}
		// A process whose fsyncs failed keeps failing until it ends (the seccomp filter
		// stays, and an operator would not trust it either): the trigger goes, and serve is
		// restarted as after a crash. The terminal side needs nothing more: the command has
		// ended, and the next one is a new process that finds no trigger.
		fsyncFired := f.Kind == KindFsyncError && r.s.SetFsyncFault(f.OnCA, false)
		if f.Kind == KindHSMError || f.Kind == KindHSMStall {
			r.s.StopServe(syscall.SIGTERM)
			r.s.SetServeEnv()
			r.s.StartServe()
		} else if fsyncFired && f.OnCA {
			r.s.StopServe(syscall.SIGKILL)
			r.s.StartServe()
		} else if !r.s.ServeRunning() {
			r.s.StartServe()
		}
		return nil
	}, nil
}
