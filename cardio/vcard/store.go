package vcard

import (
	"bytes"
	"fmt"
	"maps"

	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
)

// cardStore is the card's persistent memory as the management applet sees it
// (perso.CardStore). The applet runs inside Card.Process, under the card's mutex, so these
// methods do not lock; Serial and StaticKeys return values fixed at manufacture.
type cardStore struct{ c *Card }

var _ perso.CardStore = cardStore{}

func (s cardStore) Serial() []byte { return bytes.Clone(s.c.m.serial) }

func (s cardStore) StaticKeys() scp.CardKeys {
	k := s.c.m.keys
	return scp.CardKeys{ENC: bytes.Clone(k.ENC), MAC: bytes.Clone(k.MAC), DEK: bytes.Clone(k.DEK)}
}

// Commit applies the changes of one FINALIZE all together: they are applied to a copy of the
// persistent memory, the copy is written to the state file (temporary file + rename), and
// only then does the card use it. A failure leaves the card exactly as before (DOMAIN §4.7).
// Writing a key or certificate makes a blank card personalised.
func (s cardStore) Commit(changes []perso.Change) error {
	c := s.c
	if c.m.lifecycle == LifecycleTerminated {
		return fmt.Errorf("vcard: card is terminated")
	}
	next := *c.m
	next.files = maps.Clone(c.m.files)
	next.privateKeys = maps.Clone(c.m.privateKeys)
	next.pins = make(map[uint16]*pinRecord, len(c.m.pins))
	for ef, r := range c.m.pins {
		cp := *r
		next.pins[ef] = &cp
	}
	resetPINs := map[uint16]bool{}
	for _, ch := range changes {
		switch ch.Kind {
		case perso.ChangeWriteFile:
			if !isCertificateEF(ch.FID) {
				return fmt.Errorf("vcard: commit: %04X is not a certificate file", ch.FID)
			}
			next.files[ch.FID] = bytes.Clone(ch.Data)
			next.lifecycle = LifecyclePersonalised
		case perso.ChangePutKey:
			if !isKeyEF(ch.FID) || ch.Key == nil {
				return fmt.Errorf("vcard: commit: no key for %04X", ch.FID)
			}
			next.privateKeys[ch.FID] = ch.Key
			next.lifecycle = LifecyclePersonalised
		case perso.ChangeDestroyKey:
			if !isKeyEF(ch.FID) {
				return fmt.Errorf("vcard: commit: %04X is not a key file", ch.FID)
			}
			delete(next.privateKeys, ch.FID)
		case perso.ChangeResetPIN:
			if !isPINEF(ch.FID) {
				return fmt.Errorf("vcard: commit: %04X is not a pin file", ch.FID)
			}
			next.pins[ch.FID] = &pinRecord{State: PINNotSet}
			resetPINs[ch.FID] = true
		default:
			return fmt.Errorf("vcard: commit: unknown change %s", ch.Kind)
		}
	}
	old := c.m
	c.m = &next
	if err := c.commitLocked(); err != nil {
		c.m = old
		return err
	}
	// A PIN reset also ends its verification in this session.
	for ef := range resetPINs {
		delete(c.s.verified, ef)
	}
	return nil
}
