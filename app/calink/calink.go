// Package calink is the terminal's link to ca-server (TS Art. 7(i), Art. 10: mutual TLS 1.3)
// and its other settings: the settings file (CA URL, reader, printer, key URI), the terminal's
// TLS key and client certificate, enrolment with a one-time token, the mTLS client in effect
// (Link.Client: the one provider of the CA client every procedure asks, app.Config.CurrentCA),
// the CA indicator's watcher and the counter's printer (printer.go).
package calink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/cardreader"
	"madoguchi/app/printout"
	"madoguchi/app/resident"
	"madoguchi/app/termkey"
	"madoguchi/internal/atomicfile"
	"madoguchi/raclient"
)

// Link is the terminal's link to ca-server (TS Art. 7(i), Art. 10: mutual TLS 1.3): the
// settings the supervisor edits (CA URL, reader), the terminal's own TLS key and client
// certificate, enrolment with a one-time token, the mTLS client (app.DialCA) and the status
// bar's CA indicator.
//
// Files, under <data-dir>/ca/ (directory 0700):
//   - terminal-key.pem: the terminal's ECDSA P-256 TLS client key, PKCS#8, file mode 0600. This
//     is the terminal's own key for mutual TLS with the CA. It is NOT a card key: the terminal
//     never holds a card's private key in plaintext (TS Art. 6(iii): the CA wraps each user key
//     for its card inside the HSM, and the terminal only relays it). With a key URI
//     (--key-uri pkcs11:…, app/termkey) there is no such file: the key is generated in the
//     PKCS#11 token, non-extractable, and so is the resident-file HMAC key.
//   - terminal-cert.pem: the client certificate from enrolment (bound to the municipality).
//   - tls-ca.pem: the internal TLS CA certificate pinned at enrolment (the --ca-cert file until
//     then).
//
// and <data-dir>/settings.json for the CA URL, the reader, the TLS CA certificate file, the
// printer and the key URI.
//
// Concurrency: safe for concurrent use; every change wakes the CA watcher.
type Link struct {
	dir  string
	keys *termkey.Keys // the TLS key's place: the key file, or the token of settings.KeyURI
	// TestPageFonts gives the document printer for the printer test page (printer.go).
	TestPageFonts func() (*printout.Printer, error)

	mu       sync.Mutex
	settings Settings
	client   *raclient.Client // built on first use after each change; nil when not configured
	changed  chan struct{}    // closed on every change
}

// Settings are the terminal's settings in settings.json.
type Settings struct {
	CAURL      string `json:"ca_url"`
	Reader     string `json:"reader"`
	CACertFile string `json:"ca_cert_file"` // before enrolment: the TLS CA certificate to trust
	// Printer is the CUPS queue of the counter's documents ("" = none: saved as PDF only) and
	// CUPSServer its scheduler ("" = $CUPS_SERVER, else the local socket); printer.go.
	Printer    string `json:"printer,omitempty"`
	CUPSServer string `json:"cups_server,omitempty"`
	// KeyURI is the RFC 7512 pkcs11: URI of the token holding the terminal's TLS key and
	// resident-file HMAC key ("" = the key file and terminal.db, the default; app/termkey).
	KeyURI string `json:"key_uri,omitempty"`
}

// Config is the settings in effect, for the settings screen.
type Config struct {
	CAURL      string
	Reader     string
	CACertFile string // the internal TLS CA certificate the terminal trusts ("" = none yet)
	Printer    string // the CUPS queue of the counter's documents ("" = none)
	CUPSServer string // its scheduler ("" = the default)
	// Certificate is the terminal's client certificate; nil before enrolment.
	Certificate *Certificate
}

// Certificate describes the terminal's client certificate.
type Certificate struct {
	TerminalID   string
	Municipality string // 6-digit local government code the terminal is bound to
	NotAfter     time.Time
}

// Status is what the status bar shows about the link to ca-server.
type Status int

// The CA link states.
const (
	Unknown       Status = iota // not checked yet
	Connected                   // the last mutual-TLS status request succeeded
	Unreachable                 // the last status request failed
	NotConfigured               // the terminal has no CA address
)

