package issue

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/clock"
	"madoguchi/app/pinrule"
	"madoguchi/app/resident"
	"madoguchi/app/store"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
	"madoguchi/cardio/scp"
	"madoguchi/cardio/vcard"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// PINs used by the tests: valid and not easily guessed for the applicant below.
const (
	testAuthPIN = "4826"
	testSignPIN = "SAKURA73"
)

// testIssuer holds issuer master keys drawn at test time (never committed).
var testIssuer = func() *scp.SoftwareIssuer {
	m := make([]byte, 48)
	if _, err := rand.Read(m); err != nil {
		panic(err)
	}
	return &scp.SoftwareIssuer{MasterENC: m[:16], MasterMAC: m[16:32], MasterDEK: m[32:]}
}()

type fixture struct {
	t      *testing.T
	dir    string
	db     *store.DB
	ca     *fakeCA
	o      *Orchestrator
	clk    *clock.Fake
	vcard  *vcard.Card
	sw     *swapTransport
	card   *cardio.Card
	caseID int64
}

// swapTransport is the card reader: the card in it can be exchanged mid-issuance.
type swapTransport struct {
	mu sync.Mutex
	t  *vcard.InProcess
}

func (s *swapTransport) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	s.mu.Lock()
	t := s.t
	s.mu.Unlock()
	return t.Transmit(ctx, cmd)
}

func (s *swapTransport) insert(c *vcard.Card) {
	s.mu.Lock()
	s.t = vcard.Insert(c)
	s.mu.Unlock()
}

