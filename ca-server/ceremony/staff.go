package ceremony

// The CA's staff roles (CPS §5.2.1.1): CA manager, private-key custodians,
// senior operators, general operators and the internal auditor; custodian
// and senior-operator work needs several people.
//
// What holds which rule, and where:
//   - Custodian work (init, activation, backup, restore, rollover,
//     retirement, destruction, card batches, CRL signing outside serve) is
//     M-of-N by construction: the token PINs exist only as custodian shares
//     (shares.go), so M custodians must present theirs. Custodians are the
//     names in State.Custodians, fixed at init or restore.
//   - The register below names the other roles (ceremony/staff.json, 0600,
//     every change also in the hash-chained ceremony record). Duties lists
//     which local commands need which role and how many distinct people;
//     CheckDuty enforces it once a register exists. Removing the file
//     afterwards is refused (ErrStaffRegisterMissing): the record shows a
//     register was made.
//   - Changes to the register need two people: the CA manager and the
//     internal auditor, neither of them the person changed. The internal
//     auditor holds no other role and is no custodian (independence of the
//     audit, CPS §5.2.1.1, §5.4).
//   - Names are not proof (TS Art. 27, 45): every person in the register
//     has a personal credential, an argon2id hash of a passphrase they set
//     themselves (staff init, staff assign, staff credential; at least
//     MinPassphraseLen characters, CheckPassphrase). A duty or a register
//     change is done only when each person named confirms it with their
//     own passphrase (SecretFunc: the command reads it from that person's
//     terminal or a file descriptor, never from argv). One person named
//     twice, a wrong passphrase, a person without a credential or a name
//     not holding the role is refused (ErrNotConfirmed, ErrRoleRequired).
//     Custodian work needs no register credential: the share passphrases
//     confirm it. Credentials' argon2 parameters are bounded when read, as
//     share files' are.
//   - A CA made by a non-dev ceremony runs no duty without a register
//     (ErrStaffRegisterRequired); a dev CA, or a data dir without a key
//     ceremony, is not checked.
//   - Registers made before credentials (no credential at all) migrate at
//     their first change: each approver without a credential sets one
//     then; once any credential exists, nobody can set one for themselves
//     without a CA manager and an internal auditor confirming.
//
// Concurrency: like the ceremonies, one process at a time per data dir.

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// StaffRole is a person's role at the CA (CPS §5.2.1.1).
type StaffRole string

// Staff roles. Custodians are State.Custodians, not register entries.
const (
	StaffCAManager       StaffRole = "ca-manager"
	StaffSeniorOperator  StaffRole = "senior-operator"
	StaffOperator        StaffRole = "operator"
	StaffInternalAuditor StaffRole = "internal-auditor"
)

// StaffRoles lists the register's roles.
var StaffRoles = []StaffRole{StaffCAManager, StaffSeniorOperator, StaffOperator, StaffInternalAuditor}

// Errors callers branch on.
var (
	// ErrRoleRequired: a person does not hold the role a duty needs, or
	// too few distinct people were named.
	ErrRoleRequired = errors.New("ceremony: role required")
	// ErrStaffRegisterMissing: the ceremony record shows a staff register
	// was made, but its file is gone.
	ErrStaffRegisterMissing = errors.New("ceremony: staff register missing (the ceremony record shows one was made)")
	// ErrStaffRegisterRequired: a CA made by a non-dev key ceremony checks
	// every duty against the register, so it needs one (staff init).
	ErrStaffRegisterRequired = errors.New("ceremony: this ca needs a staff register before any duty (staff init)")
	// ErrNotConfirmed: a person named for a duty or a register change did
	// not confirm it with their own secret (wrong passphrase, or no
	// credential). It is an ErrRoleRequired.
	ErrNotConfirmed = fmt.Errorf("%w: not confirmed by the person's own secret", ErrRoleRequired)
)

// SecretFunc returns the secret person types to confirm (or, when
// setting a credential, to choose). The command reads it from that
// person's terminal without echo or from a file descriptor.
type SecretFunc func(person string, purpose SecretPurpose) (string, error)

// SecretPurpose says why a secret is asked for.
type SecretPurpose int

const (
	// SecretConfirm: the person confirms with their registered passphrase.
	SecretConfirm SecretPurpose = iota
	// SecretNew: the person chooses a new passphrase (CheckPassphrase).
	SecretNew
)