func (l *Link) caDir() string        { return filepath.Join(l.dir, "ca") }
func (l *Link) keyFile() string      { return filepath.Join(l.caDir(), "terminal-key.pem") }
func (l *Link) certFile() string     { return filepath.Join(l.caDir(), "terminal-cert.pem") }
func (l *Link) pinnedCAFile() string { return filepath.Join(l.caDir(), "tls-ca.pem") }
func (l *Link) settingsFile() string { return filepath.Join(l.dir, "settings.json") }

// Open loads the settings of the terminal in dataDir; non-empty values in flags (the
// command line) replace the stored ones and are kept.
func Open(dataDir string, flags Settings) (*Link, error) {
	l := &Link{dir: dataDir, changed: make(chan struct{})}
	b, err := os.ReadFile(l.settingsFile())
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &l.settings); err != nil {
			return nil, fmt.Errorf("settings %s: %w", l.settingsFile(), err)
		}
	case !os.IsNotExist(err):
		return nil, fmt.Errorf("settings: %w", err)
	}
	next := l.settings
	if flags.CAURL != "" {
		if err := checkCAURL(flags.CAURL); err != nil {
			return nil, err
		}
		next.CAURL = flags.CAURL
	}
	if flags.Reader != "" {
		next.Reader = flags.Reader
	}
	if flags.CACertFile != "" {
		if next.CACertFile, err = filepath.Abs(flags.CACertFile); err != nil {
			return nil, err
		}
	}
	if err := printerFlags(&next, flags); err != nil {
		return nil, err
	}
	if flags.KeyURI != "" {
		next.KeyURI = flags.KeyURI
	}
	// A terminal set up for a token does not fall back to key files when the token is
	// missing: it fails here, before anything is saved.
	if l.keys, err = termkey.Open(l.keyFile(), next.KeyURI); err != nil {
		return nil, err
	}
	if next != l.settings {
		l.settings = next
		if err := l.save(); err != nil {
			l.keys.Close()
			return nil, err
		}
	}
	return l, nil
}

func checkCAURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return apperr.New(apperr.InvalidInput, "terminal: CA URL %q must be https://host[:port]", s)
	}
	return nil
}

// save writes settings.json (0600) atomically. Caller holds mu or owns l.
func (l *Link) save() error {
	b, err := json.MarshalIndent(l.settings, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteAll(l.settingsFile(), append(b, '\n'), 0o600)
}

// touch records a change: the client is rebuilt on next use and the watcher re-checks.
// Caller holds mu.
func (l *Link) touch() {
	if l.client != nil {
		l.client.Close()
		l.client = nil
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// rootFile is the TLS CA certificate the terminal trusts: the one pinned at enrolment, else the
// --ca-cert file. Caller holds mu.
func (l *Link) rootFile() string {
	if _, err := os.Stat(l.pinnedCAFile()); err == nil {
		return l.pinnedCAFile()
	}
	return l.settings.CACertFile
}

// Enrolled reports whether the terminal has its client certificate.
func (l *Link) Enrolled() bool { return l.enrolled() }

func (l *Link) enrolled() bool {
	_, err := os.Stat(l.certFile())
	return err == nil
}

// Client returns the mTLS client of the CA, or nil when the terminal has no CA URL or is not
// enrolled yet.
func (l *Link) Client() (*raclient.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		return l.client, nil
	}
	if l.settings.CAURL == "" || !l.enrolled() {
		return nil, nil
	}
	pair, err := l.keys.Certificate(l.certFile())
	if err != nil {
		return nil, apperr.Wrap(apperr.InvalidInput, err, "terminal: client certificate and key")
	}
	c, err := app.DialCA(app.CAFiles{URL: l.settings.CAURL, RootFile: l.rootFile(), Certificate: &pair})
	if err != nil {
		return nil, err
	}
	l.client = c
	return c, nil
}

// CA is Client as the domain's provider of the CA client in effect (app.Config.CurrentCA):
// nil and no error when the terminal has no CA URL or is not enrolled.
func (l *Link) CA() (app.CA, error) {
	c, err := l.Client()
	if c == nil { // no typed nil in the interface
		return nil, err
	}
	return c, nil
}

// Current returns the settings in effect.
func (l *Link) Current() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Config{CAURL: l.settings.CAURL, Reader: l.settings.Reader, CACertFile: l.rootFile(),
		Printer: l.settings.Printer, CUPSServer: l.settings.CUPSServer}
	if tc, err := readTerminalCert(l.certFile()); err == nil {
		c.Certificate = &tc
	}
	return c
}

// readTerminalCert describes the client certificate: its CN is the terminal id and its OU the
// municipality code (ca-server/tlsca).
func readTerminalCert(path string) (Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Certificate{}, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return Certificate{}, fmt.Errorf("terminal: %s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return Certificate{}, err
	}
	tc := Certificate{TerminalID: cert.Subject.CommonName, NotAfter: cert.NotAfter}
	if len(cert.Subject.OrganizationalUnit) > 0 {
		tc.Municipality = cert.Subject.OrganizationalUnit[0]
	}
	return tc, nil
}

// SetCAURL changes the CA's https URL; every procedure uses it from its next call.
func (l *Link) SetCAURL(ctx context.Context, s string) error {
	if err := checkCAURL(s); err != nil {
		return err
	}
	return l.change(func(st *Settings) { st.CAURL = s }, true)
}

// SetReader chooses the PC/SC reader ("" = the first one).
func (l *Link) SetReader(reader string) error {
	return l.change(func(st *Settings) { st.Reader = reader }, true)
}

// change applies f to the settings and saves them; when the save fails the settings stay as
// they were. reconnect rebuilds the CA client and wakes the watcher (touch).
func (l *Link) change(f func(*Settings), reconnect bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.settings
	f(&l.settings)
	if err := l.save(); err != nil {
		l.settings = old
		return apperr.Wrap(apperr.Internal, err, "terminal: save settings")
	}
	if reconnect {
		l.touch()
	}
	return nil
}

// Reader returns the chosen reader ("" = the first one pcscd lists).
func (l *Link) Reader() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settings.Reader
}

