package ui

import (
	"context"
	"errors"
	"image"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/printout"
	"madoguchi/app/printout/spool"
	"madoguchi/app/workflow"
	"madoguchi/assets/fonts/printfonts"
)

// fakeSettings is an in-memory TerminalSettings; the real one (app/calink.Link) is
// tested against a real ca-server API in the root package.
type fakeSettings struct {
	mu      sync.Mutex
	cfg     TerminalConfig
	readers []string
	tokens  map[string]TerminalCertificate // accepted once each
	queues  []string                       // the print server's queues
	// testPages counts the test pages printed (the job numbers).
	testPages int
}

func (f *fakeSettings) Current() TerminalConfig { f.mu.Lock(); defer f.mu.Unlock(); return f.cfg }

func (f *fakeSettings) SetCAURL(ctx context.Context, url string) error {
	if !strings.HasPrefix(url, "https://") {
		return apperr.New(apperr.InvalidInput, "terminal: CA URL must be https")
	}
	f.mu.Lock()
	f.cfg.CAURL = url
	f.mu.Unlock()
	return nil
}

func (f *fakeSettings) SetReader(r string) error {
	f.mu.Lock()
	f.cfg.Reader = r
	f.mu.Unlock()
	return nil
}

func (f *fakeSettings) Readers(ctx context.Context) ([]string, error) { return f.readers, nil }

func (f *fakeSettings) Enrol(ctx context.Context, token string) (TerminalCertificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.tokens[token]
	if !ok {
		return TerminalCertificate{}, apperr.New(apperr.InvalidInput, "terminal: enrolment token refused")
	}
	delete(f.tokens, token)
	f.cfg.Certificate = &c
	return c, nil
}

// SetPrinter knows one print server with the queues in f.queues; "gone" is a server that does
// not answer.
func (f *fakeSettings) SetPrinter(ctx context.Context, queue, server string) error {
	switch {
	case strings.ContainsAny(queue, " /"):
		return &spool.Error{Queue: queue, Err: spool.ErrBadRequest, Detail: "not a CUPS queue name"}
	case server == "gone":
		return &spool.Error{Queue: queue, Err: spool.ErrServerUnreachable}
	case queue != "" && !slices.Contains(f.queues, queue):
		return &spool.Error{Queue: queue, Err: spool.ErrNoSuchQueue}
	}
	f.mu.Lock()
	f.cfg.Printer, f.cfg.CUPSServer = queue, server
	f.mu.Unlock()
	return nil
}

func (f *fakeSettings) PrintTestPage(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg.Printer == "" {
		return 0, errors.New("terminal: no printer is set")
	}
	f.testPages++
	return f.testPages, nil
}

func recSupervisor() *fakeOperator {
	return &fakeOperator{Operator: Operator{ID: "S001", Name: "管理 太郎"}, perms: []Permission{PermissionSupervisor}}
}

func newSettingsHarness(t *testing.T, st *fakeSettings) (*fakeBackend, *settingsView) {
	t.Helper()
	var v *settingsView
	screens := []Screen{homeScreen(), {ID: SettingsID, Title: "settings.title", Permission: PermissionSupervisor,
		View: func(s *Shell) fyne.CanvasObject { v = buildSettingsView(s); return v.root() }}}
	b := newFakeBackend(recSupervisor(), receptionClerk())
	s, _ := newTestShell(t, b, screens, false)
	s.Terminal.Settings = st
	loginAs(t, s, "S001")
	if err := s.Show(SettingsID); err != nil {
		t.Fatal(err)
	}
	return b, v
}

// settingChanges returns the setting changes recorded in the operator's history so far.
func (b *fakeBackend) settingChanges() []settingRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.settings)
}

func TestSettingsSupervisorOnly(t *testing.T) {
	s, _ := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
	loginAs(t, s, "R001")
	if err := s.Show(SettingsID); err == nil {
		t.Error("a reception clerk opened the terminal settings")
	}
	for _, sc := range s.Permitted() {
		if sc.ID == SettingsID {
			t.Error("settings offered to a reception clerk")
		}
	}
}

