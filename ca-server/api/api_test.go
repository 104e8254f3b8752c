package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
	"madoguchi/ca-server/traffic"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

type env struct {
	t      *testing.T
	st     *store.SQLite
	raw    *sql.DB
	ca     *tlsca.CA
	url    string
	pool   *x509.CertPool
	auditK *ecdsa.PrivateKey
	alog   *audit.Log  // the API's audit log (authority_test.go audits the revocation service to it)
	srv    *api.Server // to mount the revocation endpoints (authority_test.go)
	logs   *syncBuffer // serve's log (witness_test.go)
}

// syncBuffer is a bytes.Buffer for a logger written from the server's goroutines.
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

// Reset empties the buffer.
func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, issuancetest.Cards{})
}

// newEnvWith is newEnv with the card channel given (maintenance_test.go: the real host end
// over software card keys).
func newEnvWith(t *testing.T, cards issuance.CardChannel) *env {
	t.Helper()
	parts := api.NewTestParts(t, cards)
	st, raw, ca, ak, alog, svc := parts.Store, parts.Raw, parts.CA, parts.AuditKey, parts.Audit, parts.Service
	// budgets small enough for the flood test to meet them, large enough
	// for every other test's few refusals
	guard := traffic.NewGuard(traffic.GuardConfig{Listener: "api", Audit: alog,
		Refusals: traffic.Rate{Per: 20, Burst: 200}, Clients: traffic.Rate{Per: 100, Burst: 200}})
	logs := &syncBuffer{}
	srv, err := api.New(api.Config{Service: svc, Enroller: ca, Terminals: st, Audit: alog, ClientCAs: ca.Pool(), MaxBody: 16 << 10, Traffic: guard,
		Witness: testWitness(t, st, ak), Logger: slog.New(slog.NewTextHandler(logs, nil))}) // witness_test.go
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = api.TLSConfig(serverCert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &env{t: t, st: st, raw: raw, ca: ca, url: ts.URL, pool: ca.Pool(), auditK: ak, alog: alog, srv: srv, logs: logs}
}

// enrol makes a terminal through the real enrolment endpoint.
func (e *env) enrol(ca *tlsca.CA) (tls.Certificate, wire.EnrollResponse) {
	e.t.Helper()
	tok, err := ca.NewEnrolmentToken(context.Background(), "131016", time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	resp, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: e.url, RootCAs: e.pool, Token: tok, Key: key, Operator: "installer"})
	if err != nil {
		e.t.Fatal(err)
	}
	cert, err := raclient.TLSCertificate(resp, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return cert, resp
}

func (e *env) client(cert tls.Certificate) *raclient.Client {
	e.t.Helper()
	c, err := raclient.New(raclient.Config{BaseURL: e.url, Certificate: cert, RootCAs: e.pool, MaxAttempts: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// rawClient sends hand-made requests with an optional client certificate.
func (e *env) rawClient(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: e.pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	e.t.Cleanup(c.CloseIdleConnections)
	return c
}

// snapshot is every issuance and terminal row, to prove "no change".
func (e *env) snapshot() string {
	e.t.Helper()
	var s1, s2 sql.NullString
	if err := e.raw.QueryRow(`SELECT group_concat(id || ':' || state || ':' || coalesce(confirm_request_id, ''), ',') FROM (SELECT * FROM issuances ORDER BY id)`).Scan(&s1); err != nil {
		e.t.Fatal(err)
	}
	if err := e.raw.QueryRow(`SELECT group_concat(id || ':' || coalesce(revoked_at, ''), ',') FROM (SELECT * FROM terminals ORDER BY id)`).Scan(&s2); err != nil {
		e.t.Fatal(err)
	}
	return s1.String + "|" + s2.String
}

func (e *env) lastAudit() store.AuditRecord {
	e.t.Helper()
	r, err := e.st.LastAuditRecord(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func applicant(code string) wire.Applicant {
	return wire.Applicant{ResidentCode: code, Name: "髙橋 𠮷子", BirthDate: "1996-02-29", Sex: "2", Address: "東京都千代田区千代田1-1", CardExpiry: "2031-02-28"}
}

func prepareReq(t *testing.T, c *raclient.Client, reqID, code string) wire.PrepareRequest {
	t.Helper()
	ch, err := c.OpenChannel(context.Background(), "op-1")
	if err != nil {
		t.Fatal(err)
	}
	card := "CARD-" + code // each person's own card (issue 17)
	return wire.PrepareRequest{RequestID: reqID, ChannelID: ch.ChannelID, CardSerial: card,
		InitUpdateResponse: issuancetest.CardCryptogram(card, ch.HostChallenge), CertType: "sign", Applicant: applicant(code)}
}

func (e *env) confirmReq(id, reqID string) wire.ConfirmRequest {
	is, err := e.st.Issuance(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return wire.ConfirmRequest{RequestID: reqID, CardResponses: [][]byte{issuancetest.CardResponse(is.ChannelState, []byte("DONE"))}}
}

func TestIssuanceOverMutualTLS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cert, enr := e.enrol(e.ca)
	if enr.Municipality != "131016" || cert.Leaf.Subject.OrganizationalUnit[0] != "131016" {
		t.Fatalf("terminal certificate not bound to the municipality: %+v", cert.Leaf.Subject)
	}
	c := e.client(cert)
	req := prepareReq(t, c, "req-1", "12345678901")
	prep, err := c.Prepare(ctx, "op-1", req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Prepare(ctx, "op-1", req)
	if err != nil || again.IssuanceID != prep.IssuanceID {
		t.Fatalf("idempotent prepare: %v", err)
	}
	st, err := c.Confirm(ctx, "op-1", prep.IssuanceID, e.confirmReq(prep.IssuanceID, "conf-1"))
	if err != nil || st.State != "delivered" {
		t.Fatalf("confirm: %+v %v", st, err)
	}
	if st, err := c.Status(ctx, "op-1", prep.IssuanceID); err != nil || st.State != "delivered" {
		t.Fatalf("status: %+v %v", st, err)
	}
	rec := e.lastAudit()
	if rec.Action != "issuance.status" || rec.Terminal != enr.TerminalID || rec.Operator != "op-1" || rec.Target != prep.IssuanceID || rec.Result != "ok" {
		t.Fatalf("audit record: %+v", rec)
	}
	if _, err := audit.Verify(ctx, e.st, e.auditK.Public()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
}

// TestBadRequestsAreRefusedAuditedAndChangeNothing: every refusal has its
// specific code and changes nothing. A refusal of an authenticated
// terminal is one audit record naming it and the operator it asserts; a
// refusal before any terminal was authenticated (wrong route or method, no,
// foreign, expired or revoked certificate, bad enrolment) writes no record
// of its own and is counted in the listener's summary (issue 13 threat 4).
func TestBadRequestsAreRefusedAuditedAndChangeNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cert1, enr1 := e.enrol(e.ca)
	cert2, _ := e.enrol(e.ca)
	c1, c2 := e.client(cert1), e.client(cert2)

	// a delivered certificate for person A, and a prepared one for person B
	delivered, err := c1.Prepare(ctx, "op-1", prepareReq(t, c1, "d", "11111111111"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Confirm(ctx, "op-1", delivered.IssuanceID, e.confirmReq(delivered.IssuanceID, "conf-d")); err != nil {
		t.Fatal(err)
	}
	prepared, err := c1.Prepare(ctx, "op-1", prepareReq(t, c1, "p", "22222222222"))
	if err != nil {
		t.Fatal(err)
	}

	// an expired terminal certificate: same CA key, clock two years back
	past := time.Now().AddDate(-2, 0, 0)
	oldCA, err := tlsca.New(e.ca.Certificate(), mustSigner(t, e), e.st, func() time.Time { return past })
	if err != nil {
		t.Fatal(err)
	}
	expired := func() tls.Certificate {
		tok, err := e.ca.NewEnrolmentToken(ctx, "131016", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		resp, err := oldCA.Enroll(ctx, tok, csr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := raclient.TLSCertificate(resp, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}()
	// a certificate from a foreign CA
	foreign := selfSigned(t)
	// a revoked terminal
	revokedCert, _ := e.enrol(e.ca)
	if _, err := e.ca.RevokeTerminal(ctx, tlsca.SerialHex(revokedCert.Leaf)); err != nil {
		t.Fatal(err)
	}

	valid := func() string {
		b, _ := json.Marshal(prepareReq(t, c1, "new", "33333333333"))
		return string(b)
	}
	impossible := strings.Replace(valid(), "1996-02-29", "1997-02-29", 1)
	dupPerson := strings.Replace(valid(), `"resident_code":"33333333333"`, `"resident_code":"11111111111"`, 1) // the card stays 3…3's, the person is 1…1
	issuances := "/v1/issuances"
	cases := []struct {
		name       string
		cert       *tls.Certificate
		method     string
		path, body string
		status     int
		code       wire.Code
		counted    bool // refused before authentication: in the summary, no record of its own
	}{
		{"malformed body", &cert1, "POST", issuances, `{"request_id":`, 400, wire.CodeMalformedJSON, false},
		{"two JSON values", &cert1, "POST", issuances, `{} {}`, 400, wire.CodeMalformedJSON, false},
		{"oversized body", &cert1, "POST", issuances, `{"request_id":"` + strings.Repeat("x", 20<<10) + `"}`, 413, wire.CodeBodyTooLarge, false},
		{"unknown field", &cert1, "POST", issuances, `{"request_id":"a","admin":true}`, 400, wire.CodeUnknownField, false},
		{"wrong type", &cert1, "POST", issuances, `{"request_id":5}`, 400, wire.CodeWrongType, false},
		{"impossible date", &cert1, "POST", issuances, impossible, 400, wire.CodeInvalidApplicant, false},
		{"no client certificate", nil, "POST", issuances, valid(), 401, wire.CodeClientCertMissing, true},
		{"foreign certificate", &foreign, "POST", issuances, valid(), 401, wire.CodeClientCertInvalid, true},
		{"expired certificate", &expired, "POST", issuances, valid(), 401, wire.CodeClientCertExpired, true},
		{"revoked terminal", &revokedCert, "POST", issuances, valid(), 403, wire.CodeTerminalRevoked, true},
		{"second certificate for the person", &cert1, "POST", issuances, dupPerson, 409, wire.CodeDuplicatePerson, false},
		{"replayed confirm, other request id", &cert1, "POST", issuances + "/" + delivered.IssuanceID + "/confirm", jsonOf(e.confirmReq(delivered.IssuanceID, "conf-other")), 409, wire.CodeInvalidState, false},
		{"other terminal's confirm", &cert2, "POST", issuances + "/" + prepared.IssuanceID + "/confirm", jsonOf(e.confirmReq(prepared.IssuanceID, "x")), 404, wire.CodeNotFound, false},
		{"other terminal's abort", &cert2, "POST", issuances + "/" + prepared.IssuanceID + "/abort", `{"request_id":"x"}`, 404, wire.CodeNotFound, false},
		{"other terminal's status", &cert2, "GET", issuances + "/" + prepared.IssuanceID, "", 404, wire.CodeNotFound, false},
		{"abort of delivered", &cert1, "POST", issuances + "/" + delivered.IssuanceID + "/abort", `{"request_id":"x"}`, 409, wire.CodeInvalidState, false},
		{"no administration", &cert1, "DELETE", issuances + "/" + delivered.IssuanceID, "", 405, wire.CodeMethodNotAllowed, true},
		{"unknown route", &cert1, "POST", "/v1/admin/keys", "{}", 404, wire.CodeRouteNotFound, true},
		{"enrolment with a garbage CSR", nil, "POST", "/v1/enroll", `{"token":"nope","csr":"AAAA"}`, 400, wire.CodeInvalidCSR, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			lastSeq := e.lastAudit().Seq
			var rd io.Reader
			if tc.body != "" {
				rd = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, e.url+tc.path, rd)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(wire.OperatorHeader, "op-9")
			resp, err := e.rawClient(tc.cert).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p wire.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || p.Code != tc.code {
				t.Fatalf("got %d %s (%s), want %d %s", resp.StatusCode, p.Code, p.Message, tc.status, tc.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			rec := e.lastAudit()
			if tc.counted {
				if rec.Seq != lastSeq {
					t.Fatalf("refused unauthenticated request audited by itself: %+v", rec)
				}
				if err := e.srv.Traffic().Flush(ctx); err != nil {
					t.Fatal(err)
				}
				rec = e.lastAudit()
				if rec.Seq != lastSeq+1 || rec.Action != traffic.SummaryAction || rec.Operator != "-" || rec.Terminal != "-" ||
					!strings.Contains(rec.Detail, " "+string(tc.code)+"=1") || !strings.Contains(rec.Detail, "1 requests") {
					t.Fatalf("summary %+v, want one record counting one %s", rec, tc.code)
				}
			} else if rec.Seq != lastSeq+1 || rec.Result != string(tc.code) || rec.Operator != "op-9" {
				t.Fatalf("audit record %+v, want one new record with result %s", rec, tc.code)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("refused request changed the store:\n%s\n%s", before, after)
			}
		})
	}
	_ = enr1
	// raclient turns codes into kinds a UI can translate
	_, err = c1.Prepare(ctx, "op-1", prepareReq(t, c1, "dup2", "11111111111"))
	var re *raclient.Error
	if !errors.Is(err, raclient.ErrDuplicatePerson) || !errors.As(err, &re) || re.Status != 409 {
		t.Fatalf("raclient duplicate person: %v", err)
	}
	if _, err := c2.Abort(ctx, "op-2", prepared.IssuanceID, wire.AbortRequest{RequestID: "x"}); !errors.Is(err, raclient.ErrNotFound) {
		t.Fatalf("raclient other terminal's abort: %v", err)
	}
	// the owner can abort; the record says reason 0
	st, err := c1.Abort(ctx, "op-1", prepared.IssuanceID, wire.AbortRequest{RequestID: "ab-1"})
	if err != nil || st.State != "revoked" || st.RevocationReason == nil || *st.RevocationReason != 0 {
		t.Fatalf("abort: %+v %v", st, err)
	}
	if _, err := audit.Verify(ctx, e.st, e.auditK.Public()); err != nil {
		t.Fatalf("audit chain after refusals: %v", err)
	}
}

func TestEnrolmentTokenIsSingleUse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := e.ca.NewEnrolmentToken(ctx, "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: e.url, RootCAs: e.pool, Token: tok, Key: key}); err != nil {
		t.Fatal(err)
	}
	_, err = raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: e.url, RootCAs: e.pool, Token: tok, Key: key})
	if !errors.Is(err, raclient.ErrTokenInvalid) {
		t.Fatalf("second use of a token: %v", err)
	}
	if _, err := e.ca.NewEnrolmentToken(ctx, "131017", time.Hour); err == nil {
		t.Fatal("municipality code with a wrong check digit accepted")
	}
}

func TestRetriesReuseRequestID(t *testing.T) {
	// a front that fails twice with 503, then passes to the real server
	e := newEnv(t)
	cert, _ := e.enrol(e.ca)
	var seen []string
	fails := 2
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var pr wire.PrepareRequest
		json.Unmarshal(b, &pr)
		seen = append(seen, pr.RequestID)
		if fails > 0 {
			fails--
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(503)
			fmt.Fprint(w, `{"code":"unavailable","message":"busy"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"issuance_id":"is-1","state":"prepared"}`)
	}))
	front.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{mustServerCert(t, e)}}
	front.StartTLS()
	defer front.Close()
	var slept []time.Duration
	c, err := raclient.New(raclient.Config{BaseURL: front.URL, Certificate: cert, RootCAs: e.pool, Backoff: time.Millisecond,
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Prepare(context.Background(), "op", wire.PrepareRequest{RequestID: "same-id"})
	if err != nil || resp.IssuanceID != "is-1" {
		t.Fatalf("after retries: %v", err)
	}
	if len(seen) != 3 || seen[0] != "same-id" || seen[2] != "same-id" || len(slept) != 2 || slept[1] != 2*slept[0] {
		t.Fatalf("attempts %v, backoff %v", seen, slept)
	}
	// opening a channel is not retried
	seen, fails = nil, 5
	if _, err := c.OpenChannel(context.Background(), "op"); !errors.Is(err, raclient.ErrUnavailable) || len(seen) != 1 {
		t.Fatalf("open channel: %v after %d attempts", err, len(seen))
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

func mustServerCert(t *testing.T, e *env) tls.Certificate {
	c, err := e.ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustSigner(t *testing.T, e *env) *ecdsa.PrivateKey {
	t.Helper()
	// LoadOrCreate is idempotent: read the same key back from the data dir
	dir := filepath.Dir(e.dbPath())
	_, s, err := tlsca.LoadOrCreate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s.(*ecdsa.PrivateKey)
}

func (e *env) dbPath() string {
	var file string
	var seq int
	var name string
	if err := e.raw.QueryRow("PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		e.t.Fatal(err)
	}
	return file
}

func selfSigned(t *testing.T) tls.Certificate {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "intruder"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

var _ = bytes.NewReader
