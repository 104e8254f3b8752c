package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"madoguchi/ca-server/hsm"
	"madoguchi/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for the serve goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveWithLog is servedAt that also hands back serve's stderr (the log).
func serveWithLog(t *testing.T, args ...string) (map[string]string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	old := serveContext
	serveContext = func() context.Context { return ctx }
	stdout := &lineWriter{lines: make(chan string, 64)}
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(append([]string{"serve"}, args...), stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exit %d:\n%s", code, stderr.String())
		}
		serveContext = old
	})
	addrs := map[string]string{}
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line := <-stdout.lines:
			for _, what := range []string{"listening on ", "metrics on "} {
				if _, rest, ok := strings.Cut(line, what); ok {
					addrs[strings.TrimSuffix(what, " on ")] = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(strings.Fields(rest)[0], "https://"), "http://"), "/metrics")
				}
			}
			if addrs["listening"] != "" {
				return addrs, stderr
			}
		case code := <-done:
			done <- code // for the cleanup, which waits for it
			t.Fatalf("serve exited with %d before listening:\n%s", code, stderr.String())
		case <-timeout:
			t.Fatal("serve did not start listening")
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// closeAllSessionsFromOutside closes every session of every token of the
// SoftHSM module loaded in this process, through a second handle on the
// module (C_CloseAllSessions), as an HSM reboot or another client does: the
// pool of the running serve never sees it coming.
func closeAllSessionsFromOutside(t *testing.T) {
	t.Helper()
	p := pkcs11.New(hsm.DefaultModulePath)
	if p == nil {
		t.Fatal("cannot load the softhsm module")
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil && err != pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if err := p.CloseAllSessions(s); err != nil {
			t.Fatal(err)
		}
	}
}

// The operable serve (issue 14): a config file sets flags and the command
// line wins over it; logs are JSON lines without personal data; /livez and
// /readyz on the metrics listener; readiness turns false while the database
// cannot take writes and true again after; the HSM's sessions closed from
// outside under the running serve heal and the next prepare succeeds
// without a restart (on the old code: CKR_SESSION_HANDLE_INVALID until a
// restart, see hsm TestSessionsClosedFromOutsideHeal); /metrics, parsed
// with the Prometheus text parser, has the named series.
func TestServeOperableHealthMetricsAndHSMHeal(t *testing.T) {
	testenv.SoftHSM(t)
	ctx := context.Background()
	data, stock, tok := devCA(t, 2)

	// listen = port 1 in the file would fail to bind: the flag must win.
	conf := filepath.Join(t.TempDir(), "serve.toml")
	os.WriteFile(conf, []byte(`# serve settings
log-format = "json"
listen = "127.0.0.1:1"
verifier-listen = "127.0.0.1:0"
public-listen = "127.0.0.1:0"
metrics-listen = "127.0.0.1:0"
key-pool = 2
status-every = "1m"
`), 0o600)
	addrs, logs := serveWithLog(t, "--data-dir", data, "--dev", "--config", conf, "--listen", "127.0.0.1:0")
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String()) // serve's own account of a failed request
		}
	})
	metrics := "http://" + addrs["metrics"]

	terminalCert, pool := enrolTerminal(t, data, addrs["listening"], tok)
	ct := counterAt(t, addrs["listening"], terminalCert, pool, stock)
	ct.issue(t, 0, "sign", "11111111111", "ops-1")

	if code, body := httpGet(t, metrics+"/livez"); code != 200 {
		t.Fatalf("/livez: %d %s", code, body)
	}
	if code, body := httpGet(t, metrics+"/readyz"); code != 200 || !strings.Contains(body, "hsm: ok") || !strings.Contains(body, "database: ok") {
		t.Fatalf("/readyz: %d %s", code, body)
	}

	// HSM: every session closed from outside; the next prepare succeeds.
	closeAllSessionsFromOutside(t)
	ct.issue(t, 1, "sign", "22222222222", "ops-2")
	if code, body := httpGet(t, metrics+"/readyz"); code != 200 {
		t.Fatalf("/readyz after the HSM healed: %d %s", code, body)
	}

	// Database: another writer holds the SQLite write lock; readiness
	// turns false, and true again once it lets go.
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(data, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	code, body := httpGet(t, metrics+"/readyz")
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "database:") || strings.Contains(body, "database: ok") {
		t.Fatalf("/readyz with the database locked: %d %s", code, body)
	}
	if code, body := httpGet(t, metrics+"/readyz"); code != 200 {
		t.Fatalf("/readyz after the database came back: %d %s", code, body)
	}

	// The named series, parsed with the Prometheus text parser.
	_, text := httpGet(t, metrics+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range []string{"madoguchi_requests_total", "madoguchi_request_duration_seconds", "madoguchi_hsm_operation_duration_seconds",
		"madoguchi_hsm_session_faults_total", "madoguchi_key_pool_ready", "madoguchi_crl_newest_age_seconds",
		"madoguchi_audit_uncheckpointed_records", "madoguchi_ready", "madoguchi_lease_holder", "madoguchi_http_requests_refused_total"} {
		if fams[name] == nil {
			if name == "madoguchi_http_requests_refused_total" {
				continue // only after a refusal
			}
			t.Errorf("/metrics has no %s", name)
		}
	}
	if f := fams["madoguchi_hsm_session_faults_total"]; f != nil && f.Metric[0].GetCounter().GetValue() < 1 {
		t.Errorf("no HSM session fault counted")
	}
	prepared := false
	if f := fams["madoguchi_requests_total"]; f != nil {
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["family"] == "issuance" && labels["op"] == "prepare" && labels["code"] == "200" && m.GetCounter().GetValue() == 2 {
				prepared = true
			}
		}
	}
	if !prepared {
		t.Errorf("madoguchi_requests_total does not count the 2 prepares:\n%s", text)
	}

	// JSON log lines that parse, without personal data.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no log lines")
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "!!") {
			continue // the --dev banner, written for the console; never in production
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("log line is not JSON: %q", l)
		}
		for _, secret := range []string{"11111111111", "22222222222", "窓口", "霞が関"} {
			if strings.Contains(l, secret) {
				t.Errorf("log line holds personal data %q: %s", secret, l)
			}
		}
	}
}

