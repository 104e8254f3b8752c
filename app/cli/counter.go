package cli

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/issue"
	"madoguchi/app/pinrule"
	"madoguchi/app/printout"
	"madoguchi/app/resident"
	"madoguchi/app/workflow"
	"madoguchi/assets/fonts/printfonts"
	"madoguchi/cardio"
	"madoguchi/cardio/pcsc"
)

// The counter procedures of the CLI: the same Session methods as the GUI, so the same
// permission checks, case states and audit records (TS Art. 3(4), Art. 20(2)).

func readPEMCertificate(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, apperr.Wrap(apperr.InvalidInput, err, "cli: CA certificate")
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, apperr.New(apperr.InvalidInput, "cli: %s is not a PEM certificate", path)
	}
	return blk.Bytes, nil
}

func newFlags(r *runner, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(r.env.Stderr)
	return fs
}

func caseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError("case id must be a positive number")
	}
	return id, nil
}

func (r *runner) caseCmd(ctx context.Context, s *app.Session, cmd string, a []string) error {
	if cmd == "open" {
		fs := newFlags(r, "case open")
		kind := fs.String("kind", "", "procedure: "+kindList())
		code := fs.String("code", "", "resident record code (procedures without a resident-record file)")
		file := fs.String("file", "", "resident-record file from the CS application (new issuance, renewal)")
		types := fs.String("types", "", "certificate types, comma separated: signature,user_auth")
		newCard := fs.Bool("new-card", false, "a new card is issued")
		expiry := fs.String("current-expiry", "", "renewal: the current certificate's expiry YYYY-MM-DD")
		if err := fs.Parse(a); err != nil {
			return usageError("bad case open flags")
		}
		req := app.CaseRequest{Kind: workflow.Kind(*kind), RecordCode: *code, NewCard: *newCard}
		if *types != "" {
			for _, t := range strings.Split(*types, ",") {
				req.CertTypes = append(req.CertTypes, workflow.CertType(strings.TrimSpace(t)))
			}
		}
		if *file != "" {
			data, err := os.ReadFile(*file)
			if err != nil {
				return usageError(err.Error())
			}
			req.ResidentFile = data
		}
		if *expiry != "" {
			t, err := time.Parse("2006-01-02", *expiry)
			if err != nil {
				return usageError("current expiry must be YYYY-MM-DD")
			}
			req.CurrentExpiry = t
		}
		c, err := s.OpenCase(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "case %d opened: %s %s (%s)\n", c.ID, c.Kind, c.Applicant.Name, c.Applicant.RecordCode)
		return nil
	}
	if len(a) < 1 {
		return usageError("case " + cmd + " ID")
	}
	id, err := caseID(a[0])
	if err != nil {
		return err
	}
	var c *workflow.Case
	switch cmd {
	case "identity":
		fs := newFlags(r, "case identity")
		var e workflow.Evidence
		doc := fs.String("document", "", "photo identity document: "+docList())
		fs.StringVar(&e.DocumentRef, "ref", "", "document reference (e.g. last 4 characters of its number)")
		fs.BoolVar(&e.Proxy, "proxy", false, "a proxy applies")
		fs.BoolVar(&e.PowerOfAttorney, "poa", false, "proxy: power of attorney checked")
		fs.BoolVar(&e.InquiryReply, "inquiry", false, "proxy: reply to the inquiry checked")
		fs.StringVar(&e.ProxyName, "proxy-name", "", "proxy: name")
		proxyDoc := fs.String("proxy-document", "", "proxy: their own photo identity document")
		fs.StringVar(&e.Doubt, "doubt", "", "a doubt about identity: stops the case (CPS §4.1.2.1(3))")
		if err := fs.Parse(a[1:]); err != nil {
			return usageError("bad case identity flags")
		}
		e.Document, e.ProxyDocument = workflow.Document(*doc), workflow.Document(*proxyDoc)
		c, err = s.RecordIdentity(ctx, id, e)
	case "explain":
		// The operator confirms the applicant was told and acknowledged every item due
		// (TS Art. 9; G Art. 8).
		if c, err = s.Case(ctx, id); err == nil {
			c, err = s.RecordExplanation(ctx, id, workflow.RequiredItems(c.CertTypes))
		}
	case "substitute":
		return r.substitute(ctx, s, id, a[1:])
	case "approve":
		c, err = s.Approve(ctx, id)
	case "show":
		c, err = s.Case(ctx, id)
	case "stop", "refuse":
		if len(a) != 2 {
			return usageError("case " + cmd + " ID REASON")
		}
		if cmd == "stop" {
			c, err = s.Stop(ctx, id, a[1])
		} else {
			c, err = s.Refuse(ctx, id, a[1])
		}
	default:
		return usageError("unknown case command " + cmd)
	}
	if c != nil {
		fmt.Fprintf(r.out, "case %d: %s %s\n", c.ID, c.Kind, c.State)
	}
	return err
}