// Credential is a person's registered secret: argon2id of their own
// passphrase. The passphrase itself is never stored or logged.
type Credential struct {
	KDF     string    `json:"kdf"` // "argon2id"
	Salt    []byte    `json:"salt"`
	Time    uint32    `json:"time"`
	MemKiB  uint32    `json:"mem_kib"`
	Threads uint8     `json:"threads"`
	Hash    []byte    `json:"hash"`
	Set     time.Time `json:"set"`
}

// credentialCost is the argon2id cost of new credentials (as share
// sealing: RFC 9106 §4, t=3, 64 MiB); tests lower it (UseTestCosts).
var credentialCost = defaultSealCost

func newCredential(person, pass string, now time.Time) (*Credential, error) {
	if err := CheckPassphrase(person, pass); err != nil {
		return nil, err
	}
	salt, err := randomBytes(nil, 16)
	if err != nil {
		return nil, err
	}
	c := &Credential{KDF: "argon2id", Salt: salt, Time: credentialCost.time, MemKiB: credentialCost.memKiB, Threads: credentialCost.threads, Set: now.UTC()}
	c.Hash = argon2.IDKey([]byte(pass), c.Salt, c.Time, c.MemKiB, c.Threads, 32)
	return c, nil
}

// verify checks pass against the credential; its parameters are bounded
// first (the register is a file), so a crafted one cannot exhaust memory.
func (c *Credential) verify(person, pass string) error {
	if err := (argonParams{c.KDF, c.Salt, c.Time, c.MemKiB, c.Threads}).check(); err != nil {
		return fmt.Errorf("%w: credential of %q in the staff register: %v", ErrBadInput, person, err)
	}
	if len(c.Hash) != 32 {
		return fmt.Errorf("%w: credential of %q in the staff register: hash of %d bytes", ErrBadInput, person, len(c.Hash))
	}
	got := argon2.IDKey([]byte(pass), c.Salt, c.Time, c.MemKiB, c.Threads, 32)
	if subtle.ConstantTimeCompare(got, c.Hash) != 1 {
		return fmt.Errorf("%w: the secret given for %q is wrong", ErrNotConfirmed, person)
	}
	return nil
}

// StaffHolder is one person holding one role.
type StaffHolder struct {
	Person     string    `json:"person"`
	Role       StaffRole `json:"role"`
	Since      time.Time `json:"since"`
	ApprovedBy []string  `json:"approved_by"` // CA manager and internal auditor
}

// StaffRegister is who holds which role, and each person's credential.
type StaffRegister struct {
	Version     int                    `json:"version"`
	Holders     []StaffHolder          `json:"holders"`
	Credentials map[string]*Credential `json:"credentials,omitempty"` // by person

	legacy bool // loaded without any credential: made before credentials
}

// confirm asks person for their secret and checks it. In a register made
// before credentials (none at all), a person without one sets it instead
// (migration; enrolled reports it so the caller saves the register).
func (r *StaffRegister) confirm(person string, secret SecretFunc, now time.Time) (enrolled bool, err error) {
	if secret == nil {
		return false, fmt.Errorf("%w: no way to ask %q for their secret", ErrNotConfirmed, person)
	}
	c := r.Credentials[person]
	if c == nil {
		if !r.legacy {
			return false, fmt.Errorf("%w: %q has no personal credential (staff credential --person %s, approved by a CA manager and an internal auditor)", ErrNotConfirmed, person, person)
		}
		pass, err := secret(person, SecretNew)
		if err != nil {
			return false, err
		}
		nc, err := newCredential(person, pass, now)
		if err != nil {
			return false, err
		}
		r.setCredential(person, nc)
		return true, nil
	}
	pass, err := secret(person, SecretConfirm)
	if err != nil {
		return false, err
	}
	return false, c.verify(person, pass)
}

func (r *StaffRegister) setCredential(person string, c *Credential) {
	if r.Credentials == nil {
		r.Credentials = map[string]*Credential{}
	}
	r.Credentials[person] = c
	r.Version = 2
}

// Holds reports whether person holds one of roles.
func (r *StaffRegister) Holds(person string, roles ...StaffRole) bool {
	for _, h := range r.Holders {
		if h.Person == person && slices.Contains(roles, h.Role) {
			return true
		}
	}
	return false
}

func (r *StaffRegister) rolesOf(person string) []StaffRole {
	var out []StaffRole
	for _, h := range r.Holders {
		if h.Person == person {
			out = append(out, h.Role)
		}
	}
	return out
}

// Duty is one kind of local work and who may do it.
type Duty struct {
	Name   string      // the audit action, e.g. "terminal.token"
	Roles  []StaffRole // each person named must hold one of these
	People int         // distinct people needed
	Why    string
}

