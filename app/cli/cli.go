// Package cli is the terminal's command-line driver (`madoguchi cli ...`): operator management,
// log-in, resident search/export/import and audit review through the same app.Terminal as the
// GUI, so every command goes through the same permission checks and audit records.
//
// Log-in: -user names the operator. Operators exempted from biometrics give their password on
// the first line of standard input (never on the command line); others press their finger on
// the reader. New passwords (bootstrap, exempt) are read from the next line of standard input.
//
// First run: `madoguchi cli -db terminal.db bootstrap -id sup1 -name "管理 太郎" -finger
// right-index-finger` enrols the first supervisor's finger (5 presses); on a terminal without a
// reader yet, `... bootstrap -id sup1 -name ... -reason "指紋装置の設置前"` with the password on
// standard input creates a password-exempt supervisor instead (TS Art. 3(3)).
//
// Exit status: 0 success, 1 refused or failed (Japanese message and English detail on stderr),
// 2 usage error.
package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"madoguchi/app"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/pinrule"
	"madoguchi/app/resident"
	"madoguchi/app/termkey"
	"madoguchi/app/workflow"
)

// Env is the process environment the CLI runs in (injected for tests).
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Config is the base terminal configuration; -db overrides DBPath.
	Config app.Config
}

type runner struct {
	env      Env
	in       *bufio.Reader
	term     *app.Terminal
	user     string
	out      io.Writer
	usage    func()
	pins     *bufio.Reader // the applicant's PIN source (-pin-fd), opened on first use
	pinFD    int
	pinFile  *os.File
	pinQueue map[pinrule.Kind][]pinrule.PIN // entries read ahead for the other kind
	reader   string                         // the card reader of the command (-reader): app.Config.Cards opens it
}

type usageError string

func (u usageError) Error() string { return string(u) }