// substitute is the 外字 step of the issuance wizard, headless (R02 II-2-5(4)(5)): with no
// SPEC it lists the characters of the certificate's items that are outside the character set,
// with their numbers and the offered substitutes; with SPECs it records the substitutions,
// replacing any recorded before. A SPEC is FIELD:N=SUBSTITUTE (the N-th character, from 1, of
// FIELD: name, former_surname, alias_name or address; for a name the applicant's choice, a
// similar character or the kana reading) or address:N (the address's fixed substitute).
func (r *runner) substitute(ctx context.Context, s *app.Session, id int64, specs []string) error {
	c, err := s.Case(ctx, id)
	if err != nil {
		return err
	}
	a := c.Applicant
	addr := a.Address
	if a.Status == resident.StatusAbroad {
		addr = a.FuhyoAddress // 附票 address for people abroad (TS Art. 3(1))
	}
	fields := map[string]string{"name": a.Name, "former_surname": a.FormerSurname, "alias_name": a.AliasName, "address": addr}
	if len(specs) == 0 {
		for _, f := range []string{"name", "former_surname", "alias_name", "address"} {
			for _, o := range resident.FindOutside(fields[f]) {
				offer := strings.Join(resident.Candidates(o.Char), " ")
				if f == "address" {
					offer, err = resident.FixedSubstitute(o.Char)
					if err != nil {
						offer = "(no fixed substitute)"
					}
				}
				fmt.Fprintf(r.out, "%s:%d\t%c\tU+%04X\t%s\n", f, o.Pos+1, o.Char, o.Char, offer)
			}
		}
		return nil
	}
	var subs []resident.Substitution
	for _, spec := range specs {
		field, rest, ok := strings.Cut(spec, ":")
		value, has := fields[field]
		if !ok || !has {
			return usageError("case substitute ID FIELD:N=SUBSTITUTE|address:N (FIELD: name former_surname alias_name address)")
		}
		num, with, hasWith := strings.Cut(rest, "=")
		n, err := strconv.Atoi(num)
		rs := []rune(value)
		if err != nil || n < 1 || n > len(rs) {
			return usageError(fmt.Sprintf("%s: no character number %q", field, num))
		}
		sub := resident.Substitution{Field: field, Pos: n - 1, Original: string(rs[n-1]), Substitute: with, ChosenByApp: field != "address"}
		if field == "address" && !hasWith {
			if sub.Substitute, err = resident.FixedSubstitute(rs[n-1]); err != nil {
				return err
			}
		}
		if sub.Substitute == "" {
			return usageError(spec + ": no substitute given")
		}
		subs = append(subs, sub)
	}
	c, err = s.SetSubstitutions(ctx, id, subs)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "case %d: %d substitutions recorded\n", c.ID, len(subs))
	return nil
}

func kindList() string {
	var k []string
	for _, x := range workflow.Kinds {
		k = append(k, string(x))
	}
	return strings.Join(k, " ")
}

func docList() string {
	var d []string
	for _, x := range workflow.PhotoIDs {
		d = append(d, string(x))
	}
	return strings.Join(d, " ")
}

// ---- The applicant's PINs: from a file descriptor or standard input, never argv ----

func (r *runner) pinSource() (*bufio.Reader, error) {
	if r.pins != nil {
		return r.pins, nil
	}
	if r.pinFD == 0 {
		r.pins = r.in
		return r.pins, nil
	}
	f := os.NewFile(uintptr(r.pinFD), "pin-fd")
	if f == nil {
		return nil, usageError("-pin-fd is not an open file descriptor")
	}
	r.pinFile, r.pins = f, bufio.NewReader(f)
	return r.pins, nil
}

