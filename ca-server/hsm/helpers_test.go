package hsm

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"testing"

	"madoguchi/internal/testenv"
)

// openTestToken opens a fresh SoftHSM token made by softhsm2-util in
// t.TempDir (internal/testenv), so Open is tested against a token this
// package did not create. The user PIN reaches Open through an env: source.
func openTestToken(t testing.TB, pool int) (*HSM, Config) {
	h, cfg, _ := openTestTokenSO(t, pool)
	return h, cfg
}

// openTestTokenSO is openTestToken that also returns the SO PIN.
func openTestTokenSO(t testing.TB, pool int) (*HSM, Config, string) {
	t.Helper()
	tok := testenv.SoftHSM(t)
	t.Setenv("MADOGUCHI_TEST_HSM_PIN", tok.UserPIN)
	cfg := Config{ModulePath: tok.Module, SoftHSMConf: tok.ConfPath, TokenLabel: tok.TokenLabel,
		PINSource: "env:MADOGUCHI_TEST_HSM_PIN", PoolSize: pool}
	h, err := Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h, cfg, tok.SOPIN
}

// goCMAC is AES-CMAC (NIST SP 800-38B) in plain Go, the reference for tests.
func goCMAC(key, msg []byte) []byte {
	c, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	dbl := func(b []byte) []byte {
		out := make([]byte, 16)
		var carry byte
		for i := 15; i >= 0; i-- {
			out[i] = b[i]<<1 | carry
			carry = b[i] >> 7
		}
		if carry != 0 {
			out[15] ^= 0x87
		}
		return out
	}
	l := make([]byte, 16)
	c.Encrypt(l, l)
	k1 := dbl(l)
	k2 := dbl(k1)
	n := (len(msg) + 15) / 16
	last := make([]byte, 16)
	if n == 0 || len(msg)%16 != 0 {
		if n == 0 {
			n = 1
		}
		rem := msg[(n-1)*16:]
		copy(last, rem)
		last[len(rem)] = 0x80
		subtle.XORBytes(last, last, k2)
	} else {
		copy(last, msg[(n-1)*16:])
		subtle.XORBytes(last, last, k1)
	}
	x := make([]byte, 16)
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x, x, msg[i*16:(i+1)*16])
		c.Encrypt(x, x)
	}
	subtle.XORBytes(x, x, last)
	c.Encrypt(x, x)
	return x
}

// goUnwrapKWP is RFC 5649 unwrap in plain Go, the reference for tests.
func goUnwrapKWP(kek, wrapped []byte) ([]byte, error) {
	c, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(wrapped)%8 != 0 || len(wrapped) < 16 {
		return nil, errors.New("bad length")
	}
	n := len(wrapped)/8 - 1
	var a [8]byte
	r := make([]byte, n*8)
	if n == 1 {
		var b [16]byte
		c.Decrypt(b[:], wrapped)
		copy(a[:], b[:8])
		copy(r, b[8:])
	} else {
		copy(a[:], wrapped[:8])
		copy(r, wrapped[8:])
		var b [16]byte
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
				copy(b[8:], r[(i-1)*8:i*8])
				c.Decrypt(b[:], b[:])
				copy(a[:], b[:8])
				copy(r[(i-1)*8:], b[8:])
			}
		}
	}
	if a[0] != 0xA6 || a[1] != 0x59 || a[2] != 0x59 || a[3] != 0xA6 {
		return nil, errors.New("bad icv")
	}
	mli := int(binary.BigEndian.Uint32(a[4:]))
	if mli > len(r) || mli <= len(r)-8 {
		return nil, errors.New("bad mli")
	}
	for _, z := range r[mli:] {
		if z != 0 {
			return nil, errors.New("bad padding")
		}
	}
	return r[:mli], nil
}
