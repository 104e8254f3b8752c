package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"madoguchi/ca-server/audit"
)

func init() {
	register(command{name: "audit", summary: "verify the audit log (or a backup), show one operator's records, back it up (local, internal auditor)", run: runAudit})
}

// runAudit: "audit verify" and "audit show --operator X". CPS §5.4: only the
// internal auditor reviews the records, at the data centre; TS Art. 20(2):
// one operator's history can be shown on its own.
func runAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: audit verify|show|backup [flags]", errUsage)
	}
	sub := args[0]
	if sub == "backup" {
		return runAuditBackup(args[1:], stdout, stderr) // cmd_audit_backup.go
	}
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	database := databaseFlag(fs)
	operator := fs.String("operator", "", "show: the operator whose records to list")
	backupFile := fs.String("backup", "", "verify: a backup file (audit backup) instead of the live log, checked on its own")
	auditor := fs.String("auditor", defaultOperator(), "the internal auditor reviewing (checked against the role register and confirmed with their own passphrase, CPS §5.4)")
	var secrets dutySecrets
	secrets.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if sub != "verify" && sub != "show" {
		return fmt.Errorf("%w: unknown audit command %q (verify, show, backup)", errUsage, sub)
	}
	if *dataDir == "" {
		return fmt.Errorf("%w: --data-dir is required (the checkpoint keys come from it)", errUsage)
	}
	if _, err := requireRoles(*dataDir, *database, "audit."+sub, &secrets, *auditor); err != nil {
		return err
	}
	ctx := context.Background()
	switch sub {
	case "verify":
		var src audit.Reader
		if *backupFile != "" {
			bf, err := audit.OpenBackup(*backupFile)
			if err != nil {
				return err
			}
			defer bf.Close()
			src = bf
		} else {
			l, err := openLocal(ctx, *dataDir, *database)
			if err != nil {
				return err
			}
			defer l.st.Close()
			src = l.st
		}
		// Public keys only (local_keys.go): the HSM key's certificate from
		// the ceremony state, and an older data dir's file key.
		keys, err := auditVerifyKeys(*dataDir)
		if err != nil {
			return err
		}
		rep, err := audit.VerifyKeys(ctx, src, keys)
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stdout, "%d records, %d checkpoints (last at record %d), %d records after the last checkpoint\n",
			rep.Records, rep.Checkpoints, rep.LastCheckpoint, rep.Unprotected)
		return err
	case "show":
		if *operator == "" {
			return fmt.Errorf("%w: audit show needs --operator", errUsage)
		}
		l, err := openLocal(ctx, *dataDir, *database)
		if err != nil {
			return err
		}
		defer l.st.Close()
		after := int64(0)
		for {
			recs, err := l.st.AuditRecordsByOperator(ctx, *operator, after, 500)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				return nil
			}
			for _, r := range recs {
				fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.At.Format(time.RFC3339Nano), r.Terminal, r.Action, r.Target, r.Result, r.Detail)
				after = r.Seq
			}
		}
	default:
		return fmt.Errorf("%w: unknown audit command %q (verify, show, backup)", errUsage, sub)
	}
}
