package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ebfe/scard"

	"madoguchi/internal/services"
)

// VirtualFingerEnv tells the terminal where the virtual fingerprint device's socket is, so that
// the demo UI can offer a "press the virtual finger" button (write "SCAN <finger-id>" to the
// socket; services.ScanVirtualFinger does it). Set only by the demo.
const VirtualFingerEnv = "MADOGUCHI_VIRTUAL_FINGER"

// WindowMarker is what the terminal window's title contains (ui.WindowTitle is
// "窓口 Madoguchi — 統合端末"); the demo finds the window by it.
const WindowMarker = "Madoguchi"

// Config is one demo run. Log receives every step's messages.
type Config struct {
	DataDir         string
	Repo            string
	CAListen        string
	Municipality    string // local government code the terminal is enrolled for
	Build           bool
	Screenshots     bool
	ScreenshotEvery time.Duration
	ScreenshotNow   <-chan os.Signal // a receive saves a screenshot now; may be nil
	Log             *log.Logger
}

// part is one started thing, stopped in reverse start order.
type part struct {
	name     string
	svc      *services.Service // supervised; nil for in-process parts
	stop     func() error
	optional bool // its death is logged and the demo goes on (the window must stay up)
}

// demo holds a run's state. Only Run's goroutine touches it.
type demo struct {
	cfg   Config
	log   *log.Logger
	data  string // absolute data dir
	bin   string
	logs  string
	parts []part

	display      string // DISPLAY for the terminal
	screenshots  bool
	busAddress   string
	fingerSock   string
	caURL        string // https://host:port once ca-server answers
	caDir        string
	reader       string // the reader the virtual card sits in
	cupsServer   string // the private cupsd's socket once it runs (app/calink/printer.go)
	enrolPending bool   // the terminal was started with a fresh enrolment token
}

// Run runs the demo until ctx is cancelled, the terminal window is closed, or a child dies. It
// always stops what it started before it returns. A cancelled ctx returns ctx.Err().
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Log == nil {
		cfg.Log = log.New(os.Stderr, "demo: ", log.Ltime)
	}
	if cfg.Municipality == "" {
		cfg.Municipality = "131016"
	}
	if cfg.ScreenshotEvery <= 0 {
		cfg.ScreenshotEvery = 5 * time.Second
	}
	d := &demo{cfg: cfg, log: cfg.Log}
	defer func() {
		if stopErr := d.stopAll(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	if err := d.prepare(); err != nil {
		return err
	}
	steps := []struct {
		name     string
		run      func(context.Context) error
		optional bool // on failure: log it and go on without this part
	}{
		{"build the binaries", d.build, false},
		{"the display", d.startDisplay, false},
		{"pcscd with the vpcd virtual readers", d.startPCSCD, false},
		{"the fingerprint stack", d.startFingerprint, false},
		{"a print server (cupsd) with a file queue", d.startPrinter, true},
		{"ca-server", d.startCA, true},
		{"a virtual card in the virtual reader", d.startCard, true},
		{"the terminal", d.startTerminal, false},
	}
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.log.Printf("step %d/%d: %s", i+1, len(steps), s.name)
		if err := s.run(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if s.optional {
				d.log.Printf("  FAILED, going on without it: %s: %v", s.name, err)
				continue
			}
			return fmt.Errorf("demo: %s: %w", s.name, err)
		}
	}
	return d.supervise(ctx)
}

