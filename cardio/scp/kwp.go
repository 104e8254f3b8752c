package scp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrUnwrap means an RFC 5649 unwrap failed its integrity check: wrong key, corrupted or
// truncated blob. Callers must treat the blob as hostile; no detail is given on purpose.
var ErrUnwrap = errors.New("scp: key unwrap failed integrity check")

// kwpAIV is the alternative initial value of RFC 5649 §3.
var kwpAIV = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// WrapKWP wraps plaintext (1 to 2^32-1 bytes) under kek with AES Key Wrap with Padding
// (RFC 5649). kek is 16, 24 or 32 bytes. The output is 8 bytes longer than the plaintext
// padded to a multiple of 8.
func WrapKWP(kek, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("scp: kwp key: %w", err)
	}
	if len(plaintext) == 0 || uint64(len(plaintext)) > 0xFFFFFFFF {
		return nil, fmt.Errorf("scp: kwp plaintext of %d bytes out of range", len(plaintext))
	}
	padded := (len(plaintext) + 7) / 8 * 8
	out := make([]byte, 8+padded)
	copy(out[:4], kwpAIV[:])
	binary.BigEndian.PutUint32(out[4:8], uint32(len(plaintext)))
	copy(out[8:], plaintext)
	if padded == 8 {
		block.Encrypt(out, out)
		return out, nil
	}
	wrap3394(block, out)
	return out, nil
}

// UnwrapKWP reverses WrapKWP. It returns ErrUnwrap when the integrity check (AIV, message
// length indicator, zero padding) fails.
func UnwrapKWP(kek, wrapped []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("scp: kwp key: %w", err)
	}
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a wrapped key length", ErrUnwrap, len(wrapped))
	}
	buf := make([]byte, len(wrapped))
	copy(buf, wrapped)
	if len(buf) == 16 {
		block.Decrypt(buf, buf)
	} else {
		unwrap3394(block, buf)
	}
	n := len(buf) - 8
	mli := int(binary.BigEndian.Uint32(buf[4:8]))
	ok := subtle.ConstantTimeCompare(buf[:4], kwpAIV[:])
	if mli <= n-8 || mli > n {
		ok = 0
	} else {
		var nz byte
		for _, b := range buf[8+mli:] {
			nz |= b
		}
		ok &= subtle.ConstantTimeByteEq(nz, 0)
	}
	if ok != 1 {
		clear(buf)
		return nil, ErrUnwrap
	}
	return buf[8 : 8+mli], nil
}

// wrap3394 runs the RFC 3394 wrapping process in place on buf = A ‖ R1 … Rn (n ≥ 2).
func wrap3394(block cipher.Block, buf []byte) {
	n := len(buf)/8 - 1
	var b [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(b[:8], buf[:8])
			copy(b[8:], buf[8*i:8*i+8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(buf[8*i:8*i+8], b[8:])
		}
	}
}

// unwrap3394 runs the RFC 3394 unwrapping process in place on buf = C0 ‖ C1 … Cn (n ≥ 2).
func unwrap3394(block cipher.Block, buf []byte) {
	n := len(buf)/8 - 1
	var b [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(b[8:], buf[8*i:8*i+8])
			block.Decrypt(b[:], b[:])
			copy(buf[:8], b[:8])
			copy(buf[8*i:8*i+8], b[8:])
		}
	}
}