func blankCard(t testing.TB, serialByte byte) *vcard.Card {
	t.Helper()
	serial := bytes.Repeat([]byte{serialByte}, vcard.SerialLen)
	keys, err := testIssuer.CardKeys(serial)
	if err != nil {
		t.Fatal(err)
	}
	c, err := vcard.New(vcard.Config{Serial: serial, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testApplicant() resident.Resident {
	return resident.Resident{RecordCode: "12345678901", Name: "山田 花子", NameKana: "ヤマダ ハナコ", BirthDate: "1985-04-12", Sex: "F",
		Address: "東京都千代田区霞が関一丁目1番1号", Status: resident.StatusResident}
}

func newFixture(t *testing.T, typesToIssue ...workflow.CertType) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "terminal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, dir: dir, db: db, ca: newFakeCA(t, testIssuer), clk: clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))}
	f.o, err = New(ctx, Config{DB: db, CA: f.ca, Clock: f.clk, CACertificates: map[workflow.CertType][]byte{
		workflow.UserAuthCert: f.ca.caCert, workflow.SignatureCert: f.ca.caCert}})
	if err != nil {
		t.Fatal(err)
	}
	f.vcard = blankCard(t, 0x5A)
	f.sw = &swapTransport{}
	f.sw.insert(f.vcard)
	f.card = cardio.New(f.sw)
	if len(typesToIssue) == 0 {
		typesToIssue = []workflow.CertType{workflow.SignatureCert, workflow.UserAuthCert}
	}
	f.caseID = f.newCase(typesToIssue...)
	return f
}

// newCase opens a new-issuance case with identity checked and explanations given.
func (f *fixture) newCase(typesToIssue ...workflow.CertType) int64 {
	f.t.Helper()
	ctx := context.Background()
	c, err := workflow.Open(workflow.NewIssuance, testApplicant(), typesToIssue, false, time.Time{}, "clerk1", f.clk.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := c.RecordIdentity(workflow.Evidence{Document: workflow.DriversLicence, DocumentRef: "1234"}); err != nil {
		f.t.Fatal(err)
	}
	if err := c.RecordExplanation(workflow.RequiredItems(typesToIssue)); err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Tx(ctx, func(tx *sql.Tx) error { return workflow.Insert(ctx, tx, c) }); err != nil {
		f.t.Fatal(err)
	}
	return c.ID
}

// pins answers the applicant screen with the test PINs, typed twice.
func pins(ctx context.Context, req PINRequest) (pinrule.PIN, pinrule.PIN, error) {
	p := testAuthPIN
	if req.Kind == pinrule.Signature {
		p = testSignPIN
	}
	return pinrule.New(p), pinrule.New(p), nil
}

func (f *fixture) request() Request {
	return Request{Operator: "clerk1", CaseID: f.caseID, Card: f.card, PINs: pins, CardExpiry: time.Date(2035, 4, 12, 0, 0, 0, 0, time.UTC)}
}

func (f *fixture) journal() []Entry {
	f.t.Helper()
	es, err := List(context.Background(), f.db, Filter{})
	if err != nil {
		f.t.Fatal(err)
	}
	return es
}

func (f *fixture) caseState() workflow.State {
	f.t.Helper()
	c, err := workflow.Load(context.Background(), f.db, f.caseID)
	if err != nil {
		f.t.Fatal(err)
	}
	return c.State
}

// assertNoPINStored scans the database files for the PINs (DOMAIN §2: never stored).
func (f *fixture) assertNoPINStored() {
	f.t.Helper()
	ents, _ := os.ReadDir(f.dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(f.dir, e.Name()))
		if err != nil {
			continue
		}
		for _, pin := range []string{testSignPIN} {
			if bytes.Contains(b, []byte(pin)) {
				f.t.Errorf("PIN found in %s", e.Name())
			}
		}
	}
	recs, err := audit.List(context.Background(), f.db, audit.Filter{})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range recs {
		for k, v := range r.Detail {
			// The 4-digit PIN is compared token by token: as a substring it turns up by chance
			// inside random hex request ids ("…e4826…").
			tokens := strings.FieldsFunc(v, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
			if strings.Contains(v, testSignPIN) || slices.Contains(tokens, testAuthPIN) {
				f.t.Errorf("PIN in audit %s %s=%s", r.Action, k, v)
			}
		}
	}
	if _, err := audit.Verify(context.Background(), f.db); err != nil {
		f.t.Errorf("audit chain: %v", err)
	}
}

func TestIssueDeliversBothCertificates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := f.o.Issue(ctx, f.request())
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if len(res.Delivered) != 2 || res.CardSerial != strings.Repeat("5A", 16) {
		t.Fatalf("result %+v", res)
	}
	for _, d := range res.Delivered {
		if is := f.ca.get(d.IssuanceID); is.state != "delivered" {
			t.Errorf("%s at the CA is %s", d.CertType, is.state)
		}
	}
	for _, e := range f.journal() {
		if e.State != workflow.IssDelivered || e.IssuanceID == "" || e.CardCleanup != CleanupNone || e.CardSerial != res.CardSerial {
			t.Errorf("journal %+v", e)
		}
	}
	if s := f.caseState(); s != workflow.Completed {
		t.Errorf("case %s, want completed", s)
	}
	// The card, read through the JPKI AP by a fresh reader: both certificates and PINs set.
	reader := cardio.New(vcard.Insert(f.vcard))
	if err := reader.VerifyPIN(ctx, cardio.Signature, []byte(testSignPIN)); err != nil {
		t.Fatal(err)
	}
	certs, err := reader.ReadCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certs.UserAuth, res.Delivered[0].Certificate) || !bytes.Equal(certs.Signature, res.Delivered[1].Certificate) ||
		!bytes.Equal(certs.SignatureCA, f.ca.caCert) || !bytes.Equal(certs.UserAuthCA, f.ca.caCert) {
		t.Error("card content differs from the delivered certificates")
	}
	if n, err := reader.PINTriesLeft(ctx, cardio.UserAuth); err != nil || n != 3 {
		t.Errorf("user-auth PIN tries %d, %v", n, err)
	}
	f.assertNoPINStored()
	// A second call has nothing left to issue.
	_, err = f.o.Issue(ctx, f.request())
	if !errors.Is(err, ErrNothingToIssue) && !errors.Is(err, apperr.InvalidTransition) {
		t.Errorf("second Issue: %v", err)
	}
}

func TestWeakPINIsAskedAgain(t *testing.T) {
	f := newFixture(t, workflow.UserAuthCert)
	var asked []PINRequest
	req := f.request()
	req.PINs = func(ctx context.Context, r PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		asked = append(asked, r)
		if r.Attempt == 1 {
			return pinrule.New("1234"), pinrule.New("1234"), nil // a run: TS Art. 4
		}
		if r.Attempt == 2 {
			return pinrule.New("0412"), pinrule.New("0412"), nil // the birthday (04-12)
		}
		return pinrule.New(testAuthPIN), pinrule.New(testAuthPIN), nil
	}
	if _, err := f.o.Issue(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 3 {
		t.Fatalf("asked %d times", len(asked))
	}
	var pe *pinrule.Error
	if !errors.As(asked[1].Refused, &pe) || pe.Reason != pinrule.ReasonSequence {
		t.Errorf("second ask refused %v, want the sequence rule", asked[1].Refused)
	}
	if !errors.As(asked[2].Refused, &pe) || pe.Reason != pinrule.ReasonBirthday {
		t.Errorf("third ask refused %v, want the birthday rule", asked[2].Refused)
	}
}

// abortedAtCA checks every issuance of the journal is revoked with reason 0 at the CA.
func (f *fixture) assertAllAborted(wantCleanup bool) {
	f.t.Helper()
	js := f.journal()
	if len(js) == 0 {
		f.t.Fatal("empty journal")
	}
	for _, e := range js {
		if e.State != workflow.IssAborted {
			f.t.Errorf("journal %s is %s, want aborted", e.CertType, e.State)
		}
		if e.IssuanceID != "" {
			is := f.ca.get(e.IssuanceID)
			if is.state != "revoked" || is.reason == nil || *is.reason != 0 {
				f.t.Errorf("CA issuance %s is %s reason %v, want revoked reason 0", is.id, is.state, is.reason)
			}
		}
	}
	for _, is := range f.ca.all() {
		if is.state != "revoked" {
			f.t.Errorf("CA issuance %s left %s", is.id, is.state)
		}
	}
	cleanup := false
	for _, e := range js {
		cleanup = cleanup || e.CardCleanup == CleanupRepersonalise
	}
	if cleanup != wantCleanup {
		f.t.Errorf("card cleanup recorded %v, want %v", cleanup, wantCleanup)
	}
}

func TestCardSwappedBeforeReadBackAborts(t *testing.T) {
	f := newFixture(t)
	other := blankCard(t, 0x33)
	req := f.request()
	req.PINs = func(ctx context.Context, r PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		if r.Kind == pinrule.Signature {
			f.sw.insert(other) // the applicant's card is pulled and another pushed in
		}
		return pins(ctx, r)
	}
	_, err := f.o.Issue(context.Background(), req)
	var ie *Error
	if !errors.As(err, &ie) || !errors.Is(err, cardio.ErrCardSwapped) {
		t.Fatalf("Issue: %v, want card swapped", err)
	}
	if !ie.Aborted || !ie.CardCleanup || ie.AbortPending {
		t.Errorf("error %+v", ie)
	}
	if msg := translations.ErrorText("ja", ie); !strings.Contains(msg, "差し替え") || !strings.Contains(msg, "交付前に破棄") {
		t.Errorf("message %q", msg)
	}
	f.assertAllAborted(true)
	if s := f.caseState(); s != workflow.Approved {
		t.Errorf("case %s, want approved (a new attempt may follow)", s)
	}
	f.assertNoPINStored()
}

func TestApplicantCancelsPINEntry(t *testing.T) {
	f := newFixture(t)
	req := f.request()
	req.PINs = func(ctx context.Context, r PINRequest) (pinrule.PIN, pinrule.PIN, error) {
		return pinrule.PIN{}, pinrule.PIN{}, errors.New("applicant left the counter")
	}
	_, err := f.o.Issue(context.Background(), req)
	if !errors.Is(err, ErrPINCancelled) || apperr.KindOf(err) != apperr.Cancelled {
		t.Fatalf("Issue: %v", err)
	}
	f.assertAllAborted(true)
}

func TestCardRefusesScriptNothingCommitted(t *testing.T) {
	f := newFixture(t, workflow.UserAuthCert)
	f.ca.corruptScript = 4 // FINALIZE's C-MAC: the card refuses it, nothing is committed
	_, err := f.o.Issue(context.Background(), f.request())
	var ie *Error
	if !errors.As(err, &ie) || ie.Step != StepScript || !ie.Aborted || ie.CardCleanup {
		t.Fatalf("Issue: %v (%+v)", err, ie)
	}
	f.assertAllAborted(false)
	if f.vcard.Lifecycle() != vcard.LifecycleBlank {
		t.Errorf("card is %s after a refused script", f.vcard.Lifecycle())
	}
	// The case can be retried on the same card.
	if _, err := f.o.Issue(context.Background(), f.request()); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

// TestReadBackChecksPersonalData: the signature certificate read back from the card must carry
// the applicant's four items and 外字 positions (read with jpki.ReadBasicInfo, TS Art. 11; R02
// II-2-5(4)(5)); a certificate for other data is not delivered. Seen failing on the old code:
// the read-back compared only bytes with what the CA answered, so a CA certificate with
// another person's data would have been delivered.
func TestReadBackChecksPersonalData(t *testing.T) {
	for name, alter := range map[string]func(*wire.Applicant){
		"name":           func(a *wire.Applicant) { a.Name = "別人 太郎" },
		"address":        func(a *wire.Applicant) { a.Address += "ー" },
		"name positions": func(a *wire.Applicant) { a.NameSubstitutes = "1" + strings.Repeat("0", len([]rune(a.Name))-1) },
		"birth date":     func(a *wire.Applicant) { a.BirthDate = "1999-01-01" },
		"sex":            func(a *wire.Applicant) { a.Sex = map[string]string{"1": "2", "2": "1"}[a.Sex] },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, workflow.SignatureCert)
			f.ca.alterSAN = alter
			_, err := f.o.Issue(context.Background(), f.request())
			if !errors.Is(err, ErrReadBack) {
				t.Fatalf("Issue: %v, want ErrReadBack", err)
			}
			f.assertAllAborted(true)
		})
	}
}

