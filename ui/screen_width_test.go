package ui

import (
	"context"
	"image"
	"image/png"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/resident"
)

// counterWindow is the terminal window's default size on the counter's 1280×1024 screen
// (main.go): no screen may need more width than this, or the window grows past the screen's
// edge and the header's log-out button with it.
var counterWindow = fyne.NewSize(1200, 800)

// Realistic long texts of the counter: a 160-bit serial number as 40 hexadecimal digits, a long
// name (the register allows long names, and the header shows the operator's), a written
// request's reference, a long file path, an audit record's detail.
const (
	longSerial   = "3F9A0C7E5B1D2468ACE013579BDF2468ACE01357"
	longName     = "長谷川 寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末"
	longKana     = "ハセガワ ジュゲムジュゲムゴコウノスリキレカイジャリスイギョノスイギョウマツウンライマツフウライマツ"
	longRequest  = "W-2026-0042-千代田区役所本庁舎一階市民課窓口第三番受付簿第1234567号の添付書類一式"
	longReasonJa = "電子証明書の発行を受けた者から失効の申請があった（署名用・利用者証明用の両方、申請書の記載による）"
)

// longDirectory returns a deep directory under t.TempDir, as a terminal's data folder may be.
func longDirectory(t *testing.T) string {
	return filepath.Join(t.TempDir(), "var", "lib", "madoguchi", "municipality-131016-chiyoda", "counter-terminal-03", "documents-handed-over")
}

// longClerk holds every permission under a long name, so every screen and the header with the
// name are shown.
func longClerk() *fakeOperator {
	return &fakeOperator{Operator: Operator{ID: "R0012345678", Name: longName},
		perms: []Permission{PermissionReception, PermissionCS, PermissionSupervisor, PermissionAudit}}
}

// wideBackend is deskBackend whose sessions also administer operators and read the audit log,
// with the long texts above (an in-process fake for the layout tests; the real domain behind
// these screens is exercised by screen_operators_test.go and screen_history_test.go).
type wideBackend struct{ *deskBackend }

func (b wideBackend) LoginFingerprint(ctx context.Context, id string, progress func(ScanEvent)) (Session, error) {
	s, err := b.deskBackend.LoginFingerprint(ctx, id, progress)
	if err != nil {
		return nil, err
	}
	return &wideSession{deskSession: s.(*deskSession)}, nil
}

type wideSession struct{ *deskSession }

var (
	_ OperatorAdmin    = (*wideSession)(nil)
	_ AuditLog         = (*wideSession)(nil)
	_ ResidentRegister = (*wideSession)(nil)
)

func (s *wideSession) ListOperators(ctx context.Context) ([]OperatorSummary, error) {
	return []OperatorSummary{
		{ID: "S001", Name: "管理 太郎", Permissions: []Permission{PermissionSupervisor, PermissionAudit}, Active: true, FingerEnrolled: true},
		{ID: "R0012345678", Name: longName, Permissions: []Permission{PermissionReception, PermissionCS, PermissionSupervisor, PermissionAudit},
			Active: true, Locked: true, PasswordExempt: true},
	}, nil
}
func (s *wideSession) Unlock(ctx context.Context, id string) error                    { return nil }
func (s *wideSession) CreateOperator(ctx context.Context, id, name string) error      { return nil }
func (s *wideSession) SetOperatorActive(ctx context.Context, id string, a bool) error { return nil }
func (s *wideSession) Grant(ctx context.Context, id string, p Permission) error       { return nil }
func (s *wideSession) Withdraw(ctx context.Context, id string, p Permission) error {
	return nil
}
func (s *wideSession) EnrollFinger(ctx context.Context, id, finger string, progress func(EnrollProgress)) error {
	return nil
}
func (s *wideSession) GrantPasswordExemption(ctx context.Context, id, reason, password string) error {
	return nil
}
func (s *wideSession) WithdrawPasswordExemption(ctx context.Context, id string) error { return nil }

// longAuditEntries are records whose details are as long as the domain writes them.
func longAuditEntries() []AuditEntry {
	at := time.Date(2026, 11, 22, 6, 15, 47, 0, time.UTC)
	return []AuditEntry{
		{Seq: 1, At: at, Operator: "R0012345678", Action: "operator.grant_exemption", Target: "90000000088", Result: "ok",
			Detail: map[string]string{"finger": "right-index-finger", "serial": longSerial, "reason": longReasonJa, "written_request": longRequest}},
		{Seq: 2, At: at, Operator: "R0012345678", Action: "resident.import_register", Target: longSerial, Result: "refused",
			Detail: map[string]string{"path": "/var/lib/madoguchi/municipality-131016-chiyoda/counter-terminal-03/notices/notice-1234-20261122-061624.000.pdf",
				"error_kind": "invalid transition"}},
	}
}

