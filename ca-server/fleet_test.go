package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// The fleet harness (issue 14): `ca-server serve` replicas as child
// processes (so kill -9 is real) on one PostgreSQL database and one
// SoftHSM token, each with its own copy of the data directory, as
// machines restored from the ceremony backup would be. A child is this
// test binary run again (serveChildEnv): no separate build, and under
// -race the replicas run with the race detector too. The fleet test, the
// fleet benchmark and nothing else start replicas this way.

// serveChildEnv makes the test binary run `ca-server` itself (os.Args[1:])
// and exit, before the testing package parses flags.
const serveChildEnv = "MADOGUCHI_CA_SERVER_CHILD"

func init() {
	if os.Getenv(serveChildEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
}

// serveChild is one `ca-server serve` replica in a child process.
type serveChild struct {
	name   string
	cmd    *exec.Cmd
	base   string // https://host:port of the terminal API
	verif  string // https://host:port of the verifier listener (mutual TLS)
	public string // https://host:port of the public listener
	ops    string // http://host:port of the metrics listener (/readyz)
	stderr *syncBuffer
	done   chan struct{}
}

// startServeChild starts `ca-server serve args…` as a child of the test
// binary, its status and metrics listeners on free loopback ports, and
// waits until all four listen; it is stopped (SIGTERM) at cleanup.
func startServeChild(t testing.TB, name string, args ...string) *serveChild {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--verifier-listen", "--public-listen", "--metrics-listen"} {
		args = append(args, f, "127.0.0.1:0")
	}
	cmd := exec.Command(self, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), serveChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &serveChild{name: name, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("%s (pid %d) stderr (tail):\n%s", name, cmd.Process.Pid, tail(c.stderr.String(), 3000))
		}
	})
	addrs := make(chan [2]string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			for _, p := range []struct{ what, prefix string }{
				{"verif", "verifier status (mutual TLS) on https://"},
				{"public", "public ARL and CA certificates on https://"},
				{"ops", "metrics on http://"},
				{"base", "listening on https://"},
			} {
				if _, rest, ok := strings.Cut(l, p.prefix); ok {
					addrs <- [2]string{p.what, strings.TrimSuffix(strings.Fields(rest)[0], "/metrics")}
					break
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	timeout := time.After(2 * time.Minute)
	for c.base == "" || c.verif == "" || c.public == "" || c.ops == "" {
		select {
		case a := <-addrs:
			switch a[0] {
			case "verif":
				c.verif = "https://" + a[1]
			case "public":
				c.public = "https://" + a[1]
			case "ops":
				c.ops = "http://" + a[1]
			case "base":
				c.base = "https://" + a[1]
			}
		case <-c.done:
			t.Fatalf("%s exited before listening:\n%s", name, c.stderr.String())
		case <-timeout:
			t.Fatalf("%s did not listen:\n%s", name, c.stderr.String())
		}
	}
	return c
}

func (c *serveChild) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// kill9 kills the replica's process group with SIGKILL: no cleanup, no
// lease release, no last checkpoint.
func (c *serveChild) kill9() {
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
}

// stop ends the replica (SIGTERM, SIGKILL to its group after 20 s) and
// waits for it; stopping a stopped replica does nothing.
func (c *serveChild) stop() {
	if !c.alive() {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

// ready reports whether the replica's /readyz answers 200.
func (c *serveChild) ready() bool {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(c.ops + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// fleetCA is the shared state of a fleet: the database (a primary with a
// streaming standby, named by the multi-host DSN), the data directory of
// the first replica (the ceremony's), the terminals' trust.
type fleetCA struct {
	pg         *testenv.PGPair
	data       string
	dsn        string // serving role, both hosts, target_session_attrs=read-write
	ownerDSN   string // the owner role, same hosts
	pool       *x509.CertPool
	stock      []vcard.StockEntry
	replicas   []*serveChild
	verifier   tls.Certificate
	extraFlags []string
}

// newFleetCA sets up a dev CA on PostgreSQL with a synchronous streaming
// standby (the owner migrates, a serving role serves, both through the
// multi-host DSN as in production) with cards, two terminal tokens and a
// registered verifier.
func newFleetCA(t *testing.T, cards int) (*fleetCA, []string) {
	t.Helper()
	testenv.SoftHSM(t)
	pair := testenv.PostgresWithStandby(t)
	roles := pair.Primary.Roles(t)
	f := &fleetCA{pg: pair, data: t.TempDir(), dsn: pair.WithUser(roles.Serving), ownerDSN: pair.WithUser(roles.Owner)}
	f.cmd(t, "db", "migrate", "--database", f.ownerDSN, "--serving-role", roles.Serving)
	f.cmd(t, "ceremony-init", "--data", f.data, "--dev")
	batch := filepath.Join(t.TempDir(), "batch.txt")
	f.cmd(t, "card-batch", "--data", f.data, "--dev", "--count", strconv.Itoa(cards), "--out", batch)
	bf, err := os.Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	f.stock, err = vcard.ParseKeyBatch(bf)
	bf.Close()
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for range 2 {
		tokens = append(tokens, strings.TrimSpace(f.cmd(t, "terminal-token", "--data-dir", f.data, "--database", f.dsn, "--municipality", "131016")))
	}
	vdir := t.TempDir()
	f.cmd(t, "verifier-add", "--data-dir", f.data, "--dev", "--database", f.dsn, "--name", "relying-party-1", "--out-dir", vdir)
	if f.verifier, err = tls.LoadX509KeyPair(filepath.Join(vdir, "verifier.crt"), filepath.Join(vdir, "verifier.key")); err != nil {
		t.Fatal(err)
	}
	f.pool = x509.NewCertPool()
	f.pool.AddCert(readPEMCert(t, filepath.Join(f.data, "tls-ca.crt")))
	return f, tokens
}

// cmd runs a local ca-server command in this process, as an operator
// would on one of the machines.
func (f *fleetCA) cmd(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("ca-server %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}

// dataCopy gives a replica its own data directory: a copy of the first
// one's, whose SoftHSM token directory is the first one's (one shared
// token: every replica signs with the same CA keys). README's two-replica
// sequence does the same.
func (f *fleetCA) dataCopy(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", f.data, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy data dir: %v %s", err, out)
	}
	tokens := filepath.Join(dst, "softhsm", "tokens")
	if err := os.RemoveAll(tokens); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(f.data, "softhsm", "tokens"), tokens); err != nil {
		t.Fatal(err)
	}
	return dst
}

// start runs a serve replica on data through the multi-host DSN.
func (f *fleetCA) start(t testing.TB, name, data string) *serveChild {
	t.Helper()
	r := startServeChild(t, name, append([]string{"--data-dir", data, "--dev", "--database", f.dsn, "--listen", "127.0.0.1:0"}, f.extraFlags...)...)
	f.replicas = append(f.replicas, r)
	return r
}

// fleetTerminal is an enrolled counter terminal with a client for every
// replica; it starts with its own and, on a fault, goes on through the
// next one.
type fleetTerminal struct {
	name    string
	clients []*raclient.Client
	names   []string
	turn    int
	logf    func(string, ...any)
	faults  atomic.Int32 // requests that failed and went to the next replica
}

func (f *fleetCA) enrol(t testing.TB, name, token string, via int) *fleetTerminal {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: f.replicas[via].base, RootCAs: f.pool, Token: token, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatalf("enrol via %s: %v", f.replicas[via].name, err)
	}
	tc, err := raclient.TLSCertificate(enr, key)
	if err != nil {
		t.Fatal(err)
	}
	ft := &fleetTerminal{name: name, turn: via, logf: t.Logf}
	for _, r := range f.replicas {
		c, err := raclient.New(raclient.Config{BaseURL: r.base, Certificate: tc, RootCAs: f.pool, MaxAttempts: 1, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		ft.clients = append(ft.clients, c)
		ft.names = append(ft.names, r.name)
	}
	return ft
}

// step runs one request on the terminal's current replica; a fault (no
// answer, unavailable, internal) sends the same request, with the same
// request id, to the next replica, as a counter terminal configured with
// the fleet's addresses does, for at most 90 s. A refusal is returned.
func (ft *fleetTerminal) step(what string, do func(c *raclient.Client) error) error {
	for deadline := time.Now().Add(90 * time.Second); ; {
		err := do(ft.clients[ft.turn])
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if code := wire.CodeOf(err); code != wire.CodeUnavailable && code != wire.CodeInternal && code != wire.CodeRateLimited {
			return err
		}
		ft.logf("%s %s via %s: %v; again via the next replica", ft.name, what, ft.names[ft.turn], err)
		ft.faults.Add(1)
		ft.turn = (ft.turn + 1) % len(ft.clients)
		time.Sleep(200 * time.Millisecond)
	}
}

// fleetStep runs one request of an issuance on some replica: the
// benchmark's once on its replica, the fleet test's through
// fleetTerminal.step.
type fleetStep func(what string, do func(c *raclient.Client) error) error

// issueOutcome is what the terminal saw of one issuance.
type issueOutcome struct {
	reqID     string // the prepare's request id (issuances.request_id)
	issuance  string // empty when no prepare answered
	delivered bool   // the confirmation answered "delivered"
	aborted   bool   // the terminal aborted it (confirmation impossible)
	cert      *x509.Certificate
	at        time.Time // when the terminal saw the end
	err       error
}

// fleetIssue issues one certificate to the stock card, each request
// through step (the fleet test and BenchmarkFleetIssuance). Without
// confirm the card was lost on the way: the deadline sweeper revokes the
// issuance (reason 0). A confirmation that fails for good is aborted.
func fleetIssue(ctx context.Context, step fleetStep, stock vcard.StockEntry, typ, resident, reqID string, confirm bool) (out issueOutcome) {
	out.reqID = "p-" + reqID
	defer func() { out.at = time.Now() }()
	vc, err := vcard.New(vcard.Config{Serial: stock.Serial, Keys: stock.Keys})
	if err != nil {
		out.err = err
		return
	}
	card := cardio.New(vcard.Insert(vc))
	var ch wire.ChannelResponse
	if out.err = step(reqID+" channel", func(c *raclient.Client) (err error) { ch, err = c.OpenChannel(ctx, "op-1"); return }); out.err != nil {
		return
	}
	iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
	if err != nil {
		out.err = err
		return
	}
	app := wire.Applicant{ResidentCode: resident, Name: "窓口 太郎", BirthDate: "1980-04-01", Sex: "1", Address: "東京都千代田区霞が関二丁目1番2号", CardExpiry: "2034-04-01"}
	var prep wire.PrepareResponse
	if out.err = step(reqID+" prepare", func(c *raclient.Client) (err error) {
		prep, err = c.Prepare(ctx, "op-1", wire.PrepareRequest{RequestID: out.reqID, ChannelID: ch.ChannelID, CardSerial: hex.EncodeToString(stock.Serial),
			InitUpdateResponse: iu, CertType: typ, Applicant: app})
		return
	}); out.err != nil {
		return
	}
	out.issuance = prep.IssuanceID
	if out.cert, out.err = x509.ParseCertificate(prep.Certificate); out.err != nil || !confirm {
		return
	}
	responses, err := card.RunScript(ctx, prep.Script)
	if err != nil {
		out.err = err
		return
	}
	var st wire.IssuanceStatus
	out.err = step(reqID+" confirm", func(c *raclient.Client) (err error) {
		st, err = c.Confirm(ctx, "op-1", prep.IssuanceID, wire.ConfirmRequest{RequestID: "c-" + reqID, CardResponses: responses})
		return
	})
	if out.delivered = out.err == nil && st.State == "delivered"; out.delivered {
		return
	}
	if out.err == nil {
		out.err = fmt.Errorf("confirm: state %q", st.State)
	}
	out.aborted = step(reqID+" abort", func(c *raclient.Client) error {
		_, err := c.Abort(ctx, "op-1", prep.IssuanceID, wire.AbortRequest{RequestID: "a-" + reqID})
		return err
	}) == nil
	return
}

// verifierClient speaks mutual TLS as the registered verifier.
func (f *fleetCA) verifierClient(t testing.TB) *http.Client {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: f.pool,
		Certificates: []tls.Certificate{f.verifier}}}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func fleetGet(hc *http.Client, url string) (int, []byte, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func fleetOCSP(hc *http.Client, url string, cert, issuer *x509.Certificate) (*xocsp.Response, error) {
	req, err := xocsp.CreateRequest(cert, issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, err
	}
	resp, err := hc.Post(url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return xocsp.ParseResponseForCert(body, cert, issuer)
}

// leaseHolder reads the jobs lease row through a new connection on the
// multi-host DSN (whichever server accepts writes).
func leaseHolder(dsn string) (holder string, fence int64, expires time.Time, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	defer conn.Close(context.Background())
	var exp int64
	err = conn.QueryRow(ctx, "SELECT holder, fence, expires_at FROM job_leases WHERE name = 'jobs'").Scan(&holder, &fence, &exp)
	return holder, fence, time.Unix(0, exp), err
}

// holderPID is the pid inside a holder id (serve_fleet.go holderID).
func holderPID(holder string) int {
	parts := strings.Split(holder, "/")
	if len(parts) != 3 {
		return 0
	}
	n, _ := strconv.Atoi(parts[1])
	return n
}

// TestFleetSurvivesKillAndFailover (issue 14, the fleet test): three
// `serve` replicas (child processes) on one SoftHSM token and a PostgreSQL
// primary with a synchronous streaming standby, named by the multi-host
// DSN with target_session_attrs=read-write; two terminals enrolled over
// real mutual TLS issue in parallel, A through replica 1 and B through
// replica 2, each going on through the next replica with the same request
// id when its replica fails. Mid-run the harness kill -9s the replica
// holding the job lease, and later kills the PostgreSQL primary (SIGKILL:
// fenced by death before anything else may write) and promotes the
// standby. Terminal B loses the card of its first issuance and of its
// first after the promotion (never confirmed). Afterwards:
//
//   - the job lease moved to a surviving replica within 15 s (issue 14),
//     and after the promotion a surviving replica holds it on the new
//     primary;
//   - every issuance is delivered or revoked with reason 0, never both;
//     each one the terminal saw delivered is delivered under the same id,
//     each it did not see delivered is revoked with reason 0 or absent;
//     no request id is in the database twice, none prepared is lost; the
//     two lost cards' issuances were revoked by the sweeper (the second
//     one's on the new primary);
//   - both terminals issued after the promotion, through the surviving
//     replicas, which report ready again;
//   - one valid certificate per person and type;
//   - every surviving replica serves the same newest CRL (the one a local
//     `crl publish --now` wrote, from the database archive) and the same
//     ARL; on the code before the database archive each replica served its
//     own data directory's archive, so the others had none or an older one;
//   - OCSP on every surviving replica agrees with the database, signed by
//     the one responder key recorded for the fleet;
//   - `audit verify` is clean; no replica panicked or saw a data race.
//
// Then, with the fleet still running, `ca-server hold` (a local command)
// makes every replica answer certificateHold for a certificate each had
// answered "good" and cached (TS Art. 36; on the code before, the cached
// "good" stood for up to ~12 h); a counter release brings "good" back.
// The times from each change to the last replica answering it are logged
// (p50/p99; MADOGUCHI_FLEET_CHANGES sets how many, default 10), as are the
// lease takeover and the database failover times.
func TestFleetSurvivesKillAndFailover(t *testing.T) {
	const perTerminal = 16 // cards; each gets a signature and then an authentication certificate
	f, tokens := newFleetCA(t, 2*perTerminal)
	const leaseTTL = 5 * time.Second
	f.extraFlags = []string{"--lease-ttl", leaseTTL.String(), "--deadline", "15s", "--sweep-every", "1s", "--status-every", "1s", "--audit-checkpoint-every", "2s"}
	ctx := context.Background()

	f.start(t, "replica-1", f.data) // the ceremony's data dir: first, so it records the service keys (README)
	f.start(t, "replica-2", f.dataCopy(t))
	f.start(t, "replica-3", f.dataCopy(t))
	terms := []*fleetTerminal{f.enrol(t, "terminal-A", tokens[0], 0), f.enrol(t, "terminal-B", tokens[1], 1)}

	type record struct {
		issueOutcome
		term     int
		resident string
		lost     bool // never confirmed: the card was lost on the way
		began    time.Time
	}
	var (
		mu       sync.Mutex
		records  []record
		promoted atomic.Bool
		// phase advances at the replica kill and at the database kill; a
		// terminal begins at most budget issuances in a phase, so it is
		// busy when each fault comes and the cards last whatever the
		// machine's speed
		phase    atomic.Int32
		finished atomic.Int32
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()
	// deliveredSince counts each terminal's deliveries begun after since.
	deliveredSince := func(since time.Time) (n [2]int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range records {
			if r.delivered && !r.began.Before(since) {
				n[r.term]++
			}
		}
		return n
	}
	for i, term := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer finished.Add(1)
			const budget = 6
			used := map[int32]int{}
			lostAfterPromotion := false
			for k := range perTerminal {
				card := i*perTerminal + k
				resident := fmt.Sprintf("9%010d", card)
				for _, typ := range []string{"sign", "auth"} {
					p := phase.Load()
					for ; used[p] >= budget; p = phase.Load() {
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
					select {
					case <-stop:
						return
					default:
					}
					used[p]++
					lost := i == 1 && typ == "sign" && (k == 0 || promoted.Load() && !lostAfterPromotion)
					lostAfterPromotion = lostAfterPromotion || lost && k > 0
					began := time.Now()
					o := fleetIssue(ctx, term.step, f.stock[card], typ, resident, fmt.Sprintf("t%d-%d-%s", i, k, typ), !lost)
					mu.Lock()
					records = append(records, record{o, i, resident, lost, began})
					mu.Unlock()
					if o.err != nil {
						t.Logf("%s card %d %s: %v", term.name, card, typ, o.err)
					}
					if lost || !o.delivered {
						break // the next person's card
					}
				}
			}
		}()
	}
	waitUntil := func(what string, limit time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > limit || finished.Load() == int32(len(terms)) {
				halt()
				for _, r := range records {
					t.Logf("%s %s: began %v, ended %v, delivered %v: %v", terms[r.term].name, r.reqID, r.began.Format("15:04:05.000"), r.at.Format("15:04:05.000"), r.delivered, r.err)
				}
				t.Fatalf("%s: not after %v (%d terminals out of cards)", what, time.Since(start).Round(time.Millisecond), finished.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitUntil("both terminals delivered", 2*time.Minute, func() bool { n := deliveredSince(time.Time{}); return n[0] > 0 && n[1] > 0 })

	// kill -9 the replica holding the job lease
	holder, fence, _, err := leaseHolder(f.ownerDSN)
	if err != nil {
		t.Fatalf("jobs lease: %v", err)
	}
	var victim *serveChild
	for _, r := range f.replicas {
		if r.cmd.Process.Pid == holderPID(holder) {
			victim = r
		}
	}
	if victim == nil {
		t.Fatalf("lease holder %q is none of the replicas", holder)
	}
	killedAt := time.Now()
	phase.Add(1)
	victim.kill9()
	moved := waitUntil("the job lease moves from the killed "+victim.name, 30*time.Second, func() bool {
		h, fn, exp, err := leaseHolder(f.ownerDSN)
		return err == nil && h != holder && fn > fence && exp.After(time.Now())
	})
	t.Logf("killed %s (lease holder, fence %d); lease moved after %v", victim.name, fence, moved.Round(time.Millisecond))
	if moved > 15*time.Second {
		t.Errorf("lease moved after %v; issue 14 asks for 15 s", moved)
	}
	waitUntil("both terminals deliver without "+victim.name, time.Minute, func() bool { n := deliveredSince(killedAt); return n[0] > 0 && n[1] > 0 })

	// The database fails over: the primary dies (SIGKILL, its backends with
	// it) before the standby is promoted, as the runbook requires
	// (OPERATIONS.md), so the old primary can never take a write again.
	var alive []*serveChild
	for _, r := range f.replicas {
		if r.alive() {
			alive = append(alive, r)
		}
	}
	if len(alive) != 2 {
		t.Fatalf("%d replicas alive, want 2", len(alive))
	}
	faults := func() (n int32) {
		for _, ft := range terms {
			n += ft.faults.Load()
		}
		return n
	}
	faultsBefore := faults()
	phase.Add(1)
	f.pg.Primary.Kill()
	dbKilledAt := time.Now()
	// The operator (or the cluster manager) notices: every replica's
	// /readyz says no writable database.
	unready := waitUntil("every replica reports not ready without a writable database", 30*time.Second, func() bool {
		for _, r := range alive {
			if r.ready() {
				return false
			}
		}
		return true
	})
	// and promotes the standby only once a terminal's request has failed
	// on the lost database, so the failover interrupts issuances
	waitUntil("a terminal's request fails without a writable database", 30*time.Second, func() bool { return faults() > faultsBefore })
	if err := f.pg.Standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promotedAt := time.Now()
	promoted.Store(true)
	waitUntil("every surviving replica ready on the new primary", time.Minute, func() bool {
		for _, r := range alive {
			if !r.ready() {
				return false
			}
		}
		return true
	})
	readyAfter := time.Since(dbKilledAt)
	waitUntil("a surviving replica renews the job lease on the new primary", 30*time.Second, func() bool {
		h, _, exp, err := leaseHolder(f.ownerDSN)
		if err != nil || !exp.After(promotedAt.Add(leaseTTL)) { // renewed after the promotion
			return false
		}
		for _, r := range alive {
			if r.cmd.Process.Pid == holderPID(h) {
				return true
			}
		}
		return false
	})
	leaseRenewed := time.Since(promotedAt)
	waitUntil("both terminals deliver after the promotion", 2*time.Minute, func() bool { n := deliveredSince(promotedAt); return n[0] > 1 && n[1] > 1 })
	halt()
	var firstAfter time.Duration
	for _, r := range records {
		if r.delivered && !r.began.Before(promotedAt) && (firstAfter == 0 || r.at.Sub(dbKilledAt) < firstAfter) {
			firstAfter = r.at.Sub(dbKilledAt)
		}
	}
	t.Logf("primary killed; every replica not ready after %v; standby promoted after %v; every replica ready again %v after the kill; first issuance begun after the promotion delivered %v after the kill; job lease renewed on the new primary %v after the promotion",
		unready.Round(time.Millisecond), promotedAt.Sub(dbKilledAt).Round(time.Millisecond), readyAfter.Round(time.Millisecond), firstAfter.Round(time.Millisecond), leaseRenewed.Round(time.Millisecond))

	conn, err := pgx.Connect(ctx, f.ownerDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var port int
	if err := conn.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil || port != f.pg.Standby.Port {
		t.Fatalf("the multi-host DSN reaches port %d (%v), not the promoted standby's %d", port, err, f.pg.Standby.Port)
	}

	// Interrupted and lost issuances end revoked (reason 0) by the sweeper
	// of the lease holder once their deadline passes.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var pending int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM issuances WHERE state IN ('issuing', 'prepared')").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d issuances still pending: the sweeper did not run on the lease holder", pending)
		}
	}
	type dbRow struct {
		id, state    string
		reason       int
		wasDelivered bool
	}
	byReq := map[string]dbRow{}
	rows, err := conn.Query(ctx, "SELECT request_id, id, state, coalesce(revocation_reason, -1), delivered_at IS NOT NULL FROM issuances")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var req string
		var r dbRow
		if err := rows.Scan(&req, &r.id, &r.state, &r.reason, &r.wasDelivered); err != nil {
			t.Fatal(err)
		}
		if _, dup := byReq[req]; dup {
			t.Errorf("request %s issued twice", req)
		}
		if !(r.state == "delivered" || r.state == "revoked" && r.reason == 0 && !r.wasDelivered) {
			t.Errorf("issuance %s: %s reason %d delivered %v; want delivered, or revoked with reason 0 before delivery", r.id, r.state, r.reason, r.wasDelivered)
		}
		byReq[req] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var deliveredN, revokedN, lostN int
	for _, o := range records {
		r, ok := byReq[o.reqID]
		switch {
		case o.delivered && (!ok || r.state != "delivered" || r.id != o.issuance):
			t.Errorf("%s: the terminal saw %s delivered, the database has %+v (present %v)", o.reqID, o.issuance, r, ok)
		case !o.delivered && ok && !(r.state == "revoked" && r.reason == 0):
			t.Errorf("%s: not delivered to the card (%v), the database has %s reason %d, want revoked reason 0", o.reqID, o.err, r.state, r.reason)
		case o.issuance != "" && !ok:
			t.Errorf("%s: prepared as %s but lost from the database", o.reqID, o.issuance)
		}
		if o.lost {
			lostN++
			if o.issuance == "" {
				t.Errorf("%s: the lost card's issuance was not prepared: %v", o.reqID, o.err)
			}
		}
		if o.delivered {
			deliveredN++
		} else if ok {
			revokedN++
		}
	}
	if lostN != 2 {
		t.Errorf("%d lost cards, want 2 (terminal B's first, and its first after the promotion)", lostN)
	}
	if len(byReq) > len(records) {
		t.Errorf("%d issuances in the database, the terminals made %d", len(byReq), len(records))
	}
	var dup int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT person_hash, cert_type FROM issuances WHERE state IN ('delivered', 'held')
		GROUP BY person_hash, cert_type HAVING count(*) > 1) d`).Scan(&dup); err != nil || dup != 0 {
		t.Errorf("%d persons with two valid certificates of a type (%v)", dup, err)
	}
	t.Logf("%d issuances: %d delivered, %d revoked with reason 0 (%d lost cards), %d refused before beginning", len(records), deliveredN, revokedN, lostN, len(records)-deliveredN-revokedN)

	// One truth: a CRL published by a local command is the newest on
	// every replica; the ARL too.
	f.cmd(t, "crl", "publish", "--now", "--data-dir", f.data, "--dev", "--database", f.dsn)
	var newest []byte
	if err := conn.QueryRow(ctx, "SELECT der FROM crl_archive WHERE series = 'signature' ORDER BY number DESC LIMIT 1").Scan(&newest); err != nil {
		t.Fatalf("newest signature CRL in the database archive: %v", err)
	}
	vc := f.verifierClient(t)
	pub := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: f.pool}}}
	var arl []byte
	for _, r := range alive {
		code, body, err := fleetGet(vc, r.verif+"/crl/signature")
		if err != nil || code != http.StatusOK || !bytes.Equal(body, newest) {
			t.Errorf("%s serves CRL %d (%v, %d bytes), not the newest one in the database (%d bytes)", r.name, code, err, len(body), len(newest))
		}
		code, body, err = fleetGet(pub, r.public+"/arl/signature")
		if err != nil || code != http.StatusOK || (arl != nil && !bytes.Equal(body, arl)) {
			t.Errorf("%s serves ARL %d (%v): not the same as the other replica's", r.name, code, err)
		}
		arl = body
	}

	// OCSP on every replica agrees with the database, for both CAs:
	// "good" exactly for the delivered certificates; each CA's answers
	// signed by the one responder key recorded for the fleet.
	issuers := map[string]*x509.Certificate{}
	for _, ca := range []string{"signature", "user-auth"} {
		issuers[ca] = readPEMCert(t, filepath.Join(f.data, "ceremony", ca+"-ca.crt.pem"))
		var responders int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM ocsp_responders WHERE ca = $1", ca).Scan(&responders); err != nil || responders != 1 {
			t.Errorf("%d %s OCSP responders recorded (%v), want 1 made once for the fleet", responders, ca, err)
		}
	}
	issuer := issuers["signature"]
	responder := map[string][]byte{}
	var target *x509.Certificate // a delivered signature certificate, for the hold below
	var targetResident string
	var checked int
	for _, o := range records {
		c := o.cert
		if c == nil {
			continue
		}
		ca := "user-auth"
		if c.CheckSignatureFrom(issuer) == nil {
			ca = "signature"
		}
		var state string
		if err := conn.QueryRow(ctx, "SELECT state FROM issuances WHERE serial = $1", c.SerialNumber.Text(16)).Scan(&state); err != nil {
			t.Fatalf("%s: %v", o.reqID, err)
		}
		if state == "delivered" && ca == "signature" {
			target, targetResident = c, o.resident
		}
		for _, r := range alive {
			resp, err := fleetOCSP(vc, r.verif+"/ocsp/"+ca, c, issuers[ca])
			if err != nil || (state == "delivered") != (resp.Status == xocsp.Good) {
				t.Errorf("%s %s OCSP for %x: %+v %v; database: %s", r.name, ca, c.SerialNumber, resp, err, state)
				continue
			}
			checked++
			if responder[ca] == nil {
				responder[ca] = resp.Certificate.Raw
			} else if !bytes.Equal(responder[ca], resp.Certificate.Raw) {
				t.Errorf("%s signs %s OCSP with another responder certificate than the other replicas", r.name, ca)
			}
		}
	}
	t.Logf("%d OCSP answers agree with the database", checked)
	if target == nil {
		t.Fatal("no delivered signature certificate to hold")
	}

	// TS Art. 36: `ca-server hold` with the fleet running; then a counter
	// release; each change measured until every replica answers it.
	changes := 10
	if s := os.Getenv("MADOGUCHI_FLEET_CHANGES"); s != "" {
		if changes, err = strconv.Atoi(s); err != nil || changes < 2 {
			t.Fatalf("MADOGUCHI_FLEET_CHANGES=%q", s)
		}
	}
	var lat []time.Duration
	for n := range changes {
		for _, r := range alive { // every replica has the current answer cached
			if _, err := fleetOCSP(vc, r.verif+"/ocsp/signature", target, issuer); err != nil {
				t.Fatal(err)
			}
		}
		hold := n%2 == 0
		start := time.Now()
		if hold {
			if out, err := runCeremonyCmd(t, "hold", "--data-dir", f.data, "--database", f.dsn, "--serial", target.SerialNumber.Text(16), "--operator", "callcentre-1",
				"--note", fmt.Sprintf("phone report %d", n)); err != nil {
				t.Fatalf("hold: %v\n%s", err, out)
			}
		} else if err := terms[0].step("release", func(c *raclient.Client) error {
			_, err := c.ReleaseHold(ctx, "op-1", target.SerialNumber.Text(16), wire.ReleaseHoldRequest{RequestID: fmt.Sprintf("rel-%d", n), CertType: "sign",
				IdentityDocument: "my number card", ResidentCode: targetResident})
			return err
		}); err != nil {
			t.Fatalf("release: %v", err)
		}
		var worst time.Duration
		for _, r := range alive {
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				resp, err := fleetOCSP(vc, r.verif+"/ocsp/signature", target, issuer)
				if err == nil && (hold && resp.Status == xocsp.Revoked && resp.RevocationReason == xocsp.CertificateHold || !hold && resp.Status == xocsp.Good) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("change %d (hold %v): %s still answers %+v (%v) after 5 s", n, hold, r.name, resp, err)
				}
			}
			worst = max(worst, time.Since(start))
		}
		lat = append(lat, worst)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("status change → every replica's OCSP answers it (%d changes: local hold and counter release): p50 %v, p99 %v, max %v",
		len(lat), pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))

	t.Logf("audit verify: %s", strings.TrimSpace(f.cmd(t, "audit", "verify", "--data-dir", f.data, "--database", f.dsn)))
	for _, r := range f.replicas {
		if s := r.stderr.String(); strings.Contains(s, "panic") || strings.Contains(s, "DATA RACE") {
			t.Errorf("%s:\n%s", r.name, s)
		}
	}
}