func (d *demo) prepare() error {
	if d.cfg.DataDir == "" {
		return errors.New("demo: no data directory")
	}
	data, err := filepath.Abs(d.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.data = data
	d.bin = filepath.Join(data, "bin")
	d.logs = filepath.Join(data, "logs")
	d.caDir = filepath.Join(data, "ca")
	for _, dir := range []string{d.data, d.bin, d.logs} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	d.log.Printf("data directory %s (logs of every service in %s)", d.data, d.logs)
	return nil
}

// freshLog returns logs/<name>.log for a service started now, keeping the previous run's log
// as <name>.log.prev.
func (d *demo) freshLog(name string) string {
	path := filepath.Join(d.logs, name+".log")
	_ = os.Rename(path, path+".prev")
	return path
}

// add records a started part for supervision and shutdown.
func (d *demo) add(p part) { d.parts = append(d.parts, p) }

// stopAll stops the parts in reverse start order and reports the first unexpected failure.
func (d *demo) stopAll() error {
	var first error
	for i := len(d.parts) - 1; i >= 0; i-- {
		p := d.parts[i]
		err := p.stop()
		if p.svc != nil && p.svc.Aborted() {
			err = nil // its failed start was reported already
		}
		switch {
		case err != nil && first == nil:
			first = err
			d.log.Printf("stopped %s: %v", p.name, err)
		case err != nil:
			d.log.Printf("stopped %s: %v", p.name, err)
		default:
			d.log.Printf("stopped %s", p.name)
		}
	}
	d.parts = nil
	return first
}

// ---- step: build ----

// binary is one program the demo builds: its package, the output name in bin/ and its build
// tags.
type binary struct {
	name, pkg string
	required  bool   // the demo cannot run without it
	tags      string // go build -tags; "" for none
}

// TerminalTags are the terminal's build tags in the demo: the demo build links the
// virtual-finger button (the root package's demofinger.go, calling internal/services), which
// the production build leaves out (issue 16).
const TerminalTags = "demo"

var binaries = []binary{
	{"ca-server", "./ca-server", false, ""},
	{"vcard", "./cardio/cmd/vcard", false, ""},
	{"madoguchi", ".", true, TerminalTags},
}

func (d *demo) build(ctx context.Context) error {
	if !d.cfg.Build {
		d.log.Printf("  skipped: --no-build: using the binaries in %s", d.bin)
		return nil
	}
	repo, err := filepath.Abs(d.cfg.Repo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		return fmt.Errorf("%s is not the madoguchi module root (no go.mod); pass --repo", repo)
	}
	for _, b := range binaries {
		out := filepath.Join(d.bin, b.name)
		tags := ""
		if b.tags != "" {
			tags = " -tags " + b.tags
		}
		if b.name == "madoguchi" {
			d.log.Printf("  building the terminal (go build%s -o %s %s); the first build compiles Fyne's GL driver, about 3.5 minutes on 2 cores, later builds come from Go's cache", tags, out, b.pkg)
		} else {
			d.log.Printf("  building %s (go build%s -o %s %s)", b.name, tags, out, b.pkg)
		}
		start := time.Now()
		msg, err := goBuild(ctx, repo, out, b.pkg, b.tags)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			d.log.Printf("  built %s in %v", b.name, time.Since(start).Round(100*time.Millisecond))
			continue
		}
		_, statErr := os.Stat(out)
		switch {
		case b.required && statErr != nil:
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, msg)
		case statErr == nil:
			d.log.Printf("  %s does not build right now (%v); using the previous build in %s:\n%s", b.name, err, out, indent(msg))
		default:
			d.log.Printf("  not available yet: %s (go build %s: %v):\n%s", b.name, b.pkg, err, indent(msg))
		}
	}
	return nil
}

