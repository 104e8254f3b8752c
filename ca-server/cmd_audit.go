package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/internal/wallclock"
)

func init() {
	register(command{name: "audit", summary: "verify the audit log (or a backup), show one operator's records, back it up (local, internal auditor)", run: runAudit})
}

// runAudit: "audit verify" and "audit show --operator X". CPS §5.4: only the
// internal auditor reviews the records, at the data centre; TS Art. 20(2):
// one operator's history can be shown on its own.
func runAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: audit verify|show|backup|witness [flags]", errUsage)
	}
	sub := args[0]
	switch sub {
	case "backup":
		return runAuditBackup(args[1:], stdout, stderr) // cmd_audit_backup.go
	case "witness":
		return runAuditWitness(args[1:], stdout, stderr) // cmd_audit_witness.go
	}
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	database := databaseFlag(fs)
	operator := fs.String("operator", "", "show: the operator whose records to list")
	backupFile := fs.String("backup", "", "verify: a backup file (audit backup) instead of the live log, checked on its own")
	backupDir := fs.String("backup-dir", "", "verify: also check every backup in this directory on its own and against each other (each extends the one before), and the live log against the newest")
	witnessDir := fs.String("witness-dir", "", "verify: also check the live log against the copies kept there by `audit witness`")
	maxAge := fs.Duration("max-unprotected-age", defaultMaxUnprotectedAge, "verify: fail when records after the last checkpoint are older than this (a running server checkpoints every --audit-checkpoint-every, 5m by default, and at shutdown; 0: no limit)")
	auditor := fs.String("auditor", defaultOperator(), "the internal auditor reviewing (checked against the role register and confirmed with their own passphrase, CPS §5.4)")
	var secrets dutySecrets
	secrets.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if sub != "verify" && sub != "show" {
		return fmt.Errorf("%w: unknown audit command %q (verify, show, backup, witness)", errUsage, sub)
	}
	if *dataDir == "" {
		return fmt.Errorf("%w: --data-dir is required (the checkpoint keys come from it)", errUsage)
	}
	if _, err := requireRoles(*dataDir, *database, "audit."+sub, &secrets, *auditor); err != nil {
		return err
	}
	if sub == "verify" && *maxAge < 0 {
		return fmt.Errorf("%w: --max-unprotected-age must not be negative", errUsage)
	}
	ctx := context.Background()
	switch sub {
	case "verify":
		// Public keys only, from the ceremony record (local_keys.go).
		keys, err := auditVerifyKeys(*dataDir)
		if err != nil {
			return err
		}
		if *backupFile != "" {
			// A backup on its own: its chain, its checkpoints' signatures.
			bf, err := audit.OpenBackup(*backupFile)
			if err != nil {
				return err
			}
			defer bf.Close()
			rep, err := audit.VerifyKeys(ctx, bf, keys)
			printVerifyReport(stdout, rep)
			return err
		}
		var anchors []audit.Anchor
		if *backupDir != "" {
			checks, err := audit.CheckBackups(ctx, *backupDir, keys)
			for _, c := range checks {
				fmt.Fprintf(stdout, "%s: %d records, checkpoint %d; verified, extends the backup before it\n", c.Path, c.Report.Records, c.Report.TipNumber)
			}
			if err != nil {
				return err
			}
			if len(checks) > 0 {
				anchors = append(anchors, checks[len(checks)-1].Report.Anchor("backup "+checks[len(checks)-1].Path))
			}
		}
		if *witnessDir != "" {
			a, err := witnessAnchors(ctx, keys, auditWitnesses{witnessDir: *witnessDir})
			if err != nil {
				return err
			}
			anchors = append(anchors, a...)
		}
		l, err := openLocal(ctx, *dataDir, *database)
		if err != nil {
			return err
		}
		defer l.st.Close()
		// The live log: every checkpoint present, their chain, at least
		// one checkpoint, no stale unprotected records, and every witness.
		rep, err := audit.VerifyWith(ctx, l.st, audit.VerifyOptions{Keys: keys, RequireCheckpoint: true,
			MaxUnprotectedAge: *maxAge, Now: wallclock.Now(), Anchors: anchors})
		printVerifyReport(stdout, rep)
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
		return fmt.Errorf("%w: unknown audit command %q (verify, show, backup, witness)", errUsage, sub)
	}
}

// defaultMaxUnprotectedAge is how old records after the last checkpoint
// may be before `audit verify` fails: a running server checkpoints every
// --audit-checkpoint-every (5 minutes by default) and at shutdown, so a
// record stays unprotected for minutes; an hour leaves room for a restart
// or a slow day's backup, while checkpoints deleted more than an hour ago
// (or a server not run since local commands wrote records) are reported.
const defaultMaxUnprotectedAge = time.Hour

func printVerifyReport(w io.Writer, rep audit.Report) {
	for _, p := range rep.Problems {
		fmt.Fprintln(w, p.String())
	}
	fmt.Fprintf(w, "%d records, %d checkpoints (last at record %d), %d records after the last checkpoint\n",
		rep.Records, rep.Checkpoints, rep.LastCheckpoint, rep.Unprotected)
}
