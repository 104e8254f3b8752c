package ceremony

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Errors callers branch on.
var (
	ErrBadInput        = errors.New("ceremony: bad input")
	ErrBadShare        = errors.New("ceremony: bad share")
	ErrNotEnoughShares = errors.New("ceremony: not enough shares")
	// ErrWeakPassphrase: outside a dev ceremony, a custodian's share (or a
	// staff credential) needs the person's own passphrase of
	// PassphraseRule's strength (TS Art. 27, 45; CPS §6.2). It is an
	// ErrBadInput.
	ErrWeakPassphrase     = fmt.Errorf("%w: passphrase missing or too weak", ErrBadInput)
	ErrAlreadyInitialised = errors.New("ceremony: data dir already holds a ca")
	ErrNotInitialised     = errors.New("ceremony: data dir holds no ca (run init or restore)")
	ErrDestroyed          = errors.New("ceremony: the ca keys were destroyed")
	// ErrCAKeyExpired: TS Art. 8(3): a CA key may be used for at most 4
	// years from its generation; after that it must not sign.
	ErrCAKeyExpired = errors.New("ceremony: ca key usable period (4 years from generation) has ended")
	// ErrKeyMismatch: a CA key in the token does not match its recorded
	// certificate (refuse to run, as Boulder's issuer does).
	ErrKeyMismatch = errors.New("ceremony: ca key does not match its certificate")
	// ErrNotIssuingKey: the CA key was superseded at a rollover and signs
	// only CRLs and OCSP responses for the certificates it issued, never a
	// new certificate (CPS §5.6; TS Art. 8(3)).
	ErrNotIssuingKey = errors.New("ceremony: ca key is not the issuing key (superseded: crl and ocsp signing only)")
	// ErrStillSigningCRLs: a superseded key may not be retired while
	// certificates it issued can still be valid: their CRLs need it.
	ErrStillSigningCRLs = errors.New("ceremony: ca key still signs crls for certificates it issued")
	// ErrMasterKeysNotWrappable: the card issuer master keys were generated
	// non-extractable (a CA initialised before master keys were backed up),
	// so a backup cannot carry them.
	ErrMasterKeysNotWrappable = errors.New("ceremony: card master keys of this ca are not backup-wrappable (initialised before master-key backup)")
	// ErrNoMasterKeys: the CA holds no card issuer master keys (restored
	// from a backup made without them), so it cannot open a secure channel
	// with any card in stock.
	ErrNoMasterKeys = errors.New("ceremony: this ca holds no card master keys")
)

// CA key status (CPS §5.6 key changeover).
const (
	// StatusIssuing: the CA's current key; signs certificates, CRLs and
	// OCSP responses. An empty status in a state written before rollovers
	// existed means issuing.
	StatusIssuing = "issuing"
	// StatusCRLOnly: superseded at a rollover; signs only CRLs and OCSP
	// responses until every certificate it issued has expired.
	StatusCRLOnly = "crl-only"
	// StatusRetired: destroyed by ceremony-retire after its last
	// certificate could no longer be valid.
	StatusRetired = "retired"
)

// Key roles in the token.
const (
	RoleSignatureCA = "signature-ca" // 署名用CA
	RoleAuthCA      = "user-auth-ca" // 利用者証明用CA
	RoleMasterENC   = "card-mk-enc"  // card issuer master key for K-ENC
	RoleMasterMAC   = "card-mk-mac"  // card issuer master key for K-MAC
	RoleMasterDEK   = "card-mk-dek"  // card issuer master key for K-DEK
	RolePersonHash  = "person-hash"  // HMAC key: keyed hash of the resident-record code
)

// StateVersion is the key-inventory format: 2 added rollovers (generation,
// status, links), fingerprints and backup-wrappable master keys. Version 1
// states load unchanged: their CA keys are generation 1 and issuing, their
// master keys not backup-wrappable.
const StateVersion = 2

// CAKeyUsableYears: TS Art. 8(3).
const CAKeyUsableYears = 4

// UsableUntil is the end of a CA key's usable period: 4 years from its
// generation (TS Art. 8(3)).
func UsableUntil(generated time.Time) time.Time {
	return generated.AddDate(CAKeyUsableYears, 0, 0)
}

