package ui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"madoguchi/app"
	"madoguchi/app/auth"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/printout"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// uiCA stands in for ca-server behind raclient for the screens-against-the-real-domain tests:
// the domain (SQLite, workflow, audit chain, outbox) is app's own; only the CA's answers are
// made here, in raclient's error shapes, so app's classification (app.CAError) is exercised.
// The CA itself is tested end to end by app/cli against the real ca-server.
type uiCA struct {
	mu      sync.Mutex
	state   map[string]string // serial → delivered / held / revoked
	revokes []wire.RevokeRequest
	changes []wire.ResidentChangeRequest
}

var _ app.CA = (*uiCA)(nil)

var errNoIssuance = errors.New("ui test: the CA stand-in does not issue")

func (c *uiCA) OpenChannel(context.Context, string) (wire.ChannelResponse, error) {
	return wire.ChannelResponse{}, errNoIssuance
}
func (c *uiCA) Prepare(context.Context, string, wire.PrepareRequest) (wire.PrepareResponse, error) {
	return wire.PrepareResponse{}, errNoIssuance
}
func (c *uiCA) Confirm(context.Context, string, string, wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, errNoIssuance
}
func (c *uiCA) Abort(context.Context, string, string, wire.AbortRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, errNoIssuance
}
func (c *uiCA) Status(context.Context, string, string) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, errNoIssuance
}

func uiCARefused(kind error, code wire.Code) error {
	return fmt.Errorf("%w: %w", kind, &raclient.Error{Status: 409, Code: code, Message: string(code)})
}

func (c *uiCA) Revoke(ctx context.Context, op, serial string, req wire.RevokeRequest) (wire.RevocationAck, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revokes = append(c.revokes, req)
	switch c.state[serial] {
	case "":
		return wire.RevocationAck{}, fmt.Errorf("%w: %w", raclient.ErrNotFound, &raclient.Error{Status: 404, Code: wire.CodeNotFound})
	case "revoked":
		return wire.RevocationAck{}, uiCARefused(raclient.ErrAlreadyRevoked, wire.CodeAlreadyRevoked)
	}
	c.state[serial] = "revoked"
	reason, ja := 5, "電子証明書の必要性がなくなった"
	if req.Kind == "key-compromise" || req.Kind == "card-unusable" {
		reason, ja = 1, "利用者の秘密鍵が危殆化した"
	}
	return wire.RevocationAck{Serial: serial, CertType: req.CertType, Reason: reason, ReasonJa: ja, Kind: req.Kind,
		RevokedAt: time.Now().UTC().Add(time.Second), WrittenAcknowledgement: true}, nil
}

func (c *uiCA) ReleaseHold(ctx context.Context, op, serial string, req wire.ReleaseHoldRequest) (wire.CertificateStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state[serial] {
	case "revoked":
		return wire.CertificateStatus{}, uiCARefused(raclient.ErrAlreadyRevoked, wire.CodeAlreadyRevoked)
	case "held":
		c.state[serial] = "delivered"
		return wire.CertificateStatus{Serial: serial, CertType: req.CertType, State: "delivered"}, nil
	}
	return wire.CertificateStatus{}, uiCARefused(raclient.ErrNotOnHold, wire.CodeNotOnHold)
}

func (c *uiCA) ReportResidentChange(ctx context.Context, op string, req wire.ResidentChangeRequest) (wire.ResidentChangeResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changes = append(c.changes, req)
	resp := wire.ResidentChangeResponse{ChangeID: int64(len(c.changes)), Event: req.Event}
	if req.Event == "death" {
		resp.Revoked = []string{"sign", "auth"}
	}
	return resp, nil
}

// appDeskFixture is the real counter domain with the CA stand-in, a supervisor, a reception
// and a CS operator, and the fictional residents.
type appDeskFixture struct {
	term *app.Terminal
	fp   *auth.Fake
	sup  *app.Session
	ca   *uiCA
	// the terminal's CA client in effect (app.Config.CurrentCA: ca unless a test changes it)
	// and its card reader (app.Config.Cards: none unless a test sets it)
	caNow app.CA
	cards app.CardOpener
}

