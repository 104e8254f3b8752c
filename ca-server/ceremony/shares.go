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
	"path/filepath"
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

// Bounds on the argon2id parameters read from a share file (or a staff
// credential). The file is the attacker's input: argon2 allocates MemKiB
// KiB and runs Time passes before anything authenticates the file, so an
// unbounded value is a memory and CPU bomb in the process that then holds
// the token PINs. The bounds are checked before any allocation. The upper
// memory bound is 16 times the default cost (1 GiB), room to raise the
// cost later on a CA host; the lower ones refuse a file weakened to make
// guessing its passphrase cheap (RFC 9106 §4: at least 64 MiB is the
// second recommended option; 8 MiB is the smallest we ever wrote).
const (
	argonMinMemKiB  = 8 * 1024
	argonMaxMemKiB  = 1024 * 1024
	argonMinTime    = 1
	argonMaxTime    = 16
	argonMaxThreads = 16
	argonMinSalt    = 16
	argonMaxSalt    = 64
	gcmNonceSize    = 12
	// shareFileMax bounds a share file before it is parsed: a share is a
	// few hundred bytes.
	shareFileMax = 64 << 10
	// maxShareLen bounds the (sealed or raw) share: the secrets are 32
	// bytes, a Shamir share one byte more, a GCM tag 16 more.
	maxShareLen = 256
)

// argonParams are the parameters of one argon2id derivation, as read from
// a file.
type argonParams struct {
	KDF     string
	Salt    []byte
	Time    uint32
	MemKiB  uint32
	Threads uint8
}

// check bounds the parameters (see the constants above); its error names
// the parameter, the caller names the file.
func (p argonParams) check() error {
	switch {
	case p.KDF != "argon2id":
		return fmt.Errorf("kdf %q: want argon2id", p.KDF)
	case p.MemKiB < argonMinMemKiB || p.MemKiB > argonMaxMemKiB:
		return fmt.Errorf("argon2 memory %d KiB outside %d..%d KiB", p.MemKiB, argonMinMemKiB, argonMaxMemKiB)
	case p.Time < argonMinTime || p.Time > argonMaxTime:
		return fmt.Errorf("argon2 time %d outside %d..%d", p.Time, argonMinTime, argonMaxTime)
	case p.Threads < 1 || p.Threads > argonMaxThreads:
		return fmt.Errorf("argon2 threads %d outside 1..%d", p.Threads, argonMaxThreads)
	case len(p.Salt) < argonMinSalt || len(p.Salt) > argonMaxSalt:
		return fmt.Errorf("argon2 salt of %d bytes outside %d..%d", len(p.Salt), argonMinSalt, argonMaxSalt)
	}
	return nil
}

func (p *SealParam) check() error {
	if err := (argonParams{p.KDF, p.Salt, p.Time, p.MemKiB, p.Threads}).check(); err != nil {
		return err
	}
	if len(p.Nonce) != gcmNonceSize {
		return fmt.Errorf("nonce of %d bytes: want %d", len(p.Nonce), gcmNonceSize)
	}
	return nil
}

func secretCheck(purpose string, secret []byte) []byte {
	h := sha256.New()
	h.Write([]byte("madoguchi share check\x00" + purpose + "\x00"))
	h.Write(secret)
	return h.Sum(nil)
}

// Custodian is one share holder: a name, the passphrase that seals the
// share (read from the custodian's terminal or a file descriptor, never a
// flag value) and where that one share file goes.
//
// Outside a dev ceremony (checkCustodians; TS Art. 27, 45; CPS §6.2) every
// custodian has a passphrase passing CheckPassphrase, different from every
// other custodian's, and a ShareOut of their own: no two shares in one
// directory, so no one person or medium ever holds M shares. A dev ceremony
// may leave Passphrase empty (the share is then unsealed) and ShareOut
// empty (the share goes to the options' SharesDir).
type Custodian struct {
	Name       string
	Passphrase string
	ShareOut   string // path of the new share file (must not exist; written 0600)
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
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadShare, err)
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

