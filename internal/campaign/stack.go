package campaign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"madoguchi/cardio/vcard"
	"madoguchi/internal/campaign/tcpfault"
	"madoguchi/internal/faults/diskfill"
	"madoguchi/internal/testenv"
	"madoguchi/raclient"
)

// Config is one campaign's stack.
type Config struct {
	Dir       string // everything the run makes: binaries, CA, terminal, cards, logs
	DB        string // "sqlite" (default) or "postgres"
	Cards     int    // card stock made at set-up
	Residents int    // residents generated into the terminal's register
	Reader    int    // the vpcd reader (0 or 1) this campaign's cards go into
	// Deadline is serve's --deadline: how long a prepared issuance may wait for its
	// confirmation before the sweeper revokes it (reason 0).
	Deadline time.Duration
	Log      io.Writer
	// Tmpfs puts the CA's and the terminal's data directories on small tmpfs mounts of their
	// own, which the disk-full fault fills (diskfill). Root only, and only in a private mount
	// namespace (the command re-executes itself under unshare; the test does too).
	Tmpfs bool
}

// Stack is the real chain the campaign breaks: ca-server serve (SoftHSM, SQLite or
// PostgreSQL) behind a fault proxy, pcscd+vpcd, a terminal data directory driven through the
// terminal CLI as child processes, and blank card stock from the CA's card-key batch.
type Stack struct {
	t   testing.TB
	cfg Config

	bin, logs            string
	caBin, cliBin        string
	caData, termDir      string
	cardDir              string
	caPort               int
	CAProxy              *tcpfault.Proxy // terminal → serve
	PGProxy              *tcpfault.Proxy // serve → PostgreSQL (postgres runs)
	pg                   *testenv.PG
	dsn                  string // serve's database URL (through PGProxy)
	directDSN            string // the same database without the proxy (the invariants read it)
	Reader               string
	Port                 int
	Stock                []vcard.StockEntry
	nextCard             int
	caClockFile          string
	termClockFile        string
	caFsyncFile          string // MADOGUCHI_FSYNC_FAULT_FILE of serve: its fsyncs fail once it exists
	termFsyncFile        string // the same for the terminal CLI's processes
	caFlags              []string
	serveMu              sync.Mutex
	serve                *exec.Cmd
	serveDone            chan struct{}
	serveEnv             []string // extra environment of the next serve start (the HSM fault)
	signCAPEM, authCAPEM string
}

// Binaries are built once per process with the faultcampaign tag, which turns on the fault
// hooks (HSM, clock) that the campaign drives through the environment.
var binaries struct {
	once    sync.Once
	dir     string
	ca, cli string
	err     error
}

func buildBinaries(dir string) (ca, cli string, err error) {
	binaries.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		binaries.ca = filepath.Join(dir, "ca-server")
		binaries.cli = filepath.Join(dir, "madoguchi-cli")
		for out, pkg := range map[string]string{binaries.ca: "./ca-server", binaries.cli: "./internal/cmd/madoguchi-cli"} {
			cmd := exec.Command("go", "build", "-tags", "faultcampaign", "-o", out, pkg)
			cmd.Dir = root
			if msg, err := cmd.CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
				return
			}
		}
	})
	return binaries.ca, binaries.cli, binaries.err
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the madoguchi module")
	}
	return filepath.Dir(mod), nil
}