func TestSettingsEnrolShowsCertificate(t *testing.T) {
	st := &fakeSettings{cfg: TerminalConfig{CAURL: "https://ca.example:8443", CACertFile: "/etc/madoguchi/tls-ca.pem"},
		readers: []string{"Virtual PCD 00 00", "Virtual PCD 00 01"},
		tokens:  map[string]TerminalCertificate{"tok-1": {TerminalID: "T-0001", Municipality: "131016", NotAfter: time.Now().AddDate(2, 0, 0)}}}
	b, v := newSettingsHarness(t, st)
	if v.certInfo.Text != tr("settings.certificate.none") {
		t.Errorf("before enrolment: %q", v.certInfo.Text)
	}
	if v.token.Password != true {
		t.Error("the enrolment token is shown in clear")
	}
	test.Type(v.token, "tok-bad")
	v.token.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if !strings.Contains(v.message.Text, "入力内容に誤り") {
		t.Errorf("refused token: %q", v.message.Text)
	}
	v.token.SetText("tok-1")
	test.Tap(v.enrol)
	if !strings.Contains(v.certInfo.Text, "131016") || !strings.Contains(v.certInfo.Text, "T-0001") {
		t.Errorf("certificate: %q", v.certInfo.Text)
	}
	if v.token.Text != "" {
		t.Error("the used token is left in the field")
	}
	if !strings.Contains(v.notice.Text, "131016") {
		t.Errorf("notice %q", v.notice.Text)
	}
	// Both attempts are in the supervisor's history, and neither token is.
	got := b.settingChanges()
	if len(got) != 2 || got[0].setting != app.SettingEnrolment || got[0].err == nil ||
		got[1].setting != app.SettingEnrolment || got[1].err != nil || got[1].value != "T-0001 131016" {
		t.Errorf("recorded enrolments %+v", got)
	}
	for _, r := range got {
		if strings.Contains(r.value, "tok-") {
			t.Errorf("an enrolment token in the audit trail: %+v", r)
		}
	}
}

func TestSettingsCAURLAndReader(t *testing.T) {
	st := &fakeSettings{readers: []string{"Virtual PCD 00 00", "Virtual PCD 00 01"}}
	b, v := newSettingsHarness(t, st)
	v.caURL.SetText("http://ca.example")
	test.Tap(v.saveURL)
	if v.message.Text != tr("settings.ca_url.invalid") || st.Current().CAURL != "" {
		t.Errorf("plain http accepted: %q %q", v.message.Text, st.Current().CAURL)
	}
	v.caURL.SetText("https://ca.example:8443")
	v.caURL.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if st.Current().CAURL != "https://ca.example:8443" {
		t.Errorf("CA URL %q", st.Current().CAURL)
	}
	if got := v.readers.Options; len(got) != 3 || v.readers.Selected != tr("settings.reader.first") {
		t.Fatalf("readers %v selected %q", got, v.readers.Selected)
	}
	v.readers.SetSelected("Virtual PCD 00 01")
	if st.Current().Reader != "Virtual PCD 00 01" {
		t.Errorf("reader %q", st.Current().Reader)
	}
	want := []settingRecord{{app.SettingCAURL, "http://ca.example", nil}, {app.SettingCAURL, "https://ca.example:8443", nil},
		{app.SettingReader, "Virtual PCD 00 01", nil}}
	got := b.settingChanges()
	if len(got) != 3 || got[0].err == nil || got[0].setting != want[0].setting || got[0].value != want[0].value ||
		got[1] != want[1] || got[2] != want[2] {
		t.Errorf("recorded changes %+v, want %+v (the first refused)", got, want)
	}
}

// TestSettingsPrinter: the supervisor sets the printer queue; a malformed name, a queue the
// server lacks and a server that does not answer are each explained and change nothing; the
// test page prints and is recorded like a document; an empty queue turns printing off. Every
// attempt is in the supervisor's history.
func TestSettingsPrinter(t *testing.T) {
	st := &fakeSettings{queues: []string{"counter-1"}}
	b, v := newSettingsHarness(t, st)
	if !v.testPage.Disabled() {
		t.Error("test page offered with no printer set")
	}
	for _, c := range []struct{ queue, server, reason string }{
		{"counter 1", "", tr("settings.printer.bad")},
		{"counter-2", "", tr("settings.printer.no_queue")},
		{"counter-1", "gone", tr("settings.printer.unreachable")},
	} {
		v.queue.SetText(c.queue)
		v.server.SetText(c.server)
		test.Tap(v.savePrn)
		if want := tr("settings.printer.failed", map[string]any{"Reason": c.reason}); v.message.Text != want {
			t.Errorf("%q @ %q: message %q, want %q", c.queue, c.server, v.message.Text, want)
		}
		if st.Current().Printer != "" || !v.testPage.Disabled() {
			t.Errorf("%q @ %q: a refused printer was kept", c.queue, c.server)
		}
	}
	v.queue.SetText(" counter-1 ")
	v.server.SetText("")
	v.server.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if st.Current().Printer != "counter-1" || v.notice.Text != tr("settings.saved") || v.testPage.Disabled() {
		t.Fatalf("printer %q, notice %q, test page disabled %v", st.Current().Printer, v.notice.Text, v.testPage.Disabled())
	}
	test.Tap(v.testPage)
	if want := tr("settings.printer.printed", map[string]any{"Job": 1}); v.notice.Text != want {
		t.Errorf("after the test page: %q", v.notice.Text)
	}
	if got := b.prints(); len(got) != 1 || got[0] != (printRecord{caseID: 0, document: app.DocumentTestPage, job: 1}) {
		t.Errorf("test page recorded as %+v", got)
	}
	v.queue.SetText("")
	test.Tap(v.savePrn)
	if st.Current().Printer != "" || v.notice.Text != tr("settings.printer.off") || !v.testPage.Disabled() {
		t.Errorf("clearing the printer: %q, notice %q", st.Current().Printer, v.notice.Text)
	}
	got := b.settingChanges()
	if len(got) != 5 || got[3] != (settingRecord{app.SettingPrinter, "counter-1", nil}) || got[4] != (settingRecord{app.SettingPrinter, "", nil}) {
		t.Fatalf("recorded printer changes %+v", got)
	}
	for _, r := range got[:3] {
		if r.setting != app.SettingPrinter || r.err == nil {
			t.Errorf("refused change recorded as %+v", r)
		}
	}
	if got[2].value != "counter-1 @ gone" {
		t.Errorf("the server is not in the record: %q", got[2].value)
	}
}

