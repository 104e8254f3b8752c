package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// The soak (issue 15): `ca-server serve` as a child process (real SoftHSM;
// SQLite, or PostgreSQL) under mixed load — issuance from two enrolled
// terminals over mutual TLS (the card side the in-process virtual card, as
// the fleet tests), a share of the terminals' certificates revoked at the
// counter during the run and a share never confirmed (the card lost: the
// sweeper revokes them after --deadline), OCSP from a registered verifier
// for good, revoked, never-delivered and unknown serials, the CRLs fetched
// and checked against the revocations, and serve publishing a CRL every
// minute (--crl-interval 1m). The serve process is sampled every few
// seconds: resident memory (/proc/PID/status VmRSS), goroutines
// (go_goroutines on its /metrics), open files (/proc/PID/fd).
//
// By default (CI) the smoke version runs: 20 s of load, then the load stops
// and the clients close their connections; it asserts that no answer was an
// error and that goroutines and open files come back to the idle figures
// (counts with a generous margin, never timings). The long run is
// scripts/soak.sh (MADOGUCHI_SOAK_DURATION=10m, MADOGUCHI_SOAK_DB=postgres
// for PostgreSQL); it also asserts the verdict "flat" (soakFlat).
const (
	soakDurationEnv = "MADOGUCHI_SOAK_DURATION" // e.g. 10m; unset: the 20 s smoke
	soakDBEnv       = "MADOGUCHI_SOAK_DB"       // "postgres"; unset: SQLite
	soakReportEnv   = "MADOGUCHI_SOAK_REPORT"   // file the Markdown report is written to
)

// soakConfig is one soak's shape.
type soakConfig struct {
	load       time.Duration // mixed load
	sampleEach time.Duration // process sample period
	pace       time.Duration // each terminal starts an issuance at most this often
	ocspPace   time.Duration // the verifier's OCSP request period
	crlEach    time.Duration // the verifier fetches both CRLs this often
	crlEvery   time.Duration // serve --crl-interval: it publishes CRLs this often
	statusTick time.Duration // serve --status-every (and --sweep-every)
	postgres   bool
}

func TestSoakMixedLoad(t *testing.T) {
	cfg := soakConfig{load: 20 * time.Second, sampleEach: 2 * time.Second, pace: 500 * time.Millisecond, ocspPace: 50 * time.Millisecond, crlEach: 3 * time.Second,
		crlEvery: 10 * time.Second, statusTick: 2 * time.Second}
	long := false
	if v := os.Getenv(soakDurationEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			t.Fatalf("%s=%q: a duration of at least 1m", soakDurationEnv, v)
		}
		cfg.load, cfg.sampleEach, cfg.pace, cfg.crlEach, long = d, 10*time.Second, time.Second, 15*time.Second, true
		cfg.crlEvery, cfg.statusTick = time.Minute, 10*time.Second
	}
	cfg.postgres = os.Getenv(soakDBEnv) == "postgres"
	r := runSoak(t, cfg)
	report := r.markdown(cfg)
	t.Log("\n" + report)
	if p := os.Getenv(soakReportEnv); p != "" {
		if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	if errs := r.counts.errors(); len(errs) > 0 {
		t.Errorf("error answers under load: %s", strings.Join(errs, "; "))
	}
	// the load must have been mixed, or the test proves nothing
	for _, k := range []string{"issuance/delivered", "issuance/lost-card", "revoke/ok", "ocsp/good", "ocsp/revoked", "ocsp/unauthorized", "crl/ok"} {
		kind, st, _ := strings.Cut(k, "/")
		if r.counts.get(kind, st) == 0 {
			t.Errorf("no %s answer during the soak", k)
		}
	}
	if r.counts.get("ocsp", "unknown") == 0 && r.counts.get("ocsp", "revoked-reason-0") == 0 {
		t.Error("no OCSP answer for a never-delivered certificate")
	}
	if r.crlsPublished < 1 {
		t.Errorf("serve published %d CRLs of the signature CA during the soak, want at least one", r.crlsPublished)
	}
	// after the load: no goroutine or open file left behind (counts)
	if g := r.settled.goroutines - r.idle.goroutines; g > soakGoroutineMargin {
		t.Errorf("goroutines: %d idle before the load, %d after it stopped and settled (margin %d): leaked", r.idle.goroutines, r.settled.goroutines, soakGoroutineMargin)
	}
	if f := r.settled.fds - r.idle.fds; f > soakFDMargin {
		t.Errorf("open files: %d idle before the load, %d after it stopped and settled (margin %d): leaked", r.idle.fds, r.settled.fds, soakFDMargin)
	}
	if long {
		for _, m := range soakMetrics {
			if v := soakFlat(r.samples, m, r.warmEnd); !v.flat {
				t.Errorf("%s not flat: %s", m.name, v.why)
			}
		}
	}
}

