package ceremony

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/vault/shamir"
	"golang.org/x/crypto/argon2"

	"madoguchi/ca-server/hsm"
)

// Share purposes: what the split secret opens.
const (
	PurposeToken     = "token"      // the token's SO and user PINs (activation, backup, destroy, card batches)
	PurposeBackupKEK = "backup-kek" // the AES-256 KEK of one backup file
)

// ShareFile is one custodian's share, as written to disk. Share is the raw
// Shamir share when unsealed; when sealed, Ciphertext is AES-256-GCM of the
// share under a key from argon2id(passphrase, Salt).
type ShareFile struct {
	Version   int    `json:"version"`
	Purpose   string `json:"purpose"`
	Ceremony  string `json:"ceremony"` // id of the ceremony that made the secret
	Custodian string `json:"custodian"`
	Threshold int    `json:"threshold"`
	Total     int    `json:"total"`
	// Check is SHA-256("madoguchi share check" ‖ purpose ‖ secret): it tells
	// a correct reconstruction from garbage (Shamir with too few or mixed
	// shares yields a wrong secret silently). The secrets are uniformly
	// random 128- or 256-bit values, so the hash gives nothing away.
	Check []byte `json:"check"`

	Share      []byte     `json:"share,omitempty"`
	Sealed     *SealParam `json:"sealed,omitempty"`
	Ciphertext []byte     `json:"ciphertext,omitempty"`
}

// SealParam records how a share was sealed under a passphrase.
type SealParam struct {
	KDF     string `json:"kdf"` // "argon2id"
	Salt    []byte `json:"salt"`
	Time    uint32 `json:"time"`
	MemKiB  uint32 `json:"mem_kib"`
	Threads uint8  `json:"threads"`
	Nonce   []byte `json:"nonce"`
}

// String never shows share material.
func (s *ShareFile) String() string {
	return fmt.Sprintf("%s share of %q for ceremony %s (%d of %d)", s.Purpose, s.Custodian, s.Ceremony, s.Threshold, s.Total)
}

// Argon2id cost for sealing shares (RFC 9106 §4 second recommendation:
// t=3, 64 MiB). Stored in each file so it can be raised later.
type argonCost struct {
	time, memKiB uint32
	threads      uint8
}

var defaultSealCost = argonCost{3, 64 * 1024, 2}

// sealCost is what new shares use; tests lower it.
var sealCost = defaultSealCost

func secretCheck(purpose string, secret []byte) []byte {
	h := sha256.New()
	h.Write([]byte("madoguchi share check\x00" + purpose + "\x00"))
	h.Write(secret)
	return h.Sum(nil)
}

// Custodian is one share holder: a name and, optionally, the passphrase
// that seals the share (read from a "file:" or "env:" source, never a flag
// value). An empty Passphrase leaves the share unsealed.
type Custodian struct {
	Name       string
	Passphrase string
}

// String never shows the passphrase.
func (c Custodian) String() string { return c.Name }

// splitSecret splits secret into one share per custodian, threshold of which
// reconstruct it. threshold 1 (only for --dev) gives each custodian the whole
// secret, since Shamir needs at least 2.
func splitSecret(rnd io.Reader, purpose, ceremonyID string, secret []byte, custodians []Custodian, threshold int) ([]*ShareFile, error) {
	if rnd == nil {
		return nil, fmt.Errorf("%w: no randomness source", ErrBadInput)
	}
	n := len(custodians)
	if n == 0 || threshold < 1 || threshold > n || n > 255 {
		return nil, fmt.Errorf("%w: %d-of-%d shares", ErrBadInput, threshold, n)
	}
	var raw [][]byte
	if threshold == 1 {
		for range n {
			raw = append(raw, append([]byte{}, secret...))
		}
	} else {
		var err error
		if raw, err = shamir.Split(secret, n, threshold); err != nil {
			return nil, fmt.Errorf("ceremony: split secret: %w", err)
		}
	}
	out := make([]*ShareFile, n)
	for i, c := range custodians {
		sf := &ShareFile{Version: 1, Purpose: purpose, Ceremony: ceremonyID, Custodian: c.Name,
			Threshold: threshold, Total: n, Check: secretCheck(purpose, secret)}
		if c.Passphrase == "" {
			sf.Share = raw[i] // the unsealed share is the file's content
		} else {
			err := sf.seal(rnd, raw[i], c.Passphrase)
			clear(raw[i])
			if err != nil {
				return nil, err
			}
		}
		out[i] = sf
	}
	return out, nil
}

func (s *ShareFile) seal(rnd io.Reader, share []byte, passphrase string) error {
	p := &SealParam{KDF: "argon2id", Salt: make([]byte, 16), Nonce: make([]byte, 12),
		Time: sealCost.time, MemKiB: sealCost.memKiB, Threads: sealCost.threads}
	if _, err := io.ReadFull(rnd, p.Salt); err != nil {
		return fmt.Errorf("ceremony: salt: %w", err)
	}
	if _, err := io.ReadFull(rnd, p.Nonce); err != nil {
		return fmt.Errorf("ceremony: nonce: %w", err)
	}
	gcm, err := p.aead(passphrase)
	if err != nil {
		return err
	}
	s.Sealed = p
	s.Ciphertext = gcm.Seal(nil, p.Nonce, share, s.aad())
	return nil
}

// aad binds the sealed share to its header, so a share cannot be relabelled.
func (s *ShareFile) aad() []byte {
	return fmt.Appendf(nil, "madoguchi share v%d|%s|%s|%s|%d|%d|%x", s.Version, s.Purpose, s.Ceremony, s.Custodian, s.Threshold, s.Total, s.Check)
}

