package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/user"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/tlsca"
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
	muni := fs.String("municipality", "", "6-digit local government code, e.g. 131016")
	ttl := fs.Duration("ttl", tlsca.DefaultTokenTTL, "token lifetime")
	operator := fs.String("operator", defaultOperator(), "who issues the token (audit record)")
	second := fs.String("second-operator", "", "the second senior operator present (CPS §5.2.1.1: two people; checked against the staff register)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := tlsca.ValidMunicipality(*muni); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := requireRoles(*dataDir, "terminal.token", *operator, *second); err != nil {
		return err
	}
	ctx := context.Background()
	l, err := openLocal(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer l.Close()
	tok, err := l.ca.NewEnrolmentToken(ctx, *muni, *ttl)
	result := "ok"
	if err != nil {
		result = "error"
	}
	if aerr := l.audit.Record(ctx, audit.Entry{Terminal: "local", Operator: *operator, Action: "terminal.token", Target: *muni, Result: result, Detail: secondDetail(*second)}); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "token for municipality %s, valid until %s; hand it over with the TLS CA certificate\n", *muni, time.Now().Add(*ttl).Format(time.RFC3339))
	return nil
}

func runTerminalRevoke(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("terminal-revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	serial := fs.String("serial", "", "hexadecimal serial of the terminal's client certificate")
	operator := fs.String("operator", defaultOperator(), "who revokes (audit record)")
	second := fs.String("second-operator", "", "the second senior operator present (CPS §5.2.1.1: two people; checked against the staff register)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *serial == "" {
		return fmt.Errorf("%w: --serial is required", errUsage)
	}
	if err := requireRoles(*dataDir, "terminal.revoke", *operator, *second); err != nil {
		return err
	}
	ctx := context.Background()
	l, err := openLocal(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer l.Close()
	term, err := l.ca.RevokeTerminal(ctx, *serial)
	result := "ok"
	if err != nil {
		result = "error"
	}
	if aerr := l.audit.Record(ctx, audit.Entry{Terminal: "local", Operator: *operator, Action: "terminal.revoke", Target: *serial, Result: result, Detail: secondDetail(*second)}); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "terminal %s (municipality %s) revoked at %s\n", term.ID, term.Municipality, term.RevokedAt.Format(time.RFC3339))
	return nil
}