// goBuild runs `go build [-tags tags] -o out pkg` in repo; Ctrl-C during the build stops the
// whole build.
func goBuild(ctx context.Context, repo, out, pkg, tags string) (string, error) {
	args := []string{"build"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", out, pkg)...)
	cmd.Dir = repo
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return strings.TrimSpace(buf.String()), err
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 12 {
		lines = append(lines[:12], fmt.Sprintf("(%d more lines)", len(lines)-12))
	}
	return "    " + strings.Join(lines, "\n    ")
}

// have reports whether bin/name exists.
func (d *demo) have(name string) bool {
	st, err := os.Stat(filepath.Join(d.bin, name))
	return err == nil && st.Mode().IsRegular()
}

// ---- step: display ----

func (d *demo) startDisplay(ctx context.Context) error {
	d.screenshots = d.cfg.Screenshots
	if disp := os.Getenv("DISPLAY"); disp != "" {
		d.display = disp
		d.log.Printf("  skipped Xvfb: DISPLAY is set (%s); the window opens there", disp)
		return nil
	}
	d.log.Printf("  DISPLAY is unset: starting Xvfb (1280x800)")
	x, err := services.StartXvfb(services.XvfbOptions{LogPath: d.freshLog("xvfb")})
	if err != nil {
		return err
	}
	d.add(part{name: "Xvfb", svc: x.Service(), stop: x.Stop})
	d.display = x.Name
	d.screenshots = true
	d.log.Printf("  Xvfb is up on display %s", x.Name)
	return nil
}

// ---- step: pcscd ----

func (d *demo) startPCSCD(ctx context.Context) error {
	d.log.Printf("  taking the machine-wide pcscd lock %s (tests hold it while their pcscd runs)", services.PCSCDLockPath)
	type result struct {
		l   *services.PCSCDLock
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := services.LockPCSCD("demo", func(format string, args ...any) { d.log.Printf("  "+format, args...) })
		got <- result{l, err}
	}()
	var lock *services.PCSCDLock
	select {
	case r := <-got:
		if r.err != nil {
			return r.err
		}
		lock = r.l
	case <-ctx.Done():
		go func() { // the lock may still come: give it back
			if r := <-got; r.l != nil {
				r.l.Unlock()
			}
		}()
		return ctx.Err()
	}
	d.add(part{name: "the pcscd lock", stop: func() error { lock.Unlock(); return nil }})
	d.log.Printf("  starting pcscd -f (readers from /etc/reader.conf.d/vpcd)")
	p, err := services.StartPCSCD(services.PCSCDOptions{LogPath: d.freshLog("pcscd")})
	if err != nil {
		if errors.Is(err, services.ErrForeignPCSCD) {
			return fmt.Errorf("refusing to start: %w", err)
		}
		return err
	}
	d.add(part{name: "pcscd", svc: p.Service(), stop: p.Stop})
	d.reader = p.Readers[0]
	d.log.Printf("  pcscd is up (pid %d) with readers %q; a virtual card connects to TCP %d for %q", p.PID, p.Readers, p.Ports[0], p.Readers[0])
	return nil
}

// ---- step: fingerprint ----

func (d *demo) startFingerprint(ctx context.Context) error {
	dir := filepath.Join(d.data, "fprintd")
	if len(filepath.Join(dir, "virtual-device.sock")) > 100 {
		// A unix socket path holds at most 107 bytes: fall back to a short directory.
		tmp, err := os.MkdirTemp("/tmp", "madoguchi-demo-fp-")
		if err != nil {
			return err
		}
		d.log.Printf("  %s is too long for unix sockets: using %s (enrolled fingers are not kept across runs)", dir, tmp)
		dir = tmp
		d.add(part{name: "the fingerprint directory", stop: func() error { return os.RemoveAll(tmp) }})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	d.log.Printf("  starting a private system D-Bus, a polkit stand-in and fprintd with the virtual device in %s", dir)
	f, err := services.StartFprintd(services.FprintdOptions{Dir: dir})
	if err != nil {
		return err
	}
	svcs := f.Services()
	d.add(part{name: "dbus-daemon (private system bus)", svc: svcs[0], stop: svcs[0].Stop})
	d.add(part{name: "the polkit stand-in", stop: func() error { f.Polkit.Close(); return nil }})
	d.add(part{name: "fprintd", svc: svcs[1], stop: svcs[1].Stop})
	d.busAddress = f.BusAddress
	d.fingerSock = f.DeviceSocket
	d.log.Printf("  fprintd is up; for the terminal: DBUS_SYSTEM_BUS_ADDRESS=%s %s=%s", f.BusAddress, VirtualFingerEnv, f.DeviceSocket)
	d.log.Printf("  (fingerprints enrolled in the demo are kept in %s)", f.StateDir)
	return nil
}

// ---- step: ca-server ----

func (d *demo) startCA(ctx context.Context) error {
	if !d.have("ca-server") {
		d.log.Printf("  not available yet: the ca-server binary; the terminal runs without a CA")
		return nil
	}
	caBin := filepath.Join(d.bin, "ca-server")
	cmds, err := subcommands(ctx, caBin)
	if err != nil {
		d.log.Printf("  not available yet: ca-server's command list (%v); the terminal runs without a CA", err)
		return nil
	}
	if err := os.MkdirAll(d.caDir, 0o700); err != nil {
		return err
	}
	if err := d.caCeremony(ctx, caBin, cmds); err != nil {
		return err
	}
	if !slices.Contains(cmds, "serve") {
		d.log.Printf("  not available yet: `ca-server serve`; the terminal runs without a CA")
		return nil
	}
	return d.caServe(ctx, caBin)
}

// ceremonyState is where ceremony-init records the CA's keys (ceremony/state.json).
func (d *demo) ceremonyState() string { return filepath.Join(d.caDir, "ceremony", "state.json") }

func (d *demo) caCeremony(ctx context.Context, caBin string, cmds []string) error {
	const initCmd = "ceremony-init"
	if !slices.Contains(cmds, initCmd) {
		d.log.Printf("  not available yet: `ca-server %s`; serving without CA keys", initCmd)
		return nil
	}
	if _, err := os.Stat(d.ceremonyState()); err == nil {
		d.log.Printf("  skipped the key ceremony: the CA keys exist already (%s)", d.ceremonyState())
		return nil
	}
	flags, err := flagsOf(ctx, caBin, initCmd)
	if err != nil {
		return err
	}
	dataFlag := pick(flags, "data", "data-dir")
	if dataFlag == "" || !slices.Contains(flags, "dev") {
		d.log.Printf("  not available yet: `ca-server %s --dev --data DIR` (flags are %q)", initCmd, flags)
		return nil
	}
	d.log.Printf("  first run: creating the SoftHSM token and the CA keys with `ca-server %s --dev` (one person, generated passphrases: a demo, not a key ceremony)", initCmd)
	out, err := d.runLogged(ctx, "ca-ceremony-init", caBin, initCmd, "--dev", "--"+dataFlag, d.caDir)
	if err != nil {
		return fmt.Errorf("ca-server %s: %w (to start the CA over, stop the demo and remove %s)", initCmd, err, d.caDir)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" && !strings.HasPrefix(line, "!!") {
			d.log.Printf("    %s", line)
		}
	}
	return nil
}

func (d *demo) caServe(ctx context.Context, caBin string) error {
	flags, err := flagsOf(ctx, caBin, "serve")
	if err != nil {
		return err
	}
	dataFlag := pick(flags, "data-dir", "data")
	if dataFlag == "" || !slices.Contains(flags, "listen") {
		d.log.Printf("  not available yet: `ca-server serve --data-dir DIR --listen ADDR` (flags are %q)", flags)
		return nil
	}
	host, _, err := net.SplitHostPort(d.cfg.CAListen)
	if err != nil {
		return fmt.Errorf("--ca-listen %q: %w", d.cfg.CAListen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--ca-listen %q: the demo serves on loopback only", d.cfg.CAListen)
	}
	args := []string{"serve", "--" + dataFlag, d.caDir, "--listen", d.cfg.CAListen}
	activation := ""
	if _, err := os.Stat(d.ceremonyState()); err == nil && slices.Contains(flags, "dev") {
		// TS Art. 27: M custodians activate the CA keys; --dev presents the one dev share.
		args = append(args, "--dev")
		activation = ", CA keys activated with the dev share (--dev)"
	}
	d.log.Printf("  starting `ca-server %s`%s", strings.Join(args, " "), activation)
	s, err := services.Start(services.Spec{
		Name:    "ca-server",
		Path:    caBin,
		Args:    args,
		LogPath: d.freshLog("ca-server"),
	})
	if err != nil {
		return err
	}
	d.add(part{name: "ca-server", svc: s, stop: s.Stop, optional: true})
	if err := s.WaitReady(0, func() error { return d.tlsAnswers(ctx) }); err != nil {
		s.Abort()
		return err
	}
	d.caURL = "https://" + d.cfg.CAListen
	d.log.Printf("  ca-server answers TLS at %s (pid %d)", d.caURL, s.PID())
	return nil
}

// tlsCACert is where `ca-server serve` keeps its internal TLS CA certificate.
func (d *demo) tlsCACert() string { return filepath.Join(d.caDir, "tls-ca.crt") }

// tlsAnswers completes a TLS 1.3 handshake with ca-server, verifying its certificate against
// the internal TLS CA when that file exists.
func (d *demo) tlsAnswers(ctx context.Context) error {
	host, _, _ := net.SplitHostPort(d.cfg.CAListen)
	conf := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: host}
	if pem, err := os.ReadFile(d.tlsCACert()); err == nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no certificate", d.tlsCACert())
		}
		conf.RootCAs = pool
	} else {
		conf.InsecureSkipVerify = true // only "does it answer TLS"; nothing is sent
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: conf}).DialContext(dctx, "tcp", d.cfg.CAListen)
	if err != nil {
		return err
	}
	return c.Close()
}

