package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
)

// recDesk is an in-process ReceptionDesk for the wizard's tests: the case runs through the
// real workflow state machine in memory, PINs are judged by the real app/pinrule rules, and
// Issue is scripted per test. The real domain path is TestReceptionIssueRealApp.
type recDesk struct {
	mu        sync.Mutex
	file      []byte // the only file OpenIssuance accepts
	openErr   error
	applicant *resident.Resident // the file's resident; default recApplicant()
	apps      []IssuanceApplication
	subs      [][]resident.Substitution
	subsErr   error // SetSubstitutions refuses with it when set
	c         *workflow.Case
	evidence  []workflow.Evidence
	explained [][]workflow.Item
	stops     []string
	orders    []IssuanceOrder
	pinChecks []PINKind
	// issue runs the issuance; default: recIssueOK.
	issue  func(ctx context.Context, o IssuanceOrder) (*issue.Result, error)
	notice []byte
}

var _ ReceptionDesk = (*recDesk)(nil)

func recApplicant() resident.Resident {
	return resident.Resident{RecordCode: "90000000088", Name: "鈴木 一郎", NameKana: "スズキ イチロウ", BirthDate: "1985-03-15", Sex: "M",
		Address: "東京都架空区見本町一丁目2番3号", Status: resident.StatusResident}
}

func (d *recDesk) OpenIssuance(ctx context.Context, a IssuanceApplication) (*workflow.Case, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.apps = append(d.apps, a)
	if d.openErr != nil {
		return nil, d.openErr
	}
	if string(a.ResidentFile) != string(d.file) {
		return nil, apperr.New(apperr.FileTampered, "resident: file mac mismatch")
	}
	applicant := recApplicant()
	if d.applicant != nil {
		applicant = *d.applicant
	}
	c, err := workflow.Open(a.Kind, applicant, a.CertTypes, a.NewCard, a.CurrentExpiry, "R001", time.Now())
	if err != nil {
		return nil, err
	}
	c.ID = 42
	d.c = c
	cc := *c
	return &cc, nil
}

func (d *recDesk) RecordIdentity(ctx context.Context, id int64, e workflow.Evidence) (*workflow.Case, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.evidence = append(d.evidence, e)
	err := d.c.RecordIdentity(e)
	if err != nil && !errors.Is(err, apperr.IdentityDoubt) {
		return nil, err
	}
	cc := *d.c
	return &cc, err
}

func (d *recDesk) RecordExplanation(ctx context.Context, id int64, items []workflow.Item) (*workflow.Case, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.explained = append(d.explained, items)
	if err := d.c.RecordExplanation(items); err != nil {
		return nil, err
	}
	cc := *d.c
	return &cc, nil
}

func (d *recDesk) SetSubstitutions(ctx context.Context, id int64, subs []resident.Substitution) (*workflow.Case, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.subs = append(d.subs, subs)
	if d.subsErr != nil {
		return nil, d.subsErr
	}
	if err := d.c.SetSubstitutions(subs); err != nil {
		return nil, err
	}
	cc := *d.c
	return &cc, nil
}

func (d *recDesk) StopCase(ctx context.Context, id int64, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stops = append(d.stops, reason)
	return d.c.Stop(reason)
}

func (d *recDesk) Issue(ctx context.Context, o IssuanceOrder) (*issue.Result, error) {
	d.mu.Lock()
	d.orders = append(d.orders, o)
	f := d.issue
	d.mu.Unlock()
	if f == nil {
		f = recIssueOK(nil)
	}
	return f(ctx, o)
}

func (d *recDesk) IssuanceNotice(ctx context.Context, id int64, res *issue.Result) ([]byte, error) {
	return d.notice, nil
}