func TestCAUnreachableAtPrepareAborts(t *testing.T) {
	f := newFixture(t, workflow.UserAuthCert)
	f.ca.failPrepare = &raclient.Error{Code: wire.CodeUnavailable, Err: errors.New("connection refused")}
	_, err := f.o.Issue(context.Background(), f.request())
	var ie *Error
	if !errors.As(err, &ie) || ie.Step != StepPrepare {
		t.Fatalf("Issue: %v", err)
	}
	if !strings.Contains(translations.ErrorText("ja", ie), "認証局と通信できない") {
		t.Errorf("message %q", translations.ErrorText("ja", ie))
	}
	// The answer was lost, so the abort replays the journaled request to learn what the CA
	// did; the CA prepares it then (its channel was still open) and the issuance is revoked.
	f.assertAllAborted(false)
	if f.ca.calls["abort"] != 1 {
		t.Errorf("%d aborts at the CA", f.ca.calls["abort"])
	}
}

func TestLostConfirmAnswerEndsDelivered(t *testing.T) {
	f := newFixture(t, workflow.UserAuthCert)
	f.ca.loseConfirmAnswer = true
	_, err := f.o.Issue(context.Background(), f.request())
	if err == nil {
		t.Fatal("Issue succeeded despite the lost answer")
	}
	js := f.journal()
	if len(js) != 1 || js[0].State != workflow.IssDelivered || js[0].CardCleanup != CleanupNone {
		t.Fatalf("journal %+v, want delivered (the CA's word)", js)
	}
}

