package scp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// CMAC returns the 16-byte AES-CMAC (NIST SP 800-38B, RFC 4493) of msg under key, which must
// be 16, 24 or 32 bytes long.
func CMAC(key, msg []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("scp: cmac key: %w", err)
	}
	return cmacBlock(block, msg), nil
}

// cmacBlock computes AES-CMAC with an already expanded key schedule.
func cmacBlock(block cipher.Block, msg []byte) []byte {
	var k1, k2, x, l [16]byte
	block.Encrypt(l[:], l[:])
	doubleBlock(&k1, &l)
	doubleBlock(&k2, &k1)

	n := len(msg)
	full := n > 0 && n%16 == 0
	var last [16]byte
	var body []byte
	if full {
		body = msg[:n-16]
		subtle.XORBytes(last[:], msg[n-16:], k1[:])
	} else {
		rem := n % 16
		body = msg[:n-rem]
		copy(last[:], msg[n-rem:])
		last[rem] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}
	for len(body) > 0 {
		subtle.XORBytes(x[:], x[:], body[:16])
		block.Encrypt(x[:], x[:])
		body = body[16:]
	}
	subtle.XORBytes(x[:], x[:], last[:])
	block.Encrypt(x[:], x[:])
	return x[:]
}

// doubleBlock sets dst to src·x in GF(2^128) with the CMAC polynomial (RFC 4493 §2.3).
func doubleBlock(dst, src *[16]byte) {
	carry := src[0] >> 7
	for i := 0; i < 15; i++ {
		dst[i] = src[i]<<1 | src[i+1]>>7
	}
	dst[15] = src[15]<<1 ^ (0x87 * carry)
}
