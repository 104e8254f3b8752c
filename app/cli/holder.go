package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"madoguchi/app"
)

// holderRecords: "holder-records -case ID": the holder's own issuance and revocation records
// made at this terminal (R02 II-8), on an identity-checked, approved case of the holder.
func (r *runner) holderRecords(ctx context.Context, s *app.Session, a []string) error {
	fs := flag.NewFlagSet("holder-records", flag.ContinueOnError)
	fs.SetOutput(r.env.Stderr)
	caseID := fs.Int64("case", 0, "the holder's approved case")
	if err := fs.Parse(a); err != nil || *caseID <= 0 || fs.NArg() != 0 {
		return usageError("holder-records -case ID")
	}
	rec, err := s.HolderRecords(ctx, *caseID)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "%s: %d records at this terminal (as of %s)\n", rec.Name, len(rec.Events), rec.ProducedAt.Local().Format("2006-01-02 15:04"))
	tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tTYPE\tSERIAL\tREASON\tCASE")
	for _, e := range rec.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d %s\n", e.At.Local().Format("2006-01-02 15:04:05"), e.Event, e.CertType, e.Serial, e.Reason, e.CaseID, e.CaseKind)
	}
	return tw.Flush()
}