// Changed returns a channel closed at the next settings change.
func (l *Link) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Readers lists the readers pcscd knows.
func (l *Link) Readers(ctx context.Context) ([]string, error) { return cardreader.Names() }

// ErrNoCACert: enrolment needs the internal TLS CA certificate (--ca-cert) to trust the CA.
var ErrNoCACert = apperr.New(apperr.InvalidInput, "terminal: the internal TLS CA certificate is not configured (--ca-cert)")

// Enrol makes a fresh P-256 key (file 0600, or in the token
// of the key URI), sends a CSR with the one-time token (raclient.Enroll, never retried: the
// token is single use), stores the client certificate and pins the internal TLS CA
// certificate the CA returned. A failed enrolment leaves the previous key and certificate in
// place.
func (l *Link) Enrol(ctx context.Context, token string) (Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.settings.CAURL == "" {
		return Certificate{}, apperr.New(apperr.InvalidInput, "terminal: no CA URL")
	}
	root := l.rootFile()
	if root == "" {
		return Certificate{}, ErrNoCACert
	}
	rootPEM, err := os.ReadFile(root)
	if err != nil {
		return Certificate{}, apperr.Wrap(apperr.InvalidInput, err, "terminal: TLS CA certificate")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		return Certificate{}, apperr.New(apperr.InvalidInput, "terminal: %s holds no PEM certificate", root)
	}
	key, err := l.keys.Generate()
	if err != nil {
		return Certificate{}, apperr.Wrap(apperr.Internal, err, "terminal: make the TLS key")
	}
	kept := false
	defer func() {
		if !kept {
			l.keys.Discard(key) // a token key of a failed enrolment is destroyed
		}
	}()
	ectx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := raclient.Enroll(ectx, raclient.EnrollConfig{BaseURL: l.settings.CAURL, RootCAs: pool, Token: token, Key: key, Operator: "terminal-installer"})
	if err != nil {
		return Certificate{}, enrolError(err)
	}
	if _, err := raclient.TLSCertificate(resp, key); err != nil {
		return Certificate{}, apperr.Wrap(apperr.Internal, err, "terminal: enrolment answer")
	}
	// Key first, then certificate: a crash in between leaves a key without certificate, which
	// counts as not enrolled. (A token key is already stored; Save writes the key file.)
	if err := l.keys.Save(key); err != nil {
		return Certificate{}, apperr.Wrap(apperr.Internal, err, "terminal: store key")
	}
	kept = true
	if err := atomicfile.WriteAll(l.certFile(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.Certificate}), 0o644); err != nil {
		return Certificate{}, apperr.Wrap(apperr.Internal, err, "terminal: store certificate")
	}
	if len(resp.CACertificate) > 0 {
		if err := atomicfile.WriteAll(l.pinnedCAFile(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.CACertificate}), 0o644); err != nil {
			return Certificate{}, apperr.Wrap(apperr.Internal, err, "terminal: pin TLS CA certificate")
		}
	}
	// The certificate of the new key is stored: the token's older TLS keys go.
	if err := l.keys.Retire(key); err != nil {
		log.Printf("terminal: retire the old TLS keys in the token: %v", err)
	}
	l.touch()
	return readTerminalCert(l.certFile())
}

