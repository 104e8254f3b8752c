package scp

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
)

// Derivation constants of the SCP03 KDF (GlobalPlatform Card Spec Amendment D v1.1,
// §6.2.2.1, table 6-1). Each session value is derived with its own constant so that no two
// derived values can be equal by construction.
const (
	DeriveCardCryptogram byte = 0x00
	DeriveHostCryptogram byte = 0x01
	DeriveCardChallenge  byte = 0x02 // pseudo-random card challenge (not used: our cards draw random challenges)
	DeriveSENC           byte = 0x04
	DeriveSMAC           byte = 0x06
	DeriveSRMAC          byte = 0x07
)

// KDFInput returns the fixed input data of one SCP03 KDF iteration (Amendment D §6.2.2.2):
// label = 11 bytes 00 then the derivation constant, a separation indicator 00, L (the output
// length in bits, 2 bytes big-endian), the counter i (1 byte), then the context. It is the
// message that is CMAC'd under the base key; exported so a host whose base keys live in an
// HSM can run the KDF as plain CMAC calls (SoftHSM has no SP 800-108 mechanism).
func KDFInput(constant byte, lengthBits int, counter byte, context []byte) []byte {
	in := make([]byte, 16, 16+len(context))
	in[11] = constant
	in[12] = 0x00
	in[13] = byte(lengthBits >> 8)
	in[14] = byte(lengthBits)
	in[15] = counter
	return append(in, context...)
}

// KDF is the SCP03 key derivation function: NIST SP 800-108 counter mode with AES-CMAC as
// the PRF and the counter in the middle of the fixed input (see KDFInput), producing
// lengthBits bits (a positive multiple of 8, at most 255 blocks).
func KDF(key []byte, constant byte, lengthBits int, context []byte) ([]byte, error) {
	if lengthBits <= 0 || lengthBits%8 != 0 || lengthBits > 0xFFFF {
		return nil, fmt.Errorf("scp: kdf output length %d bits is not a positive multiple of 8", lengthBits)
	}
	blocks := (lengthBits/8 + 15) / 16
	if blocks > 255 {
		return nil, fmt.Errorf("scp: kdf output length %d bits needs more than 255 blocks", lengthBits)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("scp: kdf key: %w", err)
	}
	fixed := KDFInput(constant, lengthBits, 0, context)
	out := counterKDF(block, fixed[:15], fixed[16:], blocks)
	return out[:lengthBits/8], nil
}

// counterKDF is NIST SP 800-108 §5.1 counter mode with AES-CMAC and an 8-bit counter
// between two fixed strings: K(i) = CMAC(K, before ‖ i ‖ after), i = 1…blocks.
func counterKDF(block cipher.Block, before, after []byte, blocks int) []byte {
	msg := make([]byte, 0, len(before)+1+len(after))
	msg = append(msg, before...)
	msg = append(msg, 0)
	msg = append(msg, after...)
	out := make([]byte, 0, blocks*16)
	for i := 1; i <= blocks; i++ {
		msg[len(before)] = byte(i)
		out = append(out, cmacBlock(block, msg)...)
	}
	return out
}

// Diversify returns a card static key K = AES-128-ECB(master, serial): one AES block
// encryption of the 16-byte card serial under the issuer master key. It is the derivation
// SoftHSM performs with CKM_AES_ECB_ENCRYPT_DATA, so the HSM and this software reference give
// identical card keys.
func Diversify(master, serial []byte) ([]byte, error) {
	if len(master) != 16 {
		return nil, fmt.Errorf("scp: master key is %d bytes, want 16", len(master))
	}
	if len(serial) != SerialLen {
		return nil, fmt.Errorf("scp: card serial is %d bytes, want %d", len(serial), SerialLen)
	}
	block, _ := aes.NewCipher(master)
	out := make([]byte, 16)
	block.Encrypt(out, serial)
	return out, nil
}

// SessionDEK returns S-DEK = AES-128-ECB(K-DEK, host challenge ‖ card challenge), the
// session key that wraps a private key for import (RFC 5649). Both challenges are 8 bytes,
// so the input is exactly one block; the HSM computes the same with CKM_AES_ECB_ENCRYPT_DATA.
func SessionDEK(kDEK, hostChallenge, cardChallenge []byte) ([]byte, error) {
	if len(kDEK) != 16 {
		return nil, fmt.Errorf("scp: k-dek is %d bytes, want 16", len(kDEK))
	}
	if len(hostChallenge) != ChallengeLen || len(cardChallenge) != ChallengeLen {
		return nil, fmt.Errorf("scp: challenges are %d and %d bytes, want %d", len(hostChallenge), len(cardChallenge), ChallengeLen)
	}
	block, _ := aes.NewCipher(kDEK)
	out := make([]byte, 16)
	block.Encrypt(out, append(append(make([]byte, 0, 16), hostChallenge...), cardChallenge...))
	return out, nil
}