// Margins of the settle check: the idle serve and the settled one may
// differ by a few goroutines of the key pool or of a connection the
// scraper has not closed yet; a leak per request would be hundreds.
const (
	soakGoroutineMargin = 25
	soakFDMargin        = 10
)

// soakSample is one sample of the serve process.
type soakSample struct {
	at         time.Duration // since the load started (negative: before)
	rssKiB     int64
	goroutines int64
	fds        int64
	heapKiB    int64 // go_memstats_heap_inuse_bytes: the heap, without what the runtime keeps from the OS
}

// soakProcess samples the serve process pid and its /metrics.
type soakProcess struct {
	pid     int
	metrics string // http://host:port
	hc      *http.Client
}

func (p soakProcess) sample(at time.Duration) (soakSample, error) {
	s := soakSample{at: at}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return s, err
	}
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			s.rssKiB, err = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return s, fmt.Errorf("VmRSS %q: %v", v, err)
			}
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
	if err != nil {
		return s, err
	}
	s.fds = int64(len(fds))
	resp, err := p.hc.Get(p.metrics + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return s, fmt.Errorf("parse /metrics: %v", err)
	}
	g := fams["go_goroutines"]
	if g == nil || len(g.Metric) != 1 {
		return s, errors.New("/metrics has no go_goroutines series")
	}
	s.goroutines = int64(g.Metric[0].GetGauge().GetValue())
	h := fams["go_memstats_heap_inuse_bytes"]
	if h == nil || len(h.Metric) != 1 {
		return s, errors.New("/metrics has no go_memstats_heap_inuse_bytes series")
	}
	s.heapKiB = int64(h.Metric[0].GetGauge().GetValue()) / 1024
	return s, nil
}

// soakCounts counts answers by kind (issuance step, revoke, ocsp, crl) and
// status ("ok", an OCSP status, or "error: …" / "mismatch: …").
type soakCounts struct {
	mu sync.Mutex
	m  map[string]map[string]int
}

func (c *soakCounts) add(kind, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]map[string]int{}
	}
	if c.m[kind] == nil {
		c.m[kind] = map[string]int{}
	}
	c.m[kind][status]++
}

func (c *soakCounts) get(kind, status string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[kind][status]
}

// errors lists the statuses that are errors: every "error…" and
// "mismatch…" with its count.
func (c *soakCounts) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, sts := range c.m {
		for st, n := range sts {
			if strings.HasPrefix(st, "error") || strings.HasPrefix(st, "mismatch") {
				out = append(out, fmt.Sprintf("%s %s ×%d", k, st, n))
			}
		}
	}
	sort.Strings(out)
	return out
}