// Duties: which local commands need which role (CPS §5.2.1.1). Custodian
// work is not listed: it needs M custodian shares already.
var Duties = []Duty{
	{"terminal.token", []StaffRole{StaffSeniorOperator}, 2, "enrols a counter terminal that may then request issuance and revocation"},
	{"terminal.revoke", []StaffRole{StaffSeniorOperator}, 2, "withdraws a counter terminal's access to the CA"},
	{"verifier.add", []StaffRole{StaffSeniorOperator}, 2, "gives a relying party access to CRLs and OCSP"},
	{"verifier.revoke", []StaffRole{StaffSeniorOperator}, 2, "withdraws a relying party's access"},
	{"certificate.hold", []StaffRole{StaffOperator, StaffSeniorOperator}, 1, "a phone report of a lost card is acted on at once by the call centre; release needs the counter's identity checks"},
	{"audit.verify", []StaffRole{StaffInternalAuditor}, 1, "only the internal auditor reviews the audit records (CPS §5.4)"},
	{"audit.show", []StaffRole{StaffInternalAuditor}, 1, "only the internal auditor reviews the audit records (CPS §5.4)"},
	{"audit.backup", []StaffRole{StaffInternalAuditor}, 1, "the internal auditor's extra copy; serve makes the daily one"},
}

func staffPath(dataDir string) string { return filepath.Join(CeremonyDir(dataDir), "staff.json") }

// LoadStaff returns the data dir's staff register, or nil (and no error)
// when none was ever made. A register the ceremony record shows but whose
// file is gone is ErrStaffRegisterMissing.
func LoadStaff(dataDir string) (*StaffRegister, error) {
	b, err := os.ReadFile(staffPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		events, rerr := NewFileRecord(RecordPath(dataDir)).Events()
		if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, rerr
		}
		for _, e := range events {
			if e.Command == "staff" {
				return nil, ErrStaffRegisterMissing
			}
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ceremony: staff register: %w", err)
	}
	var r StaffRegister
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("ceremony: staff register: %w", err)
	}
	r.legacy = len(r.Credentials) == 0
	return &r, nil
}

// CheckDuty checks that people are enough distinct people, each holding a
// role duty needs, and that each of them confirms with their own secret
// (asked through secret, in the order named). It returns the people who
// confirmed. One person named twice, a name not holding the role, a wrong
// secret or a person without a credential is refused, before anything is
// done. Without a register it returns nil for a dev CA or a data dir
// without a key ceremony (roles are not enforced there), and
// ErrStaffRegisterRequired for a CA made by a non-dev ceremony.
func CheckDuty(dataDir, duty string, people []string, secret SecretFunc) ([]string, error) {
	var d *Duty
	for i := range Duties {
		if Duties[i].Name == duty {
			d = &Duties[i]
		}
	}
	if d == nil {
		return nil, fmt.Errorf("%w: unknown duty %q", ErrBadInput, duty)
	}
	reg, err := LoadStaff(dataDir)
	if err != nil {
		return nil, err
	}
	if reg == nil {
		st, serr := LoadState(dataDir)
		if serr == nil && !st.Dev {
			return nil, fmt.Errorf("%w: %s on a CA made by a non-dev key ceremony", ErrStaffRegisterRequired, duty)
		}
		return nil, nil
	}
	var named []string
	for _, p := range people {
		if p == "" {
			continue
		}
		if slices.Contains(named, p) {
			return nil, fmt.Errorf("%w: %s: %q is named twice; %d different people confirm it, each with their own secret", ErrRoleRequired, duty, p, d.People)
		}
		named = append(named, p)
	}
	if len(named) < d.People {
		return nil, fmt.Errorf("%w: %s needs %d different people holding %s (%s); named: %s", ErrRoleRequired, duty, d.People,
			joinRoles(d.Roles), d.Why, strings.Join(named, ", "))
	}
	for _, p := range named {
		if !reg.Holds(p, d.Roles...) {
			return nil, fmt.Errorf("%w: %s needs %s; %q does not hold it", ErrRoleRequired, duty, joinRoles(d.Roles), p)
		}
	}
	for _, p := range named {
		if reg.Credentials[p] == nil {
			return nil, fmt.Errorf("%w: %q has no personal credential (staff credential --person %s)", ErrNotConfirmed, p, p)
		}
		if _, err := reg.confirm(p, secret, time.Time{}); err != nil {
			return nil, fmt.Errorf("%s: %w", duty, err)
		}
	}
	return named, nil
}

