package main

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
	"madoguchi/app/issue"
	"madoguchi/app/printout"
	"madoguchi/app/resident"
	"madoguchi/app/termkey"
	"madoguchi/assets/fonts/printfonts"
	"madoguchi/cardio"
	"madoguchi/cardio/pcsc"
	"madoguchi/internal/atomicfile"
	"madoguchi/raclient"
	"madoguchi/ui"
)

// caLink is the terminal's link to ca-server (TS Art. 7(i), Art. 10: mutual TLS 1.3): the
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
type caLink struct {
	dir  string
	keys *termkey.Keys // the TLS key's place: the key file, or the token of settings.KeyURI
	// testPageFonts gives the document printer for the printer test page (printer.go).
	testPageFonts func() (*printout.Printer, error)

	mu       sync.Mutex
	settings linkSettings
	client   *raclient.Client // built on first use after each change; nil when not configured
	changed  chan struct{}    // closed on every change
}

type linkSettings struct {
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

var _ ui.TerminalSettings = (*caLink)(nil)

func (l *caLink) caDir() string        { return filepath.Join(l.dir, "ca") }
func (l *caLink) keyFile() string      { return filepath.Join(l.caDir(), "terminal-key.pem") }
func (l *caLink) certFile() string     { return filepath.Join(l.caDir(), "terminal-cert.pem") }
func (l *caLink) pinnedCAFile() string { return filepath.Join(l.caDir(), "tls-ca.pem") }
func (l *caLink) settingsFile() string { return filepath.Join(l.dir, "settings.json") }

// openCALink loads the settings of the terminal in dataDir; non-empty values in flags (the
// command line) replace the stored ones and are kept.
func openCALink(dataDir string, flags linkSettings) (*caLink, error) {
	l := &caLink{dir: dataDir, changed: make(chan struct{})}
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
func (l *caLink) save() error {
	b, err := json.MarshalIndent(l.settings, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteAll(l.settingsFile(), append(b, '\n'), 0o600)
}

// touch records a change: the client is rebuilt on next use and the watcher re-checks.
// Caller holds mu.
func (l *caLink) touch() {
	if l.client != nil {
		l.client.Close()
		l.client = nil
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// rootFile is the TLS CA certificate the terminal trusts: the one pinned at enrolment, else the
// --ca-cert file. Caller holds mu.
func (l *caLink) rootFile() string {
	if _, err := os.Stat(l.pinnedCAFile()); err == nil {
		return l.pinnedCAFile()
	}
	return l.settings.CACertFile
}

func (l *caLink) enrolled() bool {
	_, err := os.Stat(l.certFile())
	return err == nil
}

// Client returns the mTLS client of the CA, or nil when the terminal has no CA URL or is not
// enrolled yet.
func (l *caLink) Client() (*raclient.Client, error) {
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

// Current implements ui.TerminalSettings.
func (l *caLink) Current() ui.TerminalConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := ui.TerminalConfig{CAURL: l.settings.CAURL, Reader: l.settings.Reader, CACertFile: l.rootFile(),
		Printer: l.settings.Printer, CUPSServer: l.settings.CUPSServer}
	if tc, err := readTerminalCert(l.certFile()); err == nil {
		c.Certificate = &tc
	}
	return c
}

// readTerminalCert describes the client certificate: its CN is the terminal id and its OU the
// municipality code (ca-server/tlsca).
func readTerminalCert(path string) (ui.TerminalCertificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ui.TerminalCertificate{}, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return ui.TerminalCertificate{}, fmt.Errorf("terminal: %s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return ui.TerminalCertificate{}, err
	}
	tc := ui.TerminalCertificate{TerminalID: cert.Subject.CommonName, NotAfter: cert.NotAfter}
	if len(cert.Subject.OrganizationalUnit) > 0 {
		tc.Municipality = cert.Subject.OrganizationalUnit[0]
	}
	return tc, nil
}

// SetCAURL implements ui.TerminalSettings.
func (l *caLink) SetCAURL(ctx context.Context, s string) error {
	if err := checkCAURL(s); err != nil {
		return err
	}
	return l.change(func(st *linkSettings) { st.CAURL = s }, true)
}

// SetReader implements ui.TerminalSettings.
func (l *caLink) SetReader(reader string) error {
	return l.change(func(st *linkSettings) { st.Reader = reader }, true)
}

// change applies f to the settings and saves them; when the save fails the settings stay as
// they were. reconnect rebuilds the CA client and wakes the watcher (touch).
func (l *caLink) change(f func(*linkSettings), reconnect bool) error {
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
func (l *caLink) Reader() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settings.Reader
}

// Changed returns a channel closed at the next settings change.
func (l *caLink) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Readers implements ui.TerminalSettings.
func (l *caLink) Readers(ctx context.Context) ([]string, error) { return pcscReaders() }

// ErrNoCACert: enrolment needs the internal TLS CA certificate (--ca-cert) to trust the CA.
var ErrNoCACert = apperr.New(apperr.InvalidInput, "terminal: the internal TLS CA certificate is not configured (--ca-cert)")

// Enrol implements ui.TerminalSettings: it makes a fresh P-256 key (file 0600, or in the token
// of the key URI), sends a CSR with the one-time token (raclient.Enroll, never retried: the
// token is single use), stores the client certificate and pins the internal TLS CA
// certificate the CA returned. A failed enrolment leaves the previous key and certificate in
// place.
func (l *caLink) Enrol(ctx context.Context, token string) (ui.TerminalCertificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.settings.CAURL == "" {
		return ui.TerminalCertificate{}, apperr.New(apperr.InvalidInput, "terminal: no CA URL")
	}
	root := l.rootFile()
	if root == "" {
		return ui.TerminalCertificate{}, ErrNoCACert
	}
	rootPEM, err := os.ReadFile(root)
	if err != nil {
		return ui.TerminalCertificate{}, apperr.Wrap(apperr.InvalidInput, err, "terminal: TLS CA certificate")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		return ui.TerminalCertificate{}, apperr.New(apperr.InvalidInput, "terminal: %s holds no PEM certificate", root)
	}
	key, err := l.keys.Generate()
	if err != nil {
		return ui.TerminalCertificate{}, apperr.Wrap(apperr.Internal, err, "terminal: make the TLS key")
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
		return ui.TerminalCertificate{}, enrolError(err)
	}
	if _, err := raclient.TLSCertificate(resp, key); err != nil {
		return ui.TerminalCertificate{}, apperr.Wrap(apperr.Internal, err, "terminal: enrolment answer")
	}
	// Key first, then certificate: a crash in between leaves a key without certificate, which
	// counts as not enrolled. (A token key is already stored; Save writes the key file.)
	if err := l.keys.Save(key); err != nil {
		return ui.TerminalCertificate{}, apperr.Wrap(apperr.Internal, err, "terminal: store key")
	}
	kept = true
	if err := atomicfile.WriteAll(l.certFile(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.Certificate}), 0o644); err != nil {
		return ui.TerminalCertificate{}, apperr.Wrap(apperr.Internal, err, "terminal: store certificate")
	}
	if len(resp.CACertificate) > 0 {
		if err := atomicfile.WriteAll(l.pinnedCAFile(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.CACertificate}), 0o644); err != nil {
			return ui.TerminalCertificate{}, apperr.Wrap(apperr.Internal, err, "terminal: pin TLS CA certificate")
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

// WatchCA implements ui.CAWatcher. The check is a TLS 1.3 handshake with the CA, presenting the
// terminal's certificate and verifying the CA's against the pinned TLS CA: it proves the CA is
// reachable and is the CA, without an HTTP request, so it leaves no record in the CA's audit
// log and needs no state there (the API has no health endpoint, and every request to it is
// audited). It does not prove the CA still accepts this terminal: a revoked terminal shows as
// connected until its next request is refused.
func (l *caLink) WatchCA(ctx context.Context, report func(ui.CAStatus)) error {
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
func (l *caLink) check(ctx context.Context) ui.CAStatus {
	l.mu.Lock()
	u, root, cert := l.settings.CAURL, l.rootFile(), l.certFile()
	enrolled := l.enrolled()
	l.mu.Unlock()
	if u == "" || !enrolled || root == "" {
		return ui.CANotConfigured
	}
	pair, err := l.keys.Certificate(cert)
	if err != nil {
		return ui.CAUnreachable
	}
	if err := tlsHandshake(ctx, u, root, pair); err != nil {
		return ui.CAUnreachable
	}
	return ui.CAConnected
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

// residentFileKey is the resident-record file's MAC key for app.Config.ResidentFileKey: the
// token's HMAC key with a key URI, nil (the key in terminal.db) without.
func (l *caLink) residentFileKey() (resident.FileKey, error) { return l.keys.ResidentFileKey() }

// pcscReaders lists the readers pcscd knows.
func pcscReaders() ([]string, error) {
	c, err := pcsc.Open()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Readers()
}

// openCard connects exclusively to the card in reader ("" = the first reader): nothing else
// may interleave commands with the CA's personalisation script.
func openCard(reader string) (issue.Card, func(), error) {
	c, err := pcsc.Open()
	if err != nil {
		return nil, nil, err
	}
	if reader == "" {
		readers, err := c.Readers()
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		reader = readers[0]
	}
	card, err := c.Connect(reader, pcsc.Exclusive)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	var once sync.Once
	return cardio.New(card), func() {
		once.Do(func() {
			card.Close(true)
			c.Close()
		})
	}, nil
}

// issuanceLink wires the reception wizard to the CA link, the reader and the notice printer.
// The orchestration over the CA client in effect is built per issuance (it is a few fields),
// so a CA URL changed or an enrolment done in the settings takes effect at the next issuance.
func issuanceLink(term *app.Terminal, link *caLink, fonts *printFonts, municipality string) *ui.IssuanceLink {
	return &ui.IssuanceLink{
		Issuer: func(ctx context.Context) (*issue.Orchestrator, error) {
			c, err := link.Client()
			if err != nil {
				return nil, err
			}
			if c == nil {
				return nil, apperr.New(apperr.CAUnavailable, "terminal: the terminal is not enrolled with the CA")
			}
			return term.NewIssuer(ctx, c, nil)
		},
		OpenCard: func(ctx context.Context) (issue.Card, func(), error) { return openCard(link.Reader()) },
		// The PIN reset and the key destruction go through the same mutual-TLS client.
		CardMaintenance: func(ctx context.Context) (app.CardMaintenanceCA, error) {
			c, err := link.Client()
			if err != nil {
				return nil, err
			}
			if c == nil {
				return nil, apperr.New(apperr.CAUnavailable, "terminal: the terminal is not enrolled with the CA")
			}
			return c, nil
		},
		Printer: fonts.printer,
		Municipality: func() string {
			if municipality != "" {
				return municipality
			}
			if c := link.Current().Certificate; c != nil && c.Municipality != "" {
				return printout.MunicipalityByCode(c.Municipality)
			}
			return printout.MunicipalityUnset
		},
	}
}

// printFonts loads the notice printer's TrueType-outline fonts on first use (app/printout:
// the PDF writer embeds TrueType outlines only). A directory given with --print-fonts wins;
// otherwise the fonts bundled in the binary (assets/fonts/printfonts) are used.
type printFonts struct {
	dir  string
	once sync.Once
	p    *printout.Printer
	err  error
}

func (f *printFonts) printer() (*printout.Printer, error) {
	f.once.Do(func() {
		fonts := printout.Fonts{Regular: printfonts.Regular(), Bold: printfonts.Bold()}
		if f.dir != "" {
			reg, err1 := os.ReadFile(filepath.Join(f.dir, "MadoguchiPrintJP-Regular.ttf"))
			bold, err2 := os.ReadFile(filepath.Join(f.dir, "MadoguchiPrintJP-Bold.ttf"))
			if err := errors.Join(err1, err2); err != nil {
				f.err = fmt.Errorf("terminal: print fonts: %w", err)
				return
			}
			fonts = printout.Fonts{Regular: reg, Bold: bold}
		}
		f.p, f.err = printout.New(fonts)
	})
	return f.p, f.err
}
