package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"madoguchi/internal/services"
	"madoguchi/internal/testenv"
)

// runMainEnv makes the re-executed test binary run the demo's main instead of the tests, so the
// test drives the real program (signals, exit status) without building it separately.
const runMainEnv = "MADOGUCHI_DEMO_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(cliStandInEnv) != "" {
		runCLIStandIn()
	}
	if os.Getenv(runMainEnv) != "" {
		os.Args = append([]string{"demo"}, strings.Fields(os.Getenv(runMainEnv))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// repoRoot is the module root, three levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// demoProcess is the demo running as a child of the test.
type demoProcess struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited
	err  error         // its exit status, valid after done

	mu    sync.Mutex
	lines []string
	seen  chan struct{} // a token per new line
}

// startDemo runs the demo's main in a child process with args, its log going to the test log.
func startDemo(t *testing.T, args ...string) *demoProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runMainEnv+"="+strings.Join(args, " "))
	cmd.Dir = repoRoot(t)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &demoProcess{cmd: cmd, done: make(chan struct{}), seen: make(chan struct{}, 1)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.seen <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		<-read
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill() // its children die with it (parent-death signal)
			<-p.done
		}
	})
	return p
}

// waitLine waits until a log line contains want, the demo exits, or timeout passes.
func (p *demoProcess) waitLine(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if line, ok := p.line(want); ok {
			return line
		}
		select {
		case <-p.seen:
		case <-p.done:
			if line, ok := p.line(want); ok {
				return line
			}
			t.Fatalf("the demo exited (%v) before logging %q", p.err, want)
		case <-deadline:
			t.Fatalf("the demo did not log %q within %v", want, timeout)
		}
	}
}

func (p *demoProcess) line(want string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.Contains(l, want) {
			return l, true
		}
	}
	return "", false
}

// terminate sends SIGTERM and waits for the demo to exit; it must exit with status 0.
func (p *demoProcess) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the demo did not exit after SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("the demo exited with %v after SIGTERM", p.err)
	}
}

// children returns the demo's live children by command name.
func children(pid int) map[string][]int {
	byName := map[string][]int{}
	for _, c := range services.OwnedBy(pid) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c))
		name := strings.TrimSpace(string(comm))
		byName[name] = append(byName[name], c)
	}
	return byName
}

// assertAllGone checks that none of pids is alive and the demo owns no process any more.
func assertAllGone(t *testing.T, demoPID int, before map[string][]int) {
	t.Helper()
	for name, pids := range before {
		for _, pid := range pids {
			if services.Alive(pid) {
				t.Errorf("%s (pid %d) outlived the demo", name, pid)
			}
		}
	}
	if left := children(demoPID); len(left) != 0 {
		t.Errorf("processes of the demo left: %v", left)
	}
}

// assertPCSCDLockHeld checks that the machine-wide pcscd lock is held by someone else (the demo).
func assertPCSCDLockHeld(t *testing.T) {
	t.Helper()
	f, err := os.Open(services.PCSCDLockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		t.Fatal("the pcscd lock is free while the demo's pcscd runs")
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatal(err)
	}
}

// TestDemoWindowAndCleanShutdown runs the whole demo under Xvfb in a temporary data directory:
// every step starts (building the binaries on the way), the terminal window appears on the
// display, screenshots are saved, and SIGTERM stops every child — pcscd included — and exits 0.
func TestDemoWindowAndCleanShutdown(t *testing.T) {
	display := testenv.Xvfb(t)
	data := t.TempDir()
	p := startDemo(t, "--data-dir", data, "--repo", repoRoot(t),
		"--ca-listen", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--screenshots", "--screenshot-every", "1s")

	// The first build of the terminal compiles Fyne's GL driver: minutes, not seconds.
	p.waitLine(t, "the terminal window is up", 9*time.Minute)
	p.waitLine(t, "the demo is running", time.Minute)

	// The window is really there, found independently of the demo's own check.
	title, err := findWindow(context.Background(), display.Name, WindowMarker)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "窓口") {
		t.Errorf("window title %q lacks 窓口", title)
	}

	before := children(p.cmd.Process.Pid)
	want := []string{"pcscd", "dbus-daemon", "fprintd", "cupsd", "madoguchi"}
	// The print server is up and the terminal prints to its file queue.
	for _, line := range []string{"prints to files: every printed document lands in " + filepath.Join(data, "printed"),
		"--printer " + DemoQueue + " --cups-server " + filepath.Join(data, "cups", "cups.sock")} {
		if _, ok := p.line(line); !ok {
			t.Errorf("the demo's log lacks %q", line)
		}
	}
	// ca-server and the card are started only when their commands exist (other engineers'
	// work in progress); when the demo says they run, they must be among its children.
	if _, ok := p.line("ca-server answers TLS"); ok {
		want = append(want, "ca-server")
	}
	if _, ok := p.line("the card answers in"); ok {
		want = append(want, "vcard")
	}
	for _, name := range want {
		if len(before[name]) == 0 {
			t.Errorf("the demo runs no %s (its children: %v)", name, before)
		}
	}
	if _, ok := before["Xvfb"]; ok {
		t.Errorf("the demo started its own Xvfb although DISPLAY=%s was set", display.Name)
	}
	assertPCSCDLockHeld(t)
	pcscdPIDs := before["pcscd"]

	// The demo's screenshot: a whole-screen PNG, refreshed while it runs.
	shot := filepath.Join(data, "screenshot.png")
	first := waitFile(t, shot, time.Minute)
	assertPNG(t, shot, 1280, 800)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if st, err := os.Stat(shot); err == nil && st.ModTime().After(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the screenshot was not refreshed")
		}
	}
	if out := os.Getenv("MADOGUCHI_DEMO_SCREENSHOT"); out != "" {
		display.Screenshot(t, out) // e.g. docs/screenshots/demo.png
	}

	p.terminate(t)
	assertAllGone(t, p.cmd.Process.Pid, before)
	for _, pid := range pcscdPIDs {
		if services.Alive(pid) {
			t.Errorf("pcscd %d still runs", pid)
		}
	}
	for _, want := range []string{"stopped the terminal", "stopped pcscd", "stopped fprintd", "stopped cupsd", "interrupted; everything stopped"} {
		if _, ok := p.line(want); !ok {
			t.Errorf("the demo's log lacks %q", want)
		}
	}
}