func joinRoles(rs []StaffRole) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// InitStaff makes the register with its first CA manager and internal
// auditor, two different people; the auditor may not be a custodian.
// Each of them chooses their personal credential (SecretNew).
func InitStaff(ctx context.Context, dataDir, manager, auditor string, secret SecretFunc, now time.Time) error {
	if manager == "" || auditor == "" || manager == auditor {
		return fmt.Errorf("%w: the staff register starts with a CA manager and a different internal auditor", ErrBadInput)
	}
	if reg, err := LoadStaff(dataDir); err != nil {
		return err
	} else if reg != nil {
		return fmt.Errorf("%w: the staff register exists already", ErrBadInput)
	}
	if err := auditorIndependent(dataDir, nil, auditor); err != nil {
		return err
	}
	approved := []string{manager, auditor}
	reg := &StaffRegister{Version: 2, Holders: []StaffHolder{
		{Person: manager, Role: StaffCAManager, Since: now.UTC(), ApprovedBy: approved},
		{Person: auditor, Role: StaffInternalAuditor, Since: now.UTC(), ApprovedBy: approved},
	}}
	if err := reg.enrol(manager, secret, now); err != nil {
		return err
	}
	if err := reg.enrol(auditor, secret, now); err != nil {
		return err
	}
	return saveStaff(ctx, dataDir, reg, Event{Time: now, Command: "staff", Step: "init", Who: approved, Result: "ok",
		Detail: map[string]string{"ca-manager": manager, "internal-auditor": auditor}})
}

// ChangeStaff gives (assign) or takes (withdraw) role of person, approved
// by a CA manager and an internal auditor of the register, neither of them
// person, each confirming with their own secret. A person assigned a role
// who has no credential yet chooses one (SecretNew); one who has confirms
// with it. The last CA manager or internal auditor cannot be withdrawn.
// A refused confirmation is recorded in the ceremony record (names only).
func ChangeStaff(ctx context.Context, dataDir string, assign bool, person string, role StaffRole, manager, auditor string, secret SecretFunc, now time.Time) error {
	if person == "" || !slices.Contains(StaffRoles, role) {
		return fmt.Errorf("%w: a person and one of the roles %s", ErrBadInput, joinRoles(StaffRoles))
	}
	reg, err := LoadStaff(dataDir)
	if err != nil {
		return err
	}
	if reg == nil {
		return fmt.Errorf("%w: no staff register (staff init)", ErrBadInput)
	}
	if !reg.Holds(manager, StaffCAManager) || !reg.Holds(auditor, StaffInternalAuditor) || manager == auditor {
		return fmt.Errorf("%w: a role change is approved by a CA manager and an internal auditor of the register", ErrRoleRequired)
	}
	if person == manager || person == auditor {
		return fmt.Errorf("%w: nobody approves a change of their own roles", ErrRoleRequired)
	}
	step := "assign"
	if !assign {
		step = "withdraw"
	}
	if err := reg.approve(ctx, dataDir, step, person, manager, auditor, secret, now); err != nil {
		return err
	}
	if assign {
		if reg.Holds(person, role) {
			return fmt.Errorf("%w: %q holds %s already", ErrBadInput, person, role)
		}
		if role == StaffInternalAuditor {
			if err := auditorIndependent(dataDir, reg, person); err != nil {
				return err
			}
		} else if reg.Holds(person, StaffInternalAuditor) {
			return fmt.Errorf("%w: the internal auditor %q holds no other role", ErrRoleRequired, person)
		}
		if reg.Credentials[person] == nil {
			if err := reg.enrol(person, secret, now); err != nil {
				return err
			}
		} else if _, err := reg.confirm(person, secret, now); err != nil {
			return refused(ctx, dataDir, step, []string{manager, auditor, person}, person, now, err)
		}
		reg.Holders = append(reg.Holders, StaffHolder{Person: person, Role: role, Since: now.UTC(), ApprovedBy: []string{manager, auditor}})
	} else {
		if !reg.Holds(person, role) {
			return fmt.Errorf("%w: %q does not hold %s", ErrBadInput, person, role)
		}
		n := 0
		for _, h := range reg.Holders {
			if h.Role == role {
				n++
			}
		}
		if (role == StaffCAManager || role == StaffInternalAuditor) && n == 1 {
			return fmt.Errorf("%w: %q is the last %s", ErrBadInput, person, role)
		}
		reg.Holders = slices.DeleteFunc(reg.Holders, func(h StaffHolder) bool { return h.Person == person && h.Role == role })
	}
	return saveStaff(ctx, dataDir, reg, Event{Time: now, Command: "staff", Step: step, Who: []string{manager, auditor}, Result: "ok",
		Detail: map[string]string{"person": person, "role": string(role)}})
}