func TestIssueBusyWhileLocked(t *testing.T) {
	f := newFixture(t)
	l, err := acquire(f.o.cfg.LockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	if _, err := f.o.Issue(context.Background(), f.request()); !errors.Is(err, ErrBusy) {
		t.Errorf("Issue: %v, want ErrBusy", err)
	}
	if _, err := f.o.Recover(context.Background(), "-"); !errors.Is(err, ErrBusy) {
		t.Errorf("Recover: %v, want ErrBusy", err)
	}
	if len(f.journal()) != 0 {
		t.Error("journal written while busy")
	}
}

func TestIssueRefusesCaseWithoutExplanation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, _ := workflow.Open(workflow.NewIssuance, testApplicant(), []workflow.CertType{workflow.UserAuthCert}, false, time.Time{}, "clerk1", f.clk.Now())
	c.RecordIdentity(workflow.Evidence{Document: workflow.Passport})
	if err := f.db.Tx(ctx, func(tx *sql.Tx) error { return workflow.Insert(ctx, tx, c) }); err != nil {
		t.Fatal(err)
	}
	req := f.request()
	req.CaseID = c.ID
	_, err := f.o.Issue(ctx, req)
	if !errors.Is(err, apperr.InvalidTransition) {
		t.Errorf("Issue: %v", err)
	}
	if len(f.journal()) != 0 || f.ca.calls["open"] != 0 {
		t.Error("something started for a case without TS Art. 9 explanations")
	}
}

