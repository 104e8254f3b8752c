// Command madoguchi-cli is the terminal's command-line driver (`madoguchi cli ...`, app/cli)
// built without the Fyne window: the same cli.Run that the root binary dispatches to, for
// headless drivers (the fault campaign, internal/campaign) that start, kill and restart the
// terminal many times and cannot afford Fyne's GL build. Its default database is ./terminal.db;
// pass -db.
package main

import (
	"context"
	"os"

	"madoguchi/app"
	"madoguchi/app/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Config: app.Config{DBPath: "terminal.db"}}))
}