// SetCredential sets (or resets, when forgotten) person's credential: they
// choose a new passphrase (SecretNew), approved by a CA manager and an
// internal auditor of the register, neither of them person, each
// confirming with their own secret. person must hold a role.
func SetCredential(ctx context.Context, dataDir, person, manager, auditor string, secret SecretFunc, now time.Time) error {
	reg, err := LoadStaff(dataDir)
	if err != nil {
		return err
	}
	if reg == nil {
		return fmt.Errorf("%w: no staff register (staff init)", ErrBadInput)
	}
	if len(reg.rolesOf(person)) == 0 {
		return fmt.Errorf("%w: %q holds no role in the register", ErrBadInput, person)
	}
	if !reg.Holds(manager, StaffCAManager) || !reg.Holds(auditor, StaffInternalAuditor) || manager == auditor {
		return fmt.Errorf("%w: a credential is set with the approval of a CA manager and an internal auditor of the register", ErrRoleRequired)
	}
	if person == manager || person == auditor {
		return fmt.Errorf("%w: nobody approves their own credential", ErrRoleRequired)
	}
	if err := reg.approve(ctx, dataDir, "credential", person, manager, auditor, secret, now); err != nil {
		return err
	}
	if err := reg.enrol(person, secret, now); err != nil {
		return err
	}
	return saveStaff(ctx, dataDir, reg, Event{Time: now, Command: "staff", Step: "credential", Who: []string{manager, auditor}, Result: "ok",
		Detail: map[string]string{"person": person}})
}

// enrol lets person choose a new credential.
func (r *StaffRegister) enrol(person string, secret SecretFunc, now time.Time) error {
	if secret == nil {
		return fmt.Errorf("%w: no way to ask %q for a new secret", ErrNotConfirmed, person)
	}
	pass, err := secret(person, SecretNew)
	if err != nil {
		return err
	}
	for p, c := range r.Credentials {
		// one person choosing everybody's secret would be everybody
		if p != person && c.verify(p, pass) == nil {
			return fmt.Errorf("%w: %q chose the secret of another person in the register: each person chooses their own", ErrWeakPassphrase, person)
		}
	}
	c, err := newCredential(person, pass, now)
	if err != nil {
		return err
	}
	r.setCredential(person, c)
	return nil
}

// approve has the CA manager and the internal auditor confirm a change with
// their own secrets; a refusal is recorded (names only) and returned.
func (r *StaffRegister) approve(ctx context.Context, dataDir, step, person, manager, auditor string, secret SecretFunc, now time.Time) error {
	for _, p := range []string{manager, auditor} {
		if _, err := r.confirm(p, secret, now); err != nil {
			return refused(ctx, dataDir, step, []string{manager, auditor}, person, now, err)
		}
	}
	return nil
}

// refused records a refused register change in the ceremony record: who
// was named, what for, and why (names only, never a secret).
func refused(ctx context.Context, dataDir, step string, who []string, person string, now time.Time, err error) error {
	e := Event{Time: now, Ceremony: "staff", Command: "staff", Step: step, Who: who, Result: "refused: " + err.Error(),
		Detail: map[string]string{"person": person}}
	if rerr := NewFileRecord(RecordPath(dataDir)).Record(ctx, e); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// auditorIndependent: the internal auditor holds no other role and is no
// custodian (CPS §5.2.1.1, §5.4: the audit is independent of operation).
func auditorIndependent(dataDir string, reg *StaffRegister, person string) error {
	if reg != nil {
		if rs := reg.rolesOf(person); len(rs) > 0 {
			return fmt.Errorf("%w: the internal auditor holds no other role; %q holds %s", ErrRoleRequired, person, joinRoles(rs))
		}
	}
	st, err := LoadState(dataDir)
	if err != nil && !errors.Is(err, ErrNotInitialised) && !errors.Is(err, ErrDestroyed) {
		return err
	}
	if st != nil && slices.Contains(st.Custodians, person) {
		return fmt.Errorf("%w: the internal auditor is no key custodian; %q is one", ErrRoleRequired, person)
	}
	return nil
}

func saveStaff(ctx context.Context, dataDir string, reg *StaffRegister, e Event) error {
	if err := os.MkdirAll(CeremonyDir(dataDir), 0o700); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	b, err := json.MarshalIndent(reg, "", "  ")
	if err != nil {
		return err
	}
	p := staffPath(dataDir)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	e.Ceremony = "staff"
	return NewFileRecord(RecordPath(dataDir)).Record(ctx, e)
}
