package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// lineWriter hands each complete line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		select {
		case w.lines <- strings.TrimSpace(line):
		default:
		}
	}
}

func runCmd(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("ca-server %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}

// startServe runs `ca-server serve` in this process and returns its base URL;
// the server stops at cleanup.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	// The status listeners default to fixed ports (8444, 8445); test binaries of several
	// packages run at once, so every test server asks for free ports instead.
	for _, f := range []string{"--verifier-listen", "--public-listen", "--metrics-listen"} {
		if !slices.Contains(args, f) {
			args = append(args, f, "127.0.0.1:0")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	old := serveContext
	serveContext = func() context.Context { return ctx }
	stdout := &lineWriter{lines: make(chan string, 16)}
	var stderr bytes.Buffer
	var mu sync.Mutex
	// exited is closed when serve returns; code holds its exit status. A closed channel can
	// be waited on both by the start-up loop and by the cleanup without one starving the other.
	exited := make(chan struct{})
	var code int
	go func() {
		defer close(exited)
		c := run(append([]string{"serve"}, args...), stdout, &stderr)
		mu.Lock()
		code = c
		mu.Unlock()
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		mu.Lock()
		defer mu.Unlock()
		if code != 0 {
			t.Errorf("serve exit %d:\n%s", code, stderr.String())
		}
		serveContext = old
	})
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line := <-stdout.lines:
			if _, rest, ok := strings.Cut(line, "listening on "); ok {
				return strings.TrimPrefix(strings.Fields(rest)[0], "https://")
			}
		case <-exited:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("serve exited with %d before listening:\n%s", code, stderr.String())
		case <-timeout:
			t.Fatal("serve did not start listening")
		}
	}
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s is not PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServeIssuesCertificatesEndToEnd: `ceremony-init --dev`, `card-batch`,
// `terminal-token`, then `serve --dev` activates the CA keys in SoftHSM and
// issues both certificate types to a virtual card made from the batch,
// through a terminal enrolled over mutual TLS; openssl verifies each
// certificate against the CA certificate the ceremony exported.
func TestServeIssuesCertificatesEndToEnd(t *testing.T) {
	data := t.TempDir()
	serveIssuesBothCertificates(t, data)
}

// TestServeIssuesCertificatesEndToEndPostgres: the same with the store in a
// real PostgreSQL server (serve --database postgres://…): the terminal's
// token, its enrolment and both issuances land there and not in a SQLite
// file, and the audit backup of a PostgreSQL store verifies on its own.
func TestServeIssuesCertificatesEndToEndPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	data := t.TempDir()
	serveIssuesBothCertificates(t, data, "--database", pg.DSN)

	if _, err := os.Stat(filepath.Join(data, "ca.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ca.db in the data dir with --database postgres: %v", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var terminals, delivered int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM terminals), (SELECT count(*) FROM issuances WHERE state = 'delivered')").
		Scan(&terminals, &delivered); err != nil || terminals != 1 || delivered != 2 {
		t.Fatalf("PostgreSQL holds %d terminals and %d delivered certificates (%v), want 1 and 2", terminals, delivered, err)
	}
	bdir := t.TempDir()
	out := runCmd(t, "audit", "backup", "--data-dir", data, "--database", pg.DSN, "--to", bdir, "--operator", "auditor-1")
	if !strings.Contains(out, "verified") {
		t.Fatalf("audit backup: %s", out)
	}
	files, _ := filepath.Glob(filepath.Join(bdir, "audit-*.db"))
	if len(files) != 1 {
		t.Fatalf("backups %v", files)
	}
	runCmd(t, "audit", "verify", "--data-dir", data, "--backup", files[0])
	runCmd(t, "audit", "verify", "--data-dir", data, "--database", pg.DSN)
}

// serveIssuesBothCertificates sets up a dev CA in data, starts serve with
// the extra store flags (none: the SQLite file in data), enrols a terminal
// and issues both certificates to a virtual card through the API.
func serveIssuesBothCertificates(t *testing.T, data string, storeFlags ...string) {
	testenv.SoftHSM(t) // module present; SOFTHSM2_CONF private to this test
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	batch := filepath.Join(t.TempDir(), "batch.txt")
	runCmd(t, "card-batch", "--data", data, "--dev", "--count", "1", "--out", batch)
	tok := strings.TrimSpace(runCmd(t, append([]string{"terminal-token", "--data-dir", data, "--municipality", "131016"}, storeFlags...)...))

	base := startServe(t, append([]string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--key-pool", "1"}, storeFlags...)...)

	ctx := context.Background()
	pool := x509.NewCertPool()
	pool.AddCert(readPEMCert(t, filepath.Join(data, "tls-ca.crt")))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: "https://" + base, RootCAs: pool, Token: tok, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	tc, _ := raclient.TLSCertificate(enr, key)
	client, err := raclient.New(raclient.Config{BaseURL: "https://" + base, Certificate: tc, RootCAs: pool, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	bf, err := os.Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	stock, err := vcard.ParseKeyBatch(bf)
	bf.Close()
	if err != nil || len(stock) != 1 {
		t.Fatalf("batch: %v (%d cards)", err, len(stock))
	}
	vc, err := vcard.New(vcard.Config{Serial: stock[0].Serial, Keys: stock[0].Keys})
	if err != nil {
		t.Fatal(err)
	}
	card := cardio.New(vcard.Insert(vc))
	serial := strings.ToLower(strings.TrimSpace(strings.Fields(readFirstLine(t, batch))[0]))
	app := wire.Applicant{ResidentCode: "98765432109", Name: "𠮷野 花子", BirthDate: "1985-02-28", Sex: "2",
		Address: "大阪府大阪市北区中之島一丁目3番20号", CardExpiry: "2034-02-28"}
	for _, typ := range []string{"sign", "auth"} {
		ch, err := client.OpenChannel(ctx, "op-1")
		if err != nil {
			t.Fatal(err)
		}
		iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
		if err != nil {
			t.Fatal(err)
		}
		prep, err := client.Prepare(ctx, "op-1", wire.PrepareRequest{RequestID: "r-" + typ, ChannelID: ch.ChannelID, CardSerial: serial,
			InitUpdateResponse: iu, CertType: typ, Applicant: app})
		if err != nil {
			t.Fatalf("prepare %s: %v", typ, err)
		}
		responses, err := card.RunScript(ctx, prep.Script)
		if err != nil {
			t.Fatal(err)
		}
		st, err := client.Confirm(ctx, "op-1", prep.IssuanceID, wire.ConfirmRequest{RequestID: "c-" + typ, CardResponses: responses})
		if err != nil || st.State != "delivered" {
			t.Fatalf("confirm %s: %v %+v", typ, err, st)
		}
		caFile := filepath.Join(data, "ceremony", map[string]string{"sign": "signature-ca", "auth": "user-auth-ca"}[typ]+".crt.pem")
		leaf := filepath.Join(t.TempDir(), "leaf.pem")
		os.WriteFile(leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: prep.Certificate}), 0o600)
		if out, err := exec.Command("openssl", "verify", "-CAfile", caFile, leaf).CombinedOutput(); err != nil || !strings.Contains(string(out), ": OK") {
			t.Fatalf("openssl verify %s: %v\n%s", typ, err, out)
		}
	}
}

func readFirstLine(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	t.Fatalf("%s is empty", path)
	return ""
}

// apiRoutes lists the routes ca-server/api registers, read from the source of
// every non-test file of the package (every route goes through Server.handle
// with a literal pattern).
func apiRoutes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join("api", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, fileRoutes(t, fset, f)...)
	}
	slices.Sort(routes)
	return routes
}

// fileRoutes lists the literal patterns f registers with handle, Handle or HandleFunc.
func fileRoutes(t *testing.T, fset *token.FileSet, f *ast.File) []string {
	t.Helper()
	var routes []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "handle" && sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") || len(call.Args) == 0 {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok {
			if sel.Sel.Name == "handle" {
				t.Errorf("route registered with a non-literal pattern at %v", fset.Position(call.Pos()))
			}
			return true
		}
		if s, err := strconv.Unquote(lit.Value); err == nil {
			routes = append(routes, s)
		}
		return true
	})
	return routes
}

