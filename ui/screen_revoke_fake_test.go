package ui

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/printout"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
	"madoguchi/assets/fonts/printfonts"
	"madoguchi/raclient"
)

// deskBackend is fakeBackend whose sessions also offer the counter-procedure and
// resident-change desks, over fakeDesk. The case life runs on app/workflow's real state
// machine; the CA is an in-process stand-in that refuses as ca-server does (through
// app.CAError wrapping raclient's kinds).
type deskBackend struct {
	*fakeBackend
	desk *fakeDesk
}

func newDeskBackend(t *testing.T, ops ...*fakeOperator) *deskBackend {
	return &deskBackend{fakeBackend: newFakeBackend(ops...), desk: newFakeDesk(t)}
}

func (b *deskBackend) LoginFingerprint(ctx context.Context, id string, progress func(ScanEvent)) (Session, error) {
	s, err := b.fakeBackend.LoginFingerprint(ctx, id, progress)
	if err != nil {
		return nil, err
	}
	return &deskSession{fakeSession: s.(*fakeSession), fakeDesk: b.desk}, nil
}

type deskSession struct {
	*fakeSession
	*fakeDesk
}

var (
	_ RevocationDesk     = (*deskSession)(nil)
	_ HoldReleaseDesk    = (*deskSession)(nil)
	_ ResidentChangeDesk = (*deskSession)(nil)
)

// fakeDesk holds the fake domain's state. Safe for concurrent use.
type fakeDesk struct {
	mu        sync.Mutex
	now       time.Time
	printer   *printout.Printer
	residents map[string]resident.Resident
	cases     map[int64]*workflow.Case
	state     map[string]string // serial → delivered / held / revoked
	orders    []RevocationOrder
	releases  []HoldReleaseOrder
	changes   []ResidentChangeEntry
	outbox    []OutboxEntry
	// deny, when set, refuses every call as the domain does for a withdrawn permission.
	deny error
	// caDown makes the CA unreachable; noCA: the terminal has no CA link at all.
	caDown, noCA bool
	// copySerial, when set, is the serial number of the certificates the fake card holds.
	copySerial *big.Int
}

func newFakeDesk(t *testing.T) *fakeDesk {
	return &fakeDesk{now: time.Date(2026, 4, 1, 1, 30, 0, 0, time.UTC), printer: testPrinter(t),
		residents: map[string]resident.Resident{
			"12345678901": {RecordCode: "12345678901", Name: "山田 太郎", NameKana: "ヤマダ タロウ", BirthDate: "1980-04-01", Sex: "M",
				Address: "東京都千代田区霞が関1-1", Status: resident.StatusResident},
			"23456789012": {RecordCode: "23456789012", Name: "𠮷田 花子", NameKana: "ヨシダ ハナコ", BirthDate: "1992-02-29", Sex: "F",
				Address: "東京都千代田区永田町2-2", Status: resident.StatusResident},
		},
		cases: map[int64]*workflow.Case{},
		state: map[string]string{"1A2B": "delivered", "3C4D": "delivered", "DEAD": "revoked", "BEEF": "held"}}
}

var (
	printerOnce sync.Once
	printerVal  *printout.Printer
	printerErr  error
)

// testPrinter is app/printout's printer with the TrueType print fonts its tests use.
func testPrinter(t *testing.T) *printout.Printer {
	t.Helper()
	printerOnce.Do(func() {
		f := printout.Fonts{Regular: printfonts.Regular(), Bold: printfonts.Bold()}
		printerVal, printerErr = printout.New(f)
	})
	if printerErr != nil {
		t.Fatal(printerErr)
	}
	return printerVal
}

func (d *fakeDesk) caseState(id int64) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.cases[id]; c != nil {
		return string(c.State)
	}
	return ""
}

func (d *fakeDesk) step(id int64, f func(c *workflow.Case) error) (ProcedureCase, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deny != nil {
		return ProcedureCase{}, d.deny
	}
	c, ok := d.cases[id]
	if !ok {
		return ProcedureCase{}, apperr.New(apperr.NotFound, "workflow: no case %d", id)
	}
	cp := *c
	err := f(&cp)
	if err == nil || apperr.KindOf(err) == apperr.IdentityDoubt {
		*c = cp
		return procedureCaseOf(c), err
	}
	return ProcedureCase{}, err
}