// TestDemoGoesOnWithoutCAAndCard: with only the terminal binary (no ca-server, no vcard), the
// demo says what is not available, still brings the window up, and stops cleanly.
func TestDemoGoesOnWithoutCAAndCard(t *testing.T) {
	testenv.Xvfb(t)
	data := t.TempDir()
	bin := filepath.Join(data, "bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	if msg, err := goBuild(context.Background(), repoRoot(t), filepath.Join(bin, "madoguchi"), ".", TerminalTags); err != nil {
		t.Fatalf("build the terminal: %v\n%s", err, msg)
	}
	p := startDemo(t, "--data-dir", data, "--no-build", "--ca-listen", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	p.waitLine(t, "the terminal window is up", 3*time.Minute)
	for _, want := range []string{
		"skipped: --no-build",
		"not available yet: the ca-server binary",
		"not available yet: the vcard binary",
		"skipped the CA link: ca-server is not running",
	} {
		if _, ok := p.line(want); !ok {
			t.Errorf("the demo's log lacks %q", want)
		}
	}
	p.waitLine(t, "the demo is running", time.Minute)
	before := children(p.cmd.Process.Pid)
	if len(before["ca-server"])+len(before["vcard"]) != 0 {
		t.Errorf("children %v include ca-server or vcard", before)
	}
	p.terminate(t)
	assertAllGone(t, p.cmd.Process.Pid, before)
}

func waitFile(t *testing.T, path string, timeout time.Duration) time.Time {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		if st, err := os.Stat(path); err == nil {
			return st.ModTime()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
	}
}

func assertPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if cfg.Width != w || cfg.Height != h {
		t.Fatalf("%s is %dx%d, want %dx%d", path, cfg.Width, cfg.Height, w, h)
	}
}

// Unit tests of the parsers the demo uses to find out what the other programs offer.

func TestParseSubcommands(t *testing.T) {
	help := `usage: ca-server <command> [flags]

Madoguchi JPKI certification authority (headless).

commands:
  card-batch         key ceremony: derive static keys for N new cards (manufacturer batch file)
  ceremony-init      key ceremony: create the token, CA keys, certificates, card master keys
  serve              serve the issuance API over mutual TLS

Run "ca-server <command> --help" for a command's flags.
`
	got := parseSubcommands(help)
	if want := []string{"card-batch", "ceremony-init", "serve"}; !slices.Equal(got, want) {
		t.Fatalf("parseSubcommands = %q, want %q", got, want)
	}
	if got := parseSubcommands("usage: x\n"); len(got) != 0 {
		t.Fatalf("no command list: got %q", got)
	}
}

func TestParseFlags(t *testing.T) {
	usage := `Usage of serve:
  -data string
    	ca-server data directory (required)
  -dev
    	run alone with 1-of-1 shares
  -listen string
    	address to listen on (default "127.0.0.1:8443")
`
	if got, want := parseFlags(usage), []string{"data", "dev", "listen"}; !slices.Equal(got, want) {
		t.Fatalf("parseFlags = %q, want %q", got, want)
	}
	if got := pick([]string{"data", "listen"}, "data-dir", "data"); got != "data" {
		t.Fatalf("pick = %q", got)
	}
	if got := pick([]string{"listen"}, "data-dir", "data"); got != "" {
		t.Fatalf("pick = %q, want none", got)
	}
}

func TestWindowTitle(t *testing.T) {
	tree := `
xwininfo: Window id: 0x1d5 (the root window) (has no name)

  Root window id: 0x1d5 (the root window) (has no name)
  Parent window id: 0x0 (none)
     2 children:
     0x200001 "窓口 Madoguchi — 統合端末": ("madoguchi" "madoguchi")  1200x800+0+0  +0+0
     0x200000 (has no name): ()  1x1+-1+-1  +-1+-1
`
	title, ok := windowTitle(tree, WindowMarker)
	if !ok || title != "窓口 Madoguchi — 統合端末" {
		t.Fatalf("windowTitle = %q, %v", title, ok)
	}
	if _, ok := windowTitle(tree, "Other"); ok {
		t.Fatal("found a window that is not there")
	}
}

func TestRedactAfter(t *testing.T) {
	args := []string{"--ca-url", "https://x", "--enrol-token", "secret-token"}
	got := redactAfter(args, "--enrol-token")
	if strings.Contains(strings.Join(got, " "), "secret-token") {
		t.Fatalf("token not redacted: %q", got)
	}
	if args[3] != "secret-token" {
		t.Fatal("redactAfter changed its input")
	}
}
