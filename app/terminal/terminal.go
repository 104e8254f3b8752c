// Package terminal is the composition root of the integrated counter terminal: it opens the
// data directory's CA link (app/calink), enrols with a one-time token on first start, opens the
// counter domain (app) over the CA client in effect (one provider for every procedure), the
// card reader (app/cardreader) and the notice printer's fonts, and Run starts the periodic jobs
// (jobs.go). The GUI (ui, through main) and nothing else builds on it.
package terminal

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	"madoguchi/app"
	"madoguchi/app/calink"
	"madoguchi/app/cardreader"
	"madoguchi/app/issue"
	"madoguchi/app/printout"
	"madoguchi/assets/fonts/printfonts"
	"madoguchi/internal/timesync"
)

// Options are the terminal's command-line settings. Non-empty CA, reader, printer and key
// values replace the stored settings and are kept (calink.Open).
type Options struct {
	DataDir               string
	CAURL, CACert, KeyURI string
	EnrolToken            string // one-time token: enrol on first start
	Reader                string // PC/SC reader ("" = the first one)
	Municipality          string // printed on notices; default: the enrolled municipality code
	PrintFonts            string // directory of the print fonts ("" = the bundled ones)
	Printer, CUPSServer   string // CUPS queue and scheduler
}

// Terminal is the counter terminal as started: the domain, its CA link and its card reader.
type Terminal struct {
	// Domain is the counter domain: every procedure gets its CA client from Link at each call.
	Domain *app.Terminal
	// Link is the CA link and the settings (the settings screen edits it; it prints too).
	Link *calink.Link
	// Cards watches the reader chosen in the settings (the status bar).
	Cards cardreader.Watcher
	// Report is what the start-up dialog tells the operators before anyone logs in (worded
	// by ui): a failed enrolment, an unreadable CA configuration, recovered issuances.
	Report StartupReport
	// CAAtStart says whether a CA client was in effect when the domain opened.
	CAAtStart bool

	fonts        *printFonts
	municipality string
}

// StartupReport is what the terminal did at start that the operators must know, in the
// domain's terms (ui.StartupReport has the same fields and words it).
type StartupReport struct {
	EnrolFailed      error              // enrolment with a token from the command line failed
	SettingsFailed   error              // the CA connection settings could not be read
	Recovered        []issue.Resolution // what became of each issuance a previous run left unfinished
	RecoveryDeferred bool               // another process was issuing: recovery was not run
}

// Open opens the terminal in o.DataDir (created 0700).
func Open(ctx context.Context, o Options) (*Terminal, error) {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// MkdirAll leaves an existing directory as it was; the data directory holds the terminal's
	// TLS key and the resident files, so it is narrowed to the owner every time.
	if err := os.Chmod(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	link, err := calink.Open(o.DataDir, calink.Settings{CAURL: o.CAURL, Reader: o.Reader, CACertFile: o.CACert,
		Printer: o.Printer, CUPSServer: o.CUPSServer, KeyURI: o.KeyURI})
	if err != nil {
		return nil, err
	}
	t := &Terminal{Link: link, Cards: cardreader.Watcher{Reader: o.Reader, Settings: link},
		fonts: &printFonts{dir: o.PrintFonts}, municipality: o.Municipality}
	link.TestPageFonts = t.fonts.printer
	if o.EnrolToken != "" && !link.Enrolled() {
		if tc, err := link.Enrol(ctx, o.EnrolToken); err != nil {
			log.Printf("enrolment with the CA failed: %v", err)
			t.Report.EnrolFailed = err
		} else {
			log.Printf("enrolled with the CA as terminal %s of municipality %s (certificate until %s)", tc.TerminalID, tc.Municipality, tc.NotAfter.Format("2006-01-02"))
		}
	}
	municipality := o.Municipality
	if c := link.Current().Certificate; municipality == "" && c != nil {
		municipality = printout.MunicipalityByCode(c.Municipality)
	}
	// The domain takes from the terminal, at each call, the CA client in effect, the card in
	// the reader chosen in the settings, the document printer and the municipality.
	cfg := app.Config{DBPath: filepath.Join(o.DataDir, "terminal.db"), Municipality: municipality, CurrentCA: link.CA,
		Cards: t.OpenCard, Printer: t.fonts.printer, MunicipalityOf: t.Municipality}
	if cfg.ResidentFileKey, err = link.ResidentFileKey(); err != nil {
		link.Close()
		return nil, err
	}
	c, err := link.Client()
	if err != nil {
		log.Printf("CA client: %v", err)
		t.Report.SettingsFailed = err
	}
	t.CAAtStart = c != nil
	// app.Open resolves unfinished issuances with the client of this moment before anyone
	// logs in; afterwards every procedure asks the link at each call (app.Config.CurrentCA).
	if t.Domain, err = app.Open(ctx, cfg); err != nil {
		link.Close()
		return nil, err
	}
	t.Report.Recovered, t.Report.RecoveryDeferred = t.Domain.Recovered(), t.Domain.RecoveryDeferred()
	calink.LogPrinter(link.Current())
	return t, nil
}

// OpenCard connects exclusively to the card in the reader chosen in the settings now.
func (t *Terminal) OpenCard(ctx context.Context) (issue.Card, func(), error) {
	return cardreader.Open(t.Link.Reader())
}

// Run starts the periodic jobs (jobs.go) until ctx ends: the resident-change outbox and the
// audit witness run whether or not a CA is set now (each send asks the link for the client in
// effect, so they wait for one, and a settings change wakes them), the daily audit backup and
// the clock check.
func (t *Terminal) Run(ctx context.Context) {
	if !t.CAAtStart {
		log.Printf("no CA client at start: the procedures that talk to the CA wait for enrolment or a CA URL in the settings")
	}
	go sendResidentChangesOn(ctx, t.Domain, time.Minute, t.Link.Changed)
	go witnessAuditOn(ctx, t.Domain, 10*time.Minute, t.Link.Changed) // log-outs send the head too
	go backupAuditEvery(ctx, t.Domain, 10*time.Minute)
	go checkClockEvery(ctx, t.Domain, timesync.Read, 10*time.Minute)
}

// Close closes the domain (waiting for log-outs' witness sends) and the CA link.
func (t *Terminal) Close() error {
	err := t.Domain.Close()
	t.Link.Close()
	return err
}

// Municipality is the issuing municipality printed on the counter's documents: the one given
// at start, else the enrolled municipality code.
func (t *Terminal) Municipality() string {
	if t.municipality != "" {
		return t.municipality
	}
	if c := t.Link.Current().Certificate; c != nil && c.Municipality != "" {
		return printout.MunicipalityByCode(c.Municipality)
	}
	return printout.MunicipalityUnset
}

// Printer returns the notice printer (fonts loaded on first use).
func (t *Terminal) Printer() (*printout.Printer, error) { return t.fonts.printer() }

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