// TestRecoverAfterCrashAtEveryStep stops the terminal right after each journal step (as if
// killed there), restarts the orchestration on the same database and runs Recover.
func TestRecoverAfterCrashAtEveryStep(t *testing.T) {
	for _, tc := range []struct {
		at          State
		prepareSent bool // the prepare reached the CA although its answer was not journaled
		expire      bool // the CA's channel expired before recovery
		wantCA      bool // an issuance exists at the CA
		wantCleanup bool
	}{
		{at: workflow.IssStarted},
		{at: workflow.IssChannelOpened, expire: true},
		{at: workflow.IssChannelOpened, wantCA: true}, // the replay prepares on the open channel
		{at: workflow.IssChannelOpened, prepareSent: true, wantCA: true},
		{at: workflow.IssPrepared, wantCA: true, wantCleanup: true},
		{at: workflow.IssWritten, wantCA: true, wantCleanup: true},
		{at: workflow.IssPINSet, wantCA: true, wantCleanup: true},
		{at: workflow.IssVerified, wantCA: true, wantCleanup: true},
		{at: workflow.IssAborting, wantCA: true, wantCleanup: true},
	} {
		name := string(tc.at)
		if tc.prepareSent {
			name += "+prepare_sent"
		}
		if tc.expire {
			name += "+channel_expired"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, workflow.UserAuthCert)
			ctx := context.Background()
			var stopped Entry
			f.o.cfg.stop = func(e Entry) error {
				if e.State == tc.at {
					stopped = e
					return errStopped
				}
				return nil
			}
			if tc.at == workflow.IssAborting {
				f.ca.failConfirm = &raclient.Error{Status: 422, Code: wire.CodeCardResponseFailed, Message: "bad"}
			}
			if _, err := f.o.Issue(ctx, f.request()); !errors.Is(err, errStopped) {
				t.Fatalf("Issue: %v, want the simulated crash", err)
			}
			if tc.prepareSent {
				var req wire.PrepareRequest
				if err := jsonUnmarshal(stopped.PrepareRequest, &req); err != nil {
					t.Fatal(err)
				}
				if _, err := f.ca.Prepare(ctx, "clerk1", req); err != nil {
					t.Fatal(err)
				}
			}
			if tc.expire {
				f.ca.mu.Lock()
				clear(f.ca.channels)
				f.ca.mu.Unlock()
			}
			// Restart: a new orchestrator on the same database.
			o2, err := New(ctx, Config{DB: f.db, CA: f.ca, Clock: f.clk})
			if err != nil {
				t.Fatal(err)
			}
			res, err := o2.Recover(ctx, "-")
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 1 || res[0].Outcome != OutcomeAborted || res[0].From != tc.at {
				t.Fatalf("resolutions %+v", res)
			}
			if (res[0].CAState == "revoked") != tc.wantCA || res[0].CardCleanup != tc.wantCleanup {
				t.Errorf("resolution %+v", res[0])
			}
			if tc.wantCA && (res[0].RevocationReason == nil || *res[0].RevocationReason != 0) {
				t.Errorf("revocation reason %v, want 0", res[0].RevocationReason)
			}
			if msg := translations.MessageText("ja", res[0].Message()); !strings.Contains(msg, "利用者証明用電子証明書") {
				t.Errorf("message %q", msg)
			}
			f.assertAllAborted(tc.wantCleanup)
			if got := len(f.ca.all()); (got == 1) != tc.wantCA {
				t.Errorf("%d issuances at the CA", got)
			}
			// Nothing left for a second recovery, and the case can be issued again.
			if res, err := o2.Recover(ctx, "-"); err != nil || len(res) != 0 {
				t.Errorf("second Recover: %v %v", res, err)
			}
			if tc.wantCleanup {
				f.vcard = blankCard(t, 0x5B) // a fresh card
				f.sw.insert(f.vcard)
			}
			if _, err := o2.Issue(ctx, f.request()); err != nil {
				t.Errorf("issue after recovery: %v", err)
			}
		})
	}
}

