package issuance_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type rig struct {
	svc    *issuance.Service
	st     *store.SQLite
	keys   *issuancetest.Keys
	issuer *issuancetest.Issuer
	clock  *clock
	caller issuance.Caller
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
	for _, id := range []string{"t1", "t2"} {
		tok := sha256.Sum256([]byte(id))
		if err := st.CreateEnrolmentToken(ctx, store.EnrolmentToken{TokenSHA256: tok[:], Municipality: "131016", CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.EnrolTerminal(ctx, tok[:], store.Terminal{ID: id, CertSerial: "s-" + id}, clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	iss, err := issuancetest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	keys := &issuancetest.Keys{}
	svc, err := issuance.New(issuance.Config{Store: st, Keys: keys, Cards: issuancetest.Cards{}, Issuer: iss,
		Applicants: issuance.BasicApplicantChecker{Key: make([]byte, 32)}, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{svc: svc, st: st, keys: keys, issuer: iss, clock: clk, caller: issuance.Caller{TerminalID: "t1", Municipality: "131016", OperatorID: "op-1"}}
}

func applicant(code string) wire.Applicant {
	return wire.Applicant{ResidentCode: code, Name: "山田 太郎", BirthDate: "1990-02-28", Sex: "1", Address: "東京都千代田区千代田1-1", CardExpiry: "2030-12-31"}
}

// prepareReq opens a channel and answers it like a genuine card.
func (r *rig) prepareReq(t *testing.T, c issuance.Caller, reqID, code string, typ store.CertType) wire.PrepareRequest {
	t.Helper()
	ch, err := r.svc.OpenChannel(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	// each person's own card (issue 17: a card is written only when blank or the applicant's)
	card := "CARD-" + code
	return wire.PrepareRequest{RequestID: reqID, ChannelID: ch.ChannelID, CardSerial: card,
		InitUpdateResponse: issuancetest.CardCryptogram(card, ch.HostChallenge), CertType: string(typ), Applicant: applicant(code)}
}

func confirmReq(r *rig, t *testing.T, id, reqID string) wire.ConfirmRequest {
	is, err := r.st.Issuance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return wire.ConfirmRequest{RequestID: reqID, CardResponses: [][]byte{issuancetest.CardResponse(is.ChannelState, []byte("DONE"))}}
}

func code(err error) wire.Code { return wire.CodeOf(err) }

func TestPrepareConfirmDeliversAndDestroysKey(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	req := r.prepareReq(t, r.caller, "req-1", "12345678901", store.CertSign)
	resp, err := r.svc.Prepare(ctx, r.caller, req)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(resp.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if cert.SerialNumber.Text(16) != resp.Serial || resp.State != "prepared" || len(resp.Script) != 3 {
		t.Fatalf("serial %s vs %s, state %s, %d commands", cert.SerialNumber.Text(16), resp.Serial, resp.State, len(resp.Script))
	}
	if r.keys.LiveKeys() != 0 {
		t.Fatalf("%d HSM key copies left after prepare (TS Art. 5(iv))", r.keys.LiveKeys())
	}
	// replay of the same prepare: same answer, nothing new signed
	again, err := r.svc.Prepare(ctx, r.caller, req)
	if err != nil || again.IssuanceID != resp.IssuanceID || string(again.Certificate) != string(resp.Certificate) || r.issuer.SignedCount() != 1 {
		t.Fatalf("replayed prepare: %v, signed %d", err, r.issuer.SignedCount())
	}
	other := req
	other.CertType = "auth"
	if _, err := r.svc.Prepare(ctx, r.caller, other); code(err) != wire.CodeRequestIDReused {
		t.Fatalf("reused request id with another body: %v", err)
	}
	st, err := r.svc.Confirm(ctx, r.caller, resp.IssuanceID, confirmReq(r, t, resp.IssuanceID, "conf-1"))
	if err != nil || st.State != "delivered" {
		t.Fatalf("confirm: %+v %v", st, err)
	}
	if st2, err := r.svc.Confirm(ctx, r.caller, resp.IssuanceID, confirmReq(r, t, resp.IssuanceID, "conf-1")); err != nil || !st2.DeliveredAt.Equal(*st.DeliveredAt) {
		t.Fatalf("replayed confirm: %v", err)
	}
	if _, err := r.svc.Confirm(ctx, r.caller, resp.IssuanceID, confirmReq(r, t, resp.IssuanceID, "conf-2")); code(err) != wire.CodeInvalidState {
		t.Fatalf("second confirm with another id: %v", err)
	}
	is, _ := r.st.Issuance(ctx, resp.IssuanceID)
	if is.Script != nil {
		t.Fatal("script (wrapped key) kept after delivery")
	}
}

func TestPrepareRefusals(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	resp, err := r.svc.Prepare(ctx, r.caller, r.prepareReq(t, r.caller, "a", "11111111111", store.CertAuth))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Confirm(ctx, r.caller, resp.IssuanceID, confirmReq(r, t, resp.IssuanceID, "c")); err != nil {
		t.Fatal(err)
	}
	signed := r.issuer.SignedCount()
	generated := r.keys.Generated

	dup := r.prepareReq(t, r.caller, "b", "11111111111", store.CertAuth)
	if _, err := r.svc.Prepare(ctx, r.caller, dup); code(err) != wire.CodeDuplicatePerson {
		t.Fatalf("second certificate for the person: %v", err)
	}
	badCard := r.prepareReq(t, r.caller, "c", "22222222222", store.CertAuth)
	badCard.InitUpdateResponse = []byte("forged")
	if _, err := r.svc.Prepare(ctx, r.caller, badCard); code(err) != wire.CodeCardAuthFailed {
		t.Fatalf("forged cryptogram: %v", err)
	}
	badDate := r.prepareReq(t, r.caller, "d", "22222222222", store.CertAuth)
	badDate.Applicant.BirthDate = "1990-02-30"
	if _, err := r.svc.Prepare(ctx, r.caller, badDate); code(err) != wire.CodeInvalidApplicant {
		t.Fatalf("impossible date: %v", err)
	}
	otherTerm := issuance.Caller{TerminalID: "t2", OperatorID: "op"}
	stolen := r.prepareReq(t, r.caller, "e", "22222222222", store.CertAuth)
	if _, err := r.svc.Prepare(ctx, otherTerm, stolen); code(err) != wire.CodeNotFound {
		t.Fatalf("another terminal's channel: %v", err)
	}
	expired := r.prepareReq(t, r.caller, "f", "22222222222", store.CertAuth)
	r.clock.Advance(3 * time.Minute)
	if _, err := r.svc.Prepare(ctx, r.caller, expired); code(err) != wire.CodeChannelExpired {
		t.Fatalf("expired channel: %v", err)
	}
	if r.issuer.SignedCount() != signed || r.keys.Generated != generated {
		t.Fatalf("refused requests signed %d / generated %d keys", r.issuer.SignedCount()-signed, r.keys.Generated-generated)
	}
}

func TestDuplicateKeyRefused(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.svc.Prepare(ctx, r.caller, r.prepareReq(t, r.caller, "a", "11111111111", store.CertAuth)); err != nil {
		t.Fatal(err)
	}
	r.keys.Repeat = true
	_, err := r.svc.Prepare(ctx, r.caller, r.prepareReq(t, r.caller, "b", "22222222222", store.CertAuth))
	if code(err) != wire.CodeInternal || !errors.Is(err, store.ErrDuplicateKey) {
		t.Fatalf("repeated key: %v, want internal wrapping store.ErrDuplicateKey", err)
	}
	if r.issuer.SignedCount() != 1 || r.keys.LiveKeys() != 0 {
		t.Fatalf("signed %d, live keys %d", r.issuer.SignedCount(), r.keys.LiveKeys())
	}
	if _, err := r.st.IssuanceByRequest(ctx, "t1", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("issuance recorded for a duplicate key: %v", err)
	}
}

func TestIssuerFailureRevokesReasonZero(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.issuer.SetFail(true)
	if _, err := r.svc.Prepare(ctx, r.caller, r.prepareReq(t, r.caller, "a", "11111111111", store.CertSign)); code(err) != wire.CodeInternal {
		t.Fatalf("issuer failure: %v", err)
	}
	is, err := r.st.IssuanceByRequest(ctx, "t1", "a")
	if err != nil || is.State != store.StateRevoked || is.RevocationReason != 0 {
		t.Fatalf("after issuer failure: %s reason %d %v", is.State, is.RevocationReason, err)
	}
	if r.keys.LiveKeys() != 0 {
		t.Fatal("key not destroyed after failure")
	}
	// the person is free again
	r.issuer.SetFail(false)
	if _, err := r.svc.Prepare(ctx, r.caller, r.prepareReq(t, r.caller, "b", "11111111111", store.CertSign)); err != nil {
		t.Fatal(err)
	}
}

func TestConfirmAbortOwnershipAndSweeper(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a, err := r.svc.Prepare(ctx, r.caller, r.prepareReq(t, r.caller, "a", "11111111111", store.CertSign))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.svc.Prepare(ctx, r.caller, r.prepareReq(t, r.caller, "b", "22222222222", store.CertSign))
	if err != nil {
		t.Fatal(err)
	}
	other := issuance.Caller{TerminalID: "t2", OperatorID: "op"}
	if _, err := r.svc.Confirm(ctx, other, a.IssuanceID, confirmReq(r, t, a.IssuanceID, "x")); code(err) != wire.CodeNotFound {
		t.Fatalf("other terminal's confirm: %v", err)
	}
	if _, err := r.svc.Abort(ctx, other, a.IssuanceID, wire.AbortRequest{RequestID: "x"}); code(err) != wire.CodeNotFound {
		t.Fatalf("other terminal's abort: %v", err)
	}
	bad := wire.ConfirmRequest{RequestID: "x", CardResponses: [][]byte{[]byte("no")}}
	if _, err := r.svc.Confirm(ctx, r.caller, a.IssuanceID, bad); code(err) != wire.CodeCardResponseFailed {
		t.Fatalf("bad card response: %v", err)
	}
	if is, _ := r.st.Issuance(ctx, a.IssuanceID); is.State != store.StatePrepared {
		t.Fatalf("refused confirm changed state to %s", is.State)
	}
	st, err := r.svc.Abort(ctx, r.caller, a.IssuanceID, wire.AbortRequest{RequestID: "ab"})
	if err != nil || st.State != "revoked" || *st.RevocationReason != 0 {
		t.Fatalf("abort: %+v %v", st, err)
	}
	// sweeper: b passes its deadline
	if n, err := r.svc.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("early sweep: %d %v", n, err)
	}
	r.clock.Advance(11 * time.Minute)
	if _, err := r.svc.Confirm(ctx, r.caller, b.IssuanceID, confirmReq(r, t, b.IssuanceID, "late")); code(err) != wire.CodeInvalidState {
		t.Fatalf("confirm after deadline: %v", err)
	}
	is, _ := r.st.Issuance(ctx, b.IssuanceID)
	if is.State != store.StateRevoked || is.RevocationReason != 0 {
		t.Fatalf("overdue issuance: %s", is.State)
	}
	c, err := r.svc.Prepare(ctx, r.caller, r.prepareReq(t, r.caller, "c", "33333333333", store.CertSign))
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(11 * time.Minute)
	tick := make(chan time.Time)
	done := make(chan int, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.svc.RunSweeper(sctx, tick, func(n int, err error) { done <- n })
	tick <- time.Time{}
	if n := <-done; n != 1 {
		t.Fatalf("sweeper revoked %d, want 1", n)
	}
	st, _ = r.svc.Status(ctx, r.caller, c.IssuanceID)
	if st.State != "revoked" || *st.RevocationReason != 0 {
		t.Fatalf("swept: %+v", st)
	}
	// an abort after the sweeper is answered, not refused
	if _, err := r.svc.Abort(ctx, r.caller, c.IssuanceID, wire.AbortRequest{RequestID: "late"}); err != nil {
		t.Fatalf("abort after sweep: %v", err)
	}
}

// TestRenewalRuleFromCAsRecord: the validity rule of a superseding issuance comes from the CA's
// own record of the person's current certificate (CPS §6.3.2.2 ①), through the service's clock
// seam; the request's kind only says what was asked. (The fake issuer ends a certificate on its
// card's expiry, so the card expiry sets how long the "current" certificate has left.) Seen
// failing before the fix: IssueRequest had no CurrentNotAfter and a too-early renewal was issued.
func TestRenewalRuleFromCAsRecord(t *testing.T) {
	r := newRig(t) // 2026-04-01: the window closes on 2026-07-01
	ctx := context.Background()
	n := 0
	issue := func(code, kind string, supersedes bool, cardExpiry string) (time.Time, error) {
		t.Helper()
		n++
		id := fmt.Sprintf("r%d", n)
		req := r.prepareReq(t, r.caller, id, code, store.CertSign)
		req.Kind, req.Supersedes, req.Applicant.CardExpiry = kind, supersedes, cardExpiry
		resp, err := r.svc.Prepare(ctx, r.caller, req)
		if err != nil {
			return time.Time{}, err
		}
		if _, err := r.svc.Confirm(ctx, r.caller, resp.IssuanceID, confirmReq(r, t, resp.IssuanceID, id+"-c")); err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(resp.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		return c.NotAfter, nil
	}
	mustIssue := func(code, kind string, supersedes bool, cardExpiry string) time.Time {
		t.Helper()
		na, err := issue(code, kind, supersedes, cardExpiry)
		if err != nil {
			t.Fatalf("%s %s: %v", kind, code, err)
		}
		return na
	}
	early := func() time.Time { return r.issuer.LastRequest().CurrentNotAfter }

	// A: current certificate ends 2026-06-15, inside the window: renewal gets the 6th birthday.
	cur := mustIssue("11111111111", wire.KindNew, false, "2026-06-15")
	if !early().IsZero() {
		t.Fatal("a new issuance was given the 6th-birthday rule")
	}
	mustIssue("11111111111", wire.KindRenewal, true, "2030-12-31")
	if !early().Equal(cur) {
		t.Fatalf("renewal inside the window: CurrentNotAfter %v, want %v", early(), cur)
	}
	// The renewed certificate runs to 2030: a renewal now is refused before a key is spent...
	generated := r.keys.Generated
	if _, err := issue("11111111111", wire.KindRenewal, true, "2030-12-31"); code(err) != wire.CodeRenewalTooEarly {
		t.Fatalf("renewal with years left: %v", err)
	}
	if r.keys.Generated != generated {
		t.Fatal("a refused renewal generated a key")
	}
	// ...while a new card supersedes it with the ordinary rule.
	mustIssue("11111111111", wire.KindNewCard, true, "2030-12-31")
	if !early().IsZero() {
		t.Fatal("a new card with years left was given the 6th-birthday rule")
	}
	// An old terminal (no kind, supersedes) is a new card: never refused as too early.
	mustIssue("11111111111", "", true, "2030-12-31")
	if !early().IsZero() {
		t.Fatal("a superseding request without kind and years left was given the 6th-birthday rule")
	}

	// B: "renewal" without any certificate at the CA: the ordinary rule.
	mustIssue("22222222222", wire.KindRenewal, true, "2030-12-31")
	if !early().IsZero() {
		t.Fatal("a renewal claim without a current certificate was given the 6th-birthday rule")
	}

	// D: a new card inside the window gets the 6th birthday too (CPS §6.3.2.2 ①: whoever asks,
	// inside the window, for the current certificate's revocation and a new one).
	cur = mustIssue("44444444444", wire.KindNew, false, "2026-04-02")
	mustIssue("44444444444", wire.KindNewCard, true, "2030-12-31")
	if !early().Equal(cur) {
		t.Fatalf("new card inside the window: CurrentNotAfter %v, want %v", early(), cur)
	}

	// Kind and supersedes must agree; unknown kinds are refused.
	for _, c := range []struct {
		kind       string
		supersedes bool
	}{{wire.KindNew, true}, {wire.KindRenewal, false}, {wire.KindNewCard, false}, {"update", true}} {
		if _, err := issue("55555555555", c.kind, c.supersedes, "2030-12-31"); code(err) != wire.CodeInvalidRequest {
			t.Errorf("kind %q supersedes %v: %v", c.kind, c.supersedes, err)
		}
	}

	// C: a current certificate that has expired (still "delivered" in the store) is no current
	// certificate: a renewal gets the ordinary rule, not a refusal or the 6th birthday.
	mustIssue("33333333333", wire.KindNew, false, "2026-05-01")
	r.clock.Advance(40 * 24 * time.Hour)
	mustIssue("33333333333", wire.KindRenewal, true, "2030-12-31")
	if !early().IsZero() {
		t.Fatal("renewal of an expired certificate was given the 6th-birthday rule")
	}
}
