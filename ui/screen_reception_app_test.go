package ui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"madoguchi/app"
	"madoguchi/app/audit"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/workflow"
	"madoguchi/cardio"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// unreachableCA is a CA client whose every call fails as raclient does when the CA cannot be
// reached.
type unreachableCA struct {
	app.CA // the counter procedures besides issuance: not reached here
}

var _ issue.CA = unreachableCA{}

func caDown() error {
	return &raclient.Error{Code: wire.CodeUnavailable, Err: errors.New("dial tcp 127.0.0.1:8443: connect: connection refused")}
}

func (unreachableCA) OpenChannel(context.Context, string) (wire.ChannelResponse, error) {
	return wire.ChannelResponse{}, caDown()
}
func (unreachableCA) Prepare(context.Context, string, wire.PrepareRequest) (wire.PrepareResponse, error) {
	return wire.PrepareResponse{}, caDown()
}
func (unreachableCA) Confirm(context.Context, string, string, wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, caDown()
}
func (unreachableCA) Abort(context.Context, string, string, wire.AbortRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, caDown()
}
func (unreachableCA) Status(context.Context, string, string) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, caDown()
}

// serialOnlyCard answers the card serial, reads as blank stock (no certificate, no PIN set: the
// ownership check before writing), and refuses everything else (the issuance must stop at the
// CA before it writes to the card).
type serialOnlyCard struct{ issue.Card }

func (serialOnlyCard) CardSerial(context.Context) ([]byte, error) {
	return []byte("MADOGUCHI-TEST01"), nil
}

func (serialOnlyCard) ReadCertificate(context.Context, uint16) ([]byte, error) {
	return nil, cardio.ErrCertificateNotPresent
}

func (serialOnlyCard) PINTriesLeft(context.Context, cardio.Which) (int, error) {
	return 0, cardio.ErrPINNotSet
}

var _ issue.Card = serialOnlyCard{}

// TestReceptionIssueRealApp runs the wizard against the real counter domain (SQLite, audit
// chain, resident-record file with its HMAC, workflow, issuance orchestration with its journal)
// with a CA client that cannot reach the CA: the clerk gets the domain's Japanese message, and
// the journal shows the issuance ended (nothing left for recovery).
func TestReceptionIssueRealApp(t *testing.T) {
	ctx := context.Background()
	f := newAppFixture(t)
	f.addOperator(t, "C001", "住基 太郎", "finger-C001", operator.CS)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	// The CS application exports the applicant's file into the hand-over folder.
	f.fp.Present("finger-C001")
	cs, err := f.term.LoginFingerprint(ctx, "C001", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ImportResidentFixtures(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := cs.ExportResidentFile(ctx, "90000000088")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := filepath.Join(dir, "resident-files")
	if _, err := writeResidentFile(files, "90000000088", data, time.Now()); err != nil {
		t.Fatal(err)
	}

	// The terminal's CA client and the card in its reader.
	f.ca = unreachableCA{}
	f.cards = func(context.Context) (issue.Card, func(), error) { return serialOnlyCard{}, func() {}, nil }
	var wiz *issueWizard
	screens := []Screen{homeScreen(), {ID: ReceptionIssueID, Title: "reception.issue.title", Permission: PermissionReception,
		View: func(s *Shell) fyne.CanvasObject { wiz = buildIssueWizard(s); return wiz.root() }}}
	s, _ := newTestShell(t, AppBackend{Terminal: f.term}, screens, true)
	s.ResidentFileDir = files
	s.Terminal = TerminalWiring{NoticeDir: filepath.Join(dir, "notices")}
	f.fp.Present("finger-R001")
	loginAs(t, s, "R001")
	waitFor(t, "log-in", func() bool { return s.Session() != nil })
	if err := s.Show(ReceptionIssueID); err != nil {
		t.Fatal(err)
	}
	h := &recHarness{t: t, s: s, wiz: wiz}
	h.importFile()
	if wiz.c.Applicant.Name != "鈴木 一郎" || wiz.c.State != workflow.Opened {
		t.Fatalf("case %+v", wiz.c)
	}
	if ents, _ := os.ReadDir(files); len(ents) != 0 {
		t.Error("the consumed file is still in the hand-over folder")
	}
	h.identitySelf()
	h.explainAll()
	h.start()
	h.waitStep(stepFailed)
	if msg := wiz.failMessage.Text; !strings.Contains(msg, "認証局と通信できない") {
		t.Errorf("message %q", msg)
	}
	entries, err := issue.List(ctx, f.term.DB(), issue.Filter{CaseID: wiz.c.ID})
	if err != nil || len(entries) != 1 {
		t.Fatalf("journal %v, %v", entries, err)
	}
	if e := entries[0]; e.State != workflow.IssAborted {
		t.Errorf("journal entry %s, want aborted (nothing was prepared at the CA)", e.State)
	}
	recs, err := audit.List(ctx, f.term.DB(), audit.Filter{Operator: "R001"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	for _, want := range []string{"case.open", "case.identity", "case.explanation", "case.approve", "issuance.start"} {
		if !contains(actions, want) {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}
	test.Tap(recFindButton(t, wiz.page, tr("reception.failed.retry")))
	h.waitStep(stepCard)
}