func (d *fakeDesk) OpenProcedure(ctx context.Context, kind ProcedureKind, code string) (ProcedureCase, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deny != nil {
		return ProcedureCase{}, d.deny
	}
	r, ok := d.residents[code]
	if !ok {
		return ProcedureCase{}, apperr.New(apperr.NotFound, "resident: %s not found", code)
	}
	c, err := workflow.Open(workflow.Kind(kind), r, nil, false, time.Time{}, "R001", d.now)
	if err != nil {
		return ProcedureCase{}, err
	}
	c.ID = int64(len(d.cases) + 1)
	d.cases[c.ID] = c
	return procedureCaseOf(c), nil
}

func (d *fakeDesk) RecordProcedureIdentity(ctx context.Context, id int64, e ProcedureEvidence) (ProcedureCase, error) {
	return d.step(id, func(c *workflow.Case) error {
		return c.RecordIdentity(workflow.Evidence{Document: workflow.Document(e.Document), DocumentRef: e.DocumentRef, Proxy: e.Proxy,
			PowerOfAttorney: e.PowerOfAttorney, InquiryReply: e.InquiryReply, ProxyName: e.ProxyName,
			ProxyDocument: workflow.Document(e.ProxyDocument), Doubt: e.Doubt})
	})
}

func (d *fakeDesk) ApproveProcedure(ctx context.Context, id int64) (ProcedureCase, error) {
	return d.step(id, func(c *workflow.Case) error { return c.Approve("R001") })
}

func (d *fakeDesk) RefuseProcedure(ctx context.Context, id int64, reason string) (ProcedureCase, error) {
	return d.step(id, func(c *workflow.Case) error { return c.Refuse("R001", reason) })
}

func (d *fakeDesk) StopProcedure(ctx context.Context, id int64, reason string) (ProcedureCase, error) {
	return d.step(id, func(c *workflow.Case) error { return c.Stop(reason) })
}

// caRefusal is a CA refusal as app returns it.
func caRefusal(op string, kind apperr.Kind, cause error) error {
	return &app.CAError{Kind: kind, Op: op, Err: fmt.Errorf("%w: %w", cause, &raclient.Error{Status: 409, Message: "refused"})}
}

var reasonJa = map[RevocationRequestKind]struct {
	code   int
	ja, en string
}{
	RevokeStopUsing: {5, "電子証明書の必要性がなくなった", "the certificate is no longer needed"}, RevokeCardAbolished: {5, "電子証明書の必要性がなくなった", "the certificate is no longer needed"},
	RevokeKeyCompromise: {1, "利用者の秘密鍵が危殆化した", "the holder's private key is compromised"}, RevokeCardUnusable: {1, "利用者の秘密鍵が危殆化した", "the holder's private key is compromised"},
}

func (d *fakeDesk) RevokeAtCounter(ctx context.Context, o RevocationOrder) (RevocationReceipt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deny != nil {
		return RevocationReceipt{}, d.deny
	}
	d.orders = append(d.orders, o)
	c := d.cases[o.CaseID]
	if c == nil || c.State != workflow.Approved {
		return RevocationReceipt{}, apperr.New(apperr.InvalidTransition, "app: case not approved")
	}
	if d.caDown {
		return RevocationReceipt{}, &app.CAError{Kind: apperr.CAUnavailable, Op: "revoke", Err: raclient.ErrUnavailable}
	}
	var out RevocationReceipt
	out.Notice = printout.RevocationNotice{Municipality: "千代田区", ReceiptNo: fmt.Sprint(o.CaseID), OperatorID: "R001",
		HolderName: c.Applicant.Name, ReceivedAt: c.OpenedAt, Date: d.now.Add(2 * time.Minute)}
	for _, t := range []CertType{CertSignature, CertUserAuth} {
		serial, ok := o.Serials[t]
		if !ok {
			continue
		}
		switch d.state[serial] {
		case "":
			return out, caRefusal("revoke", apperr.NotFound, raclient.ErrNotFound)
		case "revoked":
			return out, caRefusal("revoke", apperr.InvalidTransition, raclient.ErrAlreadyRevoked)
		}
		d.state[serial] = "revoked"
		r := reasonJa[o.Kind]
		at := d.now.Add(time.Minute)
		out.Revoked = append(out.Revoked, RevokedCertificate{CertType: t, Serial: serial, Reason: r.code, ReasonJa: r.ja, ReasonEn: r.en, RevokedAt: at})
		n, _ := new(big.Int).SetString(serial, 16)
		kind := printout.Signature
		if t == CertUserAuth {
			kind = printout.UserAuth
		}
		out.Notice.Revoked = append(out.Notice.Revoked, printout.Revoked{Kind: kind, Serial: n, Reason: printout.Reason(r.code), RevokedAt: at})
	}
	if err := c.Complete(); err != nil {
		return out, err
	}
	return out, nil
}

