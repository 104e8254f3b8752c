package hsm

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// loadedModules records which PKCS#11 modules this process has initialised:
// C_Initialize is process-wide, so two users of one module would finalise
// each other.
var (
	loadedMu      sync.Mutex
	loadedModules = map[string]bool{}
)

// module is one initialised PKCS#11 library.
type module struct {
	path string
	ctx  *pkcs11.Ctx
}

func loadModule(cfg Config) (*module, error) {
	path := cfg.modulePath()
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if loadedModules[path] {
		return nil, fmt.Errorf("hsm: module %q is already open in this process", path)
	}
	if cfg.SoftHSMConf != "" {
		// SoftHSM reads its configuration only in C_Initialize.
		if err := os.Setenv("SOFTHSM2_CONF", cfg.SoftHSMConf); err != nil {
			return nil, fmt.Errorf("hsm: set SOFTHSM2_CONF: %w", err)
		}
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("hsm: cannot load pkcs#11 module %q", path)
	}
	if err := ctx.Initialize(); err != nil {
		ctx.Destroy()
		return nil, wrapErr("initialize", err)
	}
	loadedModules[path] = true
	return &module{path: path, ctx: ctx}, nil
}

// unload finalises and unloads the module. No call may be in flight.
func (m *module) unload() {
	loadedMu.Lock()
	defer loadedMu.Unlock()
	_ = m.ctx.Finalize()
	m.ctx.Destroy()
	delete(loadedModules, m.path)
}

// findSlot returns the slot holding the initialised token labelled label.
func (m *module) findSlot(label string) (uint, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, wrapErr("list slots", err)
	}
	found := []uint{}
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if strings.TrimRight(ti.Label, " \x00") == label {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("%w: label %q", ErrTokenNotFound, label)
	case 1:
		return found[0], nil
	default:
		return 0, fmt.Errorf("hsm: %d tokens labelled %q", len(found), label)
	}
}

// initToken initialises a free slot's token and sets its user PIN.
func (m *module) initToken(label, soPIN, userPIN string) error {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return wrapErr("list slots", err)
	}
	free := -1
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free = int(s)
			break
		}
	}
	if free < 0 {
		return fmt.Errorf("hsm: no free slot to initialise token %q", label)
	}
	if err := m.ctx.InitToken(uint(free), soPIN, label); err != nil {
		return wrapErr("init token", err)
	}
	// The slot id changes after C_InitToken: look the token up again.
	slot, err := m.findSlot(label)
	if err != nil {
		return err
	}
	sh, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return wrapErr("open session", err)
	}
	defer m.ctx.CloseSession(sh)
	if err := m.ctx.Login(sh, pkcs11.CKU_SO, soPIN); err != nil {
		return wrapErr("so login", err)
	}
	defer m.ctx.Logout(sh)
	if err := m.ctx.InitPIN(sh, userPIN); err != nil {
		return wrapErr("init pin", err)
	}
	return nil
}

// ImportTrustedKEK creates, as the token's security officer, a token AES
// key marked CKA_TRUSTED that may only wrap: the ceremony's backup KEK.
// Keys generated ExtractableForBackup (CKA_WRAP_WITH_TRUSTED) can be wrapped
// under it and under no other key, so a logged-in user alone can never
// export a CA key (TS Art. 27: backup needs the custodians together).
// SoftHSM lets only the SO set CKA_TRUSTED, and the SO may create only public
// objects, so the KEK is CKA_PRIVATE false (still sensitive and
// non-extractable); the caller destroys it right after wrapping. It must run
// while no *HSM of this module is open in the process.
func ImportTrustedKEK(cfg Config, soPIN, label string, value []byte) error {
	if len(value) != 16 && len(value) != 24 && len(value) != 32 {
		return fmt.Errorf("%w: aes key of %d bytes", ErrBadInput, len(value))
	}
	if soPIN == "" || label == "" {
		return fmt.Errorf("%w: empty so pin or label", ErrBadInput)
	}
	m, err := loadModule(cfg)
	if err != nil {
		return err
	}
	defer m.unload()
	slot, err := m.findSlot(cfg.TokenLabel)
	if err != nil {
		return err
	}
	sh, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return wrapErr("open session", err)
	}
	defer m.ctx.CloseSession(sh)
	if err := m.ctx.Login(sh, pkcs11.CKU_SO, soPIN); err != nil {
		return wrapErr("so login", err)
	}
	defer m.ctx.Logout(sh)
	attrs := append(KindAES.template(),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
	)
	if _, err := m.ctx.CreateObject(sh, attrs); err != nil {
		return wrapErr("create trusted kek", err)
	}
	return nil
}