// ---- step: virtual card ----

func (d *demo) cardDir() string  { return filepath.Join(d.data, "card") }
func (d *demo) stockDir() string { return filepath.Join(d.cardDir(), "stock") }

func (d *demo) startCard(ctx context.Context) error {
	if !d.have("vcard") {
		d.log.Printf("  not available yet: the vcard binary; the reader stays empty")
		return nil
	}
	vcardBin := filepath.Join(d.bin, "vcard")
	usage, _ := output(ctx, vcardBin) // no arguments: usage, exit 2
	if !strings.Contains(usage, "stock") || !strings.Contains(usage, "run") {
		d.log.Printf("  not available yet: `vcard stock` and `vcard run` (usage: %s)", strings.TrimSpace(usage))
		return nil
	}
	state, err := d.cardState(ctx, vcardBin)
	if err != nil || state == "" {
		return err
	}
	port := "35963" // "Virtual PCD 00 00", the reader the terminal watches
	d.log.Printf("  inserting card %s into %q: vcard run --state %s --port %s", filepath.Base(state), d.reader, state, port)
	s, err := services.Start(services.Spec{
		Name:    "vcard",
		Path:    vcardBin,
		Args:    []string{"run", "--state", state, "--port", port},
		LogPath: d.freshLog("vcard"),
	})
	if err != nil {
		return err
	}
	d.add(part{name: "the virtual card", svc: s, stop: s.Stop, optional: true})
	if err := s.WaitReady(0, func() error { return cardPresent(d.reader) }); err != nil {
		s.Abort()
		return err
	}
	d.log.Printf("  the card answers in %q (vcard pid %d)", d.reader, s.PID())
	return nil
}