func (r *runner) closePINs() {
	if r.pinFile != nil {
		r.pinFile.Close()
	}
}

// readPIN returns the next PIN entry for kind. Entries are "KIND:PIN" lines; lines for the
// other kind met on the way are kept, in order, for that kind, so the source does not depend
// on the order in which the issuance asks. The PIN is not echoed, logged or stored.
func (r *runner) readPIN(kind pinrule.Kind) (pinrule.PIN, error) {
	if q := r.pinQueue[kind]; len(q) > 0 {
		r.pinQueue[kind] = q[1:]
		return q[0], nil
	}
	src, err := r.pinSource()
	if err != nil {
		return pinrule.PIN{}, err
	}
	for {
		line, err := src.ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return pinrule.PIN{}, fmt.Errorf("cli: the PIN source has no more %s entries", kind)
		}
		k, pin, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		switch {
		case !ok:
			return pinrule.PIN{}, errors.New(`cli: a PIN entry must read "signature:PIN" or "user-auth:PIN"`)
		case k == kind.String():
			return pinrule.New(pin), nil
		case k == pinrule.Signature.String() || k == pinrule.UserAuth.String():
			other := pinrule.Signature
			if k == pinrule.UserAuth.String() {
				other = pinrule.UserAuth
			}
			if r.pinQueue == nil {
				r.pinQueue = map[pinrule.Kind][]pinrule.PIN{}
			}
			r.pinQueue[other] = append(r.pinQueue[other], pinrule.New(pin))
		default:
			// The line is not repeated: written the wrong way round ("PIN:kind") it starts
			// with the PIN, and stderr ends up in logs (DOMAIN §9: PINs are never logged).
			return pinrule.PIN{}, errors.New(`cli: unknown PIN kind: a PIN entry must read "signature:PIN" or "user-auth:PIN"`)
		}
	}
}

// pinEntry is the applicant-facing PIN screen of a headless issuance: each request reads its
// entries from the PIN source and the refusals of the PIN rules are reported on stderr, so a
// weak PIN is asked again exactly as on the screen (TS Art. 4).
func (r *runner) pinEntry(ctx context.Context, req issue.PINRequest) (pinrule.PIN, pinrule.PIN, error) {
	if req.Refused != nil {
		fmt.Fprintf(r.env.Stderr, "%s\n", errorText(req.Refused))
	}
	pin, err := r.readPIN(req.Kind)
	if err != nil || req.Existing {
		return pin, pin, err
	}
	confirm, err := r.readPIN(req.Kind)
	return pin, confirm, err
}

// ---- The card ----

func openCard(reader string) (*cardio.Card, func(), error) {
	if reader == "" {
		return nil, nil, usageError("-reader names the card reader")
	}
	cl, err := pcsc.Open()
	if err != nil {
		return nil, nil, apperr.Wrap(apperr.InvalidInput, err, "cli: PC/SC")
	}
	pc, err := cl.Connect(reader, pcsc.Exclusive)
	if err != nil {
		cl.Close()
		return nil, nil, apperr.Wrap(apperr.InvalidInput, err, "cli: card in "+reader)
	}
	return cardio.New(pc), func() { pc.Close(true); cl.Close() }, nil
}

func (r *runner) issue(ctx context.Context, s *app.Session, a []string) error {
	fs := newFlags(r, "issue")
	id := fs.Int64("case", 0, "approved issuance case")
	reader := fs.String("reader", "", "card reader")
	expiry := fs.String("card-expiry", "", "the card's expiry date YYYY-MM-DD (printed on the card)")
	if err := fs.Parse(a); err != nil {
		return usageError("bad issue flags")
	}
	if *id <= 0 || *expiry == "" {
		return usageError("issue -case ID -reader READER -card-expiry YYYY-MM-DD")
	}
	exp, err := time.Parse("2006-01-02", *expiry)
	if err != nil {
		return usageError("card expiry must be YYYY-MM-DD")
	}
	if r.term.Issuer() == nil {
		return usageError("issue needs the CA flags (-ca-url, -ca-cert, -ca-key, -ca-root)")
	}
	if *reader == "" {
		return usageError("-reader names the card reader")
	}
	r.reader = *reader
	res, err := s.Issue(ctx, app.IssueRequest{CaseID: *id, PINs: r.pinEntry, CardExpiry: exp})
	if err != nil {
		return err
	}
	for _, d := range res.Delivered {
		fmt.Fprintf(r.out, "delivered %s serial %s to card %s\n", d.CertType, d.Serial, res.CardSerial)
	}
	return nil
}