// TestNoRemoteAdministration: TS Art. 20(1)(iii), 42(1)(iii): the network
// API offers only the counter's work (enrolment, issuance, its status,
// revocation and hold release, card maintenance, resident changes); keys,
// ceremonies, terminals, verifiers and the audit log are administered only
// at the data centre. The registered routes in every file of ca-server/api
// are exactly those; administrative paths on a running server are not found.
func TestNoRemoteAdministration(t *testing.T) {
	want := []string{
		"GET /v1/issuances/{id}",
		"GET /v1/terminal-audit/heads/latest", // the CA witnesses terminals' audit chains (api/witness.go)
		"POST /v1/card-maintenance",
		"POST /v1/card-maintenance/{id}/confirm",
		"POST /v1/certificates/{serial}/release-hold",
		"POST /v1/certificates/{serial}/revoke",
		"POST /v1/channels",
		"POST /v1/enroll",
		"POST /v1/issuances",
		"POST /v1/issuances/{id}/abort",
		"POST /v1/issuances/{id}/confirm",
		"POST /v1/resident-changes",
		"POST /v1/terminal-audit/heads",
	}
	if got := apiRoutes(t); !slices.Equal(got, want) {
		t.Fatalf("api routes\n got %q\nwant %q", got, want)
	}

	testenv.SoftHSM(t)
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	base := startServe(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0")
	pool := x509.NewCertPool()
	pool.AddCert(readPEMCert(t, filepath.Join(data, "tls-ca.crt")))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfigFor(pool)}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	for _, path := range []string{"/v1/ceremony", "/v1/keys", "/v1/activate", "/v1/terminals", "/v1/audit", "/admin", "/debug/pprof/", "/v1/card-batch", "/v1/revocations", "/v1/staff", "/v1/audit/backup", "/v1/verifiers"} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			req, _ := http.NewRequest(method, "https://"+base+path, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), string(wire.CodeRouteNotFound)) {
				t.Fatalf("%s %s: %d %s, want 404 %s", method, path, resp.StatusCode, body, wire.CodeRouteNotFound)
			}
		}
	}
}

func tlsConfigFor(pool *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}
}
