package translations

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"madoguchi/app/apperr"
)

// Context is where a message is shown, for the few refusals whose words depend on the screen
// (a refused revocation at the counter says the decision is recorded; the supervisor screen
// says which operator id exists). Every lookup falls back to General.
type Context string

// The contexts of the table.
const (
	General    Context = ""
	Login      Context = "login"      // the log-in screen: an unknown id is an operator id
	Supervisor Context = "supervisor" // operator administration
	Procedure  Context = "procedure"  // the counter procedures on the shared frame (revocation … key destruction) and resident changes
	Reception  Context = "reception"  // the issuance wizard
	Settings   Context = "settings"   // the terminal settings screen
	Print      Context = "print"      // a document sent to the printer
)

// anyKind in a row matches every kind: a detail code that names the refusal whatever its kind
// (an issuance failure's reason).
const anyKind apperr.Kind = 255

// Row is one entry of the table: errors of Kind (and Detail, when not "") shown in Context are
// told with the translation Key.
type Row struct {
	Context Context
	Kind    apperr.Kind
	Detail  string
	Key     string
}

// table is the one table from an error to the words a person reads (issue 16): apperr kind,
// optionally with a detail code, in a context → translation key. app sets the kinds and
// detail codes at its edge (app/ca.go for the CA's answers, app/issue for an issuance's
// failure, app/pinrule for a PIN rule, app/printout/spool for the printer).
var table = []Row{
	// Every kind, in General.
	{General, apperr.Internal, "", "error.internal"},
	{General, apperr.InvalidInput, "", "error.invalid_input"},
	{General, apperr.NotFound, "", "error.no_such_record"},
	{General, apperr.AlreadyExists, "", "error.already_exists"},
	{General, apperr.NotLoggedIn, "", "error.session_expired"},
	{General, apperr.SessionExpired, "", "error.session_expired"},
	{General, apperr.PermissionDenied, "", "error.permission_denied"},
	{General, apperr.BadCredentials, "", "error.wrong_credentials"},
	{General, apperr.LockedOut, "", "error.locked_out"},
	{General, apperr.OperatorDisabled, "", "error.operator_disabled"},
	{General, apperr.PasswordNotAllowed, "", "error.password_not_allowed"},
	{General, apperr.FingerprintNoMatch, "", "error.fingerprint_no_match"},
	{General, apperr.FingerprintUnavailable, "", "error.fingerprint_unavailable"},
	{General, apperr.FingerprintNotEnrolled, "", "error.fingerprint_not_enrolled"},
	{General, apperr.LastSupervisor, "", "supervisor.error.last_supervisor"},
	{General, apperr.ReasonRequired, "", "error.reason_required"},
	{General, apperr.WeakPIN, "", "pin.error.weak"},
	{General, apperr.FileTampered, "", "error.file_tampered"},
	{General, apperr.FileExpired, "", "error.file_expired"},
	{General, apperr.FileUsed, "", "error.file_used"},
	{General, apperr.InvalidTransition, "", "error.invalid_transition"},
	{General, apperr.IdentityDoubt, "", "error.identity_doubt"},
	{General, apperr.AuditBroken, "", "error.audit_broken"},
	{General, apperr.RenewalTooEarly, "", "error.renewal_too_early"},
	{General, apperr.ResidentNotEligible, "", "error.resident_not_eligible"},
	{General, apperr.Cancelled, "", "error.cancelled"},
	{General, apperr.NotSupported, "", "error.not_supported"},
	{General, apperr.CAUnavailable, "", "error.ca_unavailable"},
	{General, apperr.CardUnknown, "", "error.card_unknown"},
	{General, apperr.CardOtherMunicipality, "", "error.card_other_municipality"},
	{General, apperr.CertificateNotRevoked, "", "error.certificate_not_revoked"},
	{General, apperr.CardRefused, "", "error.card_refused"},
	{General, apperr.PINNotSet, "", "error.pin_not_set"},
	{General, apperr.CardNotApplicants, "", "error.card_not_applicants"},
	{General, apperr.PrintFailed, "", "print.error.other"},

	// The rule a PIN broke (app/pinrule.Reason codes, TS Art. 4).
	{General, apperr.WeakPIN, "length", "pin.error.format_signature"},
	{General, apperr.WeakPIN, "charset", "pin.error.format_signature"},
	{General, apperr.WeakPIN, "letter_and_digit", "pin.error.format_signature"},
	{General, apperr.WeakPIN, "four_digits", "pin.error.format_user_auth"},
	{General, apperr.WeakPIN, "all_same", "pin.error.all_same"},
	{General, apperr.WeakPIN, "sequence", "pin.error.sequence"},
	{General, apperr.WeakPIN, "repeated", "pin.error.repeated"},
	{General, apperr.WeakPIN, "birthday", "pin.error.birthday"},
	{General, apperr.WeakPIN, "mismatch", "pin.error.mismatch"},
	{General, apperr.BadCredentials, "wrong_existing_pin", "pin.error.wrong_existing"},

	// What the CA answered in a counter procedure (app.CAError; the CA's wire codes).
	{General, anyKind, "already_revoked", "error.ca.already_revoked"},
	{General, anyKind, "not_on_hold", "error.ca.not_on_hold"},
	{General, anyKind, "wrong_ca", "error.ca.wrong_ca"},
	{General, anyKind, "channel_not_allowed", "error.ca.channel_not_allowed"},
	{General, anyKind, "certificate_expired", "error.ca.certificate_expired"},
	{General, anyKind, "unknown_event", "error.ca.unknown_event"},
	{General, anyKind, "other_municipality", "error.ca.other_municipality"},
	{General, anyKind, "person_mismatch", "error.ca.person_mismatch"},
	{General, anyKind, "not_found", "error.ca.not_found"},
	{General, anyKind, "forbidden", "error.ca.forbidden"},
	{General, anyKind, "invalid_request", "error.ca.invalid_request"},
	{General, anyKind, "unavailable", "error.ca_unavailable"},

	// Why an issuance stopped (app/issue.Error, its detail codes).
	{General, anyKind, "issue.busy", "issue.error.busy"},
	{General, anyKind, "issue.unresolved", "issue.error.unresolved"},
	{General, anyKind, "issue.nothing_to_issue", "issue.error.nothing_to_issue"},
	{General, anyKind, "issue.card_swapped", "issue.error.card_swapped"},
	{General, anyKind, "issue.read_back", "issue.error.read_back"},
	{General, anyKind, "issue.pin_cancelled", "issue.error.pin_cancelled"},
	{General, anyKind, "issue.card_other_person", "issue.error.card_other_person"},
	{General, anyKind, "issue.card_not_applicants", "issue.error.card_not_applicants"},
	{General, anyKind, "issue.duplicate_person", "issue.error.duplicate_person"},
	{General, anyKind, "issue.pending_person", "issue.error.pending_person"},
	{General, anyKind, "issue.renewal_too_early", "issue.error.renewal_too_early"},
	{General, anyKind, "issue.invalid_applicant", "issue.error.invalid_applicant"},
	{General, anyKind, "issue.forbidden", "issue.error.forbidden"},
	{General, anyKind, "issue.card_authentication", "issue.error.card_authentication"},
	{General, anyKind, "issue.channel_expired", "issue.error.channel_expired"},
	{General, anyKind, "issue.ca_unavailable", "issue.error.ca_unavailable"},
	{General, anyKind, "issue.cancelled", "issue.error.cancelled"},
	{General, anyKind, "issue.case", "issue.error.case"},
	{General, anyKind, "issue.card_io", "issue.error.card_io"},
	{General, anyKind, "issue.pin", "issue.error.pin"},
	{General, anyKind, "issue.failed", "issue.error.failed"},

	// The holder's own online revocation (app/holder): the CA's answers and the card's.
	{General, anyKind, "holder_signature_invalid", "holder.error.signature_invalid"},
	{General, anyKind, "online_revocation_signature_only", "holder.error.signature_only"},
	{General, anyKind, "request_stale", "holder.error.request_stale"},
	{General, anyKind, "request_replayed", "holder.error.request_replayed"},
	{General, anyKind, "rate_limited", "holder.error.rate_limited"},
	{General, anyKind, "holder.ca_refused", "holder.error.ca_refused"},
	{General, anyKind, "holder.save_request", "holder.error.save_request"},
	{General, anyKind, "holder.ack_signature", "holder.error.ack_signature"},
	{General, anyKind, "holder.ack_serial", "holder.error.ack_serial"},
	{General, anyKind, "holder.save_ack", "holder.error.save_ack"},
	{General, anyKind, "holder.pin_fd", "holder.error.pin_fd"},
	{General, anyKind, "holder.read_pin", "holder.error.read_pin"},
	{General, anyKind, "holder.reader", "holder.error.reader"},
	{General, anyKind, "holder.no_reader", "holder.error.no_reader"},
	{General, anyKind, "holder.connect", "holder.error.connect"},
	{General, anyKind, "holder.wrong_pin", "holder.error.wrong_pin"},
	{General, anyKind, "holder.pin_blocked", "holder.error.pin_blocked"},
	{General, anyKind, "holder.verify_pin", "holder.error.verify_pin"},
	{General, anyKind, "holder.read_certificate", "holder.error.read_certificate"},
	{General, anyKind, "holder.card_sign", "holder.error.card_sign"},
	{General, anyKind, "holder.signature_mismatch", "holder.error.signature_mismatch"},
	{General, anyKind, "holder.ca_root", "holder.error.ca_root"},
	{General, anyKind, "holder.ca_connect", "holder.error.ca_connect"},
	{General, anyKind, "holder.ca_answer", "holder.error.ca_answer"},
	{General, anyKind, "holder.ack_key", "holder.error.ack_key"},

	// Why printing failed (app/printout/spool.Error).
	{General, apperr.PrintFailed, "queue_stopped", "print.error.stopped"},
	{General, apperr.PrintFailed, "no_such_queue", "print.error.no_queue"},
	{General, apperr.PrintFailed, "server_unreachable", "print.error.unreachable"},
	{General, apperr.PrintFailed, "job_aborted", "print.error.aborted"},
	{General, apperr.PrintFailed, "timeout", "print.error.timeout"},
	{Settings, apperr.PrintFailed, "bad_request", "settings.printer.bad"},
	{Settings, apperr.PrintFailed, "no_such_queue", "settings.printer.no_queue"},
	{Settings, apperr.PrintFailed, "server_unreachable", "settings.printer.unreachable"},
	{Print, apperr.Internal, "", "print.error.other"},
	{Print, apperr.Cancelled, "", "print.error.timeout"},

	// The log-in screen asks for an operator id: what it does not find is one.
	{Login, apperr.NotFound, "", "error.not_found"},
	{Login, apperr.BadCredentials, "", "error.bad_credentials"},

	{Supervisor, apperr.LastSupervisor, "", "supervisor.error.last_supervisor"},
	{Supervisor, apperr.ReasonRequired, "", "supervisor.error.reason_required"},
	{Supervisor, apperr.AlreadyExists, "", "supervisor.error.exists"},

	// The counter procedures: the decision is recorded before the CA is asked.
	{Procedure, apperr.IdentityDoubt, "", "procedure.error.identity_doubt"},
	{Procedure, apperr.InvalidTransition, "", "procedure.error.invalid_transition"},
	{Procedure, apperr.ReasonRequired, "", "procedure.error.refuse_reason"},
	{Procedure, apperr.ResidentNotEligible, "", "procedure.error.resident_not_eligible"},
	{Procedure, apperr.NotSupported, "", "procedure.error.not_supported"},
	{Procedure, apperr.CAUnavailable, "", "procedure.error.ca_unavailable"},
	{Procedure, apperr.CardUnknown, "", "maintenance.error.card_unknown"},
	{Procedure, apperr.CardOtherMunicipality, "", "maintenance.error.card_other_municipality"},
	{Procedure, apperr.CertificateNotRevoked, "", "maintenance.error.revoke_first"},
	{Procedure, apperr.PINNotSet, "", "maintenance.error.pin_not_set"},
	{Procedure, apperr.CardRefused, "", "maintenance.error.card_refused"},
	{Procedure, anyKind, "already_revoked", "revoke.error.already_revoked"},
	{Procedure, anyKind, "not_on_hold", "hold.error.not_on_hold"},
	{Procedure, anyKind, "certificate_expired", "procedure.error.certificate_expired"},
	{Procedure, anyKind, "wrong_ca", "procedure.error.wrong_ca"},
	{Procedure, anyKind, "channel_not_allowed", "procedure.error.channel_not_allowed"},
	{Procedure, anyKind, "not_found", "procedure.error.ca_not_found"},
	{Procedure, anyKind, "forbidden", "procedure.error.terminal_forbidden"},
	{Procedure, anyKind, "unavailable", "procedure.error.ca_unavailable"},

	// The issuance wizard names the resident-record file in full.
	{Reception, apperr.FileTampered, "", "reception.error.file_tampered"},
	{Reception, apperr.FileExpired, "", "reception.error.file_expired"},
	{Reception, apperr.FileUsed, "", "reception.error.file_used"},
	{Reception, apperr.Cancelled, "", "reception.error.cancelled"},
}

