package vcard

import (
	"crypto"
	"crypto/rsa"

	"madoguchi/cardio/pinrule"
)

// jpkiLocked answers a command to the selected JPKI AP.
func (c *Card) jpkiLocked(cmd command) []byte {
	switch {
	case cmd.cla == 0x00 && cmd.ins == 0xA4:
		return c.selectEFLocked(cmd)
	case cmd.cla == 0x00 && cmd.ins == 0xB0:
		return c.readBinaryLocked(cmd)
	case cmd.cla == 0x00 && cmd.ins == 0x20:
		return c.verifyLocked(cmd)
	case cmd.cla == 0x00 && cmd.ins == 0x24:
		return c.setPINCommandLocked(cmd)
	case cmd.cla == 0x80 && cmd.ins == 0x2A:
		return c.signLocked(cmd)
	case cmd.cla != 0x00 && cmd.cla != 0x80:
		return status(swCLANotSupported)
	}
	return status(swINSNotSupported)
}

// selectEFLocked handles SELECT EF `00 A4 02 0C 02 <id>` (no FCI returned).
func (c *Card) selectEFLocked(cmd command) []byte {
	if cmd.p1 != 0x02 || cmd.p2 != 0x0C {
		return status(swWrongP1P2)
	}
	if len(cmd.data) != 2 {
		return status(swWrongLength)
	}
	ef := uint16(cmd.data[0])<<8 | uint16(cmd.data[1])
	if !isCertificateEF(ef) && !isKeyEF(ef) && !isPINEF(ef) {
		c.s.hasEF = false
		return status(swFileNotFound)
	}
	if isCertificateEF(ef) && len(c.m.files[ef]) == 0 {
		// A certificate EF exists only once WRITE FILE gave it content: an empty one answers
		// 6A82 at selection, so a reader learns "not present" rather than misreading an empty
		// file (docs/CARD-PROTOCOL.md §2). Its presence is no secret: the PIN state shows it.
		c.s.hasEF = false
		return status(swFileNotFound)
	}
	c.s.selectedEF, c.s.hasEF = ef, true
	return status(swOK)
}

// readBinaryLocked handles READ BINARY with a 15-bit offset in P1 P2. Only certificate files
// are binary; key and PIN files can never be read (TS Art. 6(iv)). The signature certificate
// needs the signature PIN verified, because it carries the holder's 4 items (TS Art. 11).
func (c *Card) readBinaryLocked(cmd command) []byte {
	if cmd.p1&0x80 != 0 {
		return status(swWrongP1P2) // short EF identifiers are not supported
	}
	if !c.s.hasEF {
		return status(swNoCurrentEF)
	}
	ef := c.s.selectedEF
	if !isCertificateEF(ef) {
		return status(swIncompatibleFile)
	}
	if pinEF, ok := certPIN[ef]; ok && !c.s.verified[pinEF] {
		if c.m.pins[pinEF].State == PINNotSet {
			return status(swReferenceNotUsable)
		}
		return status(swSecurityNotSatisfied)
	}
	file := c.m.files[ef]
	offset := int(cmd.p1)<<8 | int(cmd.p2)
	if offset >= len(file) {
		return status(swWrongOffset)
	}
	if cmd.ne == 0 {
		return status(swWrongLength)
	}
	end := min(offset+cmd.ne, len(file))
	sw := uint16(swOK)
	if end-offset < cmd.ne && cmd.ne != 256 && cmd.ne != 65536 {
		sw = swEndOfFile // fewer bytes than asked for an explicit Le (ISO/IEC 7816-4 §11.2.3)
	}
	return withStatus(file[offset:end], sw)
}