func (s *wideSession) AuditRecords(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	return longAuditEntries(), nil
}
func (s *wideSession) CheckAuditChain(ctx context.Context) (AuditCheck, error) {
	return AuditCheck{Records: 2}, nil
}
func (s *wideSession) ExportAuditRecords(ctx context.Context, f AuditFilter, format ExportFormat, w io.Writer) error {
	return nil
}

// ExportResidentFile completes fakeDesk as the CS resident register.
func (d *fakeDesk) ExportResidentFile(ctx context.Context, code string) ([]byte, error) {
	return []byte(`{"record_code":"` + code + `"}`), nil
}

// wideShell logs longClerk in on a counter-sized window over wideBackend, with a resident of a
// long name, certificates with 40-digit serials and long folders for every file the screens
// write.
func wideShell(t *testing.T) (*Shell, fyne.Window, *wideBackend) {
	t.Helper()
	b := &wideBackend{newDeskBackend(t, longClerk())}
	b.desk.residents["34567890123"] = resident.Resident{RecordCode: "34567890123", Name: longName, NameKana: longKana,
		BirthDate: "1975-12-31", Sex: "M", Address: "東京都千代田区霞が関一丁目一番一号中央合同庁舎第二号館十八階", Status: resident.StatusResident}
	b.desk.state[longSerial] = "delivered"
	b.desk.state["A"+longSerial[1:]] = "held"
	b.desk.copySerial, _ = new(big.Int).SetString(longSerial, 16)
	s, w := newTestShell(t, b, Screens(), false)
	w.Resize(counterWindow)
	s.ResidentFileDir = longDirectory(t)
	s.Terminal = TerminalWiring{NoticeDir: longDirectory(t), Preview: Pdftoppm{},
		Settings: &fakeSettings{readers: []string{"Virtual PCD 00 00", "SCM Microsystems Inc. SCR 3310 Smart Card Reader with a very long product name [CCID Interface] (21120844306107) 01 00"},
			cfg: TerminalConfig{CAURL: "https://ca.jpki-counter.city.chiyoda.lg.jp:8443/api/v1/registration-authority/terminals",
				CACertFile:  filepath.Join(longDirectory(t), "internal-tls-ca-certificate-issued-2026-11-22.pem"),
				Certificate: &TerminalCertificate{TerminalID: "T-131016-0003-" + longSerial, Municipality: "131016", NotAfter: time.Now().AddDate(2, 0, 0)}}}}
	loginAs(t, s, "R0012345678")
	if s.Session() == nil {
		t.Fatalf("log-in failed: %q", s.login.message.Text)
	}
	return s, w, b
}

// identify opens a case for code and records the holder's own driver's licence, with a long
// document reference.
func identify(t *testing.T, f *procedureFrame, code string) {
	t.Helper()
	test.Type(f.code, code)
	f.code.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	f.identity.document.SetSelected(documentName("other_official_photo_id"))
	test.Type(f.identity.ref, longRequest)
	test.Tap(f.record)
	if f.c.State != "identity_checked" {
		t.Fatalf("identity not recorded: state %q, message %q", f.c.State, f.message.Text)
	}
}

// findScroll returns the first scroll container in o's tree that scrolls vertically.
func findScroll(o fyne.CanvasObject) *container.Scroll {
	var found *container.Scroll
	recWalk(o, func(x fyne.CanvasObject) {
		if s, ok := x.(*container.Scroll); ok && found == nil &&
			(s.Direction == container.ScrollVerticalOnly || s.Direction == container.ScrollBoth) {
			found = s
		}
	})
	return found
}

// wideScreenCase is one screen of the table with the long texts of a real counter.
type wideScreenCase struct {
	id string
	// fill shows the screen's results with the long texts.
	fill func(t *testing.T, s *Shell, b *wideBackend)
	// ownScroll: the screen scrolls itself (a table, a split of two scrolled panes).
	ownScroll bool
}

