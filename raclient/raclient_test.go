package raclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// service is an api.Service fake that counts calls server-side and answers
// as the test says. Safe for concurrent use.
type service struct {
	mu         sync.Mutex
	channels   int
	prepareIDs []string      // request id of every prepare that reached the service
	prepareErr []error       // answers of the first prepares, then success
	block      chan struct{} // prepare waits for this (or the request's end) when set
	statusErr  func(id string) error
}

var _ api.Service = (*service)(nil)

func (s *service) OpenChannel(context.Context, issuance.Caller) (wire.ChannelResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels++
	return wire.ChannelResponse{}, wire.Errorf(wire.CodeUnavailable, "hsm busy")
}

func (s *service) Prepare(ctx context.Context, _ issuance.Caller, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	s.mu.Lock()
	s.prepareIDs = append(s.prepareIDs, req.RequestID)
	var err error
	if len(s.prepareErr) > 0 {
		err, s.prepareErr = s.prepareErr[0], s.prepareErr[1:]
	}
	block := s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return wire.PrepareResponse{}, wire.Wrap(wire.CodeUnavailable, ctx.Err(), "gone")
		}
	}
	if err != nil {
		return wire.PrepareResponse{}, err
	}
	return wire.PrepareResponse{IssuanceID: "is-1"}, nil
}

func (s *service) Confirm(context.Context, issuance.Caller, string, wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, wire.Errorf(wire.CodeInvalidState, "not prepared")
}

func (s *service) Abort(context.Context, issuance.Caller, string, wire.AbortRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, wire.Errorf(wire.CodeInvalidState, "not prepared")
}

func (s *service) Status(_ context.Context, _ issuance.Caller, id string) (wire.IssuanceStatus, error) {
	if s.statusErr != nil {
		if err := s.statusErr(id); err != nil {
			return wire.IssuanceStatus{}, err
		}
	}
	return wire.IssuanceStatus{IssuanceID: id, State: "prepared"}, nil
}

func (s *service) prepares() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.prepareIDs...)
}

