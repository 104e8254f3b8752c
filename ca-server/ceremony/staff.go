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
//
// Concurrency: like the ceremonies, one process at a time per data dir.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
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
)

// StaffHolder is one person holding one role.
type StaffHolder struct {
	Person     string    `json:"person"`
	Role       StaffRole `json:"role"`
	Since      time.Time `json:"since"`
	ApprovedBy []string  `json:"approved_by"` // CA manager and internal auditor
}

// StaffRegister is who holds which role.
type StaffRegister struct {
	Version int           `json:"version"`
	Holders []StaffHolder `json:"holders"`
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
	return &r, nil
}

// CheckDuty checks that people are enough distinct people, each holding a
// role duty needs. Without a register (a data dir that never made one) it
// returns nil: roles are not enforced there.
func CheckDuty(dataDir, duty string, people ...string) error {
	var d *Duty
	for i := range Duties {
		if Duties[i].Name == duty {
			d = &Duties[i]
		}
	}
	if d == nil {
		return fmt.Errorf("%w: unknown duty %q", ErrBadInput, duty)
	}
	reg, err := LoadStaff(dataDir)
	if err != nil || reg == nil {
		return err
	}
	var named []string
	for _, p := range people {
		if p != "" && !slices.Contains(named, p) {
			named = append(named, p)
		}
	}
	if len(named) < d.People {
		return fmt.Errorf("%w: %s needs %d different people holding %s (%s); named: %s", ErrRoleRequired, duty, d.People,
			joinRoles(d.Roles), d.Why, strings.Join(named, ", "))
	}
	for _, p := range named {
		if !reg.Holds(p, d.Roles...) {
			return fmt.Errorf("%w: %s needs %s; %q does not hold it", ErrRoleRequired, duty, joinRoles(d.Roles), p)
		}
	}
	return nil
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
func InitStaff(ctx context.Context, dataDir, manager, auditor string, now time.Time) error {
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
	reg := &StaffRegister{Version: 1, Holders: []StaffHolder{
		{Person: manager, Role: StaffCAManager, Since: now.UTC(), ApprovedBy: approved},
		{Person: auditor, Role: StaffInternalAuditor, Since: now.UTC(), ApprovedBy: approved},
	}}
	return saveStaff(ctx, dataDir, reg, Event{Time: now, Command: "staff", Step: "init", Who: approved, Result: "ok",
		Detail: map[string]string{"ca-manager": manager, "internal-auditor": auditor}})
}

// ChangeStaff gives (assign) or takes (withdraw) role of person, approved
// by a CA manager and an internal auditor of the register, neither of them
// person. The last CA manager or internal auditor cannot be withdrawn.
func ChangeStaff(ctx context.Context, dataDir string, assign bool, person string, role StaffRole, manager, auditor string, now time.Time) error {
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
		reg.Holders = append(reg.Holders, StaffHolder{Person: person, Role: role, Since: now.UTC(), ApprovedBy: []string{manager, auditor}})
	} else {
		step = "withdraw"
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
