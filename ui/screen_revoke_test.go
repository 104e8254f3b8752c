package ui

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"madoguchi/app/apperr"
)

// procScreens is the screen table the procedure tests run on: the production one.
func procScreens() []Screen { return Screens() }

// deskShell logs clerk in on a shell over a deskBackend, with the terminal's preview renderer
// and a notice folder.
func deskShell(t *testing.T, clerk *fakeOperator) (*Shell, fyne.Window, *deskBackend) {
	t.Helper()
	b := newDeskBackend(t, clerk)
	s, w := newTestShell(t, b, procScreens(), false)
	s.Terminal = TerminalWiring{NoticeDir: filepath.Join(t.TempDir(), "notices"), Preview: Pdftoppm{}}
	loginAs(t, s, clerk.ID)
	if s.Session() == nil {
		t.Fatalf("log-in failed: %q", s.login.message.Text)
	}
	return s, w, b
}

func showRevoke(t *testing.T, s *Shell, id string) *revokeView {
	t.Helper()
	if err := s.Show(id); err != nil {
		t.Fatal(err)
	}
	v, ok := s.body.Objects[0].(*revokeView)
	if !ok {
		t.Fatalf("screen %s shows %T", id, s.body.Objects[0])
	}
	return v
}

// openAndIdentify opens a case for code and records the holder's own driver's licence.
func openAndIdentify(t *testing.T, f *procedureFrame, code string) {
	t.Helper()
	test.Type(f.code, code)
	f.code.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if f.c.ID == 0 {
		t.Fatalf("case not opened: %q", f.message.Text)
	}
	f.identity.document.SetSelected(documentName("drivers_licence"))
	test.Type(f.identity.ref, "5678")
	test.Tap(f.record)
	if f.c.State != "identity_checked" {
		t.Fatalf("identity not recorded: state %q, message %q", f.c.State, f.message.Text)
	}
}

func TestRevokeAtHoldersRequestEndsWithAcknowledgement(t *testing.T) {
	s, w, b := deskShell(t, receptionClerk())
	v := showRevoke(t, s, RevokeScreenID)
	f := v.frame
	if !f.proceed.Disabled() || !f.identity.document.Disabled() {
		t.Fatal("later steps enabled before a case is open")
	}
	openAndIdentify(t, f, "12345678901")
	if f.proceed.Disabled() || v.certs[0].check.Disabled() {
		t.Fatal("request step not enabled after the identity check")
	}
	// The counter offers exactly the reasons of a holder's request, stop-using first.
	if got := v.reason.Options; len(got) != 2 || v.reason.Selected != got[0] || !strings.Contains(got[0], "必要性がなくなった") {
		t.Errorf("reasons = %q, selected %q", got, v.reason.Selected)
	}

	// Nothing is decided while the request is incomplete.
	test.Tap(f.proceed)
	if f.message.Text != tr("procedure.error.no_certificate") {
		t.Errorf("no certificate: message %q", f.message.Text)
	}
	test.Tap(v.certs[0].check)
	test.Type(v.certs[0].serial, "1a:2b")
	test.Tap(f.proceed)
	if f.message.Text != tr("revoke.error.written_request") {
		t.Errorf("no written request: message %q", f.message.Text)
	}
	if got := b.desk.caseState(f.c.ID); got != "identity_checked" {
		t.Fatalf("incomplete request changed the case to %q", got)
	}

	test.Type(v.written, "W-2026-0042")
	test.Tap(f.proceed)
	if f.message.Text != "" {
		t.Fatalf("revocation refused: %q", f.message.Text)
	}
	if len(b.desk.orders) != 1 {
		t.Fatalf("orders = %+v", b.desk.orders)
	}
	o := b.desk.orders[0]
	if o.Kind != RevokeStopUsing || o.Serials[CertSignature] != "1A2B" || len(o.Serials) != 1 || o.WrittenRequest != "W-2026-0042" {
		t.Errorf("order = %+v", o)
	}
	if f.c.State != "completed" || b.desk.caseState(f.c.ID) != "completed" || f.notice.Text != tr("procedure.completed") {
		t.Errorf("after revocation: screen %q, domain %q, notice %q", f.c.State, b.desk.caseState(f.c.ID), f.notice.Text)
	}
	if !f.proceed.Disabled() || !f.refuse.Disabled() || f.restart.Hidden {
		t.Error("a completed case still offers decisions, or no way to the next applicant")
	}
	// The acknowledgement: the CA's reason in Japanese on screen, the PDF saved and previewed.
	if !windowShows(w, "電子証明書の必要性がなくなった（5）") || !windowShows(w, "1A2B") {
		t.Error("revoked certificate not listed with the CA's reason")
	}
	if v.preview == nil || !v.preview.rendered {
		t.Fatalf("acknowledgement not previewed (preview %v): %q", v.preview != nil, previewMessage(v.preview))
	}
	saved, err := filepath.Glob(filepath.Join(s.Terminal.NoticeDir, "notice-*.pdf"))
	if err != nil || len(saved) != 1 {
		t.Fatalf("saved notices = %v, %v", saved, err)
	}
	pdf, err := os.ReadFile(saved[0])
	if err != nil || !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("saved notice is not a PDF: %v", err)
	}
	if st, _ := os.Stat(saved[0]); st.Mode().Perm() != 0o600 {
		t.Errorf("notice file mode %v: it carries personal data", st.Mode().Perm())
	}
	if !v.preview.print.Disabled() || !strings.Contains(v.preview.status.Text, "プリンタが設定されていません") {
		t.Errorf("without a printer: print enabled %v, status %q", !v.preview.print.Disabled(), v.preview.status.Text)
	}

	// Next applicant: a clean form.
	test.Tap(f.restart)
	if f.c.ID != 0 || f.code.Text != "" || f.code.Disabled() || len(f.result.Objects) != 0 ||
		v.certs[0].check.Checked || v.certs[0].serial.Text != "" || v.written.Text != "" || f.identity.document.Selected != "" {
		t.Error("restart did not clear the screen")
	}
}