// CheckApplicantPIN implements PINJudge with the domain's own rules (TS Art. 4).
func (d *recDesk) CheckApplicantPIN(ctx context.Context, caseID int64, kind PINKind, pin []byte) error {
	d.mu.Lock()
	d.pinChecks = append(d.pinChecks, kind)
	d.mu.Unlock()
	k := pinrule.Signature
	if kind == PINUserAuth {
		k = pinrule.UserAuth
	}
	p := pinrule.New(string(pin))
	return pinrule.Check(k, p, p, pinrule.Applicant{BirthDate: time.Date(1985, 3, 15, 0, 0, 0, 0, time.UTC)})
}

func (d *recDesk) state() workflow.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return ""
	}
	return d.c.State
}

// recIssueOK walks the orchestration's steps like app/issue does for two certificates,
// asks the applicant for both PINs (collected into pins when not nil) and delivers. gate, when
// not nil, is waited on after the signature script (to look at the progress page).
func recIssueOK(gate chan struct{}) func(ctx context.Context, o IssuanceOrder) (*issue.Result, error) {
	return func(ctx context.Context, o IssuanceOrder) (*issue.Result, error) {
		for _, t := range []workflow.CertType{workflow.UserAuthCert, workflow.SignatureCert} {
			o.Progress(issue.StepPrepare, t)
			o.Progress(issue.StepScript, t)
		}
		if gate != nil {
			<-gate
		}
		o.Progress(issue.StepPIN, "")
		for _, k := range []PINKind{PINUserAuth, PINSignature} {
			pin, err := o.PIN(ctx, ApplicantPINRequest{Kind: k, Attempt: 1})
			if err != nil {
				return nil, &issue.Error{Step: issue.StepPIN, Kind: apperr.Cancelled, Aborted: true, Err: fmt.Errorf("%w: %w", issue.ErrPINCancelled, err)}
			}
			clear(pin)
		}
		o.Progress(issue.StepVerify, "")
		o.Progress(issue.StepConfirm, "")
		return &issue.Result{CaseID: o.CaseID, CardSerial: strings.Repeat("5A", 16), Delivered: []issue.Delivered{
			{CertType: workflow.UserAuthCert, Serial: "1f2e3d"}, {CertType: workflow.SignatureCert, Serial: "4c5b6a"}}}, nil
	}
}

// receptionBackend logs operators in with sessions that offer the fake desk.
type receptionBackend struct {
	*fakeBackend
	desk *recDesk
}

type receptionTestSession struct {
	Session
	*recDesk
}

func (b receptionBackend) LoginFingerprint(ctx context.Context, id string, progress func(ScanEvent)) (Session, error) {
	s, err := b.fakeBackend.LoginFingerprint(ctx, id, progress)
	if err != nil {
		return nil, err
	}
	return &receptionTestSession{Session: s, recDesk: b.desk}, nil
}

// recHarness is a logged-in reception clerk on the wizard, with one resident file waiting.
type recHarness struct {
	t     *testing.T
	s     *Shell
	w     fyne.Window
	desk  *recDesk
	wiz   *issueWizard
	file  string
	dir   string
	saved string // NoticeDir
}

func newRecHarness(t *testing.T) *recHarness {
	t.Helper()
	desk := &recDesk{file: []byte(`{"format":"madoguchi-resident-file/1"}`), notice: []byte("%PDF-1.4 fake\n")}
	h := &recHarness{t: t, desk: desk, dir: t.TempDir()}
	screens := []Screen{homeScreen(), {ID: ReceptionIssueID, Title: "reception.issue.title", Permission: PermissionReception,
		View: func(s *Shell) fyne.CanvasObject { h.wiz = buildIssueWizard(s); return h.wiz.root() }}}
	h.s, h.w = newTestShell(t, receptionBackend{newFakeBackend(receptionClerk()), desk}, screens, true)
	h.s.ResidentFileDir = filepath.Join(h.dir, "resident-files")
	h.saved = filepath.Join(h.dir, "notices")
	h.s.Terminal = TerminalWiring{NoticeDir: h.saved}
	if err := os.MkdirAll(h.s.ResidentFileDir, 0o700); err != nil {
		t.Fatal(err)
	}
	h.file = filepath.Join(h.s.ResidentFileDir, "resident-90000000088-20260302-100000.000.json")
	if err := os.WriteFile(h.file, desk.file, 0o600); err != nil {
		t.Fatal(err)
	}
	loginAs(t, h.s, "R001")
	waitFor(t, "log-in", func() bool { return h.s.Session() != nil })
	if err := h.s.Show(ReceptionIssueID); err != nil {
		t.Fatal(err)
	}
	if h.wiz.step != stepFile {
		t.Fatalf("wizard opens at %q", h.wiz.step)
	}
	return h
}

