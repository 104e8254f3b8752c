// Command madoguchi is the integrated counter terminal (統合端末, TS Art. 1(iii)): one Fyne window
// hosting the reception and CS applications for municipal clerks. It parses flags, opens the
// terminal (app/terminal: the domain, its CA link, card reader, printer and periodic jobs) and
// hands it to the screens (ui). The demo's virtual finger (wiring.go) is the one other thing
// here.
//
//	madoguchi [--data-dir DIR] [--reader NAME] [--ca-url URL] [--ca-cert FILE] [--enrol-token TOKEN]
//	          [--municipality NAME] [--print-fonts DIR] [--printer QUEUE [--cups-server SOCKET|HOST[:PORT]]]
//	          [--lang ja|en]
//	madoguchi cli [-db FILE] [-user ID] COMMAND ...   the same domain from the command line (app/cli)
//	madoguchi holder revoke -ca-url URL ...           the holder's online revocation of the signature certificate (app/holder)
//
// Demo build only (go build -tags demo, as internal/cmd/demo builds it; demofinger.go): when
// MADOGUCHI_VIRTUAL_FINGER names the socket of libfprint's virtual device (set by
// internal/cmd/demo), the fingerprint step offers a button that presses the print
// MADOGUCHI_VIRTUAL_FINGER_PRINT on it, because a demo has no finger to press. The production
// build has no such button and does not link the demo's service supervisor (internal/services).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"madoguchi/app"
	"madoguchi/app/cli"
	"madoguchi/app/holder"
	"madoguchi/app/printout/spool"
	counter "madoguchi/app/terminal" // named so: main_test.go has a type terminal
	"madoguchi/assets"
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
	opts := options{language: *language, Options: counter.Options{DataDir: *dataDir, CAURL: *caURL, Reader: *reader, CACert: *caCert,
		EnrolToken: *enrolToken, Municipality: *municipality, PrintFonts: *printFontDir,
		Printer: *printer, CUPSServer: *cupsServer, KeyURI: *keyURI}}
	if err := run(opts); err != nil {
		log.Fatal(err)
	}
}

// options are the terminal's command-line settings.
type options struct {
	counter.Options
	language string
}

func run(o options) error {
	if err := ui.UseLanguage(o.language); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	term, err := counter.Open(ctx, o.Options)
	if err != nil {
		return err
	}
	defer term.Close()
	term.Run(ctx) // the periodic jobs: outbox, audit witness, audit backup, clock check
	if empty, err := term.Domain.NeedsBootstrap(ctx); err != nil {
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
	shell := ui.NewShell(w, ui.AppBackend{Terminal: term.Domain}, status, ui.Screens())
	// The hand-over folder between the CS and reception applications of this terminal.
	shell.ResidentFileDir = filepath.Join(o.DataDir, "resident-files")
	shell.Terminal = ui.TerminalWiring{Settings: term.Link, NoticeDir: filepath.Join(o.DataDir, "notices"), Preview: ui.Pdftoppm{},
		Print: term.Link} // the queue in the settings at each print (app/calink)
	shell.DemoFinger = demoFinger()
	status.Watch(ctx, term.Cards, term.Link)
	ui.ShowStartupReport(shell, ui.StartupReport(term.Report))
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