// Run executes one command and returns the exit status.
func Run(ctx context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("madoguchi cli", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	db := fs.String("db", env.Config.DBPath, "terminal database file")
	user := fs.String("user", "", "operator id to log in as")
	var caFiles app.CAFiles
	fs.StringVar(&caFiles.URL, "ca-url", "", "CA base URL (https://host:port); with it the terminal recovers unfinished issuances at start")
	fs.StringVar(&caFiles.CertFile, "ca-cert", "", "this terminal's client certificate from enrolment (PEM)")
	fs.StringVar(&caFiles.KeyFile, "ca-key", "", "its private key (PEM)")
	fs.StringVar(&caFiles.RootFile, "ca-root", "", "the internal TLS CA certificate pinned at enrolment (PEM)")
	keyURI := fs.String("key-uri", "", "pkcs11: URI of the terminal's key token (RFC 7512): the resident-file HMAC key and, without -ca-key, the TLS key (as the terminal's --key-uri)")
	signCA := fs.String("sign-ca", "", "installed signature CA certificate (PEM), checked against the card read-back")
	authCA := fs.String("auth-ca", "", "installed user-authentication CA certificate (PEM)")
	municipality := fs.String("municipality", env.Config.Municipality, "municipality printed on the counter's documents")
	pinFD := fs.Int("pin-fd", 0, "file descriptor the applicant's PINs are read from (0: standard input after the password); never on the command line")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, `usage: madoguchi cli [-db FILE] [-user ID] COMMAND ...
commands:
  bootstrap -id ID -name NAME (-finger FINGER | -reason REASON < password)
  operator list | create ID NAME | grant ID PERM | withdraw ID PERM | enable ID | disable ID
           unlock ID | enroll ID FINGER | exempt ID REASON (< login password, new password) | unexempt ID
  resident import-fixtures | import FILE.csv | search [-kana K] [-name N] [-birth YYYY-MM-DD] [-code C]
           export CODE [-o FILE] | import-file FILE | change CODE KIND YYYY-MM-DD [-name N -kana K] [-address A]
           pending
           send-changes
  audit verify | history OPERATOR | export [-format jsonl|csv] [-operator ID] | backup -to DIR
  case open -kind KIND (-code CODE | -file RESIDENT-FILE) [-types signature,user_auth] [-new-card]
       identity ID -document DOC [-ref R] [-proxy -poa -inquiry -proxy-name N -proxy-document DOC] [-doubt TEXT]
       explain ID | approve ID | show ID | stop ID REASON | refuse ID REASON
       substitute ID [FIELD:N=SUBSTITUTE | address:N ...]   (外字: list without SPEC; N from 1)
  issue -case ID -reader READER -card-expiry YYYY-MM-DD          (CA flags; PINs from -pin-fd)
  revoke -case ID -cert TYPE:SERIAL [-cert ...] -written REF [-kind KIND]   (CA flags)
  release-hold -case ID -cert TYPE:SERIAL                         (CA flags)
  pin-reset -case ID -reader READER -pin signature|user-auth | destroy-keys -case ID -reader READER
  copy -reader READER -type TYPE -o FILE.pdf [-font-regular TTF -font-bold TTF]  (signature: PIN from -pin-fd)
  holder-records -case ID                                          (the holder's own issuances and revocations here)
  recover                                                          (CA flags; no log-in)
CA flags: -ca-url URL -ca-cert FILE (-ca-key FILE | -key-uri pkcs11:...) -ca-root FILE [-sign-ca FILE -auth-ca FILE]
-key-uri: the terminal's key token (its --key-uri); needed for resident export/import-file when the terminal keeps its keys there.
PINs: one line per entry, "signature:PIN" or "user-auth:PIN"; a new PIN is entered twice (two lines).
permissions: reception cs supervisor audit`)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || *db == "" {
		fs.Usage()
		return 2
	}
	cfg := env.Config
	cfg.DBPath = *db
	cfg.Municipality = *municipality
	fail := func(err error) int {
		fmt.Fprintf(env.Stderr, "%s\n%v\n", errorText(err), err)
		return 1
	}
	if *keyURI != "" {
		keys, err := termkey.Open("", *keyURI)
		if err != nil {
			return fail(err)
		}
		defer keys.Close()
		if cfg.ResidentFileKey, err = keys.ResidentFileKey(); err != nil {
			return fail(err)
		}
		if caFiles.URL != "" && caFiles.KeyFile == "" {
			pair, err := keys.Certificate(caFiles.CertFile)
			if err != nil {
				return fail(err)
			}
			caFiles.Certificate = &pair
		}
	}
	if caFiles.URL != "" {
		client, err := app.DialCA(caFiles)
		if err != nil {
			return fail(err)
		}
		defer client.Close()
		cfg.CA = client
	}
	for typ, path := range map[workflow.CertType]string{workflow.SignatureCert: *signCA, workflow.UserAuthCert: *authCA} {
		if path == "" {
			continue
		}
		der, err := readPEMCertificate(path)
		if err != nil {
			return fail(err)
		}
		if cfg.CACertificates == nil {
			cfg.CACertificates = map[workflow.CertType][]byte{}
		}
		cfg.CACertificates[typ] = der
	}
	// The procedures open the card themselves (app.Config.Cards), in the reader the command
	// names with -reader.
	r := &runner{env: env, in: bufio.NewReader(env.Stdin), user: *user, out: env.Stdout, usage: fs.Usage, pinFD: *pinFD}
	cfg.Cards = func(ctx context.Context) (issue.Card, func(), error) {
		card, closeCard, err := openCard(r.reader)
		if err != nil {
			return nil, nil, err
		}
		return card, closeCard, nil
	}
	// With a CA, Open resolves unfinished issuances before anyone logs in.
	term, err := app.Open(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer term.Close()
	for _, res := range term.Recovered() {
		fmt.Fprintln(env.Stderr, messageText(res.Message()))
	}
	r.term = term
	defer r.closePINs()
	if err := r.dispatch(ctx, fs.Args()); err != nil {
		if ue, ok := err.(usageError); ok {
			fmt.Fprintln(env.Stderr, "madoguchi cli:", string(ue))
			fs.Usage()
			return 2
		}
		fmt.Fprintf(env.Stderr, "%s\n%v\n", errorText(err), err)
		return 1
	}
	return 0
}

func (r *runner) line() (string, error) {
	s, err := r.in.ReadString('\n')
	if err != nil && (err != io.EOF || s == "") {
		return "", usageError("expected a line on standard input")
	}
	return strings.TrimRight(s, "\r\n"), nil
}

func (r *runner) login(ctx context.Context) (*app.Session, error) {
	if r.user == "" {
		return nil, usageError("this command needs -user")
	}
	o, err := r.term.LookupOperator(ctx, r.user)
	if err == nil && o.PasswordExempt {
		pw, err := r.line()
		if err != nil {
			return nil, err
		}
		return r.term.LoginPassword(ctx, r.user, pw)
	}
	if err != nil {
		// Unknown id: refuse the same way as a wrong password (audited by LoginPassword).
		return r.term.LoginPassword(ctx, r.user, "")
	}
	return r.term.LoginFingerprint(ctx, r.user, func(e auth.ScanEvent) {
		if e == auth.ScanRetry {
			fmt.Fprintln(r.env.Stderr, say("cli.finger.retry", nil))
		} else {
			fmt.Fprintln(r.env.Stderr, say("cli.finger.place", nil))
		}
	})
}

func (r *runner) enrollProgress(e auth.EnrollProgress) {
	switch {
	case e.Retry:
		fmt.Fprintln(r.env.Stderr, say("cli.finger.retry", nil))
	case e.Stage < e.Total:
		fmt.Fprintln(r.env.Stderr, say("cli.finger.enrol_stage", map[string]any{"N": e.Stage + 1, "Of": e.Total}))
	default:
		fmt.Fprintln(r.env.Stderr, say("cli.finger.enrolled", nil))
	}
}

func need(args []string, n int, what string) error {
	if len(args) != n {
		return usageError(what)
	}
	return nil
}

func (r *runner) dispatch(ctx context.Context, args []string) error {
	switch args[0] {
	case "bootstrap":
		return r.bootstrap(ctx, args[1:])
	case "recover":
		return r.recover()
	}
	if len(args) < 2 {
		return usageError("missing sub-command")
	}
	s, err := r.login(ctx)
	if err != nil {
		return err
	}
	defer s.Logout(context.WithoutCancel(ctx))
	switch args[0] {
	case "case":
		return r.caseCmd(ctx, s, args[1], args[2:])
	case "issue":
		return r.issue(ctx, s, args[1:])
	case "revoke":
		return r.revoke(ctx, s, args[1:])
	case "release-hold":
		return r.releaseHold(ctx, s, args[1:])
	case "pin-reset", "destroy-keys":
		return r.cardMaintenance(ctx, s, args[0], args[1:])
	case "copy":
		return r.certificateCopy(ctx, s, args[1:])
	case "operator":
		return r.operator(ctx, s, args[1], args[2:])
	case "resident":
		return r.resident(ctx, s, args[1], args[2:])
	case "audit":
		return r.audit(ctx, s, args[1], args[2:])
	case "holder-records":
		return r.holderRecords(ctx, s, args[1:]) // holder.go
	}
	return usageError("unknown command " + args[0])
}

func (r *runner) bootstrap(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(r.env.Stderr)
	id := fs.String("id", "", "operator id of the first supervisor")
	name := fs.String("name", "", "display name")
	finger := fs.String("finger", "", "finger to enrol (e.g. right-index-finger)")
	reason := fs.String("reason", "", "reason for the password exemption (password on stdin)")
	if err := fs.Parse(args); err != nil {
		return usageError("bad bootstrap flags")
	}
	req := app.BootstrapRequest{ID: *id, Name: *name, Finger: *finger, ExemptReason: *reason, Progress: r.enrollProgress}
	if *finger == "" {
		pw, err := r.line()
		if err != nil {
			return err
		}
		req.Password = pw
	}
	if err := r.term.Bootstrap(ctx, req); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "supervisor %s created\n", *id)
	return nil
}