// cardState returns the state file of the demo's card, making it on first run: a card-key
// batch of one from ca-server, then blank stock from it. "" means not available yet (logged).
func (d *demo) cardState(ctx context.Context, vcardBin string) (string, error) {
	if states, _ := filepath.Glob(filepath.Join(d.stockDir(), "*")); len(states) > 0 {
		slices.Sort(states)
		d.log.Printf("  skipped making a card: one exists already (%s)", states[0])
		return states[0], nil
	}
	caBin := filepath.Join(d.bin, "ca-server")
	var cmds []string
	if d.have("ca-server") {
		cmds, _ = subcommands(ctx, caBin)
	}
	if !slices.Contains(cmds, "card-batch") {
		d.log.Printf("  not available yet: `ca-server card-batch` (the card keys come from the CA); the reader stays empty")
		return "", nil
	}
	if _, err := os.Stat(d.ceremonyState()); err != nil {
		d.log.Printf("  skipped the card: the CA has no keys (no %s), so there are no card keys; the reader stays empty", d.ceremonyState())
		return "", nil
	}
	if err := os.MkdirAll(d.cardDir(), 0o700); err != nil {
		return "", err
	}
	batch := filepath.Join(d.cardDir(), "card-keys.batch")
	if _, err := os.Stat(batch); err != nil {
		flags, err := flagsOf(ctx, caBin, "card-batch")
		if err != nil {
			return "", err
		}
		dataFlag := pick(flags, "data", "data-dir")
		d.log.Printf("  first run: deriving the static keys of 1 new card with `ca-server card-batch --dev --count 1`")
		if _, err := d.runLogged(ctx, "ca-card-batch", caBin, "card-batch", "--dev", "--"+dataFlag, d.caDir,
			"--count", "1", "--out", batch); err != nil {
			return "", fmt.Errorf("ca-server card-batch: %w", err)
		}
	}
	d.log.Printf("  first run: making blank card stock with `vcard stock --count 1`")
	out, err := d.runLogged(ctx, "vcard-stock", vcardBin, "stock", "--count", "1", "--out", d.stockDir(), "--keys", batch)
	if err != nil {
		return "", fmt.Errorf("vcard stock: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line, nil
		}
	}
	return "", fmt.Errorf("vcard stock printed no card state file")
}