func (h *recHarness) waitStep(step wizardStep) {
	h.t.Helper()
	waitFor(h.t, "step "+string(step), func() bool { return h.wiz.step == step })
}

func (h *recHarness) importFile() {
	h.t.Helper()
	if len(h.wiz.files.Options) != 1 {
		h.t.Fatalf("files offered: %v", h.wiz.files.Options)
	}
	h.wiz.files.SetSelected(h.wiz.files.Options[0])
	test.Tap(h.wiz.importBtn)
	h.waitStep(stepExistence)
}

func (h *recHarness) identitySelf() {
	h.t.Helper()
	test.Tap(h.wiz.existenceNext)
	h.waitStep(stepIdentity)
	h.wiz.document.SetSelected(recDocumentName(workflow.DriversLicence))
	test.Type(h.wiz.documentRef, "5678")
	h.wiz.documentRef.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	h.waitStep(stepExplanation)
}

func (h *recHarness) explainAll() {
	h.t.Helper()
	for _, c := range h.wiz.explained {
		test.Tap(c)
	}
	test.Tap(h.wiz.explainBtn)
	h.waitStep(stepCard)
}

func (h *recHarness) start() {
	h.t.Helper()
	test.Type(h.wiz.expiry, "2035-04-01")
	h.wiz.expiry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	// The progress page is up at once; the issuance's own results wait in the UI queue.
	if h.wiz.step != stepIssuing {
		h.t.Fatalf("step %s after starting the issuance", h.wiz.step)
	}
}

// pinScreen waits for the applicant PIN screen of kind.
func (h *recHarness) pinScreen(kind PINKind) *pinEntry {
	h.t.Helper()
	waitFor(h.t, "the applicant PIN screen", func() bool { return h.s.pin != nil && h.s.pin.req.Kind == kind })
	return h.s.pin
}

func recEnterPIN(p *pinEntry, pin string) {
	test.Type(p.first, pin)
	p.first.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	test.Type(p.second, pin)
	p.second.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
}

func TestReceptionIssueWizardDelivers(t *testing.T) {
	h := newRecHarness(t)
	if !h.wiz.typeSign.Checked || !h.wiz.typeAuth.Checked {
		t.Error("both certificate types are not offered checked")
	}
	h.importFile()
	if _, err := os.Stat(h.file); !os.IsNotExist(err) {
		t.Error("the imported (consumed) file is still offered in the hand-over folder")
	}
	h.identitySelf()
	if got := h.desk.evidence; len(got) != 1 || got[0].Document != workflow.DriversLicence || got[0].DocumentRef != "5678" || got[0].Proxy {
		t.Errorf("evidence %+v", got)
	}
	if n := len(h.wiz.explained); n != 4 {
		t.Errorf("%d explanation items for a signature certificate, want 4 (TS Art. 9(1))", n)
	}
	h.explainAll()
	if s := h.desk.state(); s != workflow.Explained {
		t.Errorf("case %s after the explanations", s)
	}
	h.start()
	// The applicant sets the user-authentication PIN, then the signature PIN.
	recEnterPIN(h.pinScreen(PINUserAuth), "5830")
	recEnterPIN(h.pinScreen(PINSignature), "SAKURA73")
	h.waitStep(stepResult)
	if o := h.desk.orders[0]; !o.CardExpiry.Equal(time.Date(2035, 4, 1, 0, 0, 0, 0, japanTime)) || o.CaseID != 42 {
		t.Errorf("order: case %d expiry %v", o.CaseID, o.CardExpiry)
	}
	if !slices.Equal(h.desk.pinChecks, []PINKind{PINUserAuth, PINSignature}) {
		t.Errorf("PIN checks %v", h.desk.pinChecks)
	}
	if h.w.Content() == nil || h.s.pin != nil {
		t.Error("the applicant screen is still up after the PINs")
	}
	for i, st := range h.wiz.progress.state {
		if st != stageDone {
			t.Errorf("stage %d (%s) is %d after delivery", i, h.wiz.progress.names[i], st)
		}
	}
	waitFor(t, "the notice", func() bool { return h.wiz.savedPath() != "" })
	fi, err := os.Stat(h.wiz.savedPath())
	if err != nil || fi.Mode().Perm() != 0o600 || filepath.Dir(h.wiz.savedPath()) != h.saved {
		t.Errorf("notice saved as %s: %v %v", h.wiz.savedPath(), fi, err)
	}
	if got, want := h.wiz.noticePath.Text, tr("reception.notice.saved_no_printer", map[string]any{"Path": h.wiz.savedPath()}); got != want {
		t.Errorf("notice message %q, want %q", got, want)
	}
	if !h.wiz.printBtn.Disabled() {
		t.Error("print offered on a terminal without a printer")
	}
}