func TestRevokeAlreadyRevokedShowsSpecificMessage(t *testing.T) {
	s, _, b := deskShell(t, receptionClerk())
	v := showRevoke(t, s, RevokeScreenID)
	f := v.frame
	openAndIdentify(t, f, "12345678901")
	test.Tap(v.certs[1].check)
	test.Type(v.certs[1].serial, "DEAD")
	test.Type(v.written, "W-1")
	test.Tap(f.proceed)
	want := "この電子証明書は既に失効しています。失効は取り消せないため、再度失効することはできません"
	if f.message.Text != want {
		t.Fatalf("message = %q, want %q", f.message.Text, want)
	}
	// The decision stands, nothing was completed, and the clerk can still refuse with a reason.
	if got := b.desk.caseState(f.c.ID); got != "approved" {
		t.Errorf("case state %q, want approved", got)
	}
	if f.refuse.Disabled() || v.preview != nil {
		t.Error("after the CA's refusal the clerk cannot refuse, or an acknowledgement was made")
	}
	test.Type(f.reason, "既に失効済みのため")
	test.Tap(f.refuse)
	if got := b.desk.caseState(f.c.ID); got != "refused" || f.notice.Text != tr("procedure.refused") {
		t.Errorf("refusal: state %q notice %q message %q", got, f.notice.Text, f.message.Text)
	}
}

func TestRevokeIdentityDoubtStopsCase(t *testing.T) {
	s, _, b := deskShell(t, receptionClerk())
	v := showRevoke(t, s, RevokeScreenID)
	f := v.frame
	test.Type(f.code, "12345678901")
	test.Tap(f.open)
	f.identity.document.SetSelected(documentName("passport"))
	test.Type(f.identity.doubt, "写真と本人の容貌が異なる")
	test.Tap(f.record)
	if f.message.Text != tr("procedure.error.identity_doubt") {
		t.Errorf("message = %q", f.message.Text)
	}
	if got := b.desk.caseState(f.c.ID); got != "stopped" || f.c.State != "stopped" {
		t.Errorf("case state domain %q screen %q, want stopped", got, f.c.State)
	}
	if !f.proceed.Disabled() || !f.record.Disabled() || !v.certs[0].check.Disabled() || !f.refuse.Disabled() || f.restart.Hidden {
		t.Error("a stopped case still offers steps, or no way to the next applicant")
	}
	test.Tap(f.proceed)
	if len(b.desk.orders) != 0 {
		t.Errorf("a stopped case reached the CA: %+v", b.desk.orders)
	}
}

func TestRevokeWithdrawnByApplicant(t *testing.T) {
	s, _, b := deskShell(t, receptionClerk())
	f := showRevoke(t, s, RevokeScreenID).frame
	openAndIdentify(t, f, "12345678901")
	test.Tap(f.withdraw)
	if f.message.Text != tr("procedure.error.refuse_reason") || b.desk.caseState(f.c.ID) != "identity_checked" {
		t.Fatalf("withdrawal without a reason: %q", f.message.Text)
	}
	test.Type(f.reason, "申請者が取り下げた")
	test.Tap(f.withdraw)
	if b.desk.caseState(f.c.ID) != "stopped" || f.notice.Text != tr("procedure.withdrawn") || !f.proceed.Disabled() || f.restart.Hidden {
		t.Errorf("withdrawal: state %q notice %q", b.desk.caseState(f.c.ID), f.notice.Text)
	}
}