// cardPresent connects to the card in reader (shared, any protocol) and lets it be.
func cardPresent(reader string) error {
	ctx, err := scard.EstablishContext()
	if err != nil {
		return err
	}
	defer ctx.Release()
	card, err := ctx.Connect(reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		return err
	}
	return card.Disconnect(scard.LeaveCard)
}

// ---- step: terminal ----

func (d *demo) startTerminal(ctx context.Context) error {
	termBin := filepath.Join(d.bin, "madoguchi")
	termDir := filepath.Join(d.data, "terminal")
	if err := os.MkdirAll(termDir, 0o700); err != nil {
		return err
	}
	flags, err := terminalFlags(ctx, termBin, d.display)
	if err != nil {
		return err
	}
	args := []string{}
	if slices.Contains(flags, "data-dir") {
		args = append(args, "--data-dir", termDir)
	}
	if slices.Contains(flags, "reader") && d.reader != "" {
		args = append(args, "--reader", d.reader)
	}
	switch {
	case d.cupsServer == "":
		d.log.Printf("  no print server: the terminal saves documents as PDF without printing")
	case !slices.Contains(flags, "printer") || !slices.Contains(flags, "cups-server"):
		d.log.Printf("  not available yet: the terminal's --printer/--cups-server flags")
	default:
		args = append(args, "--printer", DemoQueue, "--cups-server", d.cupsServer)
	}
	d.bootstrapOperator(ctx, termBin, termDir)
	enrolArgs := d.enrolTerminal(ctx, flags)
	switch {
	case d.caURL == "":
		d.log.Printf("  skipped the CA link: ca-server is not running")
	case !slices.Contains(flags, "ca-url"):
		d.log.Printf("  not available yet: the terminal's --ca-url flag")
	default:
		args = append(args, "--ca-url", d.caURL)
		args = append(args, enrolArgs...)
	}
	env := []string{
		"DISPLAY=" + d.display,
		"DBUS_SYSTEM_BUS_ADDRESS=" + d.busAddress,
		VirtualFingerEnv + "=" + d.fingerSock,
	}
	if _, err := os.Stat(d.operatorMarker(termDir)); err == nil {
		env = append(env, VirtualPrintEnv+"="+demoPrint)
	}
	d.log.Printf("  starting the terminal: %s %s", termBin, strings.Join(redactAfter(args, "--enrol-token", "--enroll-token", "--enrolment-token", "--enrollment-token", "--token"), " "))
	d.log.Printf("    with %s", strings.Join(env, " "))
	s, err := services.Start(services.Spec{
		Name:    "the terminal",
		Path:    termBin,
		Args:    args,
		Env:     env,
		Dir:     termDir,
		LogPath: d.freshLog("terminal"),
	})
	if err != nil {
		return err
	}
	d.add(part{name: "the terminal", svc: s, stop: s.Stop})
	var title string
	err = s.WaitReady(3*time.Minute, func() error {
		var err error
		title, err = findWindow(ctx, d.display, WindowMarker)
		return err
	})
	if err != nil {
		return err
	}
	d.log.Printf("  the terminal window is up: %s", title)
	if d.enrolPending {
		_ = os.WriteFile(d.enrolMarker(), []byte(time.Now().Format(time.RFC3339)+"\n"), 0o600)
	}
	return nil
}

// enrolMarker records that the demo has handed the terminal an enrolment token.
func (d *demo) enrolMarker() string { return filepath.Join(d.data, "terminal", ".demo-enrolled") }

