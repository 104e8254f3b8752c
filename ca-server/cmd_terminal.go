package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/user"
	"time"

	"madoguchi/ca-server/tlsca"
	"madoguchi/internal/wallclock"
)

func init() {
	register(command{name: "terminal-token", summary: "print a one-time enrolment token for a counter terminal", run: runTerminalToken})
	register(command{name: "terminal-revoke", summary: "revoke a counter terminal by its certificate serial", run: runTerminalRevoke})
}

func defaultOperator() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

func runTerminalToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("terminal-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	database := databaseFlag(fs)
	muni := fs.String("municipality", "", "6-digit local government code, e.g. 131016")
	ttl := fs.Duration("ttl", tlsca.DefaultTokenTTL, "token lifetime")
	duty := twoPersonDuty{action: "terminal.token"}
	duty.register(fs, "who issues the token")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := tlsca.ValidMunicipality(*muni); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := duty.check(*dataDir, *database); err != nil {
		return err
	}
	ctx := context.Background()
	l, err := openLocal(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer l.Close()
	tok, err := l.ca.NewEnrolmentToken(ctx, *muni, *ttl)
	if err := duty.record(ctx, l, *muni, err); err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "token for municipality %s, valid until %s; hand it over with the TLS CA certificate\n", *muni, wallclock.Now().Add(*ttl).Format(time.RFC3339))
	return nil
}

func runTerminalRevoke(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("terminal-revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	database := databaseFlag(fs)
	serial := fs.String("serial", "", "hexadecimal serial of the terminal's client certificate")
	duty := twoPersonDuty{action: "terminal.revoke"}
	duty.register(fs, "who revokes")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *serial == "" {
		return fmt.Errorf("%w: --serial is required", errUsage)
	}
	if err := duty.check(*dataDir, *database); err != nil {
		return err
	}
	ctx := context.Background()
	l, err := openLocal(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer l.Close()
	term, err := l.ca.RevokeTerminal(ctx, *serial)
	if err := duty.record(ctx, l, *serial, err); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "terminal %s (municipality %s) revoked at %s\n", term.ID, term.Municipality, term.RevokedAt.Format(time.RFC3339))
	return nil
}
