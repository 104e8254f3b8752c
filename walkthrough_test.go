package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"madoguchi/app"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/operator"
	"madoguchi/internal/testenv"
	"madoguchi/ui"
)

// Window geometry of the terminal under Xvfb without a window manager: the window sits at the
// top left of the screen at its default size (main.go), and the home menu is a grid of
// 280×72 buttons (ui/screen_home.go). The walkthrough clicks by these coordinates; when a screen's
// layout changes, the screenshots it leaves in shotDir show where things moved.
const (
	windowWidth                  = 1200
	homeButtonX, homeButtonY     = 1012, 27 // measured from the right edge of the window
	logoutButtonX, logoutButtonY = 1130, 27
	menuX0, menuY0               = 8, 159
	menuPitchX, menuPitchY       = 284, 76
	menuColumns                  = 4
)

// Operators screen (ui/screen_operators.go) at 1200×800: the detail panel's controls for the
// selected operator.
const (
	receptionCheckX, receptionCheckY = 741, 328
	enrollButtonX, enrollButtonY     = 1130, 554
	verifyButtonX, verifyButtonY     = 90, 135
	// With a notice line above the list: the third row (S001) and the supervisor check.
	thirdRowX, thirdRowY               = 58, 324
	supervisorCheckX, supervisorCheckY = 741, 377
)

// walkthrough drives one running terminal and names its screenshots NN-name.png.
type walkthrough struct {
	t     *testing.T
	d     *testenv.Display
	fp    *testenv.Fingerprint
	p     *terminal
	tmp   string
	n     int
	last  shot
	shots []string
}

// snap waits for the screen to settle on something other than the previous capture and saves
// it as NN-name.png in shotDir.
func (w *walkthrough) snap(name string) shot {
	w.t.Helper()
	s, _ := waitStable(w.t, w.d, w.p, w.tmp, name, w.last.img)
	w.n++
	dst := filepath.Join(shotDir(w.t), fmt.Sprintf("%02d-%s.png", w.n, name))
	copyFile(w.t, s.path, dst)
	w.shots = append(w.shots, dst)
	w.last = s
	return s
}

// settle waits for the screen to settle on something other than the previous capture without
// keeping a picture (a return to a screen already shown).
func (w *walkthrough) settle(name string) {
	w.t.Helper()
	w.last, _ = waitStable(w.t, w.d, w.p, w.tmp, name, w.last.img)
}

func (w *walkthrough) click(x, y int) {
	w.t.Helper()
	xdotool(w.t, "mousemove", fmt.Sprint(x), fmt.Sprint(y), "click", "1")
}

// typeText types text with the keyboard. xdotool types characters that have no key on the
// keymap (kanji) by re-binding a spare key code; the long delay lets the terminal read each
// character before the key code is bound to the next one.
func (w *walkthrough) typeText(text string) {
	w.t.Helper()
	xdotool(w.t, "type", "--delay", "250", text)
}

