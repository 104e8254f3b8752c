package calink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/internal/testca"
	"madoguchi/internal/testenv"
)

// nextStatus runs WatchCA until its first report.
func nextStatus(t *testing.T, l *Link) Status {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Status, 1)
	go l.WatchCA(ctx, func(s Status) {
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
	ca := testca.Start(t)
	dataDir := t.TempDir()
	l, err := Open(dataDir, Settings{CAURL: ca.URL, CACertFile: ca.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	if s := nextStatus(t, l); s != NotConfigured {
		t.Errorf("before enrolment: status %v, want not configured", s)
	}
	if c, err := l.Client(); c != nil || err != nil {
		t.Errorf("client before enrolment: %v, %v", c, err)
	}
	tok := ca.Token(t)
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
	if s := nextStatus(t, l); s != Connected {
		t.Errorf("after enrolment: status %v, want connected", s)
	}
	if c, err := l.Client(); c == nil || err != nil {
		t.Errorf("mTLS client after enrolment: %v", err)
	}
	// The settings survive a restart; flags left empty keep them.
	l2, err := Open(dataDir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Current().CAURL != ca.URL || !l2.enrolled() {
		t.Errorf("after restart: %+v", l2.Current())
	}
	// The token was single use.
	if _, err := l.Enrol(context.Background(), tok); !errors.Is(err, apperr.InvalidInput) {
		t.Errorf("second enrolment with the same token: %v", err)
	}
	if _, err := os.Stat(l.certFile()); err != nil {
		t.Error("a refused enrolment removed the certificate")
	}
	ca.Srv.Close()
	if s := nextStatus(t, l); s != Unreachable {
		t.Errorf("CA stopped: status %v, want unreachable", s)
	}
}

func TestCALinkRefusesPlainHTTPAndWakesWatcher(t *testing.T) {
	l, err := Open(t.TempDir(), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.TempDir(), Settings{CAURL: "http://ca.example"}); err == nil {
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
	ca := testca.Start(t)
	h := testenv.SoftHSM(t)
	pin := filepath.Join(t.TempDir(), "token.pin")
	if err := os.WriteFile(pin, []byte(h.UserPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uri := "pkcs11:token=" + h.TokenLabel + "?module-path=" + h.Module + "&pin-source=file:" + pin
	dataDir := t.TempDir()
	l, err := Open(dataDir, Settings{CAURL: ca.URL, CACertFile: ca.CAPEM, KeyURI: uri})
	if err != nil {
		t.Fatal(err)
	}
	tok := ca.Token(t)
	if _, err := l.Enrol(context.Background(), tok); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	if _, err := os.Stat(l.keyFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file with the key in the token: %v", err)
	}
	if s := nextStatus(t, l); s != Connected {
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
	if fk, err := l.ResidentFileKey(); fk == nil || err != nil {
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
	if _, err := Open(t.TempDir(), Settings{KeyURI: uri}); err == nil {
		t.Error("Open without the token succeeded")
	}
}
