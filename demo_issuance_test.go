package main

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/color"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/operator"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
	"madoguchi/internal/services"
	"madoguchi/internal/testenv"
)

// demoRun is the demo supervisor (internal/cmd/demo) running as a child of the test.
type demoRun struct {
	cmd        *exec.Cmd
	mu         sync.Mutex
	log        strings.Builder
	busAddress string
	fingerSock string
	up         chan struct{}
	upOnce     sync.Once
}

func (r *demoRun) output() string { r.mu.Lock(); defer r.mu.Unlock(); return r.log.String() }

var demoFingerLine = regexp.MustCompile(`DBUS_SYSTEM_BUS_ADDRESS=(\S+) MADOGUCHI_VIRTUAL_FINGER=(\S+)`)

// startDemo builds the binaries into dataDir/bin and runs the demo supervisor with --no-build on
// the test's display, returning when the terminal window is up.
func startDemo(t *testing.T, dataDir string) *demoRun {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	bin := filepath.Join(dataDir, "bin")
	demoBin := filepath.Join(t.TempDir(), "demo")
	// The terminal as the demo builds it (internal/cmd/demo: TerminalTags): with the
	// virtual-finger button, which only the demo build links.
	for _, b := range [][3]string{{filepath.Join(bin, "madoguchi"), ".", "demo"}, {filepath.Join(bin, "ca-server"), "./ca-server"},
		{filepath.Join(bin, "vcard"), "./cardio/cmd/vcard"}, {demoBin, "./internal/cmd/demo"}} {
		args := []string{"build", "-o", b[0]}
		if b[2] != "" {
			args = append(args, "-tags", b[2])
		}
		if out, err := exec.Command(goTool, append(args, b[1])...).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	caListen := l.Addr().String()
	l.Close()
	r := &demoRun{up: make(chan struct{})}
	r.cmd = exec.Command(demoBin, "--data-dir", dataDir, "--no-build", "--ca-listen", caListen)
	r.cmd.Env = os.Environ()
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { r.cmd.Wait(); pw.Close(); close(exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"terminal.log", "ca-server.log"} {
				if b, err := os.ReadFile(filepath.Join(dataDir, "logs", name)); err == nil {
					t.Logf("%s:\n%s", name, b)
				}
			}
		}
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			r.cmd.Process.Kill()
			<-exited
		}
		t.Logf("demo output:\n%s", r.output())
	})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			r.log.WriteString(line + "\n")
			if m := demoFingerLine.FindStringSubmatch(line); m != nil {
				r.busAddress, r.fingerSock = m[1], m[2]
			}
			r.mu.Unlock()
			if strings.Contains(line, "the terminal window is up") {
				r.upOnce.Do(func() { close(r.up) })
			}
		}
	}()
	select {
	case <-r.up:
	case <-exited:
		t.Fatalf("demo exited before the window came up:\n%s", r.output())
	case <-time.After(5 * time.Minute):
		t.Fatalf("demo: no window after 5 minutes:\n%s", r.output())
	}
	return r
}

// press presses print on the demo's virtual fingerprint device.
func (r *demoRun) press(t *testing.T, print string) {
	t.Helper()
	if err := services.ScanVirtualFinger(r.fingerSock, print, 30*time.Second); err != nil {
		t.Fatalf("press %s: %v\n%s", print, err, r.output())
	}
}

// demoShots takes the numbered demo screenshots.
type demoShots struct {
	t    *testing.T
	d    *testenv.Display
	r    *demoRun
	tmp  string
	n    int
	last image.Image
}

