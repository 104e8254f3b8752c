package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/ca-server/api"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/issuance/issuancetest"
	"madoguchi/ca-server/status"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
	"madoguchi/internal/testenv"
	"madoguchi/ui"
)

// testCA is ca-server's real HTTPS API (TLS 1.3, enrolment, internal TLS CA) in-process, with the
// issuance service's in-process fakes (enrolment and the TLS link do not touch them).
type testCA struct {
	ca      *tlsca.CA
	st      *store.SQLite
	status  *status.Service // the revocation service the API serves (counter revocation, holds, resident changes)
	url     string
	caPEM   string // file with the internal TLS CA certificate
	srv     *httptest.Server
	stopped bool
}

func startTestCA(t *testing.T) *testCA {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cert, signer, err := tlsca.LoadOrCreate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tlsca.New(cert, signer, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	alog, err := audit.Open(ctx, st, audit.Options{Signer: ak, KeyID: "test", Every: 5})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := issuancetest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := issuance.New(issuance.Config{Store: st, Keys: &issuancetest.Keys{}, Cards: issuancetest.Cards{}, Issuer: iss,
		Applicants: issuance.BasicApplicantChecker{Key: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: svc, Enroller: ca, Terminals: st, Audit: alog, ClientCAs: ca.Pool(), MaxBody: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// The person key of the issuance service above (BasicApplicantChecker: HMAC under 32 zero
	// bytes), as in ca-server/api's authority test.
	rs, err := status.New(status.Config{Store: st, Audit: alog, Persons: status.HMACPersons{Key: make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	srv.MountRevocation(rs)
	serverCert, err := ca.ServerCertificate([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = api.TLSConfig(serverCert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	caPEM := filepath.Join(dir, "tls-ca-handed-over.pem")
	if err := os.WriteFile(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca, st: st, status: rs, url: ts.URL, caPEM: caPEM, srv: ts}
}

func (c *testCA) token(t *testing.T) string {
	t.Helper()
	tok, err := c.ca.NewEnrolmentToken(context.Background(), "131016", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// nextStatus runs WatchCA until its first report.
func nextStatus(t *testing.T, l *caLink) ui.CAStatus {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan ui.CAStatus, 1)
	go l.WatchCA(ctx, func(s ui.CAStatus) {
		select {
		case got <- s:
		default:
		}
		cancel()
	})
	return <-got
}

// TestCALinkEnrolsAndConnects: first start with a one-time token against ca-server's real
// enrolment endpoint: the key file is 0600, the certificate names the municipality, the CA
// indicator goes from "not configured" to "connected" (mutual TLS 1.3 handshake) and to
// "unreachable" when the CA stops; the token cannot be used twice.
func TestCALinkEnrolsAndConnects(t *testing.T) {
	ca := startTestCA(t)
	dataDir := t.TempDir()
	l, err := openCALink(dataDir, linkSettings{CAURL: ca.url, CACertFile: ca.caPEM})
	if err != nil {
		t.Fatal(err)
	}
	if s := nextStatus(t, l); s != ui.CANotConfigured {
		t.Errorf("before enrolment: status %v, want not configured", s)
	}
	if c, err := l.Client(); c != nil || err != nil {
		t.Errorf("client before enrolment: %v, %v", c, err)
	}
	tok := ca.token(t)
	tc, err := l.Enrol(context.Background(), tok)
	if err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	if tc.Municipality != "131016" || tc.TerminalID == "" || !tc.NotAfter.After(time.Now()) {
		t.Errorf("terminal certificate %+v", tc)
	}
	fi, err := os.Stat(l.keyFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
	if cur := l.Current(); cur.Certificate == nil || cur.Certificate.Municipality != "131016" || cur.CACertFile != l.pinnedCAFile() {
		t.Errorf("settings after enrolment %+v", cur)
	}
	if s := nextStatus(t, l); s != ui.CAConnected {
		t.Errorf("after enrolment: status %v, want connected", s)
	}
	if c, err := l.Client(); c == nil || err != nil {
		t.Errorf("mTLS client after enrolment: %v", err)
	}
	// The settings survive a restart; flags left empty keep them.
	l2, err := openCALink(dataDir, linkSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Current().CAURL != ca.url || !l2.enrolled() {
		t.Errorf("after restart: %+v", l2.Current())
	}
	// The token was single use.
	if _, err := l.Enrol(context.Background(), tok); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("second enrolment with the same token: %v", err)
	}
	if _, err := os.Stat(l.certFile()); err != nil {
		t.Error("a refused enrolment removed the certificate")
	}
	ca.srv.Close()
	if s := nextStatus(t, l); s != ui.CAUnreachable {
		t.Errorf("CA stopped: status %v, want unreachable", s)
	}
}

func TestCALinkRefusesPlainHTTPAndWakesWatcher(t *testing.T) {
	l, err := openCALink(t.TempDir(), linkSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openCALink(t.TempDir(), linkSettings{CAURL: "http://ca.example"}); err == nil {
		t.Error("plain http CA URL accepted at start")
	}
	changed := l.Changed()
	if err := l.SetCAURL(context.Background(), "http://ca.example"); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("SetCAURL(http): %v", err)
	}
	if err := l.SetReader("Virtual PCD 00 01"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("a reader change did not wake the watchers")
	}
	if l.Reader() != "Virtual PCD 00 01" {
		t.Errorf("reader %q", l.Reader())
	}
	if _, err := l.Enrol(context.Background(), "tok"); err == nil {
		t.Error("enrolment without a CA URL")
	}
}

// TestCALinkKeyInToken: with --key-uri the enrolment makes the TLS key in the PKCS#11 token
// (SoftHSM): no key file is written, the mTLS client and the CA indicator work with the token
// key, the URI is kept in the settings, a refused enrolment leaves the enrolled key usable, and
// the resident-file key comes from the token.
func TestCALinkKeyInToken(t *testing.T) {
	ca := startTestCA(t)
	h := testenv.SoftHSM(t)
	pin := filepath.Join(t.TempDir(), "token.pin")
	if err := os.WriteFile(pin, []byte(h.UserPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "pkcs11:token=" + h.TokenLabel + "?module-path=" + h.Module + "&pin-source=file:" + pin
	dataDir := t.TempDir()
	l, err := openCALink(dataDir, linkSettings{CAURL: ca.url, CACertFile: ca.caPEM, KeyURI: uri})
	if err != nil {
		t.Fatal(err)
	}
	tok := ca.token(t)
	if _, err := l.Enrol(context.Background(), tok); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	if _, err := os.Stat(l.keyFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file with the key in the token: %v", err)
	}
	if s := nextStatus(t, l); s != ui.CAConnected {
		t.Errorf("after enrolment: status %v, want connected", s)
	}
	if c, err := l.Client(); c == nil || err != nil {
		t.Fatalf("mTLS client with the token key: %v", err)
	}
	if _, err := l.Enrol(context.Background(), tok); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("second enrolment with the same token: %v", err)
	}
	l.mu.Lock()
	l.touch() // drop the cached client: the next one is built from the token again
	l.mu.Unlock()
	if c, err := l.Client(); c == nil || err != nil {
		t.Fatalf("mTLS client after a refused enrolment: %v", err)
	}
	if fk, err := l.residentFileKey(); fk == nil || err != nil {
		t.Errorf("resident-file key from the token: %v, %v", fk, err)
	}
	b, _ := os.ReadFile(l.settingsFile())
	if !strings.Contains(string(b), `"key_uri"`) {
		t.Errorf("settings.json without the key URI: %s", b)
	}
	// Without the token (another SoftHSM configuration) the terminal does not start its CA
	// link, rather than falling back to a key file.
	l.keys.Close() // the PKCS#11 module is process-wide: unload it before switching configuration
	testenv.SoftHSM(t)
	if _, err := openCALink(t.TempDir(), linkSettings{KeyURI: uri}); err == nil {
		t.Error("openCALink without the token succeeded")
	}
}
