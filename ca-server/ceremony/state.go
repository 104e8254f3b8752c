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
	ErrBadInput           = errors.New("ceremony: bad input")
	ErrBadShare           = errors.New("ceremony: bad share")
	ErrNotEnoughShares    = errors.New("ceremony: not enough shares")
	ErrAlreadyInitialised = errors.New("ceremony: data dir already holds a ca")
	ErrNotInitialised     = errors.New("ceremony: data dir holds no ca (run init or restore)")
	ErrDestroyed          = errors.New("ceremony: the ca keys were destroyed")
	// ErrCAKeyExpired: TS Art. 8(3): a CA key may be used for at most 4
	// years from its generation; after that it must not sign.
	ErrCAKeyExpired = errors.New("ceremony: ca key usable period (4 years from generation) has ended")
	// ErrKeyMismatch: a CA key in the token does not match its recorded
	// certificate (refuse to run, as Boulder's issuer does).
	ErrKeyMismatch = errors.New("ceremony: ca key does not match its certificate")
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
	Version    int            `json:"version"`
	Ceremony   string         `json:"ceremony"` // id of the init or restore ceremony
	TokenLabel string         `json:"token_label"`
	Custodians []string       `json:"custodians"`
	Threshold  int            `json:"threshold"`
	Dev        bool           `json:"dev,omitempty"`
	Keys       []KeyRecord    `json:"keys"`
	Backups    []BackupRecord `json:"backups,omitempty"`
	Destroyed  *time.Time     `json:"destroyed,omitempty"`
}

// Key returns the record of role.
func (s *State) Key(role string) (KeyRecord, error) {
	for _, k := range s.Keys {
		if k.Role == role {
			return k, nil
		}
	}
	return KeyRecord{}, fmt.Errorf("ceremony: no %s key recorded", role)
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