func TestReceptionIdentityProxyBranch(t *testing.T) {
	h := newRecHarness(t)
	h.importFile()
	test.Tap(h.wiz.existenceNext)
	h.waitStep(stepIdentity)
	if h.wiz.proxyBox.Visible() {
		t.Error("proxy documents shown for the applicant in person")
	}
	h.wiz.who.SetSelected(tr("reception.identity.proxy"))
	if !h.wiz.proxyBox.Visible() {
		t.Fatal("proxy documents not shown for a proxy")
	}
	h.wiz.document.SetSelected(recDocumentName(workflow.MyNumberCard))
	steps := []func(){
		func() { test.Tap(h.wiz.poa) },
		func() { test.Tap(h.wiz.inquiry) },
		func() { test.Type(h.wiz.proxyName, "佐藤 花子") },
	}
	for i, step := range steps {
		step()
		if !h.wiz.identityBtn.Disabled() {
			t.Fatalf("next enabled with only %d of the 4 proxy items", i+1)
		}
	}
	test.Tap(h.wiz.identityBtn) // disabled: nothing happens
	if len(h.desk.evidence) != 0 {
		t.Fatal("incomplete proxy evidence sent to the domain")
	}
	h.wiz.proxyDoc.SetSelected(recDocumentName(workflow.Passport))
	if h.wiz.identityBtn.Disabled() {
		t.Fatal("next still disabled with every proxy item")
	}
	test.Tap(h.wiz.identityBtn)
	h.waitStep(stepExplanation)
	e := h.desk.evidence[0]
	if !e.Proxy || !e.PowerOfAttorney || !e.InquiryReply || e.ProxyName != "佐藤 花子" || e.ProxyDocument != workflow.Passport || e.Document != workflow.MyNumberCard {
		t.Errorf("proxy evidence %+v", e)
	}
}

func TestReceptionIdentityDoubtStopsCase(t *testing.T) {
	h := newRecHarness(t)
	h.importFile()
	test.Tap(h.wiz.existenceNext)
	h.waitStep(stepIdentity)
	h.wiz.document.SetSelected(recDocumentName(workflow.DriversLicence))
	test.Tap(h.wiz.doubt)
	if !h.wiz.identityBtn.Disabled() {
		t.Error("a doubt without its reason can be recorded")
	}
	test.Type(h.wiz.doubtReason, "写真と来庁者が一致しない")
	if h.wiz.identityBtn.Text != tr("reception.identity.stop") {
		t.Errorf("button says %q with a doubt", h.wiz.identityBtn.Text)
	}
	test.Tap(h.wiz.identityBtn)
	h.waitStep(stepStopped)
	if s := h.desk.state(); s != workflow.Stopped {
		t.Errorf("case %s after a doubt, want stopped (CPS §4.1.2.1(3))", s)
	}
	if e := h.desk.evidence[0]; e.Doubt != "写真と来庁者が一致しない" {
		t.Errorf("doubt recorded as %q", e.Doubt)
	}
	if len(h.desk.orders) != 0 {
		t.Error("issuance started after a doubt")
	}
}

