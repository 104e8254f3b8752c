// Package vcard is a virtual JPKI card: a card model kept in a state file, an APDU dispatcher
// byte-compatible with the JPKI AP read protocol that OpenSC's jpki driver speaks, the
// management application for personalisation, a vpcd link that plugs the card into pcscd, fault
// injection, and the making of blank card stock.
//
// Concurrency: a Card is safe for concurrent use; commands, power events and direct model
// changes are serialised by one mutex, as a real card handles one command at a time.
package vcard

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"madoguchi/cardio/perso"
	"madoguchi/cardio/pinrule"
	"madoguchi/cardio/scp"
	"madoguchi/internal/atomicfile"
)

// ATR is the answer-to-reset of the virtual card: the JPKI card's ATR, which makes OpenSC pick
// its jpki driver without probing other applets.
var ATR = []byte{0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14}

// ForeignATR is the answer-to-reset of a card of another kind (Config.Foreign): the JPKI
// card's interface bytes with two historical bytes ("FC") and a valid TCK, so pcscd powers it
// with T=1 like the JPKI card while no JPKI client mistakes it for one.
var ForeignATR = []byte{0x3B, 0xE2, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x46, 0x43, 0x13}

// JPKIAID is the application identifier of the JPKI AP (公的個人認証 AP).
var JPKIAID = []byte{0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01}

// Elementary files of the JPKI AP.
const (
	EFSignatureCert   uint16 = 0x0001
	EFSignatureCACert uint16 = 0x0002
	EFUserAuthCert    uint16 = 0x000A
	EFUserAuthCACert  uint16 = 0x000B
	EFUserAuthKey     uint16 = 0x0017
	EFUserAuthPIN     uint16 = 0x0018
	EFSignatureKey    uint16 = 0x001A
	EFSignaturePIN    uint16 = 0x001B
)

// keyPIN maps each key file to the PIN that unlocks it, and certPIN the certificate files
// that need a PIN to be read (the signature certificate carries the holder's 4 items, TS Art. 11).
var (
	keyPIN  = map[uint16]uint16{EFUserAuthKey: EFUserAuthPIN, EFSignatureKey: EFSignaturePIN}
	certPIN = map[uint16]uint16{EFSignatureCert: EFSignaturePIN}
)

func isCertificateEF(ef uint16) bool {
	switch ef {
	case EFSignatureCert, EFSignatureCACert, EFUserAuthCert, EFUserAuthCACert:
		return true
	}
	return false
}

func isKeyEF(ef uint16) bool { _, ok := keyPIN[ef]; return ok }
func isPINEF(ef uint16) bool { _, ok := pinKinds[ef]; return ok }

// Lifecycle is the card's life stage.
type Lifecycle string

const (
	// LifecycleBlank: as manufactured, serial and static secure-channel keys only.
	LifecycleBlank Lifecycle = "blank"
	// LifecyclePersonalised: keys and certificates written by the CA's script.
	LifecyclePersonalised Lifecycle = "personalised"
	// LifecycleTerminated: the card refuses personalisation and use.
	LifecycleTerminated Lifecycle = "terminated"
)

// StaticKeys are the card's static secure-channel keys (K-ENC, K-MAC, K-DEK, 16 bytes each),
// diversified from the issuer's master keys by card serial. Formatting them prints nothing
// secret (scp.CardKeys redacts).
type StaticKeys = scp.CardKeys

// SerialLen is the card serial's length: the serial is the key diversification input
// (K = AES-128-ECB(MK, serial), one AES block).
const SerialLen = scp.SerialLen

func checkSerial(serial []byte) error {
	if len(serial) != SerialLen {
		return fmt.Errorf("vcard: serial is %d bytes, want %d", len(serial), SerialLen)
	}
	return nil
}

// model is the card's persistent memory.
type model struct {
	serial      []byte
	keys        StaticKeys
	lifecycle   Lifecycle
	files       map[uint16][]byte
	privateKeys map[uint16]*rsa.PrivateKey
	pins        map[uint16]*pinRecord
	extra       map[string][]byte
	foreign     bool // a card of another kind: no JPKI AP, no management application
}

func newModel(serial []byte, keys StaticKeys) *model {
	m := &model{
		serial:      bytes.Clone(serial),
		keys:        StaticKeys{ENC: bytes.Clone(keys.ENC), MAC: bytes.Clone(keys.MAC), DEK: bytes.Clone(keys.DEK)},
		lifecycle:   LifecycleBlank,
		files:       map[uint16][]byte{},
		privateKeys: map[uint16]*rsa.PrivateKey{},
		pins:        map[uint16]*pinRecord{},
	}
	for ef := range pinKinds {
		m.pins[ef] = &pinRecord{State: PINNotSet}
	}
	return m
}

// application is the applet currently selected on the card.
type application int

const (
	appNone application = iota
	appJPKI
	appManagement
)