// NewStack sets up the chain once: binaries, SoftHSM, the database, the CA (ceremony, card
// batch, serve), the terminal enrolled, its operators and residents. pc is the running pcscd
// (shared by the campaigns of one process).
func NewStack(t testing.TB, pc *testenv.PCSC, cfg Config) *Stack {
	t.Helper()
	if cfg.DB == "" {
		cfg.DB = "sqlite"
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = 30 * time.Second
	}
	s := &Stack{t: t, cfg: cfg}
	s.bin = filepath.Join(cfg.Dir, "bin")
	s.logs = filepath.Join(cfg.Dir, "logs")
	s.caData = filepath.Join(cfg.Dir, "ca")
	s.termDir = filepath.Join(cfg.Dir, "terminal")
	s.cardDir = filepath.Join(cfg.Dir, "cards")
	for _, d := range []string{s.bin, s.logs, s.caData, s.termDir, s.cardDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Tmpfs {
		// Sizes: room for a few thousand issuances' rows, small enough that a fill is quick.
		for dir, size := range map[string]int64{s.caData: 192 << 20, s.termDir: 64 << 20} {
			unmount, err := diskfill.MountTmpfs(dir, size)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unmount() })
		}
	}
	var err error
	if s.caBin, s.cliBin, err = buildBinaries(s.bin); err != nil {
		t.Fatal(err)
	}
	s.Reader, s.Port = pc.Readers[cfg.Reader], pc.Ports[cfg.Reader]
	s.caClockFile = filepath.Join(cfg.Dir, "ca-clock-skew")
	s.termClockFile = filepath.Join(cfg.Dir, "terminal-clock-skew")
	for _, f := range []string{s.caClockFile, s.termClockFile} {
		if err := os.WriteFile(f, []byte("0s\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The fsync triggers exist only while an fsync-error fault is on (SetFsyncFault).
	s.caFsyncFile = filepath.Join(cfg.Dir, "ca-fsync-fault")
	s.termFsyncFile = filepath.Join(cfg.Dir, "terminal-fsync-fault")

	// SOFTHSM2_CONF is process-wide: two stacks in one process share the one config, each
	// with its own token label in its own data dir (ceremony-init makes the CA's token).
	if os.Getenv("SOFTHSM2_CONF") == "" {
		testenv.SoftHSM(t)
	}
	var storeFlags []string
	if cfg.DB == "postgres" {
		s.pg = testenv.Postgres(t)
		s.directDSN = s.pg.DSN
		u, err := url.Parse(s.pg.DSN)
		if err != nil {
			t.Fatal(err)
		}
		if s.PGProxy, err = tcpfault.Listen("127.0.0.1:0", u.Host); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.PGProxy.Close() })
		u.Host = s.PGProxy.Addr()
		s.dsn = u.String()
		storeFlags = []string{"--database", s.directDSN}
	}
	s.caCmd("ceremony-init", "--data", s.caData, "--dev")
	batch := filepath.Join(cfg.Dir, "card-batch.txt")
	s.caCmd("card-batch", "--data", s.caData, "--dev", "--count", strconv.Itoa(cfg.Cards), "--out", batch)
	bf, err := os.Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	s.Stock, err = vcard.ParseKeyBatch(bf)
	bf.Close()
	if err != nil || len(s.Stock) != cfg.Cards {
		t.Fatalf("card batch: %d cards, %v", len(s.Stock), err)
	}
	token := strings.TrimSpace(s.caCmd(append([]string{"terminal-token", "--data-dir", s.caData, "--municipality", "131016"}, storeFlags...)...))

	s.caPort = freePort(t)
	s.StartServe()
	if s.CAProxy, err = tcpfault.Listen("127.0.0.1:0", s.caAddr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.CAProxy.Close() })
	s.t.Cleanup(func() { s.StopServe(syscall.SIGTERM) })
	s.enrol(token)
	s.setUpTerminal()
	return s
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *Stack) caAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.caPort)) }

// CAData is serve's data directory.
func (s *Stack) CAData() string { return s.caData }

// caCmd runs a local ca-server command and returns its standard output.
func (s *Stack) caCmd(args ...string) string {
	s.t.Helper()
	out, err := s.caRun(args...)
	if err != nil {
		s.t.Fatalf("ca-server %s: %v\n%s", args[0], err, out)
	}
	return out
}