// Rows returns a copy of the table (for tests that render every row).
func Rows() []Row { return append([]Row(nil), table...) }

// Details returns every kind and detail code of the table, a row of anyKind with
// apperr.Internal (for tests that render every detail).
func Details() []Row {
	var out []Row
	for _, r := range table {
		if r.Detail == "" {
			continue
		}
		if r.Kind == anyKind {
			r.Kind = apperr.Internal
		}
		out = append(out, r)
	}
	return out
}

type rowKey struct {
	ctx    Context
	kind   apperr.Kind
	detail string
}

var index = func() map[rowKey]string {
	m := map[rowKey]string{}
	for _, r := range table {
		m[rowKey{r.Context, r.Kind, r.Detail}] = r.Key
	}
	return m
}()

// ErrorKey returns the translation key for err shown in ctx: the most specific row of the table
// for err's kind and detail (context, then General; kind and detail, then any kind with the
// detail, then the kind alone). A cancelled or timed-out context is Cancelled; an error without a
// kind is Internal. nil gives "".
func ErrorKey(ctx Context, err error) string {
	if err == nil {
		return ""
	}
	kind, detail := apperr.KindOf(err), apperr.DetailOf(err)
	if kind == apperr.Internal && detail == "" && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		kind = apperr.Cancelled
	}
	var tries []rowKey
	for _, c := range []Context{ctx, General} {
		if detail != "" {
			tries = append(tries, rowKey{c, kind, detail}, rowKey{c, anyKind, detail})
		}
	}
	tries = append(tries, rowKey{ctx, kind, ""}, rowKey{General, kind, ""})
	for _, k := range tries {
		if key, ok := index[k]; ok {
			return key
		}
	}
	return index[rowKey{General, apperr.Internal, ""}]
}