// fixture is the real api server over mutual TLS 1.3 with the real TLS CA
// and a real SQLite store; only the issuance service is a fake.
type fixture struct {
	svc   *service
	ca    *tlsca.CA
	url   string
	pool  *x509.CertPool
	conns atomic.Int64 // TCP connections the server accepted
	drop  atomic.Int64 // close this many requests' connections without an answer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cert, key, err := tlsca.LoadOrCreate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tlsca.New(cert, key, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.OpenUnsigned(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{svc: &service{}, ca: ca, pool: ca.Pool()}
	srv, err := api.New(api.Config{Service: f.svc, Enroller: ca, Terminals: st, Audit: alog, ClientCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	f.url = f.start(t, srv, api.TLSConfig(serverCert))
	return f
}

// start serves h over TLS with cfg, counting connections; a request while
// f.drop > 0 loses its connection without an answer (a network failure).
func (f *fixture) start(t *testing.T, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.drop.Add(-1) >= 0 {
			panic(http.ErrAbortHandler)
		}
		f.drop.Store(0)
		h.ServeHTTP(w, r)
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.TLS = cfg
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL
}

// enrol enrols a terminal through the real endpoint and returns a client
// with attempts and an injected sleep that counts the backoff.
func (f *fixture) client(t *testing.T, cfg raclient.Config) (*raclient.Client, *[]time.Duration) {
	t.Helper()
	tok, err := f.ca.NewEnrolmentToken(context.Background(), "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: f.url, RootCAs: f.pool, Token: tok, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	tc, err := raclient.TLSCertificate(enr, key)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var slept []time.Duration
	cfg.BaseURL, cfg.Certificate, cfg.RootCAs = f.url, tc, f.pool
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return ctx.Err()
	}
	c, err := raclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, &slept
}

func prepareReq(id string) wire.PrepareRequest {
	return wire.PrepareRequest{RequestID: id, ChannelID: "ch-1", CardSerial: "00", CertType: "sign"}
}

// Enrolment over the real endpoint gives a certificate that chains to the
// TLS CA and names the municipality; the token works once.
func TestEnrolment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, err := f.ca.NewEnrolmentToken(ctx, "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := raclient.EnrollConfig{BaseURL: f.url, RootCAs: f.pool, Token: tok, Key: key, Operator: "installer"}
	enr, err := raclient.Enroll(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := raclient.TLSCertificate(enr, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Leaf.Verify(x509.VerifyOptions{Roots: f.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("terminal certificate does not chain to the TLS CA: %v", err)
	}
	if enr.Municipality != "131016" || tc.Leaf.Subject.CommonName != enr.TerminalID {
		t.Fatalf("enrolment answer %+v", enr)
	}
	if _, err := raclient.Enroll(ctx, cfg); !errors.Is(err, raclient.ErrTokenInvalid) {
		t.Fatalf("second enrolment with the token: %v", err)
	}
	c, err := raclient.New(raclient.Config{BaseURL: f.url, Certificate: tc, RootCAs: f.pool, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.Status(ctx, "op-1", "is-9"); err != nil || st.IssuanceID != "is-9" {
		t.Fatalf("status with the enrolled certificate: %+v %v", st, err)
	}
}

// Idempotent operations are retried after 503 answers and lost
// connections, each attempt with the same request id (counted at the
// service), with doubling backoff.
func TestRetriesReuseTheRequestID(t *testing.T) {
	f := newFixture(t)
	c, slept := f.client(t, raclient.Config{MaxAttempts: 4, Backoff: 10 * time.Millisecond})
	f.svc.prepareErr = []error{wire.Errorf(wire.CodeUnavailable, "hsm busy"), wire.Errorf(wire.CodeUnavailable, "hsm busy")}
	f.drop.Store(1) // the very first attempt loses its connection
	resp, err := c.Prepare(context.Background(), "op-1", prepareReq("req-42"))
	if err != nil || resp.IssuanceID != "is-1" {
		t.Fatalf("prepare after retries: %+v %v", resp, err)
	}
	ids := f.svc.prepares()
	if len(ids) != 3 {
		t.Fatalf("service saw %d prepares, want 3 (one attempt lost its connection): %v", len(ids), ids)
	}
	for _, id := range ids {
		if id != "req-42" {
			t.Fatalf("retry with another request id: %v", ids)
		}
	}
	if len(*slept) != 3 || (*slept)[0] != 10*time.Millisecond || (*slept)[1] != 20*time.Millisecond || (*slept)[2] != 40*time.Millisecond {
		t.Fatalf("backoff %v, want 10ms 20ms 40ms", *slept)
	}

	// Attempts run out: the last answer's kind comes back.
	f.svc.prepareErr = []error{wire.Errorf(wire.CodeUnavailable, "a"), wire.Errorf(wire.CodeUnavailable, "b"), wire.Errorf(wire.CodeUnavailable, "c"), wire.Errorf(wire.CodeUnavailable, "d")}
	before := len(f.svc.prepares())
	if _, err := c.Prepare(context.Background(), "op-1", prepareReq("req-43")); !errors.Is(err, raclient.ErrUnavailable) {
		t.Fatalf("prepare with the CA unavailable: %v", err)
	}
	if n := len(f.svc.prepares()) - before; n != 4 {
		t.Fatalf("%d attempts, want 4", n)
	}
	// A refusal is final: no retry.
	f.svc.prepareErr = []error{wire.Errorf(wire.CodeDuplicatePerson, "has one")}
	before = len(f.svc.prepares())
	if _, err := c.Prepare(context.Background(), "op-1", prepareReq("req-44")); !errors.Is(err, raclient.ErrDuplicatePerson) {
		t.Fatalf("prepare refused: %v", err)
	}
	if n := len(f.svc.prepares()) - before; n != 1 {
		t.Fatalf("refusal retried: %d attempts", n)
	}
}

// Opening a channel is not idempotent (each call makes a new host
// challenge): it is never retried, not after a 503 and not after a lost
// connection.
func TestNoRetryForOpenChannel(t *testing.T) {
	f := newFixture(t)
	c, slept := f.client(t, raclient.Config{MaxAttempts: 4})
	if _, err := c.OpenChannel(context.Background(), "op-1"); !errors.Is(err, raclient.ErrUnavailable) {
		t.Fatalf("open channel: %v", err)
	}
	f.drop.Store(1)
	if _, err := c.OpenChannel(context.Background(), "op-1"); !errors.Is(err, raclient.ErrUnavailable) {
		t.Fatalf("open channel over a lost connection: %v", err)
	}
	f.svc.mu.Lock()
	n := f.svc.channels
	f.svc.mu.Unlock()
	if n != 1 || len(*slept) != 0 {
		t.Fatalf("open channel reached the service %d times with %d waits, want 1 and 0", n, len(*slept))
	}
}

// Each attempt has its own timeout and is retried with the same request
// id; a caller's deadline ends the call without further attempts.
func TestTimeouts(t *testing.T) {
	f := newFixture(t)
	f.svc.block = make(chan struct{}) // prepare never answers by itself
	defer close(f.svc.block)
	c, _ := f.client(t, raclient.Config{MaxAttempts: 2, Timeout: 300 * time.Millisecond})
	_, err := c.Prepare(context.Background(), "op-1", prepareReq("req-slow"))
	var re *raclient.Error
	if !errors.Is(err, raclient.ErrUnavailable) || !errors.As(err, &re) || re.Status != 0 {
		t.Fatalf("prepare timing out: %v", err)
	}
	var nerr net.Error
	if !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Fatalf("timeout not reported as one: %v", err)
	}
	if ids := f.svc.prepares(); len(ids) != 2 || ids[0] != "req-slow" || ids[1] != "req-slow" {
		t.Fatalf("attempts at the service: %v, want req-slow twice", ids)
	}

	c2, slept := f.client(t, raclient.Config{MaxAttempts: 4, Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	before := len(f.svc.prepares())
	if _, err := c2.Prepare(ctx, "op-1", prepareReq("req-ctx")); !errors.Is(err, raclient.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("prepare past the caller's deadline: %v", err)
	}
	if n := len(f.svc.prepares()) - before; n != 1 || len(*slept) != 0 {
		t.Fatalf("after the caller's deadline: %d attempts, %d waits; want 1 and 0", n, len(*slept))
	}
}

// wireCodes reads every Code constant declared in jpki/wire, so a
// code added there without a kind here fails this test.
func wireCodes(t *testing.T) map[string]wire.Code {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("../jpki/wire/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("wire sources: %v", err)
	}
	out := map[string]wire.Code{}
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for i, name := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						t.Fatalf("%s: not a literal", name.Name)
					}
					v, _ := strconv.Unquote(lit.Value)
					out[name.Name] = wire.Code(v)
				}
			}
		}
	}
	return out
}

// Every wire error code, answered by the real api server over mutual TLS,
// arrives as its sentinel kind (errors.Is) and only that one, keeping the
// code itself in *raclient.Error.
func TestEveryWireCodeMapsToItsKind(t *testing.T) {
	want := map[string]error{
		"CodeMalformedJSON": raclient.ErrInvalidRequest, "CodeUnknownField": raclient.ErrInvalidRequest,
		"CodeWrongType": raclient.ErrInvalidRequest, "CodeBodyTooLarge": raclient.ErrInvalidRequest,
		"CodeUnsupportedMedia": raclient.ErrInvalidRequest, "CodeInvalidRequest": raclient.ErrInvalidRequest,
		"CodeInvalidCSR": raclient.ErrInvalidRequest, "CodeMethodNotAllowed": raclient.ErrInvalidRequest,
		"CodeInvalidApplicant": raclient.ErrInvalidApplicant,
		"CodeRouteNotFound":    raclient.ErrNotFound, "CodeNotFound": raclient.ErrNotFound,
		"CodeOperatorRequired": raclient.ErrForbidden, "CodeClientCertMissing": raclient.ErrForbidden,
		"CodeClientCertInvalid": raclient.ErrForbidden, "CodeClientCertExpired": raclient.ErrForbidden,
		"CodeTerminalUnknown": raclient.ErrForbidden, "CodeTerminalRevoked": raclient.ErrForbidden,
		"CodeVerifierRequired": raclient.ErrForbidden, "CodeVerifierUnknown": raclient.ErrForbidden,
		"CodeVerifierRevoked": raclient.ErrForbidden,
		"CodeTokenInvalid":    raclient.ErrTokenInvalid,
		"CodeDuplicatePerson": raclient.ErrDuplicatePerson, "CodePendingPerson": raclient.ErrPendingPerson,
		"CodeRenewalTooEarly": raclient.ErrRenewalTooEarly,
		"CodeRequestIDReused": raclient.ErrConflict, "CodeInvalidState": raclient.ErrConflict, "CodeChannelUsed": raclient.ErrConflict,
		"CodeChannelExpired": raclient.ErrChannelExpired,
		"CodeCardAuthFailed": raclient.ErrCard, "CodeCardResponseFailed": raclient.ErrCard,
		"CodeUnavailable": raclient.ErrUnavailable, "CodeInternal": raclient.ErrInternal, "CodeRateLimited": raclient.ErrUnavailable,
		"CodeAlreadyRevoked": raclient.ErrAlreadyRevoked, "CodeNotOnHold": raclient.ErrNotOnHold,
		"CodeAlreadyHeld": raclient.ErrNotOnHold, "CodeWrongCA": raclient.ErrWrongCA,
		"CodeChannelNotAllowed": raclient.ErrChannelNotAllowed, "CodeCertificateExpired": raclient.ErrCertificateExpired,
		"CodeUnknownEvent": raclient.ErrUnknownEvent, "CodeOtherMunicipality": raclient.ErrOtherMunicipality,
		"CodePersonMismatch": raclient.ErrPersonMismatch,
		"CodeCardUnknown":    raclient.ErrCardUnknown, "CodeCardOtherMunicipality": raclient.ErrCardOtherMunicipality,
		"CodeCertificateLive":    raclient.ErrCertificateLive,
		"CodeAuditHeadBackwards": raclient.ErrAuditHeadRefused, "CodeAuditHeadForked": raclient.ErrAuditHeadRefused,
		"CodeAuditAnchorStale":       raclient.ErrAuditAnchorStale,
		"CodeHolderSignatureInvalid": raclient.ErrForbidden, "CodeOnlineSignatureOnly": raclient.ErrForbidden,
		"CodeRequestStale": raclient.ErrInvalidRequest, "CodeRequestReplayed": raclient.ErrConflict,
		"CodeCardOtherPerson": raclient.ErrCardOtherPerson, "CodeCardStateUnknown": raclient.ErrCardStateUnknown,
	}
	kinds := []error{raclient.ErrDuplicatePerson, raclient.ErrPendingPerson, raclient.ErrRenewalTooEarly, raclient.ErrNotFound, raclient.ErrForbidden,
		raclient.ErrInvalidApplicant, raclient.ErrInvalidRequest, raclient.ErrConflict, raclient.ErrChannelExpired, raclient.ErrCard,
		raclient.ErrTokenInvalid, raclient.ErrUnavailable, raclient.ErrInternal, raclient.ErrAlreadyRevoked, raclient.ErrNotOnHold,
		raclient.ErrWrongCA, raclient.ErrChannelNotAllowed, raclient.ErrCertificateExpired, raclient.ErrUnknownEvent,
		raclient.ErrCardUnknown, raclient.ErrCardOtherMunicipality, raclient.ErrCertificateLive, raclient.ErrOtherMunicipality, raclient.ErrPersonMismatch,
		raclient.ErrAuditHeadRefused, raclient.ErrAuditAnchorStale, raclient.ErrCardOtherPerson, raclient.ErrCardStateUnknown}
	codes := wireCodes(t)
	if len(codes) < len(want) {
		t.Fatalf("read %d codes from jpki/wire, the table has %d", len(codes), len(want))
	}
	f := newFixture(t)
	f.svc.statusErr = func(id string) error { return wire.Errorf(wire.Code(id), "answer %s", id) }
	c, _ := f.client(t, raclient.Config{MaxAttempts: 1})
	for name, code := range codes {
		kind, ok := want[name]
		if !ok {
			t.Errorf("wire.%s (%q) has no kind in this table: map it in raclient's kindOf and here", name, code)
			continue
		}
		_, err := c.Status(context.Background(), "op-1", string(code))
		var re *raclient.Error
		if !errors.As(err, &re) || re.Code != code {
			t.Errorf("%s: answer %v, want code %q", name, err, code)
			continue
		}
		for _, k := range kinds {
			if got := errors.Is(err, k); got != (k == kind) {
				t.Errorf("%s: errors.Is(err, %v) = %v", name, k, got)
			}
		}
	}
}

// A server that offers only TLS 1.2 is refused (TS Art. 7(i), 10: the link
// is TLS 1.3), and so is a server whose certificate comes from another CA;
// neither is retried, and no request reaches a handler.
func TestRefusesWeakOrForeignServers(t *testing.T) {
	f := newFixture(t)
	tc := clientCert(t, f)
	slept := &[]time.Duration{}
	handled := atomic.Int64{}
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { handled.Add(1) })

	// TLS 1.2 only, with a certificate of the right CA.
	good, err := f.ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	old := &fixture{}
	oldURL := old.start(t, h, &tls.Config{Certificates: []tls.Certificate{good}, MaxVersion: tls.VersionTLS12})

	// TLS 1.3 with a certificate from another CA.
	otherCert, otherKey, err := tlsca.LoadOrCreate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherSt, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer otherSt.Close()
	otherCA, err := tlsca.New(otherCert, otherKey, otherSt, nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := otherCA.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{}
	foreignURL := fx.start(t, h, api.TLSConfig(foreign))

	for _, tt := range []struct {
		name string
		url  string
		f    *fixture
	}{{"tls 1.2 server", oldURL, old}, {"server of another CA", foreignURL, fx}} {
		cl, err := raclient.New(raclient.Config{BaseURL: tt.url, Certificate: tc, RootCAs: f.pool, MaxAttempts: 4,
			Sleep: func(ctx context.Context, d time.Duration) error { *slept = append(*slept, d); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.Status(context.Background(), "op-1", "is-1")
		cl.Close()
		if !errors.Is(err, raclient.ErrUnavailable) {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if n := tt.f.conns.Load(); n != 1 || len(*slept) != 0 {
			// one connection: the handshake failed once and was not retried
			t.Fatalf("%s: %d connections, %d waits: want 1 and no retry", tt.name, n, len(*slept))
		}
		if tt.name == "tls 1.2 server" {
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "remote error" || !strings.Contains(oe.Err.Error(), "protocol version") {
				t.Fatalf("tls 1.2 server: %v, want a protocol_version alert", err)
			}
		} else {
			var uerr x509.UnknownAuthorityError
			if !errors.As(err, &uerr) {
				t.Fatalf("foreign server: %v, want an unknown authority", err)
			}
		}
	}
	if handled.Load() != 0 {
		t.Fatalf("%d requests reached a refused server's handler", handled.Load())
	}
}

// clientCert enrols one more terminal and returns its certificate.
func clientCert(t *testing.T, f *fixture) tls.Certificate {
	t.Helper()
	tok, err := f.ca.NewEnrolmentToken(context.Background(), "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: f.url, RootCAs: f.pool, Token: tok, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := raclient.TLSCertificate(enr, key)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}
