// Command madoguchi is the integrated counter terminal (統合端末, TS Art. 1(iii)): one Fyne window
// hosting the reception and CS applications for municipal clerks. It parses flags, opens the
// counter domain (app), and wires it, the card reader and the CA link to the screens (ui);
// nothing else lives here.
//
//	madoguchi [--data-dir DIR] [--reader NAME] [--ca-url URL] [--lang ja|en]
//	madoguchi cli [-db FILE] [-user ID] COMMAND ...   the same domain from the command line (app/cli)
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

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"madoguchi/app"
	"madoguchi/app/cli"
	"madoguchi/assets"
	"madoguchi/ui"
)

// AppID is the terminal's Fyne application id (also in FyneApp.toml).
const AppID = "jp.madoguchi.terminal"

func main() {
	log.SetPrefix("madoguchi: ")
	log.SetFlags(log.LstdFlags)
	if len(os.Args) > 1 && os.Args[1] == "cli" {
		os.Exit(cli.Run(context.Background(), os.Args[2:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			Config: app.Config{DBPath: filepath.Join(defaultDataDir(), "terminal.db")}}))
	}
	dataDir := flag.String("data-dir", defaultDataDir(), "directory of the terminal database (terminal.db)")
	caURL := flag.String("ca-url", "", "https URL of ca-server (empty: no CA link)")
	reader := flag.String("reader", "", "PC/SC reader name (empty: the first reader pcscd lists)")
	language := flag.String("lang", ui.Languages[0], "language of the screens: ja or en")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "madoguchi: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dataDir, *caURL, *reader, *language); err != nil {
		log.Fatal(err)
	}
}

func run(dataDir, caURL, reader, language string) error {
	if err := ui.UseLanguage(language); err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	term, err := app.Open(ctx, app.Config{DBPath: filepath.Join(dataDir, "terminal.db")})
	if err != nil {
		return err
	}
	defer term.Close()
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
	shell := ui.NewShell(w, ui.AppBackend{Terminal: term}, status, ui.Screens())
	// The hand-over folder between the CS and reception applications of this terminal.
	shell.ResidentFileDir = filepath.Join(dataDir, "resident-files")
	shell.DemoFinger = demoFinger()
	status.Watch(ctx, pcscCardWatcher{reader: reader}, caWatcher(caURL))
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
