package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"
)

func init() {
	register(command{name: "hold", summary: "put a certificate on hold on a phone report of a lost card (local call centre; audited)", run: runHold})
}

// runHold: CPS §4.9.13–14: a hold is set on a phone report, locally only;
// it is released only at a counter terminal after the identity checks.
func runHold(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	database := databaseFlag(fs)
	serial := fs.String("serial", "", "hexadecimal serial of the certificate")
	operator := fs.String("operator", defaultOperator(), "call-centre operator (audit record)")
	var secrets dutySecrets
	secrets.register(fs)
	note := fs.String("note", "", "the phone report: who called, when (required; no other personal data)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *serial == "" || *note == "" {
		return fmt.Errorf("%w: --serial and --note are required", errUsage)
	}
	// CPS §5.2.1.1: call-centre work of a (general or senior) operator.
	if _, err := requireRoles(*dataDir, *database, "certificate.hold", &secrets, *operator); err != nil {
		return err
	}
	ctx := context.Background()
	l, err := openLocal(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer l.Close()
	svc, err := newStatusService(l, *dataDir, nil, nil, nil, nil, nil, nil)
	if err != nil {
		return err
	}
	c, err := svc.Hold(ctx, *operator, *serial, *note)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "certificate %s (%s) on hold since %s; release only at a counter after identity checks\n", c.Serial, c.CertType, c.HeldAt.Format(time.RFC3339))
	return nil
}