func TestReceptionMissingExplanationBlocksNext(t *testing.T) {
	h := newRecHarness(t)
	h.wiz.typeSign.SetChecked(false) // user-authentication only: two items (TS Art. 9(2))
	h.importFile()
	h.identitySelf()
	if n := len(h.wiz.explained); n != 2 {
		t.Fatalf("%d explanation items for a user-authentication certificate, want 2", n)
	}
	test.Tap(h.wiz.explained[workflow.ProtectKey])
	if !h.wiz.explainBtn.Disabled() {
		t.Fatal("next enabled with an item not acknowledged")
	}
	test.Tap(h.wiz.explainBtn)
	waitFor(t, "nothing", func() bool { return true })
	if h.wiz.step != stepExplanation || len(h.desk.explained) != 0 {
		t.Fatalf("went on to %s without every explanation", h.wiz.step)
	}
	test.Tap(h.wiz.explained[workflow.ReportLoss])
	test.Tap(h.wiz.explainBtn)
	h.waitStep(stepCard)
	if got := h.desk.explained[0]; !slices.Equal(got, []workflow.Item{workflow.ProtectKey, workflow.ReportLoss}) {
		t.Errorf("explained %v", got)
	}
}

func TestReceptionCardExpiryRequired(t *testing.T) {
	h := newRecHarness(t)
	h.importFile()
	h.identitySelf()
	h.explainAll()
	for _, bad := range []string{"", "2035/04/01", "2001-01-01", "2035-13-01"} {
		h.wiz.expiry.SetText(bad)
		if !h.wiz.startBtn.Disabled() {
			t.Errorf("issuance can start with card expiry %q", bad)
		}
	}
	h.wiz.expiry.SetText("2001-01-01")
	if h.wiz.message.Text != tr("reception.card.expiry_invalid") {
		t.Errorf("message %q for a past expiry", h.wiz.message.Text)
	}
}

func TestReceptionPINRefusedAskedAgain(t *testing.T) {
	h := newRecHarness(t)
	h.importFile()
	h.identitySelf()
	h.explainAll()
	h.start()
	p := h.pinScreen(PINUserAuth)
	recEnterPIN(p, "1234") // a run of digits: refused by the rules of TS Art. 4
	waitFor(t, "the refusal", func() bool { return p.message.Text != "" })
	if got := p.message.Text; got != tr("pin.error.sequence") {
		t.Errorf("refusal %q, want %q", got, tr("pin.error.sequence"))
	}
	if h.s.pin != p {
		t.Fatal("the PIN screen closed after a refused PIN")
	}
	recEnterPIN(p, "5830")
	recEnterPIN(h.pinScreen(PINSignature), "SAKURA73")
	h.waitStep(stepResult)
	waitFor(t, "the notice", func() bool { return h.wiz.savedPath() != "" })
}