func newAppDeskFixture(t *testing.T) *appDeskFixture {
	t.Helper()
	ctx := context.Background()
	f := &appDeskFixture{fp: auth.NewFake(), ca: &uiCA{state: map[string]string{"1A2B": "delivered", "3C4D": "held"}}}
	f.caNow = f.ca
	term, err := app.Open(ctx, app.Config{DBPath: filepath.Join(t.TempDir(), "terminal.db"), Fingerprint: f.fp,
		CurrentCA: func() (app.CA, error) { return f.caNow, nil },
		Cards: func(ctx context.Context) (issue.Card, func(), error) {
			if f.cards == nil {
				return nil, nil, errors.New("ui test: no card reader")
			}
			return f.cards(ctx)
		},
		Printer:      func() (*printout.Printer, error) { return testPrinter(t), nil }, // the document printer
		Municipality: "架空区長", Argon2: auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	f.term = term
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理 太郎", Password: "supervisor pass 1", ExemptReason: "set-up"}); err != nil {
		t.Fatal(err)
	}
	if f.sup, err = term.LoginPassword(ctx, "sup", "supervisor pass 1"); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		id, name string
		perm     operator.Permission
	}{{"R001", "受付 花子", operator.Reception}, {"C001", "住基 太郎", operator.CS}} {
		if err := f.sup.CreateOperator(ctx, o.id, o.name); err != nil {
			t.Fatal(err)
		}
		if err := f.sup.Grant(ctx, o.id, o.perm); err != nil {
			t.Fatal(err)
		}
		f.fp.Present("finger-" + o.id)
		if err := f.sup.EnrollFinger(ctx, o.id, auth.DefaultFinger, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.fp.Present("finger-C001")
	cs, err := term.LoginFingerprint(ctx, "C001", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ImportResidentFixtures(ctx); err != nil {
		t.Fatal(err)
	}
	cs.Logout(ctx)
	return f
}

// shell logs operator id in through the real domain, with the document printer and preview.
func (f *appDeskFixture) shell(t *testing.T, id string) (*Shell, fyne.Window) {
	t.Helper()
	s, w := newTestShell(t, AppBackend{Terminal: f.term}, Screens(), false)
	s.Terminal = TerminalWiring{NoticeDir: filepath.Join(t.TempDir(), "notices"), Preview: Pdftoppm{}}
	f.fp.Present("finger-" + id)
	loginAs(t, s, id)
	if s.Session() == nil {
		t.Fatalf("log-in of %s failed: %q", id, s.login.message.Text)
	}
	return s, w
}

func (f *appDeskFixture) audited(t *testing.T, operatorID, action, result string) bool {
	t.Helper()
	recs, err := f.sup.History(context.Background(), operatorID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Action == action && strings.HasPrefix(string(r.Result), result) {
			return true
		}
	}
	return false
}

func TestRevokeWithAppDomain(t *testing.T) {
	f := newAppDeskFixture(t)
	s, w := f.shell(t, "R001")
	v := showRevoke(t, s, RevokeScreenID)
	openAndIdentify(t, v.frame, "90000000011")
	test.Tap(v.certs[0].check)
	test.Type(v.certs[0].serial, "1a2b")
	test.Type(v.written, "W-77")
	test.Tap(v.frame.proceed)
	if v.frame.message.Text != "" || v.frame.c.State != "completed" {
		t.Fatalf("revocation through the domain: message %q state %q", v.frame.message.Text, v.frame.c.State)
	}
	if len(f.ca.revokes) != 1 || f.ca.revokes[0].Kind != "stop-using" || f.ca.revokes[0].CertType != "sign" ||
		f.ca.revokes[0].WrittenRequest != "W-77" || f.ca.revokes[0].IdentityDocument != "drivers_licence" {
		t.Errorf("CA got %+v", f.ca.revokes)
	}
	if v.preview == nil || !v.preview.rendered {
		t.Fatalf("acknowledgement not previewed: %q", previewMessage(v.preview))
	}
	if !windowShows(w, "電子証明書の必要性がなくなった（5）") {
		t.Error("the CA's reason is not shown")
	}
	if !f.audited(t, "R001", "certificate.revoke", "ok") {
		t.Error("revocation not in the audit trail")
	}

	// The same certificate again, in a new case: the CA's refusal reaches the clerk by name.
	test.Tap(v.frame.restart)
	openAndIdentify(t, v.frame, "90000000011")
	test.Tap(v.certs[0].check)
	test.Type(v.certs[0].serial, "1A2B")
	test.Type(v.written, "W-78")
	test.Tap(v.frame.proceed)
	if want := tr("revoke.error.already_revoked"); v.frame.message.Text != want {
		t.Errorf("already revoked: message %q, want %q", v.frame.message.Text, want)
	}
}

func TestHoldReleaseWithAppDomain(t *testing.T) {
	f := newAppDeskFixture(t)
	s, _ := f.shell(t, "R001")
	v := showHold(t, s)
	openAndIdentify(t, v.frame, "90000000022")
	v.cert.SetSelected(certTypeName(CertSignature))
	test.Type(v.serial, "1A2B") // delivered, not held
	test.Tap(v.frame.proceed)
	if want := tr("hold.error.not_on_hold"); v.frame.message.Text != want {
		t.Errorf("not on hold: message %q, want %q", v.frame.message.Text, want)
	}
	v.serial.SetText("3C4D")
	test.Tap(v.frame.proceed)
	if v.frame.message.Text != "" || v.frame.c.State != "completed" {
		t.Errorf("release: message %q state %q", v.frame.message.Text, v.frame.c.State)
	}
	if !f.audited(t, "R001", "certificate.release_hold", "ok") {
		t.Error("release not in the audit trail")
	}
}

func TestChangesWithAppDomain(t *testing.T) {
	f := newAppDeskFixture(t)
	s, w := f.shell(t, "C001")
	v := showChanges(t, s)
	chooseResident(t, v, "90000000011")
	v.kind.SetSelected(changeKindName(ChangeDeath))
	test.Type(v.effective, "2020-01-05")
	test.Tap(v.record)
	if v.message.Text != "" || !windowShows(w, tr("changes.state.pending")) {
		t.Fatalf("record: message %q", v.message.Text)
	}
	test.Tap(v.send)
	if v.message.Text != "" || !windowShows(w, tr("changes.state.sent")) || !windowShows(w, "失効: 署名用電子証明書・利用者証明用電子証明書") {
		t.Errorf("send: message %q notice %q", v.message.Text, v.notice.Text)
	}
	if len(f.ca.changes) != 1 || f.ca.changes[0].Event != "death" || f.ca.changes[0].ResidentCode != "90000000011" {
		t.Errorf("CA got %+v", f.ca.changes)
	}
	// The deceased resident cannot be changed again (the choose button is disabled and the
	// domain refuses).
	if !f.audited(t, "C001", "resident.change", "ok") {
		t.Error("change not in the audit trail")
	}
}
