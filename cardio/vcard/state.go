package vcard

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"madoguchi/cardio/pinrule"
)

// stateFileVersion is the format version written into every state file.
const stateFileVersion = 1

// stateJSON is the on-disk form of a card's persistent memory (its "EEPROM"). The file holds
// the card's secrets (static keys, private keys): it is written with mode 0600.
type stateJSON struct {
	Version     int                  `json:"version"`
	Serial      string               `json:"serial"`
	Keys        staticKeysJSON       `json:"static_keys"`
	Lifecycle   Lifecycle            `json:"lifecycle"`
	Files       map[string][]byte    `json:"files,omitempty"`
	PrivateKeys map[string][]byte    `json:"private_keys,omitempty"` // PKCS#8 DER
	PINs        map[string]pinRecord `json:"pins"`
	Extra       map[string][]byte    `json:"extra,omitempty"`   // management-applet data
	Foreign     bool                 `json:"foreign,omitempty"` // a card of another kind (Config.Foreign)
}

type staticKeysJSON struct {
	ENC string `json:"enc"`
	MAC string `json:"mac"`
	DEK string `json:"dek"`
}

func efName(ef uint16) string { return fmt.Sprintf("%04X", ef) }

// parseEFName accepts only the form efName writes (four uppercase hex digits): with "000a"
// also accepted, a file naming one EF twice ("000A" and "000a") loaded to either content,
// depending on Go's random map order (found by FuzzStateFile).
func parseEFName(s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 16, 16)
	if err != nil || efName(uint16(v)) != s {
		return 0, fmt.Errorf("vcard: state file: bad file id %q", s)
	}
	return uint16(v), nil
}

func (m *model) marshal() ([]byte, error) {
	s := stateJSON{
		Version:   stateFileVersion,
		Serial:    hex.EncodeToString(m.serial),
		Keys:      staticKeysJSON{hex.EncodeToString(m.keys.ENC), hex.EncodeToString(m.keys.MAC), hex.EncodeToString(m.keys.DEK)},
		Lifecycle: m.lifecycle,
		Files:     map[string][]byte{},
		PINs:      map[string]pinRecord{},
		Extra:     m.extra,
		Foreign:   m.foreign,
	}
	for ef, b := range m.files {
		s.Files[efName(ef)] = b
	}
	if len(m.privateKeys) > 0 {
		s.PrivateKeys = map[string][]byte{}
		for ef, k := range m.privateKeys {
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				return nil, fmt.Errorf("vcard: state file: key %04X: %w", ef, err)
			}
			s.PrivateKeys[efName(ef)] = der
		}
	}
	for ef, r := range m.pins {
		s.PINs[efName(ef)] = *r
	}
	return json.MarshalIndent(&s, "", "  ")
}

func unmarshalModel(b []byte) (*model, error) {
	var s stateJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("vcard: state file: %w", err)
	}
	if s.Version != stateFileVersion {
		return nil, fmt.Errorf("vcard: state file: version %d, want %d", s.Version, stateFileVersion)
	}
	serial, err := hex.DecodeString(s.Serial)
	if err != nil {
		return nil, fmt.Errorf("vcard: state file: serial: %w", err)
	}
	if err := checkSerial(serial); err != nil {
		return nil, err
	}
	var keys StaticKeys
	for _, k := range []struct {
		dst *[]byte
		src string
	}{{&keys.ENC, s.Keys.ENC}, {&keys.MAC, s.Keys.MAC}, {&keys.DEK, s.Keys.DEK}} {
		b, err := hex.DecodeString(k.src)
		if err != nil || len(b) != 16 {
			return nil, errors.New("vcard: state file: static key is not 16 bytes of hex")
		}
		*k.dst = b
	}
	switch s.Lifecycle {
	case LifecycleBlank, LifecyclePersonalised, LifecycleTerminated:
	default:
		return nil, fmt.Errorf("vcard: state file: unknown lifecycle %q", s.Lifecycle)
	}
	m := newModel(serial, keys)
	m.lifecycle = s.Lifecycle
	m.extra = s.Extra
	m.foreign = s.Foreign
	for name, b := range s.Files {
		ef, err := parseEFName(name)
		if err != nil {
			return nil, err
		}
		if !isCertificateEF(ef) {
			return nil, fmt.Errorf("vcard: state file: %04X is not a certificate file", ef)
		}
		m.files[ef] = b
	}
	for name, der := range s.PrivateKeys {
		ef, err := parseEFName(name)
		if err != nil {
			return nil, err
		}
		if !isKeyEF(ef) {
			return nil, fmt.Errorf("vcard: state file: %04X is not a key file", ef)
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("vcard: state file: key %04X: %w", ef, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("vcard: state file: key %04X is not RSA", ef)
		}
		m.privateKeys[ef] = rk
	}
	for name, r := range s.PINs {
		ef, err := parseEFName(name)
		if err != nil {
			return nil, err
		}
		kind, ok := pinKinds[ef]
		if !ok {
			return nil, fmt.Errorf("vcard: state file: %04X is not a pin file", ef)
		}
		if r.TriesLeft < 0 || r.TriesLeft > pinrule.MaxTries(kind) {
			return nil, fmt.Errorf("vcard: state file: pin %04X: %d tries out of range", ef, r.TriesLeft)
		}
		switch r.State {
		case PINNotSet, PINBlocked:
		case PINSet:
			if len(r.Salt) == 0 || len(r.Hash) == 0 || r.TriesLeft == 0 {
				return nil, fmt.Errorf("vcard: state file: pin %04X: set without hash or tries", ef)
			}
		default:
			return nil, fmt.Errorf("vcard: state file: pin %04X: unknown state %q", ef, r.State)
		}
		rec := r
		m.pins[ef] = &rec
	}
	return m, nil
}