func TestReceptionPINCancelledAborts(t *testing.T) {
	h := newRecHarness(t)
	h.importFile()
	h.identitySelf()
	h.explainAll()
	h.start()
	test.Tap(h.pinScreen(PINUserAuth).cancel)
	h.waitStep(stepFailed)
	msg := h.wiz.failMessage.Text
	for _, want := range []string{"暗証番号の設定が完了しなかった", "交付前に失効"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if h.wiz.progress.state[stagePIN] != stageFailed {
		t.Errorf("PIN stage is %d, want failed", h.wiz.progress.state[stagePIN])
	}
}

// recCardRemoved is what cardio/pcsc reports when the card leaves the reader mid-command.
var recCardRemoved = errors.New("pcsc: transmit on Virtual PCD 00 00: pcsc: card removed")

func TestReceptionCardRemovedMidWrite(t *testing.T) {
	h := newRecHarness(t)
	h.desk.issue = func(ctx context.Context, o IssuanceOrder) (*issue.Result, error) {
		o.Progress(issue.StepPrepare, workflow.UserAuthCert)
		o.Progress(issue.StepScript, workflow.UserAuthCert)
		return nil, &issue.Error{Step: issue.StepScript, Kind: apperr.Internal, Aborted: true, CardCleanup: true, Err: recCardRemoved}
	}
	h.importFile()
	h.identitySelf()
	h.explainAll()
	h.start()
	h.waitStep(stepFailed)
	msg := h.wiz.failMessage.Text
	for _, want := range []string{"カードの読み書きに失敗", "交付前に失効", "交付せず"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "pcsc") {
		t.Error("raw error text shown to the clerk")
	}
	if st := h.wiz.progress.state; st[stageKeyAndCert] != stageDone || st[stageWrite] != stageFailed || st[stagePIN] != stagePending {
		t.Errorf("stages %v: want key done, write failed, rest pending", st)
	}
	if h.w.Canvas().Overlays().Top() == nil {
		t.Error("no dialog for the failed issuance")
	}
	// The clerk may try again with the card (the case stays approved).
	test.Tap(recFindButton(t, h.wiz.page, tr("reception.failed.retry")))
	h.waitStep(stepCard)
}

func TestReceptionNoCardNothingStarted(t *testing.T) {
	h := newRecHarness(t)
	h.desk.issue = func(ctx context.Context, o IssuanceOrder) (*issue.Result, error) {
		return nil, fmt.Errorf("%w: %w", ErrCardUnavailable, errors.New("pcsc: no card in the reader"))
	}
	h.importFile()
	h.identitySelf()
	h.explainAll()
	h.start()
	h.waitStep(stepFailed)
	if got := h.wiz.failMessage.Text; got != tr("reception.error.no_card") {
		t.Errorf("message %q", got)
	}
}

func TestReceptionFileRefused(t *testing.T) {
	h := newRecHarness(t)
	h.desk.openErr = apperr.New(apperr.FileExpired, "resident: file expired")
	h.wiz.files.SetSelected(h.wiz.files.Options[0])
	test.Tap(h.wiz.importBtn)
	waitFor(t, "the refusal", func() bool { return h.wiz.message.Text != "" })
	if got := h.wiz.message.Text; got != "住民票記載事項ファイルの有効期限が切れています。作成し直してください。" {
		t.Errorf("message %q", got)
	}
	if h.wiz.step != stepFile {
		t.Errorf("step %s after a refused file", h.wiz.step)
	}
	if len(h.wiz.files.Options) != 0 {
		t.Error("an expired file is still offered")
	}
}

func TestReceptionStopAtApplicantsWish(t *testing.T) {
	h := newRecHarness(t)
	h.importFile()
	h.wiz.stop("申請者が申請を取り下げた")
	h.waitStep(stepStopped)
	if s := h.desk.state(); s != workflow.Stopped || h.desk.stops[0] != "申請者が申請を取り下げた" {
		t.Errorf("case %s, stops %v", s, h.desk.stops)
	}
}

// recFindButton returns the button labelled text under o.
func recFindButton(t *testing.T, o fyne.CanvasObject, text string) *widget.Button {
	t.Helper()
	var found *widget.Button
	recWalk(o, func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == text {
			found = b
		}
	})
	if found == nil {
		t.Fatalf("no button %q", text)
	}
	return found
}

// walk visits o and everything inside it.
func recWalk(o fyne.CanvasObject, f func(fyne.CanvasObject)) {
	f(o)
	switch c := o.(type) {
	case *fyne.Container:
		for _, x := range c.Objects {
			recWalk(x, f)
		}
	case fyne.Widget:
		r := test.WidgetRenderer(c)
		for _, x := range r.Objects() {
			recWalk(x, f)
		}
	}
}