// soakErr names an error answer for the counts: the API's error code when
// there is one.
func soakErr(err error) string {
	if code := wire.CodeOf(err); code != "" {
		return "error: " + string(code)
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return "error: " + s
}

// soakCert is a certificate the verifier asks about, with the status the
// CA must answer.
type soakCert struct {
	cert   *x509.Certificate
	issuer *x509.Certificate
	typ    string // "sign" or "auth"
	person string
	// lost: prepared, never confirmed: "unknown" until the sweeper revokes
	// it with reason 0 at --deadline, "revoked" (reason 0) after.
	lost    bool
	revoked time.Time // zero: good
}

// soakBook is what the terminals issued: good, revoked and lost
// certificates. A verifier request holds the read lock from its choice to
// its check, so a revocation (which takes the write lock to move a
// certificate out of good) never races an answer being checked.
type soakBook struct {
	mu      sync.RWMutex
	good    []*soakCert
	revoked []*soakCert
	lost    []*soakCert
}

// soakResult is what a soak measured.
type soakResult struct {
	counts        *soakCounts
	samples       []soakSample
	warmEnd       time.Duration // end of the warm-up (samples from here on are judged)
	idle, settled soakSample
	idleFDs       string // what the open files are, idle and settled
	settledFDs    string
	latencies     []time.Duration // delivered issuances, channel to confirm
	crlsPublished int             // CRL numbers of the signature CA seen advancing
	started       time.Time
	nproc         int
	loadBefore    string
	loadAfter     string
	db            string
}

func runSoak(t *testing.T, cfg soakConfig) *soakResult {
	testenv.SoftHSM(t)
	res := &soakResult{counts: &soakCounts{}, db: "SQLite", nproc: runtime.NumCPU(), loadBefore: loadAvg()}
	var storeFlags []string
	if cfg.postgres {
		pg := testenv.PostgresWith(t, testenv.PostgresOptions{Durable: true})
		storeFlags = []string{"--database", pg.DSN}
		res.db = "PostgreSQL"
	}
	perTerminal := int(cfg.load/cfg.pace) + 2
	data, stock, tok1 := devCA(t, 2*perTerminal+4, storeFlags...)
	tok2 := strings.TrimSpace(runCmd(t, append([]string{"terminal-token", "--data-dir", data, "--municipality", "131016"}, storeFlags...)...))
	vdir := t.TempDir()
	runCmd(t, append([]string{"verifier-add", "--data-dir", data, "--dev", "--name", "relying-party-1", "--out-dir", vdir}, storeFlags...)...)
	// Lost cards are revoked by the sweeper during a long soak (--deadline).
	// The OCSP cache is bounded in bytes and the default (64 MiB, ~30,000
	// answers) would still be filling at the end: a bounded structure
	// growing to its bound is not a leak, but it would look like one. At
	// 256 KiB (~110 answers) it is full within the warm-up and evicts for
	// the rest of the run, so the soak also shows eviction keeps it flat.
	deadline := 2 * time.Minute
	serve := startServeChild(t, "serve", append([]string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--key-pool", "4",
		"--deadline", deadline.String(), "--ocsp-cache-bytes", "262144", "--sweep-every", cfg.statusTick.String(), "--status-every", cfg.statusTick.String(), "--crl-interval", cfg.crlEvery.String()}, storeFlags...)...)
	f := &fleetCA{data: data, stock: stock, replicas: []*serveChild{serve}}
	f.pool = x509.NewCertPool()
	f.pool.AddCert(readPEMCert(t, filepath.Join(data, "tls-ca.crt")))
	var err error
	if f.verifier, err = tls.LoadX509KeyPair(filepath.Join(vdir, "verifier.crt"), filepath.Join(vdir, "verifier.key")); err != nil {
		t.Fatal(err)
	}
	terminals := []*fleetTerminal{f.enrol(t, "terminal-A", tok1, 0), f.enrol(t, "terminal-B", tok2, 0)}
	issuers := map[string]*x509.Certificate{
		"sign": readPEMCert(t, filepath.Join(data, "ceremony", "signature-ca.crt.pem")),
		"auth": readPEMCert(t, filepath.Join(data, "ceremony", "user-auth-ca.crt.pem")),
	}
	proc := soakProcess{pid: serve.cmd.Process.Pid, metrics: serve.ops, hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}

	ctx := context.Background()
	book := &soakBook{}
	var nextCard atomic.Int64
	issue := func(ft *fleetTerminal, n int, confirm bool) (*soakCert, time.Duration, error) {
		k := int(nextCard.Add(1)) - 1
		if k >= len(stock) {
			return nil, 0, errors.New("soak: out of cards")
		}
		typ := []string{"sign", "auth"}[k%2]
		person := fmt.Sprintf("7%010d", k)
		step := func(what string, do func(c *raclient.Client) error) error {
			err := do(ft.clients[0])
			kind := what[strings.LastIndexByte(what, ' ')+1:]
			if err != nil {
				res.counts.add(kind, soakErr(err))
			} else {
				res.counts.add(kind, "ok")
			}
			return err
		}
		t0 := time.Now()
		o := fleetIssue(ctx, step, stock[k], typ, person, fmt.Sprintf("soak-%s-%d", ft.name, n), confirm)
		took := time.Since(t0)
		if o.err != nil {
			return nil, took, o.err
		}
		if confirm && !o.delivered {
			return nil, took, errors.New("not delivered")
		}
		return &soakCert{cert: o.cert, issuer: issuers[typ], typ: typ, person: person, lost: !confirm}, took, nil
	}

	// Warm-up before the idle sample: one issuance per terminal, so what is
	// built on first use (HSM sessions, caches, TLS session state) is there.
	for i, ft := range terminals {
		c, _, err := issue(ft, -1-i, true)
		if err != nil {
			t.Fatalf("warm-up issuance: %v", err)
		}
		book.good = append(book.good, c)
	}
	for _, ft := range terminals {
		for _, c := range ft.clients {
			c.Close()
		}
	}
	time.Sleep(2 * time.Second)
	if res.idle, err = proc.sample(0); err != nil {
		t.Fatalf("sample: %v", err)
	}
	res.samples = append(res.samples, res.idle)
	res.idleFDs = soakFDKinds(proc.pid)

	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.load)
	defer stopLoad()
	res.started = time.Now()
	var wg sync.WaitGroup
	var latMu sync.Mutex
	// terminals: an issuance every pace; every 4th delivered one revoked at
	// the counter, every 10th never confirmed (the card lost)
	for _, ft := range terminals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(cfg.pace)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-loadCtx.Done():
					return
				case <-tick.C:
				}
				lost := n%10 == 2 // early, so a short smoke under load has one too
				c, took, err := issue(ft, n, !lost)
				switch {
				case err != nil:
					res.counts.add("issuance", soakErr(err))
					continue
				case lost:
					res.counts.add("issuance", "lost-card")
					book.mu.Lock()
					book.lost = append(book.lost, c)
					book.mu.Unlock()
					continue
				}
				res.counts.add("issuance", "delivered")
				latMu.Lock()
				res.latencies = append(res.latencies, took)
				latMu.Unlock()
				if n%4 != 3 {
					book.mu.Lock()
					book.good = append(book.good, c)
					book.mu.Unlock()
					continue
				}
				serial := c.cert.SerialNumber.Text(16)
				ack, err := ft.clients[0].Revoke(ctx, "op-1", serial, wire.RevokeRequest{RequestID: "rv-" + serial, CertType: c.typ,
					Kind: "key-compromise", WrittenRequest: "form soak-" + serial, IdentityDocument: "my number card", ResidentCode: c.person})
				if err != nil {
					res.counts.add("revoke", soakErr(err))
					continue
				}
				if ack.Reason != 1 {
					res.counts.add("revoke", fmt.Sprintf("mismatch: reason %d, want 1", ack.Reason))
				} else {
					res.counts.add("revoke", "ok")
				}
				c.revoked = time.Now()
				book.mu.Lock()
				book.revoked = append(book.revoked, c)
				book.mu.Unlock()
			}
		}()
	}
	// the verifier: OCSP for good, revoked, never-delivered and unknown
	// serials; both CRLs every crlEach
	vc := f.verifierClient(t)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(cfg.ocspPace)
		defer tick.Stop()
		rng := mrand.New(mrand.NewPCG(1, 2))
		for n := 0; ; n++ {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			soakOCSP(vc, serve.verif, book, rng, n, issuers, res.counts)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(cfg.crlEach)
		defer tick.Stop()
		last := map[string]*big.Int{}
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			for _, ca := range []struct{ name, typ string }{{"signature", "sign"}, {"user-auth", "auth"}} {
				num := soakCRL(vc, serve.verif, ca.name, issuers[ca.typ], book, ca.typ, res.counts)
				if num != nil && last[ca.name] != nil && num.Cmp(last[ca.name]) > 0 && ca.name == "signature" {
					res.crlsPublished++
				}
				if num != nil {
					last[ca.name] = num
				}
			}
		}
	}()
	// the sampler
	for tick := time.NewTicker(cfg.sampleEach); ; {
		done := false
		select {
		case <-loadCtx.Done():
			done = true
		case <-tick.C:
		}
		if done {
			tick.Stop()
			break
		}
		s, err := proc.sample(time.Since(res.started))
		if err != nil {
			t.Errorf("sample: %v", err)
			continue
		}
		res.samples = append(res.samples, s)
	}
	wg.Wait()
	res.warmEnd = cfg.load / 5
	if end, err := proc.sample(time.Since(res.started)); err == nil {
		res.samples = append(res.samples, end)
	}
	// The load has stopped: the clients close their connections, serve's
	// goroutines and files for them end. Counts, polled up to a generous
	// bound: a leak never comes back.
	for _, ft := range terminals {
		for _, c := range ft.clients {
			c.Close()
		}
	}
	vc.CloseIdleConnections()
	for bound := time.Now().Add(60 * time.Second); ; time.Sleep(2 * time.Second) {
		s, err := proc.sample(time.Since(res.started))
		if err != nil {
			t.Fatalf("sample: %v", err)
		}
		res.settled = s
		if (s.goroutines-res.idle.goroutines <= soakGoroutineMargin && s.fds-res.idle.fds <= soakFDMargin) || time.Now().After(bound) {
			break
		}
	}
	res.settledFDs = soakFDKinds(proc.pid)
	res.loadAfter = loadAvg()
	if !serve.alive() {
		t.Errorf("serve exited during the soak:\n%s", tail(serve.stderr.String(), 3000))
	}
	return res
}