// certFlags collects repeated -cert TYPE:SERIAL flags.
type certFlags []app.CertRef

func (c *certFlags) String() string { return fmt.Sprint(*c) }

func (c *certFlags) Set(v string) error {
	t, serial, ok := strings.Cut(v, ":")
	if !ok {
		return errors.New("want TYPE:SERIAL, e.g. signature:1A2B")
	}
	*c = append(*c, app.CertRef{Type: workflow.CertType(t), Serial: serial})
	return nil
}

func (r *runner) revoke(ctx context.Context, s *app.Session, a []string) error {
	fs := newFlags(r, "revoke")
	id := fs.Int64("case", 0, "approved revocation or loss-report case")
	var certs certFlags
	fs.Var(&certs, "cert", "certificate TYPE:SERIAL (repeatable)")
	written := fs.String("written", "", "reference of the holder's written request")
	kind := fs.String("kind", "", "stop-using | card-abolished (revocation); key-compromise | card-unusable (loss report)")
	if err := fs.Parse(a); err != nil {
		return usageError("bad revoke flags")
	}
	res, err := s.Revoke(ctx, app.RevokeRequest{CaseID: *id, Certificates: certs, Kind: *kind, WrittenRequest: *written})
	if res != nil {
		for _, ack := range res.Acks {
			fmt.Fprintf(r.out, "revoked %s serial %s reason %d (%s) at %s; written acknowledgement: %v\n", ack.CertType, ack.Serial, ack.Reason, ack.ReasonName,
				ack.RevokedAt.Format(time.RFC3339), ack.WrittenAcknowledgement)
		}
	}
	return err
}

