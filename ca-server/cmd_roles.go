package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/ceremony"
)

func init() {
	register(command{name: "staff", summary: "staff init|assign|withdraw|list: who holds which CA role (CA manager and internal auditor approve changes)", run: runStaff})
}

// requireRoles checks that operator (and second, for two-person duties)
// hold the roles duty needs in the data dir's staff register
// (ceremony.Duties; CPS §5.2.1.1: senior-operator work needs several
// people). A data dir without a register is not checked.
func requireRoles(dataDir, duty, operator, second string) error {
	if dataDir == "" {
		return nil // the command reports the missing --data-dir itself
	}
	return ceremony.CheckDuty(dataDir, duty, operator, second)
}

// runStaff keeps the staff register (ceremony/staff.go). Local only, like
// every administration of the CA (TS Art. 20(1)(iii)).
func runStaff(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: staff init|assign|withdraw|list [flags]", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("staff "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	manager := fs.String("ca-manager", "", "the CA manager approving (init: the first CA manager)")
	auditor := fs.String("internal-auditor", "", "the internal auditor approving (init: the first internal auditor)")
	person := fs.String("person", "", "assign/withdraw: the person")
	role := fs.String("role", "", "assign/withdraw: ca-manager, senior-operator, operator or internal-auditor")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *dataDir == "" {
		return fmt.Errorf("%w: --data-dir is required", errUsage)
	}
	ctx := context.Background()
	now := time.Now()
	switch sub {
	case "init":
		if err := ceremony.InitStaff(ctx, *dataDir, *manager, *auditor, now); err != nil {
			return err
		}
	case "assign", "withdraw":
		if err := ceremony.ChangeStaff(ctx, *dataDir, sub == "assign", *person, ceremony.StaffRole(*role), *manager, *auditor, now); err != nil {
			return err
		}
	case "list":
	default:
		return fmt.Errorf("%w: unknown staff command %q (init, assign, withdraw, list)", errUsage, sub)
	}
	reg, err := ceremony.LoadStaff(*dataDir)
	if err != nil {
		return err
	}
	if st, err := ceremony.LoadState(*dataDir); err == nil {
		fmt.Fprintf(stdout, "key-custodian\t%s\t(%d of %d shares, from the key ceremony)\n", strings.Join(st.Custodians, ","), st.Threshold, len(st.Custodians))
	}
	if reg == nil {
		fmt.Fprintln(stdout, "no staff register: roles are not checked (staff init)")
		return nil
	}
	holders := slices.Clone(reg.Holders)
	slices.SortFunc(holders, func(a, b ceremony.StaffHolder) int {
		return strings.Compare(string(a.Role)+a.Person, string(b.Role)+b.Person)
	})
	for _, h := range holders {
		fmt.Fprintf(stdout, "%s\t%s\tsince %s\tapproved by %s\n", h.Role, h.Person, h.Since.Format(time.DateOnly), strings.Join(h.ApprovedBy, ","))
	}
	return nil
}

// twoPersonDuty is a local command's duty done by two senior operators
// (CPS §5.2.1.1): its --operator and --second-operator flags, checked
// against the staff register and both named in the audit record.
type twoPersonDuty struct {
	action           string // the duty (ceremony.Duties) and the audit action
	operator, second string
}

// register adds --operator (what says what the operator does) and
// --second-operator.
func (d *twoPersonDuty) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&d.operator, "operator", defaultOperator(), what+" (audit record)")
	fs.StringVar(&d.second, "second-operator", "", "the second senior operator present (CPS §5.2.1.1: two people; checked against the staff register)")
}

// check checks both people against the data dir's staff register.
func (d *twoPersonDuty) check(dataDir string) error {
	return requireRoles(dataDir, d.action, d.operator, d.second)
}

// record writes the duty's audit record for target with err's outcome (ok
// or error) and returns err, joined with the audit log's error if the record
// could not be written.
func (d *twoPersonDuty) record(ctx context.Context, l *local, target string, err error) error {
	result := "ok"
	if err != nil {
		result = "error"
	}
	var detail string
	if d.second != "" {
		detail = "second operator " + d.second
	}
	if aerr := l.audit.Record(ctx, audit.Entry{Terminal: "local", Operator: d.operator, Action: d.action, Target: target, Result: result, Detail: detail}); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}