// soakOCSP sends one OCSP request as the verifier, in turn for a good, a
// revoked, a never-delivered and an unknown (random) serial, and counts the
// answer, or a mismatch with what the CA must answer.
func soakOCSP(vc *http.Client, base string, book *soakBook, rng *mrand.Rand, n int, issuers map[string]*x509.Certificate, counts *soakCounts) {
	book.mu.RLock()
	defer book.mu.RUnlock()
	var pick []*soakCert
	switch n % 4 {
	case 0, 1:
		pick = book.good
	case 2:
		pick = book.revoked
	case 3:
		pick = book.lost
	}
	var c *soakCert
	if len(pick) > 0 && n%8 != 7 {
		c = pick[rng.IntN(len(pick))]
	} else {
		// a serial the CA never saw: the responder answers "unauthorized"
		// without signing (ocsp package comment; RFC 5019 §2.2.3)
		typ := []string{"sign", "auth"}[n%2]
		serial := make([]byte, 16)
		rand.Read(serial)
		serial[0] &= 0x7f
		c = &soakCert{cert: &x509.Certificate{SerialNumber: new(big.Int).SetBytes(serial)}, issuer: issuers[typ], typ: typ}
		soakUnauthorized(vc, base, c, counts)
		return
	}
	ca := map[string]string{"sign": "signature", "auth": "user-auth"}[c.typ]
	r, err := fleetOCSP(vc, base+"/ocsp/"+ca, c.cert, c.issuer)
	if err != nil {
		counts.add("ocsp", soakErr(err))
		return
	}
	var got string
	switch {
	case r.Status == xocsp.Good:
		got = "good"
	case r.Status == xocsp.Unknown:
		got = "unknown"
	case r.Status == xocsp.Revoked && r.RevocationReason == xocsp.KeyCompromise:
		got = "revoked"
	case r.Status == xocsp.Revoked && r.RevocationReason == xocsp.Unspecified:
		got = "revoked-reason-0"
	default:
		got = fmt.Sprintf("status %d reason %d", r.Status, r.RevocationReason)
	}
	want := "good"
	switch {
	case c.lost:
		if got == "unknown" || got == "revoked-reason-0" {
			want = got
		} else {
			want = "unknown or revoked-reason-0"
		}
	case !c.revoked.IsZero():
		want = "revoked"
	}
	if got != want {
		counts.add("ocsp", "mismatch: "+got+", want "+want)
		return
	}
	counts.add("ocsp", got)
}