// session is the card's volatile security state (RAM): lost at power off and reset.
type session struct {
	powered    bool
	app        application
	selectedEF uint16
	hasEF      bool
	verified   map[uint16]bool // PIN EF → verified in this session
}

// Config configures a new card. The zero value of each optional field is a sensible default.
type Config struct {
	Serial []byte     // required, SerialLen bytes
	Keys   StaticKeys // required: 16 bytes each
	// StatePath, if set, is the state file: New creates it (and refuses an existing one);
	// every change of persistent memory rewrites it atomically.
	StatePath string
	// Rand is the source of PIN salts and challenges; crypto/rand when nil.
	Rand io.Reader
	// Foreign makes a card of another kind (a bank or transit card put on the reader by
	// mistake): ATR ForeignATR, no JPKI AP and no management application, so every SELECT by
	// AID answers 6A82 and every other command 6D00. The terminal must refuse it with a typed
	// "not a JPKI card" error rather than misread it.
	Foreign bool
}

// Card is one virtual JPKI card.
type Card struct {
	mu   sync.Mutex
	path string
	rand io.Reader
	m    *model
	s    session
	mgmt *perso.Applet // the management application (personalisation), perso.AID
}

// New makes a blank card (lifecycle blank, PINs not set).
func New(cfg Config) (*Card, error) {
	if err := checkSerial(cfg.Serial); err != nil {
		return nil, err
	}
	if err := cfg.Keys.Valid(); err != nil {
		return nil, fmt.Errorf("vcard: %w", err)
	}
	c := &Card{path: cfg.StatePath, rand: cfg.Rand, m: newModel(cfg.Serial, cfg.Keys)}
	c.m.foreign = cfg.Foreign
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if err := c.installApplet(); err != nil {
		return nil, err
	}
	if c.path != "" {
		if _, err := os.Lstat(c.path); err == nil {
			return nil, fmt.Errorf("vcard: state file %s already exists", c.path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("vcard: state file: %w", err)
		}
		if err := c.commitLocked(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Open loads the card kept in the state file at path. rnd may be nil (crypto/rand).
func Open(path string, rnd io.Reader) (*Card, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vcard: state file: %w", err)
	}
	m, err := unmarshalModel(b)
	if err != nil {
		return nil, err
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	c := &Card{path: path, rand: rnd, m: m}
	if err := c.installApplet(); err != nil {
		return nil, err
	}
	return c, nil
}

// installApplet creates the management application over the card's memory.
func (c *Card) installApplet() error {
	a, err := perso.NewApplet(cardStore{c}, c.rand)
	if err != nil {
		return fmt.Errorf("vcard: %w", err)
	}
	c.mgmt = a
	return nil
}

// commitLocked writes the persistent memory to the state file, if there is one.
func (c *Card) commitLocked() error {
	if c.path == "" {
		return nil
	}
	b, err := c.m.marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(c.path, b, 0o600); err != nil {
		return fmt.Errorf("vcard: state file: %w", err)
	}
	return nil
}

// Serial returns a copy of the card serial.
func (c *Card) Serial() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.m.serial)
}

// Lifecycle returns the card's life stage.
func (c *Card) Lifecycle() Lifecycle {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.lifecycle
}

// PINStatus returns the state and remaining tries of the PIN in EF pinEF.
func (c *Card) PINStatus(pinEF uint16) (PINState, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m.pins[pinEF]
	if !ok {
		return "", 0, fmt.Errorf("vcard: %04X is not a pin file", pinEF)
	}
	return r.State, r.TriesLeft, nil
}

// InstallCertificate writes a certificate file, as personalisation does. The file must start
// 30 82 LL LL, because readers size it from its first 4 bytes.
func (c *Card) InstallCertificate(ef uint16, der []byte) error {
	if !isCertificateEF(ef) {
		return fmt.Errorf("vcard: %04X is not a certificate file", ef)
	}
	if len(der) < 4 || der[0] != 0x30 || der[1] != 0x82 || int(der[2])<<8|int(der[3]) != len(der)-4 {
		return fmt.Errorf("vcard: certificate for %04X is not a DER SEQUENCE with a 2-byte length", ef)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.files[ef]
	c.m.files[ef] = bytes.Clone(der)
	if err := c.commitLocked(); err != nil {
		c.m.files[ef] = old
		return err
	}
	return nil
}

// InstallPrivateKey writes an RSA private key into a key file, as personalisation does. The
// key can then only be used for signing: no command reads it out (TS Art. 6(iv)).
func (c *Card) InstallPrivateKey(ef uint16, key *rsa.PrivateKey) error {
	if !isKeyEF(ef) {
		return fmt.Errorf("vcard: %04X is not a key file", ef)
	}
	if key == nil || key.N.BitLen() != 2048 {
		return fmt.Errorf("vcard: key for %04X is not RSA-2048 (TS Art. 2)", ef)
	}
	if err := key.Validate(); err != nil {
		return fmt.Errorf("vcard: key for %04X: %w", ef, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.privateKeys[ef]
	c.m.privateKeys[ef] = key
	if err := c.commitLocked(); err != nil {
		c.m.privateKeys[ef] = old
		return err
	}
	return nil
}

// SetLifecycle moves the card to a life stage.
func (c *Card) SetLifecycle(l Lifecycle) error {
	switch l {
	case LifecycleBlank, LifecyclePersonalised, LifecycleTerminated:
	default:
		return fmt.Errorf("vcard: unknown lifecycle %q", l)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.lifecycle
	c.m.lifecycle = l
	if err := c.commitLocked(); err != nil {
		c.m.lifecycle = old
		return err
	}
	return nil
}

// SetPIN sets the PIN in pinEF directly in the model (tests, demos); on the wire the applicant
// does the same with the JPKI AP's PIN set command. It refuses a PIN that is already set or
// blocked, and a PIN that does not match its policy.
func (c *Card) SetPIN(pinEF uint16, pin []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setPINLocked(pinEF, pin)
}

// ErrPINAlreadySet reports a PIN set on a PIN that is set or blocked.
var ErrPINAlreadySet = errors.New("vcard: pin is already set")

func (c *Card) setPINLocked(pinEF uint16, pin []byte) error {
	kind, ok := pinKinds[pinEF]
	if !ok {
		return fmt.Errorf("vcard: %04X is not a pin file", pinEF)
	}
	if err := pinrule.Check(kind, pin); err != nil {
		return err
	}
	r := c.m.pins[pinEF]
	if r.State != PINNotSet {
		return ErrPINAlreadySet
	}
	old := *r
	if err := r.set(pin, kind, c.rand); err != nil {
		return err
	}
	if err := c.commitLocked(); err != nil {
		*r = old
		return err
	}
	return nil
}

// ATR returns the card's answer-to-reset: ATR, or ForeignATR for a card of another kind.
func (c *Card) ATR() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.atrLocked()
}

func (c *Card) atrLocked() []byte {
	if c.m.foreign {
		return bytes.Clone(ForeignATR)
	}
	return bytes.Clone(ATR)
}

// PowerOn powers the card and returns its ATR. The security state starts empty.
func (c *Card) PowerOn() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
	c.s.powered = true
	return c.atrLocked()
}

// PowerOff removes power: the security state (verified PINs, selection, secure channel) is lost.
func (c *Card) PowerOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

// Reset is a warm reset: like power off then on.
func (c *Card) Reset() []byte { return c.PowerOn() }

func (c *Card) resetLocked() {
	c.s = session{verified: map[uint16]bool{}}
	c.mgmt.Reset()
}

// Process answers one command APDU. An unpowered card answers 6F00.
func (c *Card) Process(apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.s.powered {
		return status(swNoPreciseDiagnosis)
	}
	cmd, ok := parseCommand(apdu)
	if !ok {
		return status(swWrongLength)
	}
	if c.m.foreign {
		// Another kind of card: none of our applications exist on it.
		if cmd.ins == 0xA4 {
			return status(swFileNotFound)
		}
		return status(swINSNotSupported)
	}
	if cmd.cla&0x80 == 0 && cmd.ins == 0xA4 && cmd.p1 == 0x04 {
		return c.selectAIDLocked(cmd, apdu)
	}
	switch c.s.app {
	case appJPKI:
		return c.jpkiLocked(cmd)
	case appManagement:
		return c.mgmt.Process(apdu)
	}
	if cmd.ins == 0xA4 {
		return status(swFileNotFound)
	}
	return status(swINSNotSupported)
}

// selectAIDLocked handles SELECT by DF name. An unknown AID answers 6A82 and leaves the
// current selection, as ISO/IEC 7816-4 asks; OpenSC's probing relies on that answer.
func (c *Card) selectAIDLocked(cmd command, raw []byte) []byte {
	switch {
	case bytes.Equal(cmd.data, JPKIAID):
		if c.s.app == appJPKI {
			// Re-selecting the current application keeps its security state (ISO/IEC
			// 7816-4 §7.1.1: the DF stays current); only the EF selection is dropped.
			c.s.hasEF = false
			return status(swOK)
		}
		c.deselectLocked()
		c.s.app = appJPKI
		return status(swOK)
	case bytes.Equal(cmd.data, perso.AID):
		c.deselectLocked()
		c.s.app = appManagement
		return c.mgmt.Process(raw)
	}
	return status(swFileNotFound)
}

// deselectLocked leaves the current application: selection and PIN verification belong to it.
func (c *Card) deselectLocked() {
	if c.s.app == appManagement {
		c.mgmt.Reset()
	}
	c.s.app = appNone
	c.s.hasEF = false
	clear(c.s.verified)
}