// enrolError classifies an enrolment failure for the screens.
func enrolError(err error) error {
	switch {
	case errors.Is(err, raclient.ErrTokenInvalid):
		return apperr.Wrap(apperr.InvalidInput, err, "terminal: enrolment token refused")
	case errors.Is(err, raclient.ErrUnavailable), errors.Is(err, raclient.ErrInternal):
		return apperr.Wrap(apperr.CAUnavailable, err, "terminal: enrolment")
	}
	var re *raclient.Error
	if errors.As(err, &re) && re.Status == 0 {
		return apperr.Wrap(apperr.CAUnavailable, err, "terminal: enrolment")
	}
	return apperr.Wrap(apperr.Internal, err, "terminal: enrolment")
}

// caStatusEvery is how often the CA indicator is re-checked.
const caStatusEvery = 15 * time.Second

// WatchCA reports the CA indicator's state at once, on every settings change and every
// caStatusEvery, until ctx ends. The check is a TLS 1.3 handshake with the CA, presenting the
// terminal's certificate and verifying the CA's against the pinned TLS CA: it proves the CA is
// reachable and is the CA, without an HTTP request, so it leaves no record in the CA's audit
// log and needs no state there (the API has no health endpoint, and every request to it is
// audited). It does not prove the CA still accepts this terminal: a revoked terminal shows as
// connected until its next request is refused.
func (l *Link) WatchCA(ctx context.Context, report func(Status)) error {
	for {
		changed := l.Changed()
		report(l.check(ctx))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(caStatusEvery):
		}
	}
}

// check returns the CA indicator's state now.
func (l *Link) check(ctx context.Context) Status {
	l.mu.Lock()
	u, root, cert := l.settings.CAURL, l.rootFile(), l.certFile()
	enrolled := l.enrolled()
	l.mu.Unlock()
	if u == "" || !enrolled || root == "" {
		return NotConfigured
	}
	pair, err := l.keys.Certificate(cert)
	if err != nil {
		return Unreachable
	}
	if err := tlsHandshake(ctx, u, root, pair); err != nil {
		return Unreachable
	}
	return Connected
}

// tlsHandshake completes a mutual-TLS 1.3 handshake with the host of rawURL and closes.
func tlsHandshake(ctx context.Context, rawURL, rootFile string, pair tls.Certificate) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	rootPEM, err := os.ReadFile(rootFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		return fmt.Errorf("terminal: %s holds no PEM certificate", rootFile)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: u.Hostname()}}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(hctx, "tcp", host)
	if err != nil {
		return err
	}
	return conn.Close()
}

// ResidentFileKey is the resident-record file's MAC key for app.Config.ResidentFileKey: the
// token's HMAC key with a key URI, nil (the key in terminal.db) without.
func (l *Link) ResidentFileKey() (resident.FileKey, error) { return l.keys.ResidentFileKey() }

// Dir is the terminal's data directory.
func (l *Link) Dir() string { return l.dir }

// Close releases the key token (a PKCS#11 module) and the CA client.
func (l *Link) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		l.client.Close()
		l.client = nil
	}
	l.keys.Close()
}
