// Command madoguchi is the integrated counter terminal (統合端末, TS Art. 1(iii)): one Fyne window
// hosting the reception and CS applications for municipal clerks. It parses flags, opens the
// counter domain (app), and wires it, the card reader and the CA link to the screens (ui);
// nothing else lives here.
//
//	madoguchi [--data-dir DIR] [--reader NAME] [--ca-url URL] [--ca-cert FILE] [--enrol-token TOKEN]
//	          [--municipality NAME] [--print-fonts DIR] [--printer QUEUE [--cups-server SOCKET|HOST[:PORT]]]
//	          [--lang ja|en]
//	madoguchi cli [-db FILE] [-user ID] COMMAND ...   the same domain from the command line (app/cli)
//	madoguchi holder revoke -ca-url URL ...           the holder's online revocation of the signature certificate (app/holder)
//
// Demo only: when MADOGUCHI_VIRTUAL_FINGER names the socket of libfprint's virtual device (set
// by internal/cmd/demo, never on a real terminal), the fingerprint step offers a button that
// presses the print MADOGUCHI_VIRTUAL_FINGER_PRINT on it, because a demo has no finger to press.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"madoguchi/app"
	"madoguchi/app/cli"
	"madoguchi/app/holder"
	"madoguchi/app/printout"
	"madoguchi/app/printout/spool"
	"madoguchi/assets"
	"madoguchi/internal/timesync"
	"madoguchi/ui"
)

// AppID is the terminal's Fyne application id (also in FyneApp.toml).
const AppID = "jp.madoguchi.terminal"