func (r *runner) releaseHold(ctx context.Context, s *app.Session, a []string) error {
	fs := newFlags(r, "release-hold")
	id := fs.Int64("case", 0, "approved hold-release case")
	var certs certFlags
	fs.Var(&certs, "cert", "certificate TYPE:SERIAL")
	if err := fs.Parse(a); err != nil || len(certs) != 1 {
		return usageError("release-hold -case ID -cert TYPE:SERIAL")
	}
	st, err := s.ReleaseHold(ctx, *id, certs[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "hold released: %s serial %s is %s\n", st.CertType, st.Serial, st.State)
	return nil
}

// cardMaintenance runs pin-reset and destroy-keys: the card in -reader, the CA from the CA
// flags; the applicant's new PIN (pin-reset) comes from -pin-fd or stdin, twice, never from
// the command line.
func (r *runner) cardMaintenance(ctx context.Context, s *app.Session, cmd string, a []string) error {
	fs := newFlags(r, cmd)
	id := fs.Int64("case", 0, "approved case")
	reader := fs.String("reader", "", "card reader")
	which := fs.String("pin", "", "pin-reset: signature or user-auth")
	if err := fs.Parse(a); err != nil {
		return usageError("bad " + cmd + " flags")
	}
	var kind pinrule.Kind
	if cmd == "pin-reset" {
		switch *which {
		case pinrule.Signature.String():
			kind = pinrule.Signature
		case pinrule.UserAuth.String():
			kind = pinrule.UserAuth
		default:
			return usageError("pin-reset -case ID -reader READER -pin signature|user-auth")
		}
	}
	if r.term.CardMaintenanceCA() == nil {
		return usageError(cmd + " needs the CA flags (-ca-url, -ca-cert, -ca-key, -ca-root)")
	}
	if *reader == "" {
		return usageError("-reader names the card reader")
	}
	r.reader = *reader
	if cmd == "destroy-keys" {
		if err := s.DestroyKeys(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(r.out, "keys destroyed on the card of case %d\n", *id)
		return nil
	}
	if err := s.ResetPIN(ctx, *id, kind, r.pinEntry); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "%s PIN reset and set by the applicant on the card of case %d\n", kind, *id)
	return nil
}

func (r *runner) certificateCopy(ctx context.Context, s *app.Session, a []string) error {
	fs := newFlags(r, "copy")
	reader := fs.String("reader", "", "card reader")
	typ := fs.String("type", "", "signature or user_auth")
	outPath := fs.String("o", "", "output PDF")
	regular := fs.String("font-regular", "", "TrueType-outline regular font (default: the bundled print font)")
	bold := fs.String("font-bold", "", "TrueType-outline bold font (default: the bundled print font)")
	if err := fs.Parse(a); err != nil || *outPath == "" || (*regular == "") != (*bold == "") {
		return usageError("copy -reader READER -type TYPE -o FILE.pdf [-font-regular TTF -font-bold TTF]")
	}
	fonts := printout.Fonts{Regular: printfonts.Regular(), Bold: printfonts.Bold()}
	if *regular != "" {
		var err error
		if fonts.Regular, err = os.ReadFile(*regular); err != nil {
			return usageError(err.Error())
		}
		if fonts.Bold, err = os.ReadFile(*bold); err != nil {
			return usageError(err.Error())
		}
	}
	printer, err := printout.New(fonts)
	if err != nil {
		return err
	}
	card, closeCard, err := openCard(*reader)
	if err != nil {
		return err
	}
	defer closeCard()
	if workflow.CertType(*typ) == workflow.SignatureCert {
		// The holder opens the signature certificate with the signature PIN (TS Art. 11 items).
		pin, err := r.readPIN(pinrule.Signature)
		if err != nil {
			return err
		}
		b := []byte(pin.Reveal())
		err = card.VerifyPIN(ctx, cardio.Signature, b)
		clear(b)
		if err != nil {
			return apperr.Wrap(apperr.InvalidInput, err, "cli: signature PIN")
		}
	}
	c, err := s.CertificateCopy(ctx, card, workflow.CertType(*typ))
	if err != nil {
		return err
	}
	pdf, err := printer.CertificateCopy(c)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*outPath, pdf, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "certificate copy of %s serial %X written to %s\n", *typ, c.Serial, *outPath)
	return nil
}

func (r *runner) sendChanges(ctx context.Context, s *app.Session) error {
	out, err := s.SendResidentChanges(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for _, d := range out {
		switch d.Outcome {
		case app.ChangeDelivered:
			fmt.Fprintf(r.out, "%d\t%s\t%s\tdelivered\trevoked=%s deferred=%s\n", d.Change.ID, d.Change.RecordCode, d.Event,
				strings.Join(d.Response.Revoked, ","), strings.Join(d.Response.Deferred, ","))
		case app.ChangeFailed:
			failed++
			fmt.Fprintf(r.out, "%d\t%s\t%s\tfailed\t%s\n", d.Change.ID, d.Change.RecordCode, d.Event, errorText(d.Err))
		default:
			fmt.Fprintf(r.out, "%d\t%s\t%s\twaiting\t%s\n", d.Change.ID, d.Change.RecordCode, d.Event, d.Why)
		}
	}
	if failed > 0 {
		return apperr.New(apperr.CAUnavailable, "cli: %d changes not delivered; they are retried later", failed)
	}
	return nil
}

// recover prints what the start-up recovery did (Open runs it before any log-in).
func (r *runner) recover() error {
	if r.term.Issuer() == nil {
		return usageError("recover needs the CA flags (-ca-url, -ca-cert, -ca-key, -ca-root)")
	}
	if r.term.RecoveryDeferred() {
		fmt.Fprintln(r.out, "another process is issuing on this terminal; it resolves its own issuances")
		return nil
	}
	for _, res := range r.term.Recovered() {
		fmt.Fprintf(r.out, "case %d %s: %s (was %s)\n", res.Entry.CaseID, res.Entry.CertType, res.Outcome, res.From)
	}
	fmt.Fprintf(r.out, "%d unfinished issuances resolved\n", len(r.term.Recovered()))
	return nil
}