// KeyRecord is one key the ceremonies manage. It holds no secret.
type KeyRecord struct {
	Role      string    `json:"role"`
	Label     string    `json:"label"`
	ID        []byte    `json:"id"`
	Generated time.Time `json:"generated"`
	// Restored is set when the key came back from a backup; Generated keeps
	// the original generation date, which bounds the usable period.
	Restored *time.Time `json:"restored,omitempty"`
	// Certificate is the CA's self-signed certificate (PEM file under the
	// data dir), for CA keys.
	Certificate string `json:"certificate,omitempty"`
	BackedUp    bool   `json:"backed_up"`

	// Generation numbers the keys of one CA role: 1 at init, +1 at each
	// rollover (0 in states written before rollovers existed means 1).
	Generation int `json:"generation,omitempty"`
	// Status of a CA key: StatusIssuing, StatusCRLOnly or StatusRetired.
	Status string `json:"status,omitempty"`
	// Superseded is when a rollover made this key CRL-only: it issued
	// certificates until then and never after.
	Superseded *time.Time `json:"superseded,omitempty"`
	// CRLSigningUntil is the end of a CRL-only key's CRL and OCSP signing:
	// its certificate's notAfter, since no certificate it issued may
	// outlive it (issuer.ErrOutlivesCA).
	CRLSigningUntil *time.Time `json:"crl_signing_until,omitempty"`
	// Retired is when ceremony-retire destroyed the key.
	Retired *time.Time `json:"retired,omitempty"`
	// Fingerprints of the CA certificate, for publication (G Art. 10(ii)).
	Fingerprints *Fingerprints `json:"fingerprints,omitempty"`
	// BackupWrappable: the key was generated hsm.ExtractableForBackup. CA
	// and person-hash keys always were; card master keys only since they
	// are backed up (false in older states: see ErrMasterKeysNotWrappable).
	BackupWrappable bool `json:"backup_wrappable,omitempty"`
}

// IsCA tells a CA key (signature or user-authentication CA) from the others.
func (k KeyRecord) IsCA() bool { return k.Role == RoleSignatureCA || k.Role == RoleAuthCA }

// Gen is the key's generation, 1 for keys recorded before rollovers existed.
func (k KeyRecord) Gen() int { return max(k.Generation, 1) }

// KeyStatus is the key's status; an empty status means issuing.
func (k KeyRecord) KeyStatus() string {
	if k.Status == "" {
		return StatusIssuing
	}
	return k.Status
}

// CheckIssuing returns nil if the key may sign a new certificate now: it
// is its CA's issuing key (ErrNotIssuingKey otherwise: a superseded key
// signs only CRLs and OCSP, CPS §5.6) and within its 4 years
// (ErrCAKeyExpired, TS Art. 8(3)).
func (k KeyRecord) CheckIssuing(now time.Time) error {
	if s := k.KeyStatus(); s != StatusIssuing {
		return fmt.Errorf("%w: %s key %q (generation %d) is %s", ErrNotIssuingKey, k.Role, k.Label, k.Gen(), s)
	}
	return k.CheckUsable(now)
}

// UsablePeriod returns when the CA key may be used: [Generated, Generated+4y).
func (k KeyRecord) UsablePeriod() (from, until time.Time) {
	return k.Generated, UsableUntil(k.Generated)
}

// CheckUsable returns ErrCAKeyExpired once the usable period has ended
// (TS Art. 8(3)); the issuer calls it before every signature.
func (k KeyRecord) CheckUsable(now time.Time) error {
	if until := UsableUntil(k.Generated); !now.Before(until) {
		return fmt.Errorf("%w: %s key %q generated %s, usable until %s", ErrCAKeyExpired, k.Role, k.Label,
			k.Generated.Format(time.DateOnly), until.Format(time.DateOnly))
	}
	return nil
}

// BackupRecord lists one backup file, so destroy can find every copy
// (TS Art. 27, 45: destruction of all copies at once).
type BackupRecord struct {
	Path     string    `json:"path"`
	Ceremony string    `json:"ceremony"`
	Created  time.Time `json:"created"`
	Removed  bool      `json:"removed,omitempty"`
}