// width returns the terminal window's width in pixels.
func (w *walkthrough) width() int {
	w.t.Helper()
	out, err := exec.Command("xdotool", "search", "--name", "Madoguchi", "getwindowgeometry").CombinedOutput()
	if err != nil {
		w.t.Fatalf("window geometry: %v\n%s", err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		if wh := strings.SplitN(f, "x", 2); len(wh) == 2 {
			if n, err := strconv.Atoi(wh[0]); err == nil {
				return n
			}
		}
	}
	w.t.Fatalf("no geometry in %q", out)
	return 0
}

// header clicks a header button given by its position in a window of the default width; the
// header is anchored to the right edge of the window.
func (w *walkthrough) header(x, y int) {
	w.t.Helper()
	w.click(x+w.width()-windowWidth, y)
}

// checkWidth reports a screen whose content is wider than the window: the terminal window
// grows past its default size and the right part (the log-out button among it) is cut off.
func (w *walkthrough) checkWidth(screen string) {
	w.t.Helper()
	if got := w.width(); got != windowWidth {
		w.t.Errorf("screen %s widened the window to %d px (default %d): content is cut off at the right edge; see %s",
			screen, got, windowWidth, w.shots[len(w.shots)-1])
	}
}

func (w *walkthrough) key(name string) {
	w.t.Helper()
	xdotool(w.t, "key", name)
}

// login types the operator id on the log-in screen and presses the finger.
func (w *walkthrough) login(id, print string) {
	w.t.Helper()
	xdotool(w.t, "search", "--sync", "--name", "Madoguchi", "windowfocus")
	w.typeText(id)
	w.key("Return")
	if err := w.fp.Scan(print); err != nil {
		w.t.Fatalf("press finger %s: %v\n%s", print, err, w.p.output())
	}
}

// menuScreens returns the screens of the home menu of an operator holding perms, in menu order.
func menuScreens(perms ...ui.Permission) []ui.Screen {
	var out []ui.Screen
	for _, sc := range ui.Screens() {
		if sc.ID == ui.HomeID {
			continue
		}
		for _, p := range perms {
			if sc.Permission == p {
				out = append(out, sc)
			}
		}
	}
	return out
}

// openEachScreen opens every menu entry of the operator's home screen in turn, takes a
// screenshot of it and goes back home.
func (w *walkthrough) openEachScreen(perms ...ui.Permission) {
	w.t.Helper()
	for k, sc := range menuScreens(perms...) {
		if sc.ID == "supervisor.operators" || sc.ID == "audit.history" {
			continue // walked through on their own
		}
		w.click(menuX0+(k%menuColumns)*menuPitchX+140, menuY0+(k/menuColumns)*menuPitchY+36)
		w.snap(strings.ReplaceAll(sc.ID, ".", "-"))
		w.checkWidth(sc.ID)
		w.header(homeButtonX, homeButtonY)
		w.settle("home-again")
	}
}

// menuIndex is the position of screen id in the home menu of an operator holding perms.
func menuIndex(t *testing.T, id string, perms ...ui.Permission) (x, y int) {
	t.Helper()
	for k, sc := range menuScreens(perms...) {
		if sc.ID == id {
			return menuX0 + (k%menuColumns)*menuPitchX + 140, menuY0 + (k/menuColumns)*menuPitchY + 36
		}
	}
	t.Fatalf("screen %q not in the menu of %v", id, perms)
	return 0, 0
}

// domainSupervisor logs supervisor id in through the domain with the virtual finger, for set-up
// outside the window.
func domainSupervisor(t *testing.T, fp *testenv.Fingerprint, dataDir, id, print string) (*app.Terminal, *app.Session) {
	t.Helper()
	ctx := context.Background()
	term, err := app.Open(ctx, app.Config{DBPath: filepath.Join(dataDir, "terminal.db"),
		Fingerprint: &auth.Fprintd{BusAddress: fp.BusAddress}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sess, err := term.LoginFingerprint(ctx, id, func(ev auth.ScanEvent) {
		if ev == auth.ScanWaiting {
			wg.Add(1)
			go func() { defer wg.Done(); fp.Scan(print) }()
		}
	})
	wg.Wait()
	if err != nil {
		term.Close()
		t.Fatalf("domain log-in of %s: %v", id, err)
	}
	return term, sess
}

// enrolThroughDomain creates operator id with permission p and enrols print for it.
func enrolThroughDomain(t *testing.T, fp *testenv.Fingerprint, sess *app.Session, id, name, print string, p operator.Permission) {
	t.Helper()
	ctx := context.Background()
	if err := sess.CreateOperator(ctx, id, name); err != nil {
		t.Fatal(err)
	}
	if err := sess.Grant(ctx, id, p); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	err := sess.EnrollFinger(ctx, id, auth.DefaultFinger, func(e auth.EnrollProgress) {
		if e.Stage < e.Total && !e.Retry {
			wg.Add(1)
			go func() { defer wg.Done(); fp.Scan(print) }()
		}
	})
	wg.Wait()
	if err != nil {
		t.Fatalf("enrol %s: %v", id, err)
	}
}

// TestWalkthrough drives the real terminal binary on Xvfb with the real fingerprint stack
// through every registered main screen, the way a supervisor, a reception clerk and a CS clerk
// meet them, and leaves one screenshot per screen in shotDir as NN-name.png (look at them:
// Japanese glyphs, nothing cut off). The supervisor logs in by finger, creates a reception
// clerk in the operators screen, grants the reception permission alone, enrols the clerk's
// finger with the reader's five stages shown, checks the audit chain on the auditor's screen;
// the clerk then logs in with the finger just enrolled. The domain's records confirm each step.
func TestWalkthrough(t *testing.T) {
	bin := buildTerminal(t)
	d := testenv.Xvfb(t)
	fp := testenv.Fprintd(t)
	dataDir := t.TempDir()
	enrolSupervisor(t, fp, dataDir, "S001", "管理 太郎", "print-S001")
	term, sess := domainSupervisor(t, fp, dataDir, "S001", "print-S001")
	enrolThroughDomain(t, fp, sess, "C001", "住基 一郎", "print-C001", operator.CS)
	sess.Logout(context.Background())
	term.Close()

	w := &walkthrough{t: t, d: d, fp: fp, tmp: t.TempDir()}
	removeShots(t, "[0-9][0-9]-*.png")
	w.p = startTerminal(t, bin, "--data-dir", dataDir, "--reader", "madoguchi-test-no-reader")
	copyFile(t, w.snap("login").path, filepath.Join(shotDir(t), "login.png"))

	supervisor := []ui.Permission{ui.PermissionSupervisor, ui.PermissionAudit}
	w.login("S001", "print-S001")
	copyFile(t, w.snap("home-supervisor").path, filepath.Join(shotDir(t), "home.png"))
	t.Logf("resident memory on the home screen after log-in: %d MiB", w.p.rssKiB(t)/1024)

	// Operators: the id field has the focus; create R001, select it (done on creation), grant
	// reception, enrol the finger.
	w.click(menuIndex(t, "supervisor.operators", supervisor...))
	w.snap("operators")
	w.typeText("R001")
	w.key("Tab")
	w.typeText("受付 花子")
	w.key("Return")
	w.snap("operators-created")
	w.click(receptionCheckX, receptionCheckY)
	w.snap("operators-reception-granted")
	w.click(enrollButtonX, enrollButtonY)
	for i := 0; i < 2; i++ {
		if err := fp.Scan("print-R001"); err != nil {
			t.Fatalf("enrolment press %d: %v\n%s", i+1, err, w.p.output())
		}
	}
	w.snap("operators-enrolling")
	for i := 2; i < 5; i++ {
		if err := fp.Scan("print-R001"); err != nil {
			t.Fatalf("enrolment press %d: %v\n%s", i+1, err, w.p.output())
		}
	}
	w.snap("operators-enrolled")
	// The last supervisor cannot take away their own supervisor permission.
	w.click(thirdRowX, thirdRowY)
	w.settle("operators-s001")
	w.click(supervisorCheckX, supervisorCheckY)
	w.snap("operators-last-supervisor")

	w.checkWidth("supervisor.operators")
	w.header(homeButtonX, homeButtonY)
	w.settle("home-supervisor-again")
	w.click(menuIndex(t, "audit.history", supervisor...))
	w.snap("audit")
	w.click(verifyButtonX, verifyButtonY)
	w.snap("audit-verified")
	w.checkWidth("audit.history")
	w.header(homeButtonX, homeButtonY)
	w.settle("home-supervisor-back")
	w.openEachScreen(supervisor...)

	for _, clerk := range []struct {
		id, print string
		perm      ui.Permission
	}{{"R001", "print-R001", ui.PermissionReception}, {"C001", "print-C001", ui.PermissionCS}} {
		w.header(logoutButtonX, logoutButtonY)
		w.settle("login-again")
		w.login(clerk.id, clerk.print)
		w.snap("home-" + strings.ToLower(clerk.id))
		w.openEachScreen(clerk.perm)
	}
	t.Logf("screenshots: %v", w.shots)

	term, err := app.Open(context.Background(), app.Config{DBPath: filepath.Join(dataDir, "terminal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	r001, err := term.LookupOperator(context.Background(), "R001")
	if err != nil || r001.Finger == "" || !r001.Has(operator.Reception) || r001.Has(operator.CS) {
		t.Fatalf("R001 after the operators screen: %+v, %v", r001, err)
	}
	recs, err := audit.List(context.Background(), term.DB(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Result == audit.ResultOK {
			seen[r.Operator+" "+r.Action] = true
		}
	}
	for _, want := range []string{"S001 login.fingerprint", "S001 operator.create", "S001 operator.grant",
		"S001 operator.enroll_finger", "S001 audit.verify", "R001 login.fingerprint", "C001 login.fingerprint"} {
		if !seen[want] {
			t.Errorf("no successful %q in the audit trail", want)
		}
	}
	refusedWithdraw := false
	for _, r := range recs {
		refusedWithdraw = refusedWithdraw || r.Action == "operator.withdraw" && r.Target == "S001" &&
			r.Result == audit.ResultRefused && r.Detail["error_kind"] == "last supervisor"
	}
	if s001, err := term.LookupOperator(context.Background(), "S001"); err != nil || !s001.Has(operator.Supervisor) || !refusedWithdraw {
		t.Errorf("last supervisor guard: S001 %+v (%v), refusal recorded %v", s001.Permissions, err, refusedWithdraw)
	}
}