// soakUnauthorized asks about a serial the CA has no record of; the answer
// must be the unsigned "unauthorized" status.
func soakUnauthorized(vc *http.Client, base string, c *soakCert, counts *soakCounts) {
	ca := map[string]string{"sign": "signature", "auth": "user-auth"}[c.typ]
	_, err := fleetOCSP(vc, base+"/ocsp/"+ca, c.cert, c.issuer)
	var re xocsp.ResponseError
	switch {
	case errors.As(err, &re) && re.Status == xocsp.Unauthorized:
		counts.add("ocsp", "unauthorized")
	case err != nil:
		counts.add("ocsp", soakErr(err))
	default:
		counts.add("ocsp", "mismatch: a signed answer for a serial the CA never saw")
	}
}

// soakCRL fetches the newest CRL of ca, checks its signature and that
// every certificate revoked at the counter before its thisUpdate is listed,
// and returns its number.
func soakCRL(vc *http.Client, base, ca string, issuer *x509.Certificate, book *soakBook, typ string, counts *soakCounts) *big.Int {
	code, der, err := fleetGet(vc, base+"/crl/"+ca)
	if err != nil || code != http.StatusOK {
		counts.add("crl", soakErr(fmt.Errorf("GET /crl/%s: %d %v", ca, code, err)))
		return nil
	}
	l, err := x509.ParseRevocationList(der)
	if err == nil {
		err = l.CheckSignatureFrom(issuer)
	}
	if err != nil {
		counts.add("crl", soakErr(err))
		return nil
	}
	listed := map[string]bool{}
	for _, e := range l.RevokedCertificateEntries {
		listed[e.SerialNumber.Text(16)] = true
	}
	book.mu.RLock()
	defer book.mu.RUnlock()
	for _, c := range book.revoked {
		// revoked a second before thisUpdate (its one-second resolution)
		if c.typ == typ && c.revoked.Before(l.ThisUpdate.Add(-time.Second)) && !listed[c.cert.SerialNumber.Text(16)] {
			counts.add("crl", fmt.Sprintf("mismatch: %x revoked %s, missing from CRL %v of %s", c.cert.SerialNumber, c.revoked.Format(time.RFC3339), l.Number, l.ThisUpdate.Format(time.RFC3339)))
			return l.Number
		}
	}
	counts.add("crl", "ok")
	return l.Number
}