func (p *SealParam) aead(passphrase string) (cipher.AEAD, error) {
	if p.KDF != "argon2id" || p.Time == 0 || p.MemKiB < 8*1024 || p.Threads == 0 {
		return nil, fmt.Errorf("ceremony: unsupported share sealing %q t=%d m=%d", p.KDF, p.Time, p.MemKiB)
	}
	key := argon2.IDKey([]byte(passphrase), p.Salt, p.Time, p.MemKiB, p.Threads, 32)
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// open returns the raw share, unsealing it with passphrase if sealed.
func (s *ShareFile) open(passphrase string) ([]byte, error) {
	if s.Sealed == nil {
		if len(s.Share) == 0 {
			return nil, fmt.Errorf("%w: share of %q holds nothing", ErrBadShare, s.Custodian)
		}
		return s.Share, nil
	}
	if passphrase == "" {
		return nil, fmt.Errorf("%w: share of %q is sealed and no passphrase was given", ErrBadShare, s.Custodian)
	}
	gcm, err := s.Sealed.aead(passphrase)
	if err != nil {
		return nil, err
	}
	share, err := gcm.Open(nil, s.Sealed.Nonce, s.Ciphertext, s.aad())
	if err != nil {
		return nil, fmt.Errorf("%w: share of %q: wrong passphrase or altered file", ErrBadShare, s.Custodian)
	}
	return share, nil
}

// PresentedShare is one custodian presenting a share file with its passphrase.
type PresentedShare struct {
	Path       string
	Passphrase string // empty for an unsealed share
}

// String never shows the passphrase.
func (p PresentedShare) String() string { return p.Path }

// combineShares reads the presented shares, checks they belong together and
// to purpose, and reconstructs the secret. It returns the custodian names.
func combineShares(purpose string, presented []PresentedShare) (secret []byte, who []string, header *ShareFile, err error) {
	if len(presented) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: no %s shares presented", ErrNotEnoughShares, purpose)
	}
	var raws [][]byte
	defer func() {
		for _, r := range raws {
			clear(r)
		}
	}()
	seen := map[string]bool{}
	for _, p := range presented {
		sf, err := ReadShareFile(p.Path)
		if err != nil {
			return nil, nil, nil, err
		}
		if sf.Purpose != purpose {
			return nil, nil, nil, fmt.Errorf("%w: %s is a %s share, want %s", ErrBadShare, p.Path, sf.Purpose, purpose)
		}
		if header == nil {
			header = sf
		} else if sf.Ceremony != header.Ceremony || subtle.ConstantTimeCompare(sf.Check, header.Check) != 1 || sf.Threshold != header.Threshold {
			return nil, nil, nil, fmt.Errorf("%w: %s belongs to another secret than %s", ErrBadShare, p.Path, presented[0].Path)
		}
		if seen[sf.Custodian] {
			return nil, nil, nil, fmt.Errorf("%w: custodian %q presented twice", ErrBadShare, sf.Custodian)
		}
		seen[sf.Custodian] = true
		raw, err := sf.open(p.Passphrase)
		if err != nil {
			return nil, nil, nil, err
		}
		raws = append(raws, append([]byte{}, raw...))
		who = append(who, sf.Custodian)
	}
	if len(raws) < header.Threshold {
		return nil, who, nil, fmt.Errorf("%w: %d of %d %s shares presented", ErrNotEnoughShares, len(raws), header.Threshold, purpose)
	}
	if header.Threshold == 1 {
		secret = append([]byte{}, raws[0]...)
	} else if secret, err = shamir.Combine(raws); err != nil {
		return nil, who, nil, fmt.Errorf("%w: %v", ErrBadShare, err)
	}
	if subtle.ConstantTimeCompare(secretCheck(purpose, secret), header.Check) != 1 {
		clear(secret)
		return nil, who, nil, fmt.Errorf("%w: the shares do not reconstruct the %s secret", ErrBadShare, purpose)
	}
	return secret, who, header, nil
}

// ReadShareFile reads and parses a share file.
func ReadShareFile(path string) (*ShareFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ceremony: read share: %w", err)
	}
	var sf ShareFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadShare, path, err)
	}
	if sf.Version != 1 || sf.Threshold < 1 || sf.Total < sf.Threshold || len(sf.Check) != sha256.Size {
		return nil, fmt.Errorf("%w: %s: bad header", ErrBadShare, path)
	}
	return &sf, nil
}

func writeShareFiles(dir string, shares []*ShareFile) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	var paths []string
	for _, s := range shares {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return nil, err
		}
		p := fmt.Sprintf("%s/%s-%s-%s.share", dir, s.Purpose, s.Ceremony, safeName(s.Custodian))
		if err := writeNew(p, append(b, '\n')); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeNew writes a new file with mode 0600, refusing to overwrite one.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("ceremony: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("ceremony: %w", err)
	}
	return f.Close()
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// ReadSecret resolves a passphrase source: "file:/path" or "env:NAME" (the
// same rules as PIN sources: never a flag value).
func ReadSecret(source string) (string, error) {
	s, err := hsm.ReadPIN(source)
	if err != nil {
		return "", fmt.Errorf("ceremony: passphrase: %w", err)
	}
	return s, nil
}

func randomBytes(rnd io.Reader, n int) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return nil, fmt.Errorf("ceremony: random: %w", err)
	}
	return b, nil
}