func (r *runner) operator(ctx context.Context, s *app.Session, cmd string, a []string) error {
	switch cmd {
	case "list":
		ops, err := s.ListOperators(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tACTIVE\tPERMISSIONS\tFINGER\tPASSWORD\tLOCKED")
		for _, o := range ops {
			var ps []string
			for _, p := range o.Permissions {
				ps = append(ps, string(p))
			}
			ex := "-"
			if o.PasswordExempt {
				ex = "exempt: " + o.ExemptReason
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%v\n", o.ID, o.Name, o.Active, strings.Join(ps, ","), o.Finger, ex, o.Locked)
		}
		return tw.Flush()
	case "create":
		if err := need(a, 2, "operator create ID NAME"); err != nil {
			return err
		}
		return s.CreateOperator(ctx, a[0], a[1])
	case "grant", "withdraw":
		if err := need(a, 2, "operator "+cmd+" ID PERMISSION"); err != nil {
			return err
		}
		if cmd == "grant" {
			return s.Grant(ctx, a[0], operator.Permission(a[1]))
		}
		return s.Withdraw(ctx, a[0], operator.Permission(a[1]))
	case "enable", "disable":
		if err := need(a, 1, "operator "+cmd+" ID"); err != nil {
			return err
		}
		return s.SetOperatorActive(ctx, a[0], cmd == "enable")
	case "unlock":
		if err := need(a, 1, "operator unlock ID"); err != nil {
			return err
		}
		return s.Unlock(ctx, a[0])
	case "enroll":
		if err := need(a, 2, "operator enroll ID FINGER"); err != nil {
			return err
		}
		return s.EnrollFinger(ctx, a[0], a[1], r.enrollProgress)
	case "exempt":
		if err := need(a, 2, "operator exempt ID REASON"); err != nil {
			return err
		}
		pw, err := r.line()
		if err != nil {
			return err
		}
		return s.GrantPasswordExemption(ctx, a[0], a[1], pw)
	case "unexempt":
		if err := need(a, 1, "operator unexempt ID"); err != nil {
			return err
		}
		return s.WithdrawPasswordExemption(ctx, a[0])
	}
	return usageError("unknown operator command " + cmd)
}

func (r *runner) resident(ctx context.Context, s *app.Session, cmd string, a []string) error {
	switch cmd {
	case "import-fixtures":
		n, err := s.ImportResidentFixtures(ctx)
		if err == nil {
			fmt.Fprintf(r.out, "%d residents imported\n", n)
		}
		return err
	case "import":
		if err := need(a, 1, "resident import FILE.csv"); err != nil {
			return err
		}
		f, err := os.Open(a[0])
		if err != nil {
			return usageError(err.Error())
		}
		defer f.Close()
		n, err := s.ImportResidents(ctx, f)
		if err == nil {
			fmt.Fprintf(r.out, "%d residents imported\n", n)
		}
		return err
	case "search":
		fs := flag.NewFlagSet("search", flag.ContinueOnError)
		fs.SetOutput(r.env.Stderr)
		var q resident.Query
		fs.StringVar(&q.NameKana, "kana", "", "name kana (prefix)")
		fs.StringVar(&q.Name, "name", "", "name (part)")
		fs.StringVar(&q.BirthDate, "birth", "", "birth date YYYY-MM-DD")
		fs.StringVar(&q.RecordCode, "code", "", "resident record code")
		if err := fs.Parse(a); err != nil {
			return usageError("bad search flags")
		}
		res, err := s.SearchResidents(ctx, q)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CODE\tNAME\tKANA\tBIRTH\tSEX\tSTATUS\tADDRESS")
		for _, p := range res {
			addr := p.Address
			if p.Status == resident.StatusAbroad {
				addr = say("cli.fuhyo_address", map[string]any{"Address": p.FuhyoAddress})
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.RecordCode, p.Name, p.NameKana, p.BirthDate, p.Sex, p.Status, addr)
		}
		return tw.Flush()
	case "export":
		fs := flag.NewFlagSet("export", flag.ContinueOnError)
		fs.SetOutput(r.env.Stderr)
		outPath := fs.String("o", "", "output file (default stdout)")
		if len(a) < 1 {
			return usageError("resident export CODE [-o FILE]")
		}
		if err := fs.Parse(a[1:]); err != nil {
			return usageError("bad export flags")
		}
		data, err := s.ExportResidentFile(ctx, a[0])
		if err != nil {
			return err
		}
		if *outPath == "" {
			_, err = r.out.Write(append(data, '\n'))
			return err
		}
		return os.WriteFile(*outPath, data, 0o600)
	case "import-file":
		if err := need(a, 1, "resident import-file FILE"); err != nil {
			return err
		}
		data, err := os.ReadFile(a[0])
		if err != nil {
			return usageError(err.Error())
		}
		f, err := s.ImportResidentFile(ctx, data)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "imported %s: %s (%s)\n", f.Resident.RecordCode, f.Resident.Name, f.Resident.NameKana)
		return nil
	case "change":
		fs := flag.NewFlagSet("change", flag.ContinueOnError)
		fs.SetOutput(r.env.Stderr)
		var c resident.Change
		fs.StringVar(&c.NewName, "name", "", "new name")
		fs.StringVar(&c.NewKana, "kana", "", "new kana")
		fs.StringVar(&c.NewAddress, "address", "", "new address")
		if len(a) < 3 {
			return usageError("resident change CODE KIND YYYY-MM-DD")
		}
		if err := fs.Parse(a[3:]); err != nil {
			return usageError("bad change flags")
		}
		c.RecordCode, c.Kind, c.Effective = a[0], resident.ChangeKind(a[1]), a[2]
		return s.RecordResidentChange(ctx, c)
	case "pending":
		p, err := s.PendingChanges(ctx)
		if err != nil {
			return err
		}
		for _, c := range p {
			fmt.Fprintf(r.out, "%d\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.RecordCode, c.Kind, c.Effective, c.Attempts, c.LastError)
		}
		return nil
	case "send-changes":
		return r.sendChanges(ctx, s)
	}
	return usageError("unknown resident command " + cmd)
}

func (r *runner) audit(ctx context.Context, s *app.Session, cmd string, a []string) error {
	switch cmd {
	case "verify":
		rep, err := s.VerifyAudit(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "audit chain intact: %d records; witnessed by the CA up to record %d, %d not yet witnessed\n", rep.Records, rep.Witnessed, rep.Unwitnessed)
		if rep.CAConsulted {
			fmt.Fprintf(r.out, "checked against the CA's last witnessed head and %d receipts kept here\n", rep.Receipts)
		} else {
			fmt.Fprintf(r.out, "CA not consulted (%s): checked against %d receipts kept here only\n", rep.CAError, rep.Receipts)
		}
		if rep.Unverified > 0 {
			fmt.Fprintf(r.out, "%d receipts are signed by an audit key not pinned on this terminal and were not used\n", rep.Unverified)
		}
		return nil
	case "history":
		if err := need(a, 1, "audit history OPERATOR"); err != nil {
			return err
		}
		recs, err := s.History(ctx, a[0])
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(r.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tACTION\tTARGET\tRESULT")
		for _, rec := range recs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", rec.Seq, rec.At.Local().Format("2006-01-02 15:04:05"), rec.Action, rec.Target, rec.Result)
		}
		return tw.Flush()
	case "export":
		fs := flag.NewFlagSet("export", flag.ContinueOnError)
		fs.SetOutput(r.env.Stderr)
		format := fs.String("format", "jsonl", "jsonl or csv")
		op := fs.String("operator", "", "only this operator")
		if err := fs.Parse(a); err != nil {
			return usageError("bad export flags")
		}
		return s.ExportAudit(ctx, audit.Filter{Operator: *op}, audit.Format(*format), r.out)
	case "backup":
		return r.auditBackup(ctx, s, a) // auditbackup.go
	}
	return usageError("unknown audit command " + cmd)
}