// Config file and flags: the file sets what the command line does not; the
// command line wins; an unknown key or a table is refused.
func TestServeConfigFilePrecedence(t *testing.T) {
	newFS := func() (*flag.FlagSet, *string, *int, *listFlag) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var shares listFlag
		fs.Var(&shares, "share", "")
		fs.String("config", "", "")
		return fs, fs.String("listen", "127.0.0.1:8443", ""), fs.Int("sessions", 2, ""), &shares
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("listen = \"127.0.0.1:9000\"\nsessions = 8\nshare = [\"file:/a\", \"file:/b\"]\n"), 0o600)
	fs, listen, sessions, shares := newFS()
	if err := fs.Parse([]string{"--sessions", "4"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, good); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:9000" || *sessions != 4 || len(*shares) != 2 {
		t.Errorf("listen %q sessions %d shares %v: want the file's listen and shares, the flag's sessions", *listen, *sessions, *shares)
	}
	for body, want := range map[string]string{
		"lisen = \"x\"\n":              "unknown setting",
		"[listen]\nx = 1\n":            "table",
		"sessions = \"many\"\n":        "sessions",
		"listen = \"a\"\nlisten = 2\n": "",
	} {
		p := filepath.Join(dir, "bad.toml")
		os.WriteFile(p, []byte(body), 0o600)
		fs, _, _, _ := newFS()
		fs.Parse(nil)
		err := applyConfigFile(fs, p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: %v, want an error with %q", body, err, want)
		}
	}
}

// The example settings file of deploy/ names only real serve flags with
// values they accept: serve reads it and stops at the first check after
// it (here --sessions 0, given on the command line, which wins).
func TestDeployExampleConfigIsValid(t *testing.T) {
	code, out := runExit("serve", "--config", filepath.Join("..", "deploy", "ca-server.toml"), "--sessions", "0")
	if code != 2 || !strings.Contains(out, "--sessions 1..64") {
		t.Fatalf("serve with the example config: exit %d:\n%s", code, out)
	}
}