// verifyLocked handles VERIFY `00 20 00 80 [PIN]` on the selected PIN file. Without data it
// answers the tries left as 63 Cx, which OpenSC's jpki driver requires, and a blocked PIN as
// 63 C0: OpenSC (card-jpki.c SC_PIN_CMD_GET_INFO, asked for both PINs when pkcs15-jpki.c
// binds the card) and the other public JPKI readers (jpki/myna, JPKIReader) take any other
// SW1 as a card they cannot use, so one locked PIN would make the still-valid key unusable
// too (issue 17 defect 5). With data, a blocked PIN answers 69 83 (authentication method
// blocked; OpenSC: CKR_PIN_LOCKED). A wrong PIN costs a try, and the decrement is written to
// the state file before the comparison is answered, so pulling the card mid-command cannot
// buy extra tries (TS Art. 17-2(xi)(xii)).
func (c *Card) verifyLocked(cmd command) []byte {
	if cmd.p1 != 0x00 || cmd.p2 != 0x80 {
		return status(swWrongP1P2)
	}
	if !c.s.hasEF || !isPINEF(c.s.selectedEF) {
		return status(swNoCurrentEF)
	}
	pinEF := c.s.selectedEF
	r := c.m.pins[pinEF]
	switch r.State {
	case PINBlocked:
		if len(cmd.data) == 0 {
			return status(0x63C0)
		}
		return status(swPINBlocked)
	case PINNotSet:
		return status(swReferenceNotUsable)
	}
	if len(cmd.data) == 0 {
		return status(0x63C0 | uint16(r.TriesLeft))
	}
	old := *r
	r.TriesLeft--
	if err := c.commitLocked(); err != nil {
		*r = old
		return status(swMemoryFailure)
	}
	if r.matches(cmd.data) {
		r.TriesLeft = pinrule.MaxTries(pinKinds[pinEF])
		if err := c.commitLocked(); err != nil {
			return status(swMemoryFailure)
		}
		c.s.verified[pinEF] = true
		return status(swOK)
	}
	c.s.verified[pinEF] = false
	if r.TriesLeft == 0 {
		r.State = PINBlocked
		if err := c.commitLocked(); err != nil {
			return status(swMemoryFailure)
		}
	}
	return status(0x63C0 | uint16(r.TriesLeft))
}

// setPINCommandLocked handles the applicant's PIN set `00 24 01 80 <PIN>` (CHANGE REFERENCE
// DATA, new value only) on the selected PIN file. It is accepted only while the PIN is not
// set: the applicant sets it personally once (CPS §6.4.1.2); changing a set PIN needs the old
// one and is not offered here.
func (c *Card) setPINCommandLocked(cmd command) []byte {
	if cmd.p1 != 0x01 || cmd.p2 != 0x80 {
		return status(swWrongP1P2)
	}
	if !c.s.hasEF || !isPINEF(c.s.selectedEF) {
		return status(swNoCurrentEF)
	}
	if c.m.lifecycle == LifecycleTerminated {
		return status(swConditionsNotMet)
	}
	pinEF := c.s.selectedEF
	if err := pinrule.Check(pinKinds[pinEF], cmd.data); err != nil {
		return status(swWrongData)
	}
	switch err := c.setPINLocked(pinEF, cmd.data); {
	case err == nil:
		return status(swOK)
	case err == ErrPINAlreadySet:
		return status(swConditionsNotMet)
	default:
		return status(swMemoryFailure)
	}
}

// signLocked handles COMPUTE DIGITAL SIGNATURE `80 2A 00 80 <DigestInfo> 00` with the selected
// key file: PKCS#1 v1.5 padding inside the card, after the key's PIN was verified.
func (c *Card) signLocked(cmd command) []byte {
	if cmd.p1 != 0x00 || cmd.p2 != 0x80 {
		return status(swWrongP1P2)
	}
	if !c.s.hasEF || !isKeyEF(c.s.selectedEF) {
		return status(swReferenceNotFound)
	}
	if c.m.lifecycle == LifecycleTerminated {
		return status(swConditionsNotMet)
	}
	ef := c.s.selectedEF
	key := c.m.privateKeys[ef]
	if key == nil || c.m.pins[keyPIN[ef]].State == PINNotSet {
		return status(swReferenceNotUsable) // no key, or its PIN not set yet (CARD-PROTOCOL §3)
	}
	if !c.s.verified[keyPIN[ef]] {
		return status(swSecurityNotSatisfied)
	}
	if len(cmd.data) == 0 || len(cmd.data) > key.Size()-11 {
		return status(swWrongLength)
	}
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.Hash(0), cmd.data)
	if err != nil {
		return status(swNoPreciseDiagnosis)
	}
	return withStatus(sig, swOK)
}
