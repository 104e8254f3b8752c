package hsm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultModulePath is Debian's SoftHSM 2 PKCS#11 module.
const DefaultModulePath = "/usr/lib/softhsm/libsofthsm2.so"

// RFC 5649 AES key wrap with padding: SoftHSM 2 implements it under the
// pre-3.0 code; PKCS#11 3.0 assigns CKM_AES_KEY_WRAP_KWP.
const (
	MechAESKeyWrapPadSoftHSM uint = 0x210A // CKM_AES_KEY_WRAP_PAD in SoftHSM 2
	MechAESKeyWrapKWP        uint = 0x210B // CKM_AES_KEY_WRAP_KWP, PKCS#11 3.0
)

// Mechanisms holds the mechanism codes that differ between tokens. The zero
// value selects SoftHSM 2's codes.
type Mechanisms struct {
	// AESKeyWrapPad is the RFC 5649 wrap mechanism (default 0x210A).
	AESKeyWrapPad uint
}

func (m Mechanisms) kwp() uint {
	if m.AESKeyWrapPad == 0 {
		return MechAESKeyWrapPadSoftHSM
	}
	return m.AESKeyWrapPad
}

// Config says which token to open and how. It holds no secret: the user PIN
// is named by PINSource and read only when the token is opened, so a Config
// may be logged.
type Config struct {
	// ModulePath is the PKCS#11 module; empty means DefaultModulePath.
	ModulePath string
	// SoftHSMConf, when set, is exported as SOFTHSM2_CONF before
	// C_Initialize (SoftHSM reads it only then).
	SoftHSMConf string
	// TokenLabel finds the token (never a slot id: slot ids change on init).
	TokenLabel string
	// PINSource names the user PIN: "file:/path" (first line of the file)
	// or "env:NAME". A PIN is never given as a flag value, which would show
	// in the process list and shell history.
	PINSource string
	// Mechanisms overrides token-specific mechanism codes.
	Mechanisms Mechanisms
	// PoolSize is the number of sessions (goroutines served at once);
	// zero means 2.
	PoolSize int
	// CallTimeout bounds each PKCS#11 call (zero: DefaultCallTimeout).
	// A call past it is left to finish in the background, its session is
	// retired, and Check reports the HSM unavailable meanwhile.
	CallTimeout time.Duration
}

func (c Config) modulePath() string {
	if c.ModulePath == "" {
		return DefaultModulePath
	}
	return c.ModulePath
}

func (c Config) poolSize() int {
	if c.PoolSize <= 0 {
		return 2
	}
	return c.PoolSize
}

// ReadPIN resolves a PIN source ("file:/path" or "env:NAME"). Trailing
// newlines are removed; an empty PIN is an error, never silently "".
func ReadPIN(source string) (string, error) {
	kind, arg, ok := strings.Cut(source, ":")
	if !ok || arg == "" {
		return "", fmt.Errorf("%w: pin source %q must be file:/path or env:NAME", ErrBadInput, source)
	}
	var pin string
	switch kind {
	case "file":
		b, err := os.ReadFile(arg)
		if err != nil {
			return "", fmt.Errorf("hsm: read pin file: %w", err)
		}
		pin, _, _ = strings.Cut(string(b), "\n")
		pin = strings.TrimRight(pin, "\r")
	case "env":
		v, set := os.LookupEnv(arg)
		if !set {
			return "", fmt.Errorf("%w: pin environment variable %q is not set", ErrBadInput, arg)
		}
		pin = strings.TrimRight(v, "\r\n")
	default:
		return "", fmt.Errorf("%w: pin source kind %q (want file or env)", ErrBadInput, kind)
	}
	if pin == "" {
		return "", fmt.Errorf("%w: pin source %q gives an empty pin", ErrBadInput, source)
	}
	return pin, nil
}

// ProvisionOptions chooses the new token's label and PINs. Zero values:
// label "madoguchi-ca", and random PINs written to files (mode 0600) under
// the token directory so the embedded default starts without a ceremony.
// A key ceremony passes its own PINs so none is left on disk.
type ProvisionOptions struct {
	TokenLabel string
	SOPIN      string
	UserPIN    string
}

// String never shows PINs.
func (o ProvisionOptions) String() string {
	return fmt.Sprintf("ProvisionOptions{TokenLabel:%q}", o.TokenLabel)
}

// DefaultTokenLabel is the label Provision gives the embedded token.
const DefaultTokenLabel = "madoguchi-ca"

// SoftHSMDir is the directory under a data dir holding the embedded token.
func SoftHSMDir(dataDir string) string { return filepath.Join(dataDir, "softhsm") }

// Provision makes sure dataDir holds an embedded SoftHSM token: it writes
// softhsm2.conf and the token directory, and initialises a token (C_InitToken,
// then C_InitPIN) unless one with the label exists. It returns the Config to
// open it. If the token already exists, the PINs in opts are not checked.
// It must not run while an *HSM of the same module is open in this process.
func Provision(dataDir string, opts ProvisionOptions) (Config, error) {
	if dataDir == "" {
		return Config{}, fmt.Errorf("%w: empty data dir", ErrBadInput)
	}
	label := opts.TokenLabel
	if label == "" {
		label = DefaultTokenLabel
	}
	if len(label) > 32 {
		return Config{}, fmt.Errorf("%w: token label %q longer than 32 bytes", ErrBadInput, label)
	}
	dir := SoftHSMDir(dataDir)
	if strings.ContainsAny(dir, "=\n\r#") {
		// softhsm2.conf is "key = value" lines: these characters break it.
		return Config{}, fmt.Errorf("%w: data dir %q contains '=', '#' or a newline, which softhsm2.conf cannot hold", ErrBadInput, dataDir)
	}
	tokenDir := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		return Config{}, fmt.Errorf("hsm: provision: %w", err)
	}
	confPath := filepath.Join(dir, "softhsm2.conf")
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokenDir)
	if err := writeFileIfChanged(confPath, []byte(conf), 0o600); err != nil {
		return Config{}, fmt.Errorf("hsm: provision: %w", err)
	}
	cfg := Config{SoftHSMConf: confPath, TokenLabel: label}
	userPINFile := filepath.Join(dir, "user.pin")
	if _, err := os.Stat(userPINFile); err == nil && opts.UserPIN == "" {
		cfg.PINSource = "file:" + userPINFile
	}

	m, err := loadModule(cfg)
	if err != nil {
		return Config{}, err
	}
	defer m.unload()
	if _, err := m.findSlot(label); err == nil {
		return cfg, nil
	} else if !errors.Is(err, ErrTokenNotFound) {
		return Config{}, err
	}

	soPIN, userPIN := opts.SOPIN, opts.UserPIN
	if userPIN == "" {
		if userPIN, err = randomPIN(); err != nil {
			return Config{}, err
		}
		if soPIN, err = randomPIN(); err != nil {
			return Config{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, "so.pin"), []byte(soPIN+"\n"), 0o600); err != nil {
			return Config{}, fmt.Errorf("hsm: provision: %w", err)
		}
		if err := os.WriteFile(userPINFile, []byte(userPIN+"\n"), 0o600); err != nil {
			return Config{}, fmt.Errorf("hsm: provision: %w", err)
		}
		cfg.PINSource = "file:" + userPINFile
	}
	if soPIN == "" {
		return Config{}, fmt.Errorf("%w: a user pin needs an so pin too", ErrBadInput)
	}
	if err := m.initToken(label, soPIN, userPIN); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func randomPIN() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("hsm: random pin: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func writeFileIfChanged(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	return os.WriteFile(path, data, perm)
}
