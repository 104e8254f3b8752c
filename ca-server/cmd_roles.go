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
	"madoguchi/internal/wallclock"
)

func init() {
	register(command{name: "staff", summary: "staff init|assign|withdraw|credential|list: who holds which CA role (CA manager and internal auditor approve changes, each with their own passphrase)", run: runStaff})
}

// requireRoles checks that the people named hold the roles duty needs in
// the data dir's staff register (ceremony.Duties; CPS §5.2.1.1: senior-
// operator work needs several people) and that each confirms with their
// own personal passphrase (--secret NAME=SOURCE, or asked at the terminal):
// a typed name proves nothing (TS Art. 27, 45). A refusal is recorded in
// the CA audit log (names and reason, never a secret) before anything is
// done. It returns the people who confirmed. A dev CA, or a data dir
// without a key ceremony, without a register is not checked.
func requireRoles(dataDir, database, duty string, secrets *dutySecrets, people ...string) ([]string, error) {
	if dataDir == "" {
		return nil, nil // the command reports the missing --data-dir itself
	}
	fn, err := secrets.fn()
	if err != nil {
		return nil, err
	}
	who, err := ceremony.CheckDuty(dataDir, duty, people, fn)
	if err == nil {
		return who, nil
	}
	return nil, recordRefusal(dataDir, database, duty, people, err)
}

// recordRefusal writes a refused duty to the CA audit log: the names given
// (unconfirmed: the operator field says so) and the reason.
func recordRefusal(dataDir, database, duty string, people []string, refusal error) error {
	ctx := context.Background()
	l, err := openLocal(ctx, dataDir, database)
	if err != nil {
		return errors.Join(refusal, err)
	}
	defer l.Close()
	var named []string
	for _, p := range people {
		if p != "" {
			named = append(named, p)
		}
	}
	e := audit.Entry{Terminal: "local", Operator: "unconfirmed", Action: duty, Result: "refused",
		Detail: "named " + strings.Join(named, ", ") + ": " + refusal.Error()}
	if aerr := l.audit.Record(ctx, e); aerr != nil {
		return errors.Join(refusal, aerr)
	}
	return refusal
}

// dutySecrets are the --secret NAME=SOURCE flags: where each named person's
// own passphrase is read (ceremony.SecretFunc).
type dutySecrets struct{ vals listFlag }

func (d *dutySecrets) register(fs *flag.FlagSet) {
	fs.Var(&d.vals, "secret", "NAME=SOURCE: where person NAME's own passphrase (staff credential) is read: tty (the default: asked at the terminal, no echo) "+
		"or fd:N (a file descriptor); repeat per person; never a flag value. A new passphrase: "+ceremony.PassphraseRule)
}

func (d *dutySecrets) fn() (ceremony.SecretFunc, error) {
	var vals []string
	if d != nil {
		vals = d.vals
	}
	srcs, err := secretSources("secret", vals)
	if err != nil {
		return nil, err
	}
	return func(person string, purpose ceremony.SecretPurpose) (string, error) {
		if purpose == ceremony.SecretNew {
			return readNewSecret(srcs[person], fmt.Sprintf("%s, choose your personal passphrase (at least %d characters): ", person, ceremony.MinPassphraseLen), false)
		}
		return readSecretSource(srcs[person], fmt.Sprintf("%s, your personal passphrase: ", person), false)
	}, nil
}

// runStaff keeps the staff register (ceremony/staff.go). Local only, like
// every administration of the CA (TS Art. 20(1)(iii)).
func runStaff(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: staff init|assign|withdraw|credential|list [flags]", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("staff "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	manager := fs.String("ca-manager", "", "the CA manager approving (init: the first CA manager)")
	auditor := fs.String("internal-auditor", "", "the internal auditor approving (init: the first internal auditor)")
	person := fs.String("person", "", "assign/withdraw/credential: the person")
	role := fs.String("role", "", "assign/withdraw: ca-manager, senior-operator, operator or internal-auditor")
	var secrets dutySecrets
	secrets.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *dataDir == "" {
		return fmt.Errorf("%w: --data-dir is required", errUsage)
	}
	ctx := context.Background()
	now := wallclock.Now()
	sec, err := secrets.fn()
	if err != nil {
		return err
	}
	// Every person named confirms with their own passphrase, or chooses
	// one (init; a person assigned a first role; credential): ceremony/staff.go.
	switch sub {
	case "init":
		if err := ceremony.InitStaff(ctx, *dataDir, *manager, *auditor, sec, now); err != nil {
			return err
		}
	case "assign", "withdraw":
		if err := ceremony.ChangeStaff(ctx, *dataDir, sub == "assign", *person, ceremony.StaffRole(*role), *manager, *auditor, sec, now); err != nil {
			return err
		}
	case "credential":
		if err := ceremony.SetCredential(ctx, *dataDir, *person, *manager, *auditor, sec, now); err != nil {
			return err
		}
	case "list":
	default:
		return fmt.Errorf("%w: unknown staff command %q (init, assign, withdraw, credential, list)", errUsage, sub)
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
		cred := "credential set"
		if reg.Credentials[h.Person] == nil {
			cred = "NO CREDENTIAL (staff credential)"
		}
		fmt.Fprintf(stdout, "%s\t%s\tsince %s\tapproved by %s\t%s\n", h.Role, h.Person, h.Since.Format(time.DateOnly), strings.Join(h.ApprovedBy, ","), cred)
	}
	return nil
}

// twoPersonDuty is a local command's duty done by two senior operators
// (CPS §5.2.1.1): its --operator and --second-operator flags, checked
// against the staff register, each confirmed by that person's own
// passphrase (--secret, or asked at the terminal), both named in the audit
// record.
type twoPersonDuty struct {
	action           string // the duty (ceremony.Duties) and the audit action
	operator, second string
	secrets          dutySecrets
	confirmed        []string // who confirmed with their own secret (check)
}

// register adds --operator (what says what the operator does),
// --second-operator and --secret.
func (d *twoPersonDuty) register(fs *flag.FlagSet, what string) {
	fs.StringVar(&d.operator, "operator", defaultOperator(), what+" (audit record; confirmed with their own passphrase)")
	fs.StringVar(&d.second, "second-operator", "", "the second senior operator present (CPS §5.2.1.1: two different people, each confirming with their own passphrase; checked against the staff register)")
	d.secrets.register(fs)
}

// check checks both people against the data dir's staff register and
// their own secrets; a refusal is audited.
func (d *twoPersonDuty) check(dataDir, database string) error {
	who, err := requireRoles(dataDir, database, d.action, &d.secrets, d.operator, d.second)
	d.confirmed = who
	return err
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
	if len(d.confirmed) > 0 {
		detail += "; confirmed by own secret: " + strings.Join(d.confirmed, ", ")
	}
	if aerr := l.audit.Record(ctx, audit.Entry{Terminal: "local", Operator: d.operator, Action: d.action, Target: target, Result: result, Detail: detail}); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}