func TestSettingsWithoutWiring(t *testing.T) {
	s, _ := newTestShell(t, newFakeBackend(recSupervisor()), Screens(), false)
	loginAs(t, s, "S001")
	if err := s.Show(SettingsID); err != nil {
		t.Fatal(err)
	}
	var texts []string
	recWalk(s.body, func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok {
			texts = append(texts, l.Text)
		}
	})
	if !contains(texts, tr("settings.unavailable")) {
		t.Errorf("labels %v", texts)
	}
}

func TestStartupReportBeforeLogin(t *testing.T) {
	s, w := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
	ShowStartupReport(s, StartupReport{})
	if w.Canvas().Overlays().Top() != nil {
		t.Fatal("a dialog without anything to report")
	}
	msg := "申請7の署名用電子証明書：発行が完了していなかったため、交付前に失効させました（失効理由：交付前に破棄）。"
	ShowStartupReport(s, StartupReport{Recovered: []issue.Resolution{{Entry: issue.Entry{CaseID: 7, CertType: workflow.SignatureCert},
		Outcome: issue.OutcomeAborted, CAState: "revoked"}}})
	top := w.Canvas().Overlays().Top()
	if top == nil {
		t.Fatal("no start-up dialog")
	}
	var texts []string
	recWalk(top, func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok {
			texts = append(texts, l.Text)
		}
	})
	if !contains(texts, "・"+msg) {
		t.Errorf("dialog labels %v", texts)
	}
	if s.Current() != "" || s.login == nil {
		t.Error("the report is not shown over the log-in screen")
	}
}

// TestPdftoppmRendersNotice renders a real issuance notice (app/printout with its test fonts)
// through the real pdftoppm and checks the page came back as an A4-shaped image with ink.
func TestPdftoppmRendersNotice(t *testing.T) {
	p, err := printout.New(printout.Fonts{Regular: printfonts.Regular(), Bold: printfonts.Bold()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.Local)
	pdf, err := p.Notice(printout.IssuanceNotice{Municipality: "東京都架空区長", Date: now, ReceiptNo: "42", OperatorID: "R001", HolderName: "鈴木 一郎",
		Certificates: []printout.Certificate{{Kind: printout.UserAuth, Serial: bigOne(), NotBefore: now, NotAfter: now.AddDate(5, 0, 0)}},
		Explanations: []printout.Explanation{printout.ProtectKey, printout.ReportLoss}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Pdftoppm{}.RenderFirstPage(context.Background(), pdf)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if ratio := float64(b.Dy()) / float64(b.Dx()); b.Dx() < 300 || ratio < 1.35 || ratio > 1.48 {
		t.Errorf("page %v is not A4 at 60 dpi", b)
	}
	if !hasInk(img) {
		t.Error("rendered page is blank")
	}
	if _, err := (Pdftoppm{}).RenderFirstPage(context.Background(), []byte("not a pdf")); err == nil {
		t.Error("garbage rendered without error")
	}
}

func hasInk(img image.Image) bool {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x4000 {
				return true
			}
		}
	}
	return false
}

func bigOne() *big.Int { return big.NewInt(0x1f2e3d) }