// State is the CA's key inventory under the data dir (ceremony/state.json).
type State struct {
	Version    int         `json:"version"`
	Ceremony   string      `json:"ceremony"` // id of the init or restore ceremony
	TokenLabel string      `json:"token_label"`
	Custodians []string    `json:"custodians"`
	Threshold  int         `json:"threshold"`
	Dev        bool        `json:"dev,omitempty"`
	Keys       []KeyRecord `json:"keys"`
	// Links are the link certificates of every rollover (CPS §5.6, §7.1(3)).
	Links     []LinkRecord   `json:"links,omitempty"`
	Backups   []BackupRecord `json:"backups,omitempty"`
	Destroyed *time.Time     `json:"destroyed,omitempty"`
	// AuditFileKeys are the public halves of audit checkpoint keys that a
	// data dir kept in a file before the key moved into the HSM, recorded
	// when serve migrated the data dir (RecordAuditFileKey), so checkpoints
	// they signed keep verifying. Verification keys come from this record
	// only, never from loose files in the data dir.
	AuditFileKeys []AuditFileKey `json:"audit_file_keys,omitempty"`
}

// AuditFileKey is one recorded file audit checkpoint key (public half).
type AuditFileKey struct {
	KeyID     string    `json:"key_id"`     // the KeyID its checkpoints carry
	PublicKey string    `json:"public_key"` // PEM "PUBLIC KEY" (SubjectPublicKeyInfo)
	SHA256    string    `json:"sha256"`     // hex SHA-256 of the SubjectPublicKeyInfo
	Recorded  time.Time `json:"recorded"`
}

// LinkRecord is one link certificate made at a rollover (CPS §5.6, §7.1(3);
// RFC 4210 §4.4): OldWithNew carries the old public key signed by the new
// key, so a relying party that trusts the new CA certificate can check
// certificates the old key issued; NewWithOld carries the new public key
// signed by the old key, for relying parties that still trust the old one.
type LinkRecord struct {
	Role          string       `json:"role"`
	Kind          string       `json:"kind"` // LinkOldWithNew or LinkNewWithOld
	OldGeneration int          `json:"old_generation"`
	NewGeneration int          `json:"new_generation"`
	Generated     time.Time    `json:"generated"`
	Certificate   string       `json:"certificate"` // PEM file under the ceremony dir
	Fingerprints  Fingerprints `json:"fingerprints"`
}

// Link certificate kinds.
const (
	LinkOldWithNew = "old-with-new"
	LinkNewWithOld = "new-with-old"
)

// Key returns the record of role: for a CA role, its issuing key (see
// IssuingKey); otherwise the one key of that role.
func (s *State) Key(role string) (KeyRecord, error) {
	for _, k := range s.Keys {
		if k.Role == role && k.KeyStatus() == StatusIssuing {
			return k, nil
		}
	}
	return KeyRecord{}, fmt.Errorf("ceremony: no %s key recorded", role)
}

// IssuingKey returns the key that signs new certificates for a CA role.
func (s *State) IssuingKey(role string) (KeyRecord, error) {
	if role != RoleSignatureCA && role != RoleAuthCA {
		return KeyRecord{}, fmt.Errorf("%w: %q is not a ca role", ErrBadInput, role)
	}
	return s.Key(role)
}

// CRLOnlyKeys returns the superseded keys of a CA role that still sign
// CRLs and OCSP responses (with their Superseded and CRLSigningUntil
// dates), oldest first.
func (s *State) CRLOnlyKeys(role string) []KeyRecord {
	var out []KeyRecord
	for _, k := range s.Keys {
		if k.Role == role && k.KeyStatus() == StatusCRLOnly {
			out = append(out, k)
		}
	}
	return out
}

// hasRole reports whether a key of role is recorded and not retired.
func (s *State) hasRole(role string) bool {
	for _, k := range s.Keys {
		if k.Role == role && k.KeyStatus() != StatusRetired {
			return true
		}
	}
	return false
}

// CeremonyDir is where the state, record and CA certificates live.
func CeremonyDir(dataDir string) string { return filepath.Join(dataDir, "ceremony") }

func statePath(dataDir string) string  { return filepath.Join(CeremonyDir(dataDir), "state.json") }
func RecordPath(dataDir string) string { return filepath.Join(CeremonyDir(dataDir), "record.jsonl") }

// LoadState reads the data dir's key inventory: ErrNotInitialised if none,
// ErrDestroyed (with the state) after destroy.
func LoadState(dataDir string) (*State, error) {
	b, err := os.ReadFile(statePath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotInitialised
	}
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("ceremony: state: %w", err)
	}
	if s.Version < 1 || s.Version > StateVersion {
		return nil, fmt.Errorf("ceremony: state version %d (this program reads 1..%d)", s.Version, StateVersion)
	}
	if s.Destroyed != nil {
		return &s, ErrDestroyed
	}
	return &s, nil
}

func saveState(dataDir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	p := statePath(dataDir)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	return nil
}