// soakMetric is one figure of the samples and its allowance.
type soakMetric struct {
	name, unit string
	get        func(soakSample) float64
	// rel and abs: the growth allowed is rel of the level after the
	// warm-up, or abs if larger (small counts: the goroutines of a
	// connection open at the sample).
	rel, abs float64
}

// The heap in use is allowed more: with GOGC=100 it saws between the live
// heap and twice that, and a sample lands anywhere on the tooth.
var soakMetrics = []soakMetric{
	{"resident memory", "MiB", func(s soakSample) float64 { return float64(s.rssKiB) / 1024 }, 0.10, 0},
	{"Go heap in use", "MiB", func(s soakSample) float64 { return float64(s.heapKiB) / 1024 }, 0.25, 4},
	{"goroutines", "", func(s soakSample) float64 { return float64(s.goroutines) }, 0.10, 10},
	{"open files", "", func(s soakSample) float64 { return float64(s.fds) }, 0.10, 5},
}

// soakVerdict is soakFlat's judgement.
type soakVerdict struct {
	flat                                  bool
	warm, end, last, max, growth, allowed float64
	why                                   string
}

// soakFlat is the rule of "flat". The samples after the warm-up (the first
// fifth of the load) are judged; "after warm-up" is the mean of their
// first quarter, "end" the mean of their last quarter (means, so one
// sample on a GC tooth does not decide). Flat: the least-squares line
// through them rises by no more than the allowance over the window, and
// the end is no more than the allowance above the level after warm-up; the
// allowance is m.rel of the level after warm-up, or m.abs if larger. A
// leak grows with the requests served, so it shows as a slope and a
// higher end; the scatter of a garbage-collected heap averages out.
func soakFlat(samples []soakSample, m soakMetric, warmEnd time.Duration) soakVerdict {
	var xs, ys []float64
	var v soakVerdict
	for _, s := range samples {
		y := m.get(s)
		v.max = max(v.max, y)
		if s.at >= warmEnd {
			xs, ys = append(xs, s.at.Seconds()), append(ys, y)
		}
	}
	if len(xs) < 4 {
		v.why = fmt.Sprintf("%d samples after the warm-up: too few to judge", len(xs))
		return v
	}
	mean := func(ys []float64) float64 {
		var t float64
		for _, y := range ys {
			t += y
		}
		return t / float64(len(ys))
	}
	q := len(ys) / 4
	v.warm, v.end, v.last = mean(ys[:q]), mean(ys[len(ys)-q:]), ys[len(ys)-1]
	mx, my := mean(xs), mean(ys)
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	v.growth = sxy / sxx * (xs[len(xs)-1] - xs[0])
	v.allowed = max(m.rel*v.warm, m.abs)
	v.flat = v.growth <= v.allowed && v.end-v.warm <= v.allowed
	v.why = fmt.Sprintf("after warm-up %.1f, end %.1f, fitted growth %.1f over the window, allowed %.1f", v.warm, v.end, v.growth, v.allowed)
	return v
}

