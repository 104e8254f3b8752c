package cli

import (
	"context"
	"flag"
	"fmt"

	"madoguchi/app"
)

// auditBackup: "audit backup -to DIR": the auditor's copy of the terminal's
// audit chain (CPS §5.4), verified on its own; never replaces a file.
func (r *runner) auditBackup(ctx context.Context, s *app.Session, a []string) error {
	fs := flag.NewFlagSet("audit backup", flag.ContinueOnError)
	fs.SetOutput(r.env.Stderr)
	to := fs.String("to", "", "backup directory (file audit-YYYY-MM-DD[.N].db)")
	if err := fs.Parse(a); err != nil || *to == "" || fs.NArg() != 0 {
		return usageError("audit backup -to DIR")
	}
	res, err := s.BackupAudit(ctx, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "%s: %d records, verified\n", res.Path, res.Records)
	return nil
}