// Phrase is one sentence to translate: a key and the values of its placeholders. Terms are
// placeholders whose value is itself a key to translate first (a certificate type).
type Phrase struct {
	Key   string
	Args  map[string]any
	Terms map[string]string
}

// ErrorPhrases returns the sentences that tell a person about err in ctx: the table's key for
// its kind and detail, then one per note ("note."+code: what became of the certificates, what
// to do with the card).
func ErrorPhrases(ctx Context, err error) []Phrase {
	if err == nil {
		return nil
	}
	p := Phrase{Key: ErrorKey(ctx, err)}
	if args := apperr.ArgsOf(err); len(args) > 0 {
		p.Args = map[string]any{}
		for k, v := range args {
			p.Args[k] = v
		}
	}
	out := []Phrase{p}
	for _, n := range apperr.NotesOf(err) {
		out = append(out, Phrase{Key: "note." + n})
	}
	return out
}

// MessagePhrases returns the sentences of an outcome told in codes: "notice."+Code with its
// arguments (Cert translated as "cert."+value), then one per note.
func MessagePhrases(m apperr.Message) []Phrase {
	p := Phrase{Key: "notice." + m.Code, Args: map[string]any{}}
	for k, v := range m.Args {
		if k == "Cert" {
			if p.Terms == nil {
				p.Terms = map[string]string{}
			}
			p.Terms[k] = "cert." + v
			continue
		}
		p.Args[k] = v
	}
	out := []Phrase{p}
	for _, n := range m.Notes {
		out = append(out, Phrase{Key: "note." + n})
	}
	return out
}

// Render joins the phrases translated by lookup: Japanese sentences follow each other
// directly, a sentence ending in a Latin letter or full stop is followed by a space.
func Render(phrases []Phrase, lookup func(key string, args map[string]any) string) string {
	var b strings.Builder
	for _, p := range phrases {
		args := p.Args
		if len(p.Terms) > 0 {
			args = map[string]any{}
			for k, v := range p.Args {
				args[k] = v
			}
			for k, key := range p.Terms {
				args[k] = lookup(key, nil)
			}
		}
		s := strings.TrimSpace(lookup(p.Key, args))
		if b.Len() > 0 {
			if r, _ := utf8.DecodeLastRuneInString(b.String()); r < utf8.RuneSelf {
				b.WriteByte(' ')
			}
		}
		b.WriteString(s)
	}
	return b.String()
}

// ErrorText is the message for err in lang, as the CLI prints it (General context).
func ErrorText(lang string, err error) string {
	return Render(ErrorPhrases(General, err), func(key string, args map[string]any) string { return Text(lang, key, args) })
}

// MessageText is the outcome m told in lang.
func MessageText(lang string, m apperr.Message) string {
	return Render(MessagePhrases(m), func(key string, args map[string]any) string { return Text(lang, key, args) })
}