// snap waits for a drawn frame different from the previous one that holds still, and saves it
// as demo-NN-name.png in shotDir.
func (s *demoShots) snap(name string) string {
	s.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var prev image.Image
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			s.t.Fatalf("no stable %s frame\n%s", name, s.r.output())
		}
		c := capture(s.t, s.d, filepath.Join(s.tmp, fmt.Sprintf("%s-%d.png", name, i)))
		if c.drawn() && (s.last == nil || !sameImage(c.img, s.last)) {
			if prev != nil && sameImage(prev, c.img) {
				s.n++
				dst := filepath.Join(shotDir(s.t), fmt.Sprintf("demo-%02d-%s.png", s.n, name))
				copyFile(s.t, c.path, dst)
				s.last = c.img
				return dst
			}
			prev = c.img
		} else {
			prev = nil
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (s *demoShots) click(x, y int) {
	s.t.Helper()
	xdotool(s.t, "mousemove", fmt.Sprint(x), fmt.Sprint(y), "click", "1")
}

func (s *demoShots) typeText(text string) {
	s.t.Helper()
	xdotool(s.t, "type", "--delay", "120", text)
}

func (s *demoShots) key(k string) { s.t.Helper(); xdotool(s.t, "key", k) }

// prepareReception creates the reception clerk R001 (reception and CS) with the virtual print
// "print-R001", loads the fictional residents and hands one resident-record file over in the
// terminal's resident-files folder, all by the domain with demo1 logged in by the virtual finger.
func prepareReception(t *testing.T, r *demoRun, termDir string) string {
	t.Helper()
	ctx := context.Background()
	term, err := app.Open(ctx, app.Config{DBPath: filepath.Join(termDir, "terminal.db"),
		Fingerprint: &auth.Fprintd{BusAddress: r.busAddress}})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	login := func(id, print string) *app.Session {
		var wg sync.WaitGroup
		sess, err := term.LoginFingerprint(ctx, id, func(ev auth.ScanEvent) {
			if ev == auth.ScanWaiting {
				wg.Add(1)
				go func() { defer wg.Done(); services.ScanVirtualFinger(r.fingerSock, print, 30*time.Second) }()
			}
		})
		wg.Wait()
		if err != nil {
			t.Fatalf("log-in of %s: %v", id, err)
		}
		return sess
	}
	sup := login("demo1", "demo1-right-index")
	if err := sup.CreateOperator(ctx, "R001", "受付 花子"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []operator.Permission{operator.Reception, operator.CS} {
		if err := sup.Grant(ctx, "R001", p); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	err = sup.EnrollFinger(ctx, "R001", auth.DefaultFinger, func(e auth.EnrollProgress) {
		if e.Stage < e.Total && !e.Retry {
			wg.Add(1)
			go func() { defer wg.Done(); services.ScanVirtualFinger(r.fingerSock, "print-R001", 30*time.Second) }()
		}
	})
	wg.Wait()
	if err != nil {
		t.Fatalf("enrol R001: %v", err)
	}
	sup.Logout(ctx)
	cs := login("R001", "print-R001")
	defer cs.Logout(ctx)
	if _, err := cs.ImportResidentFixtures(ctx); err != nil {
		t.Fatal(err)
	}
	// 鈴木 一郎, on the register (fixtures/residents.csv); his name needs no 外字 substitution.
	const code = "90000000088"
	if res, err := cs.SearchResidents(ctx, resident.Query{RecordCode: code}); err != nil || len(res) != 1 || res[0].Status != resident.StatusResident {
		t.Fatalf("resident %s: %+v, %v", code, res, err)
	}
	data, err := cs.ExportResidentFile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(termDir, "resident-files")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, code+".json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return code
}

// TestDemoIssuanceInWindow runs the demo supervisor (internal/cmd/demo: pcscd with a virtual
// card in "Virtual PCD 00 00", fprintd's virtual device, ca-server --dev, the terminal window
// enrolled with the CA) under the test's Xvfb and drives the window with xdotool: reception clerk
// R001 logs in with the virtual finger, issues both certificates to the virtual card with the
// applicant setting the PINs, prints the notice through the demo's cupsd, revokes
// the user-authentication certificate, and the auditor demo1 filters the audit view by R001.
// Only the preparation (R001 created and enrolled, one resident-record file handed over) goes
// through the domain. Each step leaves demo-NN-step.png in shotDir; the terminal's audit
// trail confirms the deliveries, the one revocation and the filtered audit view.
func TestDemoIssuanceInWindow(t *testing.T) {
	d := testenv.Xvfb(t)
	dataDir := t.TempDir()
	r := startDemo(t, dataDir)
	// The demo build offers the virtual finger (demofinger.go; the production build has no
	// such button): the terminal says so in its log when it opens the log-in screen.
	if b, err := os.ReadFile(filepath.Join(dataDir, "logs", "terminal.log")); err != nil || !strings.Contains(string(b), "demo: the fingerprint step offers a virtual finger") {
		t.Errorf("the demo's terminal does not offer the virtual finger (%v):\n%s", err, b)
	}
	termDir := filepath.Join(dataDir, "terminal")
	code := prepareReception(t, r, termDir)
	t.Logf("resident file for %s handed over", code)
	s := &demoShots{t: t, d: d, r: r, tmp: t.TempDir()}
	removeShots(t, "demo-[0-9][0-9]-*.png")
	s.snap("login")
	xdotool(t, "search", "--sync", "--name", "Madoguchi", "windowfocus")
	s.typeText("R001")
	s.key("Return")
	r.press(t, "print-R001")
	s.snap("home")
	s.click(menuIndex(t, "reception.issue", "reception", "cs"))
	s.snap("issue-file")
	s.click(650, 211) // the resident-record file select
	s.snap("issue-file-list")
	s.click(650, 258)
	s.snap("issue-file-chosen")
	s.clickPrimary("取り込んで申請を受け付ける")
	s.snap("issue-existence")
	s.clickPrimary("次へ")
	s.snap("issue-identity")
	s.click(720, 236) // 本人確認書類
	s.snap("issue-identity-documents")
	s.click(720, 329) // 運転免許証
	s.click(720, 286) // 書類番号の末尾4桁
	s.typeText("1234")
	s.snap("issue-identity-filled")
	s.key("Return")
	s.snap("issue-explanation")
	// Each item's 了解 check: the first by the mouse, the others by Tab and Space (the list
	// scrolls; the keyboard reaches every check in order).
	s.click(32, 289)
	for i := 1; i < len(workflow.RequiredItems([]workflow.CertType{workflow.SignatureCert, workflow.UserAuthCert})); i++ {
		s.key("Tab")
		s.key("space")
	}
	s.snap("issue-explanation-acknowledged")
	s.clickPrimary("次へ")
	s.snap("issue-card")
	// The expiry field has the focus; Return starts the issuance with the card in the reader.
	s.typeText(time.Now().AddDate(10, 0, 0).Format("2006-01-02"))
	s.snap("issue-card-expiry")
	s.key("Return")
	// The applicant sets the user-authentication PIN, then the signature PIN, each twice
	// (app/issue asks in that order).
	s.snap("issue-pin-user-auth")
	s.typeText("4817")
	s.key("Return")
	s.typeText("4817")
	s.snap("issue-pin-user-auth-typed")
	s.key("Return")
	s.snap("issue-pin-signature")
	s.typeText("SAKURA73")
	s.key("Return")
	s.typeText("SAKURA73")
	s.snap("issue-pin-signature-typed")
	s.key("Return")
	s.snap("issue-result")
	s.checkWidth("reception.issue (result)")
	if notices, _ := filepath.Glob(filepath.Join(termDir, "notices", "notice-*.pdf")); len(notices) != 1 {
		t.Errorf("issuance notices saved: %v, want one PDF", notices)
	} else if b, err := os.ReadFile(notices[0]); err != nil || !strings.HasPrefix(string(b), "%PDF-") {
		t.Errorf("notice %s is not a PDF (%v)", notices[0], err)
	}
	// The demo's cupsd has a file queue: 印刷 (enabled once the notice is saved) sends the notice
	// through CUPS, and the job lands in the data directory's printed/.
	s.waitPrimary("印刷")
	s.snap("issue-printed")
	printed := waitFiles(t, filepath.Join(dataDir, "printed", "job-*.pdf"), 1, 30*time.Second)
	if b, err := os.ReadFile(printed[0]); err != nil || !strings.HasPrefix(string(b), "%PDF-") {
		t.Errorf("printed job %s is not the notice PDF (%v)", printed[0], err)
	}
	var prints []audit.Record
	for deadline := time.Now().Add(30 * time.Second); len(prints) == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, r := range auditRecords(t, termDir) {
			if r.Action == "document.print" {
				prints = append(prints, r)
			}
		}
	}
	if len(prints) != 1 || prints[0].Operator != "R001" || prints[0].Result != audit.ResultOK || prints[0].Detail["document"] != app.DocumentIssuanceNotice {
		t.Errorf("prints in the audit trail: %+v; want R001 printing the issuance notice", prints)
	}

	// Revocation of the user-authentication certificate just issued.
	s.header(homeButtonX, homeButtonY)
	s.snap("home-again")
	s.click(menuIndex(t, "reception.revoke", "reception", "cs"))
	s.snap("revoke")
	s.click(640, 184) // 住民票コード
	s.typeText(code)
	s.key("Return")
	s.snap("revoke-opened")
	s.click(700, 341) // 本人確認書類
	s.snap("revoke-identity-documents")
	s.click(300, 433) // 運転免許証
	s.click(600, 391) // 書類の番号
	s.typeText("1234")
	s.key("Return") // 本人確認を記録
	s.snap("revoke-identity-recorded")
	delivered := deliveredSerials(t, termDir)
	if len(delivered) != 2 || delivered[workflow.SignatureCert] == "" || delivered[workflow.UserAuthCert] == "" {
		t.Fatalf("delivered certificates in the audit trail: %v", delivered)
	}
	// 利用者証明用電子証明書: its check (at the bottom edge), then by the keyboard its serial,
	// the two reasons (the first is selected), the written-request reference; Return proceeds.
	s.click(22, 738)
	s.key("Tab")
	s.typeText(delivered[workflow.UserAuthCert])
	for i := 0; i < 3; i++ {
		s.key("Tab")
	}
	s.typeText("W-0001")
	s.snap("revoke-filled")
	s.key("Return")
	s.snap("revoke-proceed")
	s.checkWidth("reception.revoke (acknowledgement)")
	// The screen is taller than the window: the mouse wheel scrolls it under the fixed header
	// back to the top of the form and down to the acknowledgement again.
	s.wheel(640, 400, 4, 60)
	s.snap("revoke-wheel-up")
	s.wheel(640, 400, 5, 60)
	s.snap("revoke-wheel-down")
	var revoked []audit.Record
	for _, r := range auditRecords(t, termDir) {
		if r.Action == "certificate.revoke" && r.Result == audit.ResultOK {
			revoked = append(revoked, r)
		}
	}
	if len(revoked) != 1 || revoked[0].Operator != "R001" || revoked[0].Detail["cert_type"] != string(workflow.UserAuthCert) ||
		!strings.EqualFold(revoked[0].Detail["serial"], delivered[workflow.UserAuthCert]) {
		t.Fatalf("revocations in the audit trail: %+v; want R001 revoking user-auth %s", revoked, delivered[workflow.UserAuthCert])
	}

	// The auditor (demo1: supervisor and audit) looks at R001's actions.
	s.header(homeButtonX, homeButtonY)
	s.snap("home-after-revoke")
	s.header(logoutButtonX, logoutButtonY)
	s.snap("logged-out")
	xdotool(t, "search", "--sync", "--name", "Madoguchi", "windowfocus")
	s.typeText("demo1")
	s.key("Return")
	r.press(t, "demo1-right-index")
	s.snap("home-demo1")
	s.click(menuIndex(t, "audit.history", "supervisor", "audit"))
	s.snap("audit-history")
	s.click(185, 81) // 職員番号
	s.typeText("R001")
	s.key("Return")
	s.snap("audit-history-r001")
	s.checkWidth("audit.history")
	// R001's counter work is at the end of the list: the issuance, the print and the revocation.
	s.wheel(600, 420, 5, 40)
	s.snap("audit-history-r001-end")
	var listed bool
	for _, r := range auditRecords(t, termDir) {
		if r.Operator == "demo1" && strings.HasPrefix(r.Action, "audit.") {
			t.Logf("audit: %s %s %s %s %v", r.Operator, r.Action, r.Target, r.Result, r.Detail)
			listed = listed || r.Result == audit.ResultOK && (r.Target == "R001" || r.Detail["operator"] == "R001")
		}
	}
	if !listed {
		t.Errorf("no audit record of demo1 listing R001's actions in the audit view")
	}
}

func auditRecords(t *testing.T, termDir string) []audit.Record {
	t.Helper()
	term, err := app.Open(context.Background(), app.Config{DBPath: filepath.Join(termDir, "terminal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	recs, err := audit.List(context.Background(), term.DB(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// deliveredSerials returns the serial of each certificate type delivered, from the terminal's
// audit trail (issuance.delivered).
func deliveredSerials(t *testing.T, termDir string) map[workflow.CertType]string {
	t.Helper()
	term, err := app.Open(context.Background(), app.Config{DBPath: filepath.Join(termDir, "terminal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	recs, err := audit.List(context.Background(), term.DB(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[workflow.CertType]string{}
	for _, r := range recs {
		if r.Action == "issuance.delivered" && r.Result == audit.ResultOK {
			out[workflow.CertType(r.Detail["cert_type"])] = r.Detail["serial"]
		}
	}
	return out
}

// header clicks a header button given by its position in a window of the default width; the
// header is anchored to the right edge of the window, which some screens widen.
func (s *demoShots) header(x, y int) {
	s.t.Helper()
	w := &walkthrough{t: s.t}
	s.click(x+w.width()-windowWidth, y)
}

// wheel turns the mouse wheel over (x, y): button 4 scrolls up, 5 down, clicks notches.
func (s *demoShots) wheel(x, y, button, clicks int) {
	s.t.Helper()
	xdotool(s.t, "mousemove", fmt.Sprint(x), fmt.Sprint(y), "click", "--repeat", fmt.Sprint(clicks), "--delay", "30", fmt.Sprint(button))
}

// checkWidth reports a screen that widened the terminal window past its default width (its
// right part, the log-out button among it, would leave the counter's screen), then gives the
// window its default size back so that the demo can go on clicking by coordinates.
func (s *demoShots) checkWidth(screen string) {
	s.t.Helper()
	w := &walkthrough{t: s.t}
	got := w.width()
	if got == windowWidth {
		return
	}
	s.t.Errorf("screen %s widened the window to %d px (default %d): content is cut off at the right edge; see demo-%02d",
		screen, got, windowWidth, s.n)
	xdotool(s.t, "search", "--name", "Madoguchi", "windowsize", fmt.Sprint(windowWidth), "800")
	for deadline := time.Now().Add(30 * time.Second); w.width() != windowWidth; {
		if time.Now().After(deadline) {
			s.t.Fatalf("the window stays wider than %d px after %s", windowWidth, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeShots deletes the screenshots of an earlier run that match pattern in shotDir,
// so that a renumbered step leaves no stale picture behind.
func removeShots(t *testing.T, pattern string) {
	t.Helper()
	old, err := filepath.Glob(filepath.Join(shotDir(t), pattern))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
}

// primaryBlue is the colour of a primary (HighImportance) button in the terminal's theme.
var primaryBlue = color.RGBA{R: 41, G: 111, B: 246, A: 255}

// primaryButtons returns the bounding boxes of the primary buttons in img: connected areas of the
// primary colour at least as large as a button (check boxes and radio buttons share the colour
// but are small).
func primaryButtons(img image.Image) []image.Rectangle {
	b := img.Bounds()
	seen := make([]bool, b.Dx()*b.Dy())
	is := func(x, y int) bool {
		r, g, bl, _ := img.At(x, y).RGBA()
		return uint8(r>>8) == primaryBlue.R && uint8(g>>8) == primaryBlue.G && uint8(bl>>8) == primaryBlue.B
	}
	var out []image.Rectangle
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			i := (y-b.Min.Y)*b.Dx() + x - b.Min.X
			if seen[i] || !is(x, y) {
				continue
			}
			box := image.Rect(x, y, x+1, y+1)
			stack := []image.Point{{x, y}}
			seen[i] = true
			for len(stack) > 0 {
				p := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				box = box.Union(image.Rect(p.X, p.Y, p.X+1, p.Y+1))
				for _, q := range []image.Point{{p.X + 1, p.Y}, {p.X - 1, p.Y}, {p.X, p.Y + 1}, {p.X, p.Y - 1}} {
					if !q.In(b) {
						continue
					}
					j := (q.Y-b.Min.Y)*b.Dx() + q.X - b.Min.X
					if !seen[j] && is(q.X, q.Y) {
						seen[j] = true
						stack = append(stack, q)
					}
				}
			}
			if box.Dx() >= 60 && box.Dy() >= 28 {
				out = append(out, box)
			}
		}
	}
	return out
}

// clickPrimary clicks the lowest primary button on the screen (the wizard's step button: the
// issuance wizard puts it at the bottom right of each step), wherever the step's layout puts it.
// waitPrimary clicks the primary button once one shows (a button that is enabled when work in
// the background ends), failing after 30 s.
func (s *demoShots) waitPrimary(what string) {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		c := capture(s.t, s.d, filepath.Join(s.tmp, fmt.Sprintf("wait-primary-%d.png", s.n)))
		if len(primaryButtons(c.img)) > 0 {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no primary button (%s) within 30 s; see %s", what, c.path)
		}
	}
	s.clickPrimary(what)
}

// waitFiles waits until at least n files match pattern and returns them.
func waitFiles(t *testing.T, pattern string, n int, within time.Duration) []string {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		got, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d files after %s, want %d", pattern, len(got), within, n)
		}
	}
}

func (s *demoShots) clickPrimary(what string) {
	s.t.Helper()
	c := capture(s.t, s.d, filepath.Join(s.tmp, fmt.Sprintf("primary-%d.png", s.n)))
	buttons := primaryButtons(c.img)
	if len(buttons) == 0 {
		s.t.Fatalf("no primary button (%s) on the screen; see %s", what, c.path)
	}
	best := buttons[0]
	for _, r := range buttons[1:] {
		if r.Max.Y > best.Max.Y || r.Max.Y == best.Max.Y && r.Max.X > best.Max.X {
			best = r
		}
	}
	mid := image.Pt((best.Min.X+best.Max.X)/2, (best.Min.Y+best.Max.Y)/2)
	s.t.Logf("%s: primary button at %v", what, mid)
	s.click(mid.X, mid.Y)
}
