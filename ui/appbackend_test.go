package ui

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/workflow"
)

// appFixture is a real counter domain (SQLite file, log-in policy, audit chain) with the app's
// in-process fingerprint reader; fprintd itself is exercised by app's and the terminal's tests.
type appFixture struct {
	term *app.Terminal
	fp   *auth.Fake
	sup  *app.Session
	// the terminal's CA client and card reader (app.Config.CurrentCA, Cards): none unless a
	// test sets them
	ca    app.CA
	cards app.CardOpener
}

func newAppFixture(t *testing.T) *appFixture {
	t.Helper()
	ctx := context.Background()
	f := &appFixture{fp: auth.NewFake()}
	term, err := app.Open(ctx, app.Config{DBPath: filepath.Join(t.TempDir(), "terminal.db"), Fingerprint: f.fp,
		Argon2: auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, MaxFailedLogins: 3,
		CurrentCA: func() (app.CA, error) { return f.ca, nil }, Cards: f.openCard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	f.term = term
	const supPassword = "supervisor pass 1"
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理 太郎", Password: supPassword,
		ExemptReason: "set-up before the reader is installed"}); err != nil {
		t.Fatal(err)
	}
	if f.sup, err = term.LoginPassword(ctx, "sup", supPassword); err != nil {
		t.Fatal(err)
	}
	return f
}

// openCard is the fixture's card reader: f.cards, or no reader.
func (f *appFixture) openCard(ctx context.Context) (issue.Card, func(), error) {
	if f.cards == nil {
		return nil, nil, errors.New("ui test: no card reader")
	}
	return f.cards(ctx)
}

func (f *appFixture) addOperator(t *testing.T, id, name, finger string, perms ...operator.Permission) {
	t.Helper()
	ctx := context.Background()
	if err := f.sup.CreateOperator(ctx, id, name); err != nil {
		t.Fatal(err)
	}
	for _, p := range perms {
		if err := f.sup.Grant(ctx, id, p); err != nil {
			t.Fatal(err)
		}
	}
	f.fp.Present(finger)
	if err := f.sup.EnrollFinger(ctx, id, auth.DefaultFinger, nil); err != nil {
		t.Fatal(err)
	}
	f.fp.Present("")
}

func TestAppBackendFingerprintLogin(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	s, w := newTestShell(t, AppBackend{Terminal: f.term}, dutyScreens(), true)

	// Wrong finger: the domain's no-match reaches the clerk in Japanese.
	f.fp.Present("someone-else")
	loginAs(t, s, "R001")
	lv := s.login
	waitFor(t, "no-match message", func() bool {
		return lv.message.Text == "指紋が一致しませんでした。もう一度お試しください"
	})

	// Right finger: logged in, and the menu follows the domain's permissions.
	f.fp.Present("finger-R001")
	lv.startFingerprint()
	waitFor(t, "home", func() bool { return s.Current() == HomeID })
	if got := menuTitles(w); len(got) != 1 || got[0] != "test.reception" {
		t.Errorf("menu = %v, want only the reception duty", got)
	}
	if err := s.Show("cs.residents"); err == nil {
		t.Error("CS screen opened for a reception operator")
	}

	// A withdrawn permission takes effect at once (TS Art. 3(4)).
	if err := f.sup.Withdraw(context.Background(), "R001", operator.Reception); err != nil {
		t.Fatal(err)
	}
	if err := s.Show("reception.apply"); err == nil {
		t.Error("reception screen opened after the permission was withdrawn")
	}
}

func TestAppBackendPasswordRefusedForBiometricOperator(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "C001", "住基 太郎", "finger-C001", operator.CS)
	_, err := AppBackend{Terminal: f.term}.LoginPassword(context.Background(), "C001", "anything at all")
	if got := errorMessage(err); got != tr("error.password_not_allowed") {
		t.Errorf("message = %q (err %v)", got, err)
	}
}