// soakFDKinds says what a process's open files are: sockets, pipes,
// anonymous inodes, and files by name within the data directory.
func soakFDKinds(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	n := map[string]int{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(l, "socket:"):
			l = "socket"
		case strings.HasPrefix(l, "pipe:"):
			l = "pipe"
		case strings.HasPrefix(l, "anon_inode:"):
			l = strings.TrimPrefix(l, "anon_inode:")
		default:
			l = filepath.Base(l)
		}
		n[l]++
	}
	var out []string
	for k, c := range n {
		out = append(out, fmt.Sprintf("%s ×%d", k, c))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// markdown is the report of docs/RELIABILITY.md's Soak section.
func (r *soakResult) markdown(cfg soakConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Soak of %s on %s, %s, machine: %d CPUs, load average %s before, %s after.\n\n", cfg.load, r.db,
		r.started.UTC().Format("2006-01-02 15:04 MST"), r.nproc, r.loadBefore, r.loadAfter)
	fmt.Fprintf(&b, "| figure | idle before | after warm-up (%s) | end of load | last sample | max | settled after load | fitted growth after warm-up (allowed) | verdict |\n", r.warmEnd)
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range soakMetrics {
		v := soakFlat(r.samples, m, r.warmEnd)
		verdict := "flat"
		if !v.flat {
			verdict = "NOT flat"
		}
		unit := ""
		if m.unit != "" {
			unit = " (" + m.unit + ")"
		}
		fmt.Fprintf(&b, "| %s%s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %+.1f (%.1f) | %s |\n", m.name, unit, m.get(r.idle), v.warm, v.end, v.last, v.max, m.get(r.settled), v.growth, v.allowed, verdict)
	}
	b.WriteString("\n| requests | status | count |\n|---|---|---|\n")
	r.counts.mu.Lock()
	kinds := make([]string, 0, len(r.counts.m))
	for k := range r.counts.m {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		sts := make([]string, 0, len(r.counts.m[k]))
		for st := range r.counts.m[k] {
			sts = append(sts, st)
		}
		sort.Strings(sts)
		for _, st := range sts {
			fmt.Fprintf(&b, "| %s | %s | %d |\n", k, st, r.counts.m[k][st])
		}
	}
	r.counts.mu.Unlock()
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[max(0, min(int(p*float64(len(lat))+0.5)-1, len(lat)-1))].Round(time.Millisecond)
	}
	fmt.Fprintf(&b, "\nOpen files idle: %s.\nOpen files settled: %s.\n", r.idleFDs, r.settledFDs)
	fmt.Fprintf(&b, "\nIssuance (channel, prepare, card script, confirm), %d delivered: p50 %v, p95 %v, max %v. CRLs of the signature CA seen advancing: %d.\n",
		len(lat), pct(0.5), pct(0.95), pct(1), r.crlsPublished)
	b.WriteString("\nSamples (s since the load started: RSS MiB, heap in use MiB, goroutines, open files):")
	for _, s := range r.samples {
		fmt.Fprintf(&b, " %.0f: %.1f/%.1f/%d/%d;", s.at.Seconds(), float64(s.rssKiB)/1024, float64(s.heapKiB)/1024, s.goroutines, s.fds)
	}
	b.WriteString("\n")
	return b.String()
}
