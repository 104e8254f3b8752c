// Package perso is the JPKI card personalisation command set, carried over the secure
// channel of cardio/scp: the host-side script builder and response verifier (used by the CA,
// ca-server) and the card-side management applet (used by the virtual card, cardio/vcard)
// against a small CardStore interface. docs/CARD-PROTOCOL.md is the normative description.
//
// The CA is the host end and the terminal only relays, so the terminal can neither read the
// private key nor forge a write (TS Art. 5(iv), 6(iii): the private key leaves the key
// generator only encrypted for the target card; TS Art. 6(ii), 7(ii): card and issuer
// authenticate each other by challenge and response). The card stages every write and
// commits them all at once at FINALIZE, so a dropped link leaves the card as it was, and the
// FINALIZE answer is an R-MAC'd attestation of everything written that the CA verifies
// before it marks the certificates delivered.
//
// Concurrency: Applet and a Script under construction are not safe for concurrent use; the
// functions and the finished Script are.
package perso

import "fmt"

// AID is the application identifier of the card management application:
// F0 4D 41 44 4F 47 55 43 48 49, an unregistered proprietary AID (first nibble F, ISO/IEC
// 7816-4 §8.2.1.2) spelling "MADOGUCHI". It is deliberately outside J-LIS's RID D392F00026 so
// that it can never collide with an AP J-LIS defines.
var AID = []byte{0xF0, 'M', 'A', 'D', 'O', 'G', 'U', 'C', 'H', 'I'}

// Instruction bytes of the management application (CLA 80 plain, 84 protected).
const (
	INSPutKey      byte = 0xD8 // import a wrapped RSA private key into a key EF
	INSWriteFile   byte = 0xE2 // write the whole content of a certificate EF
	INSResetPIN    byte = 0x2C // reset a PIN EF to "not set" (CA-authorised unblock)
	INSDeleteKey   byte = 0xE4 // destroy the private key in a key EF
	INSFinalize    byte = 0xF0 // commit every staged change; answers the attestation
	CLAProprietary byte = 0x80
)

// Elementary files of the JPKI AP (PLATFORM.md), the targets of the management commands.
const (
	FIDSignatureCert   uint16 = 0x0001
	FIDSignatureCACert uint16 = 0x0002
	FIDUserAuthCert    uint16 = 0x000A
	FIDUserAuthCACert  uint16 = 0x000B
	FIDUserAuthKey     uint16 = 0x0017
	FIDUserAuthPIN     uint16 = 0x0018
	FIDSignatureKey    uint16 = 0x001A
	FIDSignaturePIN    uint16 = 0x001B
)

// Limits the card enforces (and the builder checks first).
const (
	// MaxFileSize bounds one certificate EF. Certificates of the JPKI profiles are about
	// 1.5 KB; the bound keeps a card's staging memory small.
	MaxFileSize = 8192
	// MaxChanges bounds the staged changes of one session (the attestation counts them in
	// one byte; a full issuance needs at most 8).
	MaxChanges = 16
	// RSABits is the only accepted key size (TS Art. 2: RSA 2048).
	RSABits = 2048
)

// IsCertificateFile reports whether fid is one of the four certificate EFs.
func IsCertificateFile(fid uint16) bool {
	switch fid {
	case FIDSignatureCert, FIDSignatureCACert, FIDUserAuthCert, FIDUserAuthCACert:
		return true
	}
	return false
}

// IsKeyFile reports whether fid is one of the two private-key EFs.
func IsKeyFile(fid uint16) bool { return fid == FIDUserAuthKey || fid == FIDSignatureKey }

// IsPINFile reports whether fid is one of the two PIN EFs.
func IsPINFile(fid uint16) bool { return fid == FIDUserAuthPIN || fid == FIDSignaturePIN }

// SelectCommand returns `00 A4 04 00 0A <AID> 00`, which the terminal sends before
// INITIALIZE UPDATE.
func SelectCommand() []byte {
	out := []byte{0x00, 0xA4, 0x04, 0x00, byte(len(AID))}
	out = append(out, AID...)
	return append(out, 0x00)
}

// checkCertificateContent checks that content is one DER SEQUENCE with a two-byte long-form
// length (30 82 LL LL) and nothing after it: the JPKI read side (OpenSC's jpki driver) sizes
// a certificate EF from bytes 2–3 of its first 4 bytes, so any other form would be misread.
func checkCertificateContent(content []byte) error {
	if len(content) > MaxFileSize {
		return fmt.Errorf("perso: certificate of %d bytes exceeds %d", len(content), MaxFileSize)
	}
	if len(content) < 4 || content[0] != 0x30 || content[1] != 0x82 {
		return fmt.Errorf("perso: certificate must start 30 82 LL LL")
	}
	if n := int(content[2])<<8 | int(content[3]); n+4 != len(content) || n < 0x100 {
		return fmt.Errorf("perso: certificate length field %d does not match %d bytes", n, len(content))
	}
	return nil
}