func main() {
	log.SetPrefix("madoguchi: ")
	log.SetFlags(log.LstdFlags)
	if len(os.Args) > 1 && os.Args[1] == "holder" { // the holder's own commands (app/holder)
		os.Exit(holder.Run(context.Background(), os.Args[2:], holder.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	if len(os.Args) > 1 && os.Args[1] == "cli" {
		os.Exit(cli.Run(context.Background(), os.Args[2:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			Config: app.Config{DBPath: filepath.Join(defaultDataDir(), "terminal.db")}}))
	}
	dataDir := flag.String("data-dir", defaultDataDir(), "directory of the terminal database (terminal.db)")
	caURL := flag.String("ca-url", "", "https URL of ca-server (empty: no CA link)")
	reader := flag.String("reader", "", "PC/SC reader name (empty: the first reader pcscd lists)")
	language := flag.String("lang", ui.Languages[0], "language of the screens: ja or en")
	caCert := flag.String("ca-cert", "", "PEM file of the internal TLS CA certificate that signs ca-server's certificate (kept in the settings)")
	enrolToken := flag.String("enrol-token", "", "one-time enrolment token from `ca-server terminal-token`: on first start the terminal makes its TLS key and enrols")
	municipality := flag.String("municipality", "", "issuing municipality printed on notices (e.g. 東京都千代田区長); default: the enrolled municipality code")
	printer := flag.String("printer", "", "CUPS queue that prints the counter's documents; kept in the settings (empty: the queue set on the settings screen, if any; none: documents are only saved as PDF)")
	cupsServer := flag.String("cups-server", "", "CUPS scheduler of --printer: its unix socket path or host[:port] (default: $CUPS_SERVER, else "+spool.DefaultServer+")")
	keyURI := flag.String("key-uri", "", "RFC 7512 pkcs11: URI of the token that holds the terminal's TLS key and resident-file HMAC key, e.g. pkcs11:token=madoguchi?module-path=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so&pin-source=file:/etc/madoguchi/token.pin (kept in the settings; empty: the key file in the data directory)")
	printFontDir := flag.String("print-fonts", "", "directory of MadoguchiPrintJP-Regular.ttf and -Bold.ttf for printed documents (default: the fonts bundled in the binary)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "madoguchi: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	opts := options{dataDir: *dataDir, caURL: *caURL, reader: *reader, language: *language, caCert: *caCert,
		enrolToken: *enrolToken, municipality: *municipality, printFonts: *printFontDir,
		printer: *printer, cupsServer: *cupsServer, keyURI: *keyURI}
	if err := run(opts); err != nil {
		log.Fatal(err)
	}
}

// options are the terminal's command-line settings.
type options struct {
	dataDir, caURL, reader, language string
	caCert, enrolToken, municipality string
	printFonts                       string
	printer, cupsServer              string // CUPS queue and scheduler; no queue: no printing
	keyURI                           string // pkcs11: URI of the key token (app/termkey)
}

func run(o options) error {
	dataDir := o.dataDir
	if err := ui.UseLanguage(o.language); err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// MkdirAll leaves an existing directory as it was; the data directory holds the terminal's
	// TLS key and the resident files, so it is narrowed to the owner every time.
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	link, err := openCALink(dataDir, linkSettings{CAURL: o.caURL, Reader: o.reader, CACertFile: o.caCert,
		Printer: o.printer, CUPSServer: o.cupsServer, KeyURI: o.keyURI})
	if err != nil {
		return err
	}
	// What the start-up dialog tells the operators before anyone logs in (worded by ui).
	var report ui.StartupReport
	if o.enrolToken != "" && !link.enrolled() {
		if tc, err := link.Enrol(ctx, o.enrolToken); err != nil {
			log.Printf("enrolment with the CA failed: %v", err)
			report.EnrolFailed = err
		} else {
			log.Printf("enrolled with the CA as terminal %s of municipality %s (certificate until %s)", tc.TerminalID, tc.Municipality, tc.NotAfter.Format("2006-01-02"))
		}
	}
	municipality := o.municipality
	if c := link.Current().Certificate; municipality == "" && c != nil {
		municipality = printout.MunicipalityByCode(c.Municipality)
	}
	cfg := app.Config{DBPath: filepath.Join(dataDir, "terminal.db"), Municipality: municipality}
	if cfg.ResidentFileKey, err = link.residentFileKey(); err != nil {
		return err
	}
	if c, err := link.Client(); err != nil {
		log.Printf("CA client: %v", err)
		report.SettingsFailed = err
	} else if c != nil {
		cfg.CA = c // app.Open resolves unfinished issuances before anyone logs in
	}
	term, err := app.Open(ctx, cfg)
	if err != nil {
		return err
	}
	report.Recovered, report.RecoveryDeferred = term.Recovered(), term.RecoveryDeferred()
	defer term.Close()
	if cfg.CA != nil {
		go sendResidentChangesEvery(ctx, term, time.Minute)
		go witnessAuditEvery(ctx, term, 10*time.Minute) // wiring.go; log-outs send the head too
	}
	go backupAuditEvery(ctx, term, 10*time.Minute)
	go checkClockEvery(ctx, term, timesync.Read, 10*time.Minute)
	if empty, err := term.NeedsBootstrap(ctx); err != nil {
		return err
	} else if empty {
		log.Printf("the terminal has no operators yet: create the first supervisor with the terminal CLI's bootstrap command")
	}

	a := fyneapp.NewWithID(AppID)
	a.SetIcon(assets.Icon)
	a.Settings().SetTheme(ui.NewTheme())
	w := a.NewWindow(ui.WindowTitle)
	w.SetIcon(assets.Icon)
	w.Resize(fyne.NewSize(1200, 800))
	w.SetMaster()

	status := ui.NewStatus()
	fonts := &printFonts{dir: o.printFonts}
	backend := ui.AppBackend{Terminal: term, Issuance: issuanceLink(term, link, fonts, o.municipality)}
	shell := ui.NewShell(w, backend, status, ui.Screens())
	// The hand-over folder between the CS and reception applications of this terminal.
	shell.ResidentFileDir = filepath.Join(dataDir, "resident-files")
	shell.Terminal = ui.TerminalWiring{Settings: link, NoticeDir: filepath.Join(dataDir, "notices"), Preview: ui.Pdftoppm{}}
	link.testPageFonts = fonts.printer
	shell.Terminal.Print = link // the queue in the settings at each print (printer.go)
	logPrinter(link.Current())
	shell.DemoFinger = demoFinger()
	status.Watch(ctx, pcscCardWatcher{reader: o.reader, link: link}, link)
	ui.ShowStartupReport(shell, report)
	w.ShowAndRun()
	return nil
}

// defaultDataDir is $XDG_DATA_HOME/madoguchi, or ~/.local/share/madoguchi.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "madoguchi")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "madoguchi")
	}
	return "madoguchi-data"
}