func (d *fakeDesk) RevocationNoticePDF(ctx context.Context, n printout.RevocationNotice) ([]byte, error) {
	return d.printer.RevocationNotice(n)
}

func (d *fakeDesk) ReleaseHoldAtCounter(ctx context.Context, o HoldReleaseOrder) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deny != nil {
		return "", d.deny
	}
	d.releases = append(d.releases, o)
	c := d.cases[o.CaseID]
	if c == nil || c.State != workflow.Approved {
		return "", apperr.New(apperr.InvalidTransition, "app: case not approved")
	}
	switch d.state[o.Serial] {
	case "":
		return "", caRefusal("release-hold", apperr.NotFound, raclient.ErrNotFound)
	case "revoked":
		return "", caRefusal("release-hold", apperr.InvalidTransition, raclient.ErrAlreadyRevoked)
	case "delivered":
		return "", caRefusal("release-hold", apperr.InvalidTransition, raclient.ErrNotOnHold)
	}
	d.state[o.Serial] = "delivered"
	return "delivered", c.Complete()
}

func (d *fakeDesk) SearchResidents(ctx context.Context, q ResidentQuery) ([]ResidentSummary, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deny != nil {
		return nil, d.deny
	}
	var out []ResidentSummary
	codes := make([]string, 0, len(d.residents))
	for code := range d.residents {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		r := d.residents[code]
		if (q.RecordCode == "" || q.RecordCode == code) && (q.Name == "" || strings.Contains(r.Name, q.Name)) &&
			(q.NameKana == "" || strings.HasPrefix(r.NameKana, q.NameKana)) {
			out = append(out, ResidentSummary{RecordCode: code, Name: r.Name, NameKana: r.NameKana, BirthDate: r.BirthDate, Status: string(r.Status)})
		}
	}
	return out, nil
}

func (d *fakeDesk) RecordChange(ctx context.Context, c ResidentChangeEntry) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deny != nil {
		return d.deny
	}
	r, ok := d.residents[c.RecordCode]
	if !ok {
		return apperr.New(apperr.NotFound, "resident: %s not found", c.RecordCode)
	}
	if r.Status == resident.StatusDeceased {
		return apperr.New(apperr.ResidentNotEligible, "resident: %s is deceased", c.RecordCode)
	}
	switch c.Kind {
	case ChangeDeath:
		r.Status = resident.StatusDeceased
	case ChangeMoveOut:
		r.Status = resident.StatusMovedOut
	case ChangeName:
		if c.NewName == "" || c.NewKana == "" {
			return apperr.New(apperr.InvalidInput, "resident: name change needs the new name and kana")
		}
		r.Name, r.NameKana = c.NewName, c.NewKana
	}
	d.residents[c.RecordCode] = r
	d.changes = append(d.changes, c)
	d.outbox = append(d.outbox, OutboxEntry{ID: int64(len(d.outbox) + 1), RecordCode: c.RecordCode, Kind: c.Kind, Effective: c.Effective,
		RecordedAt: d.now, State: OutboxPending})
	return nil
}

func (d *fakeDesk) PendingOutbox(ctx context.Context) ([]OutboxEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deny != nil {
		return nil, d.deny
	}
	var out []OutboxEntry
	for _, e := range d.outbox {
		if e.State != OutboxSent {
			out = append(out, e)
		}
	}
	return out, nil
}

func (d *fakeDesk) SendOutbox(ctx context.Context) ([]OutboxEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deny != nil {
		return nil, d.deny
	}
	if d.noCA {
		return nil, apperr.New(apperr.CAUnavailable, "app: no CA configured")
	}
	var out []OutboxEntry
	for i, e := range d.outbox {
		if e.State == OutboxSent {
			continue
		}
		if d.caDown {
			e.State, e.Attempts, e.Failure = OutboxFailed, e.Attempts+1, &app.CAError{Kind: apperr.CAUnavailable, Op: "resident-change", Err: raclient.ErrUnavailable}
		} else {
			e.State = OutboxSent
			switch e.Kind {
			case ChangeDeath:
				e.Revoked = []CertType{CertSignature, CertUserAuth}
			case ChangeMoveOut:
				e.Deferred = []CertType{CertUserAuth}
			case ChangeName:
				e.Revoked = []CertType{CertSignature}
			}
		}
		d.outbox[i] = e
		out = append(out, e)
	}
	return out, nil
}