func TestRecoverMarksDeliveredWhenCAConfirmed(t *testing.T) {
	f := newFixture(t, workflow.UserAuthCert)
	ctx := context.Background()
	// Stop right after "verified"; then the confirmation reaches the CA (the terminal died
	// before journaling the answer).
	f.o.cfg.stop = func(e Entry) error {
		if e.State == workflow.IssVerified {
			return errStopped
		}
		return nil
	}
	if _, err := f.o.Issue(ctx, f.request()); !errors.Is(err, errStopped) {
		t.Fatal(err)
	}
	js := f.journal()
	f.ca.mu.Lock()
	f.ca.issuances[js[0].IssuanceID].state = "delivered"
	f.ca.mu.Unlock()
	f.o.cfg.stop = nil
	res, err := f.o.Recover(ctx, "-")
	if err != nil || len(res) != 1 || res[0].Outcome != OutcomeDelivered || res[0].CardCleanup {
		t.Fatalf("Recover: %+v %v", res, err)
	}
	if js := f.journal(); js[0].State != workflow.IssDelivered {
		t.Errorf("journal %s", js[0].State)
	}
}

func TestRecoverLeavesPendingWhenCAUnreachable(t *testing.T) {
	f := newFixture(t, workflow.UserAuthCert)
	ctx := context.Background()
	f.o.cfg.stop = func(e Entry) error {
		if e.State == workflow.IssWritten {
			return errStopped
		}
		return nil
	}
	f.o.Issue(ctx, f.request())
	f.o.cfg.stop = nil
	f.ca.failAbort = &raclient.Error{Code: wire.CodeUnavailable, Err: errors.New("no route to host")}
	res, err := f.o.Recover(ctx, "-")
	if err != nil || len(res) != 1 || res[0].Outcome != OutcomePending {
		t.Fatalf("Recover: %+v %v", res, err)
	}
	if !strings.Contains(translations.MessageText("ja", res[0].Message()), "次回起動時") {
		t.Errorf("message %q", translations.MessageText("ja", res[0].Message()))
	}
	// The case refuses a new issuance until the entry is resolved.
	if _, err := f.o.Issue(ctx, f.request()); !errors.Is(err, ErrUnresolved) {
		t.Errorf("Issue with an unresolved entry: %v", err)
	}
	res, err = f.o.Recover(ctx, "-")
	if err != nil || len(res) != 1 || res[0].Outcome != OutcomeAborted {
		t.Fatalf("second Recover: %+v %v", res, err)
	}
	f.assertAllAborted(true)
}