// wideScreenCases is every screen of the table but the issuance wizard (tested on its own,
// TestReceptionWizardFitsCounterScreen), each with a fill that shows its results.
func wideScreenCases() []wideScreenCase {
	return []wideScreenCase{
		{id: HomeID},
		{id: "cs.residents", fill: func(t *testing.T, s *Shell, b *wideBackend) {
			v := findResidents(t, s)
			test.Type(v.code, "34567890123")
			test.Tap(v.search)
			if len(v.table.Objects) == 0 {
				t.Fatalf("no result: %q", v.message.Text)
			}
			recFindButton(t, s.body.Objects[0], tr("cs.export")).Tapped(nil)
			if !strings.Contains(v.notice.Text, "documents-handed-over") {
				t.Fatalf("export notice %q, message %q", v.notice.Text, v.message.Text)
			}
		}},
		{id: ChangesScreenID, fill: func(t *testing.T, s *Shell, b *wideBackend) {
			v := s.body.Objects[0].(*changesView)
			chooseResident(t, v, "34567890123")
			v.kind.SetSelected(changeKindName(ChangeMoveIn))
			test.Type(v.effective, "2026-11-22")
			test.Type(v.newAddress, "東京都千代田区霞が関一丁目一番一号中央合同庁舎第二号館十八階")
			test.Tap(v.record)
			test.Tap(v.send)
			if len(v.sent) != 1 {
				t.Fatalf("not sent: %q", v.message.Text)
			}
		}},
		{id: RevokeScreenID, fill: func(t *testing.T, s *Shell, b *wideBackend) {
			v := s.body.Objects[0].(*revokeView)
			identify(t, v.frame, "34567890123")
			test.Tap(v.certs[1].check)
			test.Type(v.certs[1].serial, strings.ToLower(longSerial))
			test.Type(v.written, longRequest)
			test.Tap(v.frame.proceed)
			if v.preview == nil || !v.preview.rendered {
				t.Fatalf("no acknowledgement: %q", v.frame.message.Text)
			}
			outcomeInView(t, v.frame)
		}},
		{id: LossReportScreenID, fill: func(t *testing.T, s *Shell, b *wideBackend) {
			v := s.body.Objects[0].(*revokeView)
			identify(t, v.frame, "34567890123")
			test.Tap(v.certs[1].check)
			test.Type(v.certs[1].serial, longSerial)
			test.Type(v.written, longRequest)
			test.Tap(v.frame.proceed)
			if v.preview == nil || !v.preview.rendered {
				t.Fatalf("no acknowledgement: %q", v.frame.message.Text)
			}
			outcomeInView(t, v.frame)
		}},
		{id: HoldScreenID, fill: func(t *testing.T, s *Shell, b *wideBackend) {
			v := s.body.Objects[0].(*holdView)
			identify(t, v.frame, "34567890123")
			v.cert.SetSelected(certTypeName(CertUserAuth))
			test.Type(v.serial, "A"+longSerial[1:])
			test.Tap(v.frame.proceed)
			if v.frame.c.State != "completed" {
				t.Fatalf("not released: %q", v.frame.message.Text)
			}
		}},
		{id: CopyScreenID, fill: func(t *testing.T, s *Shell, b *wideBackend) {
			v := s.body.Objects[0].(*copyView)
			identify(t, v.frame, "34567890123")
			test.Tap(v.certs.userAuth)
			test.Tap(v.frame.proceed)
			if len(v.previews) != 1 || !v.previews[0].rendered {
				t.Fatalf("no copy: %q", v.frame.message.Text)
			}
			outcomeInView(t, v.frame)
		}},
		{id: "supervisor.operators", ownScroll: true, fill: func(t *testing.T, s *Shell, b *wideBackend) {
			recFindButton(t, s.body.Objects[0], "R0012345678").Tapped(nil)
		}},
		{id: SettingsID},
		{id: "audit.history", ownScroll: true, fill: func(t *testing.T, s *Shell, b *wideBackend) {
			v := findHistory(t, s)
			if len(v.rows) != 2 {
				t.Fatalf("rows %d", len(v.rows))
			}
			v.table.Select(widget.TableCellID{Row: 0, Col: 6})
			if !strings.Contains(v.detail.Text, longSerial) || !strings.Contains(v.detail.Text, longReasonJa) {
				t.Errorf("selected record's detail pane shows %q", v.detail.Text)
			}
		}},
	}
}