func (s *Stack) caRun(args ...string) (string, error) {
	cmd := exec.Command(s.caBin, args...)
	cmd.Env = append(os.Environ(), "MADOGUCHI_CLOCK_SKEW_FILE="+s.caClockFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	appendLog(filepath.Join(s.logs, "ca-commands.log"), fmt.Sprintf("$ ca-server %s\n%s%s", args[0], out, stderr.String()))
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

func appendLog(path, text string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	io.WriteString(f, text)
}

// SetServeEnv sets extra environment for serve's next start (MADOGUCHI_HSM_FAULT).
func (s *Stack) SetServeEnv(env ...string) { s.serveEnv = env }

// StartServe starts `ca-server serve` on the fixed port and waits until it answers TLS.
func (s *Stack) StartServe() {
	s.t.Helper()
	if err := s.TryStartServe(); err != nil {
		s.t.Fatal(err)
	}
}

// TryStartServe is StartServe returning the failure (serve may refuse to start under an HSM
// fault that fires during its start-up).
func (s *Stack) TryStartServe() error {
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	args := []string{"serve", "--data-dir", s.caData, "--dev", "--listen", s.caAddr(),
		"--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--deadline", s.cfg.Deadline.String(), "--sweep-every", "2s"}
	if s.dsn != "" {
		args = append(args, "--database", s.dsn)
	}
	cmd := exec.Command(s.caBin, args...)
	cmd.Env = append(os.Environ(), "MADOGUCHI_CLOCK_SKEW_FILE="+s.caClockFile, "MADOGUCHI_FSYNC_FAULT_FILE="+s.caFsyncFile)
	cmd.Env = append(cmd.Env, s.serveEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	lf, err := os.OpenFile(filepath.Join(s.logs, "serve.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "---- serve started %s (%s)\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(s.serveEnv, " "))
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(done) }()
	s.serve, s.serveDone = cmd, done
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := s.tlsAnswers(); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("ca-server serve exited at start (%v); see %s", cmd.ProcessState, filepath.Join(s.logs, "serve.log"))
		default:
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return fmt.Errorf("ca-server serve did not answer TLS within 2 minutes; see %s", filepath.Join(s.logs, "serve.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ServeRunning reports whether serve is up.
func (s *Stack) ServeRunning() bool {
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	if s.serveDone == nil {
		return false
	}
	select {
	case <-s.serveDone:
		return false
	default:
		return true
	}
}

// StopServe stops serve with sig (SIGKILL: the crash of the campaign's process faults) and
// waits until it is gone.
func (s *Stack) StopServe(sig syscall.Signal) {
	s.serveMu.Lock()
	cmd, done := s.serve, s.serveDone
	s.serveMu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (s *Stack) tlsAnswers() error {
	pemBytes, err := os.ReadFile(filepath.Join(s.caData, "tls-ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	d := &tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: "127.0.0.1"}, NetDialer: &net.Dialer{Timeout: 2 * time.Second}}
	c, err := d.Dial("tcp", s.caAddr())
	if err != nil {
		return err
	}
	return c.Close()
}

// enrol makes the terminal's TLS key and enrols it with the one-time token (as e2e.StartCA
// does), writing the files the CLI's CA flags name.
func (s *Stack) enrol(token string) {
	t := s.t
	rootPEM, err := os.ReadFile(filepath.Join(s.caData, "tls-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootPEM)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: "https://" + s.caAddr(), RootCAs: pool, Token: token, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatalf("enrol the terminal: %v", err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	files := map[string][]byte{
		"terminal.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: enr.Certificate}),
		"terminal.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		"tls-ca.crt":   rootPEM,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(s.termDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.signCAPEM = filepath.Join(s.caData, "ceremony", "signature-ca.crt.pem")
	s.authCAPEM = filepath.Join(s.caData, "ceremony", "user-auth-ca.crt.pem")
	// -ca-url goes through the proxy; the server certificate names 127.0.0.1, as the proxy is.
	s.caFlags = []string{"-ca-url", "https://" + s.CAProxy.Addr(),
		"-ca-cert", filepath.Join(s.termDir, "terminal.crt"), "-ca-key", filepath.Join(s.termDir, "terminal.key"),
		"-ca-root", filepath.Join(s.termDir, "tls-ca.crt"), "-sign-ca", s.signCAPEM, "-auth-ca", s.authCAPEM}
}

// Operators' passwords as typed on standard input (the campaign's own test operators).
const (
	supPass = "supervisor-pass-1\n"
	rcPass  = "reception-pass-1\n"
)

// setUpTerminal creates the supervisor "sup" and the password-exempt operator "rc1"
// (reception, CS) and imports the generated residents.
func (s *Stack) setUpTerminal() {
	s.mustCLI(supPass, false, "bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前")
	s.mustCLI(supPass, false, "-user", "sup", "operator", "create", "rc1", "受付 花子")
	s.mustCLI(supPass, false, "-user", "sup", "operator", "grant", "rc1", "reception")
	s.mustCLI(supPass, false, "-user", "sup", "operator", "grant", "rc1", "cs")
	s.mustCLI(supPass, false, "-user", "sup", "operator", "grant", "sup", "audit")
	s.mustCLI(supPass+rcPass, false, "-user", "sup", "operator", "exempt", "rc1", "指紋の読み取りが困難")
	csv := filepath.Join(s.cfg.Dir, "residents.csv")
	if err := os.WriteFile(csv, residentsCSV(s.cfg.Residents), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.mustCLI(rcPass, false, "-user", "rc1", "resident", "import", csv)
}

// ResidentCode is the resident-record code of generated resident i (0-based).
func ResidentCode(i int) string { return fmt.Sprintf("8%010d", i+1) }

var givenNames = []string{"一郎", "花子", "次郎", "桜", "三郎", "陽子", "健", "美咲"}

// residentsCSV generates n residents in the header of app/resident/fixtures/residents.csv.
func residentsCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("record_code,name,name_kana,former_surname,alias_name,alias_kana,birth_date,sex,address,status,fuhyo_address,honseki,foreign_resident\n")
	kana := []string{"イチロウ", "ハナコ", "ジロウ", "サクラ", "サブロウ", "ヨウコ", "ケン", "ミサキ"}
	base := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		sex := "M"
		if i%2 == 1 {
			sex = "F"
		}
		fmt.Fprintf(&b, "%s,試験 %s,シケン %s,,,,%s,%s,東京都架空区見本町一丁目%d番%d号,resident,,,0\n",
			ResidentCode(i), givenNames[i%len(givenNames)], kana[i%len(kana)], base.AddDate(0, 0, 7*i+i%5).Format("2006-01-02"), sex, 1+i%30, 1+i%9)
	}
	return b.Bytes()
}

// Result is one CLI run.
type Result struct {
	Code    int // exit status; -1 when killed
	Out     string
	Err     string
	Killed  bool
	Elapsed time.Duration
}

// CLIRun is one terminal CLI invocation.
type CLIRun struct {
	Stdin  string
	PINs   string // the applicant's PIN lines, on a pipe given as -pin-fd 3
	WithCA bool
	Args   []string
	// KillAfter > 0: kill -9 the process after this long (the crash fault). Patience > 0:
	// the operator gives up and kills it after this long (a hung screen).
	KillAfter, Patience time.Duration
}

// CLI runs the terminal CLI as a child process.
func (s *Stack) CLI(r CLIRun) Result {
	args := []string{"-db", filepath.Join(s.termDir, "terminal.db")}
	if r.WithCA {
		args = append(args, s.caFlags...)
	}
	var extra []*os.File
	if r.PINs != "" {
		pr, pw, err := os.Pipe()
		if err != nil {
			s.t.Fatal(err)
		}
		go func() { io.WriteString(pw, r.PINs); pw.Close() }()
		extra = append(extra, pr)
		defer pr.Close()
		args = append(args, "-pin-fd", "3")
	}
	args = append(args, r.Args...)
	cmd := exec.Command(s.cliBin, args...)
	cmd.Dir = s.termDir
	cmd.Env = append(os.Environ(), "MADOGUCHI_CLOCK_SKEW_FILE="+s.termClockFile, "MADOGUCHI_FSYNC_FAULT_FILE="+s.termFsyncFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdin = strings.NewReader(r.Stdin)
	cmd.ExtraFiles = extra
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	began := time.Now()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var kill <-chan time.Time
	limit := r.KillAfter
	if limit <= 0 || (r.Patience > 0 && r.Patience < limit) {
		limit = r.Patience
	}
	if limit > 0 {
		tm := time.NewTimer(limit)
		defer tm.Stop()
		kill = tm.C
	}
	res := Result{}
	var err error
	select {
	case err = <-done:
	case <-kill:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
		res.Killed = true
	}
	res.Elapsed = time.Since(began)
	res.Out, res.Err = out.String(), errOut.String()
	switch {
	case res.Killed:
		res.Code = -1
	case err == nil:
	default:
		if ee, ok := err.(*exec.ExitError); ok {
			res.Code = ee.ExitCode()
		} else {
			res.Code = -1
		}
	}
	appendLog(filepath.Join(s.logs, "terminal-cli.log"), fmt.Sprintf("$ cli %s\nexit %d (killed %v, %v)\n%s%s", strings.Join(r.Args, " "), res.Code, res.Killed, res.Elapsed.Round(time.Millisecond), res.Out, res.Err))
	return res
}

// mustCLI runs a set-up command that must succeed.
func (s *Stack) mustCLI(stdin string, withCA bool, args ...string) Result {
	s.t.Helper()
	r := s.CLI(CLIRun{Stdin: stdin, WithCA: withCA, Args: args})
	if r.Code != 0 {
		s.t.Fatalf("cli %v: exit %d\n%s%s", args, r.Code, r.Out, r.Err)
	}
	return r
}

// TerminalDB is the terminal's database file.
func (s *Stack) TerminalDB() string { return filepath.Join(s.termDir, "terminal.db") }

// Logs is the directory of every log of the run.
func (s *Stack) Logs() string { return s.logs }

// NewCard makes the next blank card of the stock; its state file is under the cards dir.
func (s *Stack) NewCard() (*vcard.Card, string) {
	s.t.Helper()
	if s.nextCard >= len(s.Stock) {
		s.t.Fatalf("out of card stock (%d cards)", len(s.Stock))
	}
	e := s.Stock[s.nextCard]
	s.nextCard++
	path := filepath.Join(s.cardDir, fmt.Sprintf("card-%04d.json", s.nextCard))
	c, err := vcard.New(vcard.Config{Serial: e.Serial, Keys: e.Keys, StatePath: path})
	if err != nil {
		s.t.Fatal(err)
	}
	return c, path
}

// SetClockSkew writes the skew the CA's (ca) or the terminal's clock hook reads.
func (s *Stack) SetClockSkew(ca bool, d time.Duration) {
	f := s.termClockFile
	if ca {
		f = s.caClockFile
	}
	if err := os.WriteFile(f+".tmp", []byte(d.String()+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(f+".tmp", f); err != nil {
		s.t.Fatal(err)
	}
}

// SetFsyncFault creates (on) or removes (off) the trigger file that makes every fsync of serve
// (ca) or of the terminal CLI's processes fail with EIO; a process that saw it keeps failing
// until it ends (a seccomp filter cannot be lifted). It reports whether the file existed.
func (s *Stack) SetFsyncFault(ca, on bool) bool {
	f := s.termFsyncFile
	if ca {
		f = s.caFsyncFile
	}
	_, err := os.Stat(f)
	existed := err == nil
	if on {
		if err := os.WriteFile(f, []byte("fsync fails\n"), 0o600); err != nil {
			s.t.Fatal(err)
		}
	} else if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	return existed
}