// enrolTerminal prepares the terminal's enrolment with ca-server: on first run a one-time token
// from `ca-server terminal-token` for the terminal's enrolment flag, and on every run the
// internal TLS CA certificate for the terminal's CA-certificate flag. It returns those flags,
// or nothing while either side is missing (the reason is logged). The token is never logged.
func (d *demo) enrolTerminal(ctx context.Context, termFlags []string) []string {
	if d.caURL == "" {
		return nil
	}
	var args []string
	if f := pick(termFlags, "ca-cert", "ca-cert-file", "ca-tls-cert", "tls-ca", "ca-root"); f != "" {
		args = append(args, "--"+f, d.tlsCACert())
	}
	tokenFlag := pick(termFlags, "enrol-token", "enroll-token", "enrolment-token", "enrollment-token", "token")
	if tokenFlag == "" {
		d.log.Printf("  not available yet: the terminal's enrolment flag (its flags are %q); the terminal is not enrolled with the CA", termFlags)
		return args
	}
	if _, err := os.Stat(d.enrolMarker()); err == nil {
		d.log.Printf("  skipped enrolment: the terminal was given its token on an earlier run (%s)", d.enrolMarker())
		return args
	}
	caBin := filepath.Join(d.bin, "ca-server")
	cmds, _ := subcommands(ctx, caBin)
	if !slices.Contains(cmds, "terminal-token") {
		d.log.Printf("  not available yet: `ca-server terminal-token` (one-time enrolment token); the terminal is not enrolled with the CA")
		return args
	}
	flags, err := flagsOf(ctx, caBin, "terminal-token")
	if err != nil {
		d.log.Printf("  enrolment skipped: %v", err)
		return args
	}
	tokArgs := []string{"terminal-token", "--" + pick(flags, "data-dir", "data"), d.caDir}
	if slices.Contains(flags, "municipality") {
		tokArgs = append(tokArgs, "--municipality", d.cfg.Municipality)
	}
	d.log.Printf("  first run: a one-time enrolment token for municipality %s from `ca-server terminal-token`, handed to the terminal's --%s", d.cfg.Municipality, tokenFlag)
	// stdout only: the token is its first line (stderr says how long it is valid).
	out, err := stdoutOf(ctx, caBin, tokArgs...)
	token := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if err != nil || token == "" {
		d.log.Printf("  enrolment skipped: ca-server terminal-token: %v", err)
		return args
	}
	d.enrolPending = true
	return append(args, "--"+tokenFlag, token)
}

// ---- supervision ----

// supervise waits for the end: ctx cancelled (Ctrl-C, SIGTERM), the terminal window closed, or a
// child's death. Meanwhile it saves screenshots.
func (d *demo) supervise(ctx context.Context) error {
	shot := filepath.Join(d.data, "screenshot.png")
	var tick <-chan time.Time
	if d.screenshots {
		t := time.NewTicker(d.cfg.ScreenshotEvery)
		defer t.Stop()
		tick = t.C
		if err := services.CaptureDisplay(d.display, shot); err != nil {
			d.log.Printf("screenshot: %v", err)
		} else {
			d.log.Printf("screenshot saved to %s; a new one every %v (`kill -USR1 %d` for one now)", shot, d.cfg.ScreenshotEvery, os.Getpid())
		}
	}
	d.log.Printf("the demo is running; Ctrl-C (or SIGTERM to pid %d) stops everything", os.Getpid())

	// One select case per supervised child, plus the fixed ones.
	const fixed = 3
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(tick)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(d.cfg.ScreenshotNow)},
	}
	var watched []int // indices into d.parts
	for i, p := range d.parts {
		if p.svc != nil && !p.svc.Aborted() {
			watched = append(watched, i)
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.svc.Done())})
		}
	}
	for {
		i, _, _ := reflect.Select(cases)
		switch {
		case i == 0:
			d.log.Printf("stopping everything")
			return ctx.Err()
		case i == 1 || i == 2:
			if err := services.CaptureDisplay(d.display, shot); err != nil {
				d.log.Printf("screenshot: %v", err)
			} else if i == 2 {
				d.log.Printf("screenshot saved to %s", shot)
			}
		default:
			idx := watched[i-fixed]
			p := d.parts[idx]
			// Its exit is reported here: stopping it later only reaps what is left of its group.
			d.parts[idx].stop = func() error { _ = p.svc.Stop(); return nil }
			if p.optional {
				d.log.Printf("%s exited (%s); the demo goes on without it%s", p.name, exitText(p.svc.ExitError()), p.svc.LogTail())
				cases[i].Chan = reflect.Value{} // a zero Chan is ignored by reflect.Select
				continue
			}
			if p.name == "the terminal" {
				d.log.Printf("the terminal window was closed (%v); stopping everything", exitText(p.svc.ExitError()))
				return nil
			}
			return fmt.Errorf("demo: %s exited unexpectedly (%s)%s", p.name, exitText(p.svc.ExitError()), p.svc.LogTail())
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