// TestScreensFitCounterWindow builds every screen of the table with the long texts of a real
// counter (a 40-digit serial, long names, paths and audit details) and each screen's results
// shown, and checks that the whole window (header, screen, status bar) needs no more than the
// counter window's width, so the log-out button stays on screen, and that a screen taller than
// the window scrolls inside it.
func TestScreensFitCounterWindow(t *testing.T) {
	for _, tc := range wideScreenCases() {
		t.Run(tc.id, func(t *testing.T) {
			s, w, b := wideShell(t)
			if err := s.Show(tc.id); err != nil {
				t.Fatal(err)
			}
			if tc.fill != nil {
				tc.fill(t, s, b)
			}
			// The shell scrolls a screen that is too wide sideways as a last resort; the screen
			// itself, the header and the status bar must fit.
			for _, part := range []struct {
				name string
				o    fyne.CanvasObject
			}{{"screen", s.body.Objects[0]}, {"header", s.header}, {"status bar", s.bar.view}, {"window", w.Content()}} {
				if got := part.o.MinSize().Width; got > counterWindow.Width {
					t.Errorf("%s of %s needs %.0f px (counter window %.0f): the window's right part, log-out among it, would be pushed off-screen",
						part.name, tc.id, got, counterWindow.Width)
				}
			}
			// MADOGUCHI_SCREEN_DUMP=dir keeps a picture of each screen with its long texts, to
			// look at after a layout change (the test asserts the sizes, not the pixels).
			if dir := os.Getenv("MADOGUCHI_SCREEN_DUMP"); dir != "" {
				writePNG(t, filepath.Join(dir, tc.id+".png"), w.Canvas().Capture())
			}
			if !tc.ownScroll && findScroll(s.body.Objects[0]) == nil {
				t.Errorf("screen %s has no vertical scroll container around its body", tc.id)
			}
		})
	}
}

// findResidents replaces the residents screen shown with one whose view the test keeps.
func findResidents(t *testing.T, s *Shell) *residentsView {
	t.Helper()
	v, o := buildResidentsView(s)
	s.body.Objects = []fyne.CanvasObject{o}
	s.body.Refresh()
	return v
}

// findHistory replaces the history screen shown with one whose view the test keeps.
func findHistory(t *testing.T, s *Shell) *historyView {
	t.Helper()
	v, o := buildHistoryView(s)
	s.body.Objects = []fyne.CanvasObject{o}
	s.body.Refresh()
	return v
}

// outcomeInView checks that the screen scrolled down to the outcome of the decision: the
// notice that the procedure is complete and the start of the result below it are in the
// visible part of the scrolled screen.
func outcomeInView(t *testing.T, f *procedureFrame) {
	t.Helper()
	if f.notice.Text != tr("procedure.completed") {
		t.Fatalf("not completed: %q %q", f.message.Text, f.notice.Text)
	}
	top, height := f.scroll.Offset.Y, f.scroll.Size().Height
	if height <= 0 || f.body.MinSize().Height <= height {
		t.Fatalf("the screen (%.0f px high) fits its %.0f px: nothing to scroll", f.body.MinSize().Height, height)
	}
	for _, o := range []fyne.CanvasObject{f.notice, f.result} {
		if y := o.Position().Y; y < top || y+30 > top+height {
			t.Errorf("%T at %.0f px is outside the visible part %.0f–%.0f px", o, y, top, top+height)
		}
	}
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestWheelScrollsPageOverEntries turns the mouse wheel with the pointer over an entry of the
// revocation form: Fyne gives the wheel to the deepest scrollable object, which is the entry's
// own scroller, so without the page's wheel layer the page stood still under the pointer.
func TestWheelScrollsPageOverEntries(t *testing.T) {
	s, w, _ := wideShell(t)
	if err := s.Show(RevokeScreenID); err != nil {
		t.Fatal(err)
	}
	f := s.body.Objects[0].(*revokeView).frame
	if f.body.MinSize().Height <= f.scroll.Size().Height {
		t.Fatalf("the form (%.0f px) fits the window: nothing to scroll", f.body.MinSize().Height)
	}
	for _, e := range []*widget.Entry{f.code, f.identity.ref} {
		at := fyne.CurrentApp().Driver().AbsolutePositionForObject(e).Add(fyne.NewPos(20, 10))
		before := f.scroll.Offset.Y
		test.Scroll(w.Canvas(), at, 0, -120) // the wheel turned towards the user: down the page
		if f.scroll.Offset.Y <= before {
			t.Errorf("wheel over the entry at %v: page offset %.0f → %.0f, want it to scroll down", at, before, f.scroll.Offset.Y)
		}
	}
	// A click still reaches the widgets under the layer: 受付を開始 without a record code.
	f.scroll.ScrollToTop()
	test.TapCanvas(w.Canvas(), fyne.CurrentApp().Driver().AbsolutePositionForObject(f.open).Add(fyne.NewPos(10, 10)))
	if f.message.Text != tr("procedure.error.record_code") {
		t.Errorf("click on 受付を開始: message %q", f.message.Text)
	}
}