func TestRevokeProxyNeedsDocuments(t *testing.T) {
	s, _, b := deskShell(t, receptionClerk())
	f := showRevoke(t, s, RevokeScreenID).frame
	test.Type(f.code, "12345678901")
	test.Tap(f.open)
	f.identity.document.SetSelected(documentName("my_number_card"))
	test.Tap(f.identity.proxy)
	if f.identity.proxyBox.Hidden {
		t.Fatal("proxy fields hidden")
	}
	test.Tap(f.identity.attorney)
	test.Tap(f.record)
	if f.message.Text != tr("procedure.error.proxy_documents") || b.desk.caseState(f.c.ID) != "opened" {
		t.Errorf("proxy without the inquiry reply: message %q state %q", f.message.Text, b.desk.caseState(f.c.ID))
	}
	test.Tap(f.identity.inquiry)
	test.Tap(f.record)
	if f.message.Text != tr("procedure.error.proxy_identity") {
		t.Errorf("proxy without own ID: %q", f.message.Text)
	}
	test.Type(f.identity.proxyName, "山田 次郎")
	f.identity.proxyDocument.SetSelected(documentName("passport"))
	test.Tap(f.record)
	if f.c.State != "identity_checked" {
		t.Errorf("complete proxy evidence refused: %q", f.message.Text)
	}
}

func TestRevokeRefusalNeedsReason(t *testing.T) {
	s, _, b := deskShell(t, receptionClerk())
	f := showRevoke(t, s, RevokeScreenID).frame
	openAndIdentify(t, f, "12345678901")
	test.Tap(f.refuse)
	if f.message.Text != tr("procedure.error.refuse_reason") || b.desk.caseState(f.c.ID) != "identity_checked" {
		t.Errorf("refusal without reason: message %q state %q", f.message.Text, b.desk.caseState(f.c.ID))
	}
	test.Type(f.reason, "申請書の記載に不備")
	f.reason.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if b.desk.caseState(f.c.ID) != "refused" {
		t.Fatalf("not refused: %q", f.message.Text)
	}
	b.desk.mu.Lock()
	reason := b.desk.cases[f.c.ID].RefusalReason
	b.desk.mu.Unlock()
	if reason != "申請書の記載に不備" {
		t.Errorf("recorded reason %q", reason)
	}
}

func TestRevokeScreensNeedReceptionPermission(t *testing.T) {
	s, w, b := deskShell(t, csClerk())
	for _, id := range []string{RevokeScreenID, LossReportScreenID, HoldScreenID} {
		if err := s.Show(id); err == nil {
			t.Errorf("CS clerk opened %s", id)
		}
	}
	for _, title := range menuTitles(w) {
		if title == tr("revoke.title") || title == tr("loss.title") || title == tr("hold.title") {
			t.Errorf("CS clerk's menu offers %q", title)
		}
	}
	// A reception clerk whose permission is withdrawn meanwhile is refused by the domain.
	s2, _, b2 := deskShell(t, receptionClerk())
	f := showRevoke(t, s2, RevokeScreenID).frame
	b2.desk.deny = apperr.New(apperr.PermissionDenied, "app: case.open needs the reception permission")
	test.Type(f.code, "12345678901")
	test.Tap(f.open)
	if f.message.Text != tr("error.permission_denied") || f.c.ID != 0 {
		t.Errorf("withdrawn permission: message %q case %d", f.message.Text, f.c.ID)
	}
	_ = b
}

func TestLossReportIsCounterOnlyWithKeyCompromise(t *testing.T) {
	s, w, b := deskShell(t, receptionClerk())
	v := showRevoke(t, s, LossReportScreenID)
	if !windowShows(w, tr("loss.counter_only")) {
		t.Error("the counter-only rule is not shown")
	}
	if got := v.reason.Options; len(got) != 2 || !strings.Contains(got[0], "理由コード 1") || !strings.Contains(got[1], "カードが使用できなくなった") {
		t.Errorf("loss reasons = %q", got)
	}
	f := v.frame
	openAndIdentify(t, f, "23456789012")
	test.Tap(v.certs[0].check)
	test.Type(v.certs[0].serial, "1A2B")
	test.Tap(v.certs[1].check)
	test.Type(v.certs[1].serial, "3C4D")
	v.reason.SetSelected(v.reason.Options[1])
	test.Type(v.written, "L-7")
	test.Tap(f.proceed)
	if f.message.Text != "" || len(b.desk.orders) != 1 {
		t.Fatalf("loss report refused: %q", f.message.Text)
	}
	if o := b.desk.orders[0]; o.Kind != RevokeCardUnusable || len(o.Serials) != 2 {
		t.Errorf("order = %+v", o)
	}
	b.desk.mu.Lock()
	kind := b.desk.cases[f.c.ID].Kind
	b.desk.mu.Unlock()
	if kind != "loss_report" {
		t.Errorf("case kind %q", kind)
	}
	if !windowShows(w, "利用者の秘密鍵が危殆化した（1）") {
		t.Error("reason 1 not shown in the CA's words")
	}
}