// ReadShareFile reads and parses a share file. Everything that later
// costs memory or time is bounded here, before any of it is spent: the
// file's size, the share's length and the argon2id parameters (a crafted
// file naming a memory cost of tens of GiB is refused with an error naming
// the file and the parameter, without allocating).
func ReadShareFile(path string) (*ShareFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ceremony: read share: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, shareFileMax+1))
	if err != nil {
		return nil, fmt.Errorf("ceremony: read share: %w", err)
	}
	if len(b) > shareFileMax {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrBadShare, path, shareFileMax)
	}
	var sf ShareFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadShare, path, err)
	}
	if sf.Version != 1 || sf.Threshold < 1 || sf.Total < sf.Threshold || sf.Total > 255 || len(sf.Check) != sha256.Size {
		return nil, fmt.Errorf("%w: %s: bad header", ErrBadShare, path)
	}
	if len(sf.Share) > maxShareLen || len(sf.Ciphertext) > maxShareLen {
		return nil, fmt.Errorf("%w: %s: share longer than %d bytes", ErrBadShare, path, maxShareLen)
	}
	if sf.Sealed != nil {
		if err := sf.Sealed.check(); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadShare, path, err)
		}
	}
	return &sf, nil
}

// writeShareFiles writes each custodian's share: to the custodian's own
// ShareOut, or (dev ceremonies only; checkCustodians) into dir.
func writeShareFiles(dir string, custodians []Custodian, shares []*ShareFile) ([]string, error) {
	var paths []string
	for i, s := range shares {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return nil, err
		}
		p := ""
		if i < len(custodians) {
			p = custodians[i].ShareOut
		}
		if p == "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("ceremony: %w", err)
			}
			p = fmt.Sprintf("%s/%s-%s-%s.share", dir, s.Purpose, s.Ceremony, safeName(s.Custodian))
		}
		if err := writeNew(p, append(b, '\n')); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// checkShareOuts checks the custodians' own destinations: each given, not
// an existing file, and no two in one directory (after resolving symbolic
// links), nor in the data dir (the shares would lie beside the token they
// open). Outside dev ceremonies only.
func checkShareOuts(dataDir string, cs []Custodian) error {
	dirs := map[string]string{}
	data, _ := resolveDir(dataDir)
	for _, c := range cs {
		if c.ShareOut == "" {
			return fmt.Errorf("%w: custodian %q has no share destination of their own (--share-out %s=PATH)", ErrBadInput, c.Name, c.Name)
		}
		if _, err := os.Lstat(c.ShareOut); err == nil {
			return fmt.Errorf("%w: share destination %s of %q exists already", ErrBadInput, c.ShareOut, c.Name)
		}
		dir, err := resolveDir(filepath.Dir(c.ShareOut))
		if err != nil {
			return fmt.Errorf("%w: share destination of %q: %v", ErrBadInput, c.Name, err)
		}
		if other, ok := dirs[dir]; ok {
			return fmt.Errorf("%w: the shares of %q and %q would be in one directory (%s): each custodian's share goes to their own medium", ErrBadInput, other, c.Name, dir)
		}
		if data != "" && (dir == data || strings.HasPrefix(dir, data+string(filepath.Separator))) {
			return fmt.Errorf("%w: share destination of %q is inside the data directory", ErrBadInput, c.Name)
		}
		dirs[dir] = c.Name
	}
	return nil
}

// resolveDir is dir's absolute path with symbolic links resolved; the
// directory must exist (it is the custodian's medium, mounted).
func resolveDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	r, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(r); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	return r, nil
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
// same rules as PIN sources: never a flag value). ca-server accepts these
// only for --dev; custodians' passphrases otherwise come from their
// terminal or a file descriptor (ca-server/secret_input.go).
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