func TestAppBackendLockout(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "R002", "受付 次郎", "finger-R002", operator.Reception)
	s, _ := newTestShell(t, AppBackend{Terminal: f.term}, Screens(), false)
	f.fp.Present("someone-else")
	loginAs(t, s, "R002")
	for i := 0; i < 2; i++ { // MaxFailedLogins is 3
		s.login.startFingerprint()
	}
	if got := s.login.message.Text; got != tr("error.locked_out") {
		t.Fatalf("after 3 no-matches: message %q, want the lockout message", got)
	}
	f.fp.Present("finger-R002") // even the right finger is refused now
	s.login.back()
	s.login.idEntry.SetText("")
	loginAs(t, s, "R002")
	if s.Session() != nil || s.login.message.Text != tr("error.locked_out") {
		t.Fatalf("locked operator: session %v, message %q", s.Session(), s.login.message.Text)
	}
}

// labelsIn returns the texts of the labels and buttons the window shows, in layout order.
func labelsIn(w fyne.Window) []string {
	var out []string
	for _, o := range test.LaidOutObjects(w.Content()) {
		switch o := o.(type) {
		case *widget.Label:
			if o.Visible() {
				out = append(out, o.Text)
			}
		case *widget.Button:
			if o.Visible() {
				out = append(out, o.Text)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func buttonIn(t *testing.T, w fyne.Window, text string) *widget.Button {
	t.Helper()
	for _, o := range test.LaidOutObjects(w.Content()) {
		if b, ok := o.(*widget.Button); ok && b.Text == text && b.Visible() {
			return b
		}
	}
	t.Fatalf("no button %q among %v", text, labelsIn(w))
	return nil
}

// TestSupervisorScreensWithApp: the supervisor (exempted, password) sees the operator list and the
// history but no counter duty; unlocks an operator locked by three wrong fingers, who can then
// log in; and reads that operator's history with the refusals.
func TestSupervisorScreensWithApp(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	backend := AppBackend{Terminal: f.term}
	ctx := context.Background()
	f.fp.Present("someone-else")
	for i := 0; i < 3; i++ {
		backend.LoginFingerprint(ctx, "R001", func(ScanEvent) {})
	}
	f.fp.Present("finger-R001")
	if _, err := backend.LoginFingerprint(ctx, "R001", func(ScanEvent) {}); errorKey(err) != "error.locked_out" {
		t.Fatalf("R001 not locked: %v", err)
	}

	s, w := newTestShell(t, backend, Screens(), false)
	loginAs(t, s, "sup")
	test.Type(s.login.pwEntry, "supervisor pass 1")
	s.login.pwEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if s.Current() != HomeID {
		t.Fatalf("supervisor log-in failed: %q", s.login.message.Text)
	}
	if got := menuTitles(w); len(got) != 3 || got[0] != "職員の管理" || got[1] != "端末の設定" || got[2] != "操作履歴" {
		t.Fatalf("supervisor menu = %v", got)
	}

	test.Tap(buttonIn(t, w, "職員の管理"))
	labels := labelsIn(w)
	if !contains(labels, "R001") || !contains(labels, "ロック中") || !contains(labels, "管理者・監査") {
		t.Fatalf("operator list = %v", labels)
	}
	test.AssertImageMatches(t, "operators_supervisor.png", w.Canvas().Capture())
	test.Tap(buttonIn(t, w, "R001")) // select R001: its settings, unlock included, open beside the list
	test.Tap(buttonIn(t, w, "ロック解除"))
	if labels := labelsIn(w); contains(labels, "ロック中") {
		t.Fatalf("still locked after unlock: %v", labels)
	}
	if _, err := backend.LoginFingerprint(ctx, "R001", func(ScanEvent) {}); err != nil {
		t.Fatalf("R001 log-in after unlock: %v", err)
	}

	if err := s.Show("audit.history"); err != nil {
		t.Fatal(err)
	}
	var idEntry *widget.Entry // the first field is the operator filter
	var table *widget.Table
	for _, o := range test.LaidOutObjects(w.Content()) {
		switch o := o.(type) {
		case *widget.Entry:
			if idEntry == nil {
				idEntry = o
			}
		case *widget.Table:
			table = o
		}
	}
	test.Type(idEntry, "R001")
	idEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	labels = nil // the table's cells, as the screen fills them
	rows, cols := table.Length()
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			l := widget.NewLabel("")
			table.UpdateCell(widget.TableCellID{Row: r, Col: c}, l)
			labels = append(labels, l.Text)
		}
	}
	refused, ok := 0, 0
	for _, l := range labels {
		switch l {
		case "拒否":
			refused++
		case "成功":
			ok++
		}
	}
	// 3 no-matches and the refused attempt while locked; then the log-in after the unlock.
	if refused != 4 || ok != 1 || !contains(labels, "指紋でログイン") {
		t.Errorf("history of R001: %d refused, %d ok; labels %v", refused, ok, labels)
	}
}

// TestApplicantPINJudgedByApp: the applicant PIN screen asks the real domain to judge the PIN of
// an open case: the birthday (29 February), a repeated digit and a run are refused with the rule
// in plain Japanese, an acceptable PIN reaches its use once, and the audit trail records the
// checks without the PIN.
func TestApplicantPINJudgedByApp(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "C001", "住基 太郎", "finger-C001", operator.CS)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	ctx := context.Background()
	f.fp.Present("finger-C001")
	cs, err := f.term.LoginFingerprint(ctx, "C001", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ImportResidentFixtures(ctx); err != nil {
		t.Fatal(err)
	}
	file, err := cs.ExportResidentFile(ctx, "90000000066") // 斉藤 閏, born 29 February
	if err != nil {
		t.Fatal(err)
	}

	s, w := newTestShell(t, AppBackend{Terminal: f.term}, Screens(), false)
	f.fp.Present("finger-R001")
	loginAs(t, s, "R001")
	if s.Current() != HomeID {
		t.Fatalf("reception log-in: %q", s.login.message.Text)
	}
	c, err := s.Session().(*appSession).App().OpenCase(ctx, app.CaseRequest{Kind: workflow.NewIssuance,
		ResidentFile: file, NewCard: true, CertTypes: []workflow.CertType{workflow.SignatureCert, workflow.UserAuthCert}})
	if err != nil {
		t.Fatal(err)
	}
	var used [][]byte
	if err := s.AskApplicantPIN(c.ID, PINUserAuth, func(pin []byte) error {
		used = append(used, bytes.Clone(pin))
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	h := &pinHarness{s: s, w: w, p: s.pin}
	for _, tc := range []struct{ pin, key string }{
		{"0229", "pin.error.birthday"},
		{"7777", "pin.error.all_same"},
		{"6543", "pin.error.sequence"},
		{"4545", "pin.error.repeated"},
	} {
		h.enter(tc.pin, tc.pin)
		if got := h.p.message.Text; got != tr(tc.key) {
			t.Errorf("PIN %s: message %q, want %q", tc.pin, got, tr(tc.key))
		}
		if len(used) != 0 || h.p.first.Text != "" {
			t.Fatalf("PIN %s: used %d, field %q", tc.pin, len(used), h.p.first.Text)
		}
	}
	if tr("pin.error.birthday") != "生年月日から推測される暗証番号は使えません。別の暗証番号を入力してください" {
		t.Errorf("birthday message = %q", tr("pin.error.birthday"))
	}
	h.enter("5830", "5830")
	if len(used) != 1 || string(used[0]) != "5830" || s.pin != nil {
		t.Fatalf("accepted PIN: used %q, screen still shown %v", used, s.pin != nil)
	}

	recs, err := audit.List(ctx, f.term.DB(), audit.Filter{Operator: "R001"})
	if err != nil {
		t.Fatal(err)
	}
	checks := 0
	for _, r := range recs {
		if r.Action != "case.pin_check" {
			continue
		}
		checks++
		for k, v := range r.Detail {
			for _, pin := range []string{"0229", "7777", "6543", "4545", "5830"} {
				if strings.Contains(v, pin) {
					t.Errorf("audit record %d detail %s=%q contains the PIN", r.Seq, k, v)
				}
			}
		}
	}
	if checks != 5 {
		t.Errorf("pin checks audited = %d, want 5", checks)
	}
}

// TestResidentSearchAndFileWithApp: a CS operator searches the real register by kana, creates
// the applicant's resident-record file in the hand-over folder, and reception opens a case
// with exactly that file; a second import of it is refused (single use).
func TestResidentSearchAndFileWithApp(t *testing.T) {
	f := newAppFixture(t)
	f.addOperator(t, "C001", "住基 太郎", "finger-C001", operator.CS)
	f.addOperator(t, "R001", "受付 花子", "finger-R001", operator.Reception)
	ctx := context.Background()

	s, w := newTestShell(t, AppBackend{Terminal: f.term}, Screens(), false)
	s.ResidentFileDir = filepath.Join(t.TempDir(), "resident-files")
	f.fp.Present("finger-C001")
	loginAs(t, s, "C001")
	if s.Current() != HomeID {
		t.Fatalf("CS log-in: %q", s.login.message.Text)
	}
	if _, err := s.Session().(*appSession).App().ImportResidentFixtures(ctx); err != nil {
		t.Fatal(err)
	}
	test.Tap(buttonIn(t, w, "住民検索・ファイル作成"))
	if s.Current() != "cs.residents" {
		t.Fatalf("current screen %q", s.Current())
	}

	// No criteria: refused locally with a message.
	test.Tap(buttonIn(t, w, "検索"))
	if !contains(labelsIn(w), tr("cs.need_criteria")) {
		t.Errorf("empty search: %v", labelsIn(w))
	}
	var kana *widget.Entry
	for _, o := range test.LaidOutObjects(w.Content()) {
		if e, ok := o.(*widget.Entry); ok && kana == nil {
			kana = e // the first field is the kana reading
		}
	}
	test.Type(kana, "サイトウ")
	kana.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	labels := labelsIn(w)
	if !contains(labels, "90000000066") || !contains(labels, "斉藤 閏") {
		t.Fatalf("search result = %v", labels)
	}
	test.Tap(buttonIn(t, w, "ファイル作成"))
	notice := ""
	for _, l := range labelsIn(w) {
		if strings.Contains(l, "住民票ファイルを作成しました") {
			notice = l
		}
	}
	if !strings.Contains(notice, "斉藤 閏") {
		t.Fatalf("no export notice among %v", labelsIn(w))
	}
	files, err := filepath.Glob(filepath.Join(s.ResidentFileDir, "resident-90000000066-*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("exported files = %v (%v)", files, err)
	}
	if st, err := os.Stat(files[0]); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode = %v (%v), want 0600", st.Mode(), err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}

	// Reception imports it once.
	f.fp.Present("finger-R001")
	rc, err := f.term.LoginFingerprint(ctx, "R001", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.OpenCase(ctx, app.CaseRequest{Kind: workflow.NewIssuance, ResidentFile: data, NewCard: true,
		CertTypes: []workflow.CertType{workflow.UserAuthCert}})
	if err != nil {
		t.Fatalf("open case with the exported file: %v", err)
	}
	if c.Applicant.Name != "斉藤 閏" {
		t.Errorf("case applicant = %q", c.Applicant.Name)
	}
	if _, err := rc.ImportResidentFile(ctx, data); !errors.Is(err, apperr.FileUsed) || errorMessage(err) != "この住民票ファイルは取り込み済みです。CS で作成し直してください" {
		t.Errorf("second import = %v (%q), want the file-used refusal", err, errorMessage(err))
	}
}