func TestRevokeCAUnreachableKeepsDecision(t *testing.T) {
	s, _, b := deskShell(t, receptionClerk())
	v := showRevoke(t, s, RevokeScreenID)
	f := v.frame
	openAndIdentify(t, f, "12345678901")
	test.Tap(v.certs[0].check)
	test.Type(v.certs[0].serial, "1A2B")
	test.Type(v.written, "W-9")
	b.desk.caDown = true
	test.Tap(f.proceed)
	if f.message.Text != tr("procedure.error.ca_unavailable") || b.desk.caseState(f.c.ID) != "approved" {
		t.Fatalf("CA down: message %q state %q", f.message.Text, b.desk.caseState(f.c.ID))
	}
	// Trying again once the CA is back completes without a second approval.
	b.desk.caDown = false
	test.Tap(f.proceed)
	if f.message.Text != "" || f.c.State != "completed" || len(b.desk.orders) != 2 {
		t.Errorf("retry: message %q state %q orders %d", f.message.Text, f.c.State, len(b.desk.orders))
	}
}

// hasText reports whether a label or button in w's content shows exactly text.
func windowShows(w fyne.Window, text string) bool {
	for _, o := range test.LaidOutObjects(w.Content()) {
		switch x := o.(type) {
		case *widget.Label:
			if x.Text == text {
				return true
			}
		case *widget.Button:
			if x.Text == text {
				return true
			}
		}
	}
	return false
}

func previewMessage(p *documentPreview) string {
	if p == nil {
		return ""
	}
	return p.message.Text + " / " + p.status.Text
}

// TestImageRevoke is the revocation screen with the identity recorded and the request filled in.
func TestImageRevoke(t *testing.T) {
	s, w, _ := deskShell(t, receptionClerk())
	w.Resize(fyne.NewSize(960, 1260))
	v := showRevoke(t, s, RevokeScreenID)
	openAndIdentify(t, v.frame, "12345678901")
	test.Tap(v.certs[0].check)
	test.Type(v.certs[0].serial, "1A2B")
	test.Type(v.written, "W-2026-0042")
	test.AssertImageMatches(t, "revoke_request.png", w.Canvas().Capture())
}

// TestImageRevocationAcknowledgement is the acknowledgement's preview: page 1 of the PDF the
// holder is handed, rendered by pdftoppm, with its saved state and the print button.
func TestImageRevocationAcknowledgement(t *testing.T) {
	s, _, _ := deskShell(t, receptionClerk())
	v := showRevoke(t, s, RevokeScreenID)
	f := v.frame
	openAndIdentify(t, f, "23456789012")
	test.Tap(v.certs[0].check)
	test.Type(v.certs[0].serial, "1A2B")
	test.Tap(v.certs[1].check)
	test.Type(v.certs[1].serial, "3C4D")
	test.Type(v.written, "W-2026-0043")
	test.Tap(f.proceed)
	if v.preview == nil || !v.preview.rendered {
		t.Fatalf("not previewed: %q %q", f.message.Text, previewMessage(v.preview))
	}
	// The saved path differs per run; the image shows the preview with a fixed status line.
	v.preview.status.SetText(tr("preview.saved_no_printer", map[string]any{"Path": "notices/notice-1.pdf"}))
	pw := test.NewTempWindow(t, v.preview.view)
	pw.Resize(fyne.NewSize(480, 720))
	test.AssertImageMatches(t, "revoke_acknowledgement.png", pw.Canvas().Capture())
}

// TestProcedureKeysTranslated checks every translation key literal of the procedure and
// resident-change screens (also those returned as keys, which TestTranslationsComplete's scan
// does not see) in both catalogues.
func TestProcedureKeysTranslated(t *testing.T) {
	ja, en := loadCatalogue(t, "ja.json"), loadCatalogue(t, "en.json")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`"((?:procedure|revoke|loss|hold|changes|copy|preview|document|cert)\.[a-z_.0-9]+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || !(strings.HasPrefix(f, "screen_revoke") || strings.HasPrefix(f, "screen_hold") ||
			strings.HasPrefix(f, "screen_changes") || strings.HasPrefix(f, "screen_copy") || f == "appbackend_revoke.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(src), -1) {
			n++
			if _, ok := ja[m[1]]; !ok {
				t.Errorf("%s: %q missing in ja.json", f, m[1])
			}
			if _, ok := en[m[1]]; !ok {
				t.Errorf("%s: %q missing in en.json", f, m[1])
			}
		}
	}
	if n < 100 {
		t.Fatalf("found only %d keys: the scan is broken", n)
	}
}
