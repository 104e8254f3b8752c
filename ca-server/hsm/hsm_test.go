package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pin")
	if err := os.WriteFile(f, []byte("1234abcd\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HSM_TEST_PIN", "9999")
	t.Setenv("HSM_TEST_EMPTY", "")
	for _, tc := range []struct {
		src, want string
		bad       bool
	}{
		{"file:" + f, "1234abcd", false},
		{"env:HSM_TEST_PIN", "9999", false},
		{"env:HSM_TEST_EMPTY", "", true},
		{"env:HSM_TEST_UNSET_XYZ", "", true},
		{"1234", "", true},
		{"flag:1234", "", true},
		{"file:" + filepath.Join(dir, "missing"), "", true},
	} {
		got, err := ReadPIN(tc.src)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("ReadPIN(%q) = %q, %v", tc.src, got, err)
		}
	}
}

func TestProvisionIdempotentAndLogin(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOFTHSM2_CONF", "")
	cfg, err := Provision(dir, ProvisionOptions{TokenLabel: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Provision(dir, ProvisionOptions{TokenLabel: "t1"})
	if err != nil || again != cfg {
		t.Fatalf("second provision: %+v, %v (first %+v)", again, err, cfg)
	}
	if _, err := OpenWithPIN(cfg, "wrong-pin"); !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("wrong pin: %v, want ErrPINIncorrect", err)
	}
	other := cfg
	other.TokenLabel = "no-such-token"
	if _, err := Open(other); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("missing token: %v, want ErrTokenNotFound", err)
	}
	h, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("second open in one process: %v", err)
	}
	ctx := context.Background()
	if _, err := h.GenerateRSA(ctx, "persist", KeyOptions{Token: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := h.FindKey(ctx, KeyQuery{Kind: KindRSAPrivate, Label: "persist"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v, want ErrClosed", err)
	}
	// Token objects survive; session objects do not.
	h, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.FindRSAKeyPair(ctx, "persist"); err != nil {
		t.Fatalf("token key after reopen: %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	h, _ := openTestToken(t, 2)
	ctx := context.Background()
	kp, err := h.GenerateRSA(ctx, "signer", KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kp.PublicKey.N.BitLen() != 2048 || kp.PublicKey.E != 65537 {
		t.Fatalf("key %d bits e=%d", kp.PublicKey.N.BitLen(), kp.PublicKey.E)
	}
	s, err := h.Signer(kp)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("JPKI"))
	sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(kp.PublicKey, crypto.SHA256, d[:], sig); err != nil {
		t.Fatalf("pkcs1 verify: %v", err)
	}
	d[0] ^= 1
	if rsa.VerifyPKCS1v15(kp.PublicKey, crypto.SHA256, d[:], sig) == nil {
		t.Fatal("signature verified for another digest")
	}
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	sig, err = s.Sign(rand.Reader, d[:], pss)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPSS(kp.PublicKey, crypto.SHA256, d[:], sig, pss); err != nil {
		t.Fatalf("pss verify: %v", err)
	}
	// x509 works unchanged over the Signer.
	if _, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, s); err != nil {
		t.Fatalf("csr: %v", err)
	}
	if _, err := s.Sign(nil, d[:20], crypto.SHA256); !errors.Is(err, ErrBadInput) {
		t.Fatalf("short digest: %v", err)
	}
	// The public key read back matches.
	pk, err := h.PublicKey(ctx, kp.Private)
	if err != nil || !pk.Equal(kp.PublicKey) {
		t.Fatalf("PublicKey: %v", err)
	}
}

func TestCMACAndHMAC(t *testing.T) {
	h, _ := openTestToken(t, 1)
	ctx := context.Background()
	value := bytes.Repeat([]byte{0x2b}, 16)
	k, err := h.ImportAES(ctx, "cmac", value, KeyOptions{Usage: UseSign})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 15, 16, 17, 32, 100} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		got, err := h.CMAC(ctx, k, msg)
		if err != nil {
			t.Fatal(err)
		}
		if want := goCMAC(value, msg); !bytes.Equal(got, want) {
			t.Fatalf("cmac len %d: hsm %x go %x", n, got, want)
		}
	}
	// Reference check of goCMAC itself: RFC 4493 example 2.
	rfcKey := []byte{0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c}
	rfcMsg := []byte{0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a}
	if got := goCMAC(rfcKey, rfcMsg); !bytes.Equal(got, []byte{0x07, 0x0a, 0x16, 0xb4, 0x6b, 0x4d, 0x41, 0x44, 0xf7, 0x9b, 0xdd, 0x9d, 0xd0, 0x4a, 0x28, 0x7c}) {
		t.Fatalf("goCMAC broken: %x", got)
	}
	hk, err := h.GenerateHMAC(ctx, "person-hash", KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.HMACSHA256(ctx, hk, []byte("12345678901"))
	b, err2 := h.HMACSHA256(ctx, hk, []byte("12345678901"))
	if err != nil || err2 != nil || len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("hmac: %x %x %v %v", a, b, err, err2)
	}
	if _, err := h.SecretValue(ctx, hk); !errors.Is(err, ErrAttributeSensitive) {
		t.Fatalf("reading hmac key: %v, want ErrAttributeSensitive", err)
	}
}

func TestDeriveAESECBMatchesGo(t *testing.T) {
	h, _ := openTestToken(t, 1)
	ctx := context.Background()
	mkValue := []byte("0123456789abcdef")
	mk, err := h.ImportAES(ctx, "mk", mkValue, KeyOptions{Usage: UseDerive})
	if err != nil {
		t.Fatal(err)
	}
	serial := []byte("SERIAL-000000001")
	c, _ := aes.NewCipher(mkValue)
	want := make([]byte, 16)
	c.Encrypt(want, serial)

	exported, err := h.DeriveAESECB(ctx, mk, serial, "k-export", KeyOptions{Extractable: ExportInClear})
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.SecretValue(ctx, exported)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("derived value %x (%v), want %x", got, err, want)
	}
	// A non-extractable derived key gives the same CMAC as Go with the ECB value.
	inner, err := h.DeriveAESECB(ctx, mk, serial, "k-inner", KeyOptions{Usage: UseSign})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.SecretValue(ctx, inner); !errors.Is(err, ErrAttributeSensitive) {
		t.Fatalf("reading non-exportable derived key: %v", err)
	}
	mac, err := h.CMAC(ctx, inner, []byte("data"))
	if err != nil || !bytes.Equal(mac, goCMAC(want, []byte("data"))) {
		t.Fatalf("cmac with derived key: %x %v", mac, err)
	}
	// 32-byte data gives an AES-256 key: two ECB blocks.
	data32 := append(append([]byte{}, serial...), mkValue...)
	k256, err := h.DeriveAESECB(ctx, mk, data32, "k256", KeyOptions{Extractable: ExportInClear})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := h.SecretValue(ctx, k256)
	want2 := make([]byte, 32)
	c.Encrypt(want2[:16], data32[:16])
	c.Encrypt(want2[16:], data32[16:])
	if !bytes.Equal(v, want2) {
		t.Fatalf("aes-256 derivation %x want %x", v, want2)
	}
	if _, err := h.DeriveAESECB(ctx, mk, serial[:15], "bad", KeyOptions{}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("15-byte data: %v", err)
	}
}

func TestWrapKWPMatchesRFC5649(t *testing.T) {
	h, _ := openTestToken(t, 1)
	ctx := context.Background()
	kekValue := bytes.Repeat([]byte{7}, 16)
	kek, err := h.ImportAES(ctx, "kek", kekValue, KeyOptions{Usage: UseWrap | UseUnwrap})
	if err != nil {
		t.Fatal(err)
	}
	user, err := h.GenerateRSA(ctx, "user", KeyOptions{Extractable: ExtractableForCard})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := h.WrapKWP(ctx, kek, user.Private)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := goUnwrapKWP(kekValue, wrapped)
	if err != nil {
		t.Fatalf("go unwrap: %v", err)
	}
	der, err := TrimPKCS8Padding(plain)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatalf("pkcs8: %v", err)
	}
	if !parsed.(*rsa.PrivateKey).PublicKey.Equal(user.PublicKey) {
		t.Fatal("unwrapped key does not match the generated public key")
	}
	// Unwrap inside the HSM too, and sign with the result.
	back, err := h.UnwrapRSAKWP(ctx, kek, wrapped, "restored", KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !back.PublicKey.Equal(user.PublicKey) {
		t.Fatal("hsm unwrap gives another key")
	}
	s, _ := h.Signer(back)
	d := sha256.Sum256(nil)
	sig, err := s.Sign(nil, d[:], crypto.SHA256)
	if err != nil || rsa.VerifyPKCS1v15(user.PublicKey, crypto.SHA256, d[:], sig) != nil {
		t.Fatalf("sign with restored key: %v", err)
	}
	if _, err := TrimPKCS8Padding(append(append([]byte{}, der...), 0, 1)); err == nil {
		t.Fatal("non-zero padding accepted")
	}
}

func TestRefusals(t *testing.T) {
	h, _ := openTestToken(t, 1)
	ctx := context.Background()
	kek, err := h.GenerateAES(ctx, "kek", KeyOptions{Usage: UseWrap, Bits: 256})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := h.GenerateRSA(ctx, "ca", KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WrapKWP(ctx, kek, ca.Private); !errors.Is(err, ErrKeyUnextractable) {
		t.Fatalf("wrap non-extractable: %v, want ErrKeyUnextractable", err)
	}
	backup, err := h.GenerateRSA(ctx, "ca-backup", KeyOptions{Extractable: ExtractableForBackup})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WrapKWP(ctx, kek, backup.Private); !errors.Is(err, ErrKeyNotWrappable) {
		t.Fatalf("wrap under untrusted kek: %v, want ErrKeyNotWrappable", err)
	}
	if _, err := h.GenerateAES(ctx, "t", KeyOptions{Trusted: true}); err == nil {
		t.Fatal("user could mark a key trusted")
	}
	if _, err := h.SecretValue(ctx, kek); !errors.Is(err, ErrAttributeSensitive) {
		t.Fatalf("read kek: %v", err)
	}
	if err := h.Destroy(ctx, ca.Private); err != nil {
		t.Fatal(err)
	}
	if err := h.Destroy(ctx, ca.Private); !errors.Is(err, ErrKeyHandleInvalid) {
		t.Fatalf("destroy twice: %v", err)
	}
	if _, err := h.FindKey(ctx, KeyQuery{Kind: KindRSAPrivate, Label: "ca"}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("find destroyed: %v", err)
	}
	s, _ := h.Signer(ca)
	d := sha256.Sum256(nil)
	if _, err := s.Sign(nil, d[:], crypto.SHA256); !errors.Is(err, ErrKeyHandleInvalid) {
		t.Fatalf("sign with destroyed key: %v", err)
	}
	for name, err := range map[string]error{
		"empty label": func() error { _, err := h.GenerateRSA(ctx, "", KeyOptions{}); return err }(),
		"rsa 1024":    func() error { _, err := h.GenerateRSA(ctx, "x", KeyOptions{Bits: 1024}); return err }(),
		"rsa clear":   func() error { _, err := h.GenerateRSA(ctx, "x", KeyOptions{Extractable: ExportInClear}); return err }(),
		"aes 100":     func() error { _, err := h.GenerateAES(ctx, "x", KeyOptions{Bits: 100}); return err }(),
		"import 15":   func() error { _, err := h.ImportAES(ctx, "x", make([]byte, 15), KeyOptions{}); return err }(),
		"cmac rsa":    func() error { _, err := h.CMAC(ctx, backup.Private, nil); return err }(),
	} {
		if !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: %v, want ErrBadInput", name, err)
		}
	}
}

func TestTrustedKEKBackupPath(t *testing.T) {
	h, cfg, soPIN := openTestTokenSO(t, 1)
	ctx := context.Background()
	ca, err := h.GenerateRSA(ctx, "ca", KeyOptions{Token: true, Extractable: ExtractableForBackup})
	if err != nil {
		t.Fatal(err)
	}
	if err := ImportTrustedKEK(cfg, "x", "kek", make([]byte, 32)); err == nil {
		t.Fatal("ImportTrustedKEK while the module is open")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ImportTrustedKEK(cfg, "wrong", "kek", make([]byte, 32)); !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("wrong so pin: %v", err)
	}
	kekValue := bytes.Repeat([]byte{9}, 32)
	if err := ImportTrustedKEK(cfg, soPIN, "kek", kekValue); err != nil {
		t.Fatal(err)
	}
	h2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	kek, err := h2.FindKey(ctx, KeyQuery{Kind: KindAES, Label: "kek"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := h2.FindRSAKeyPair(ctx, "ca")
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := h2.WrapKWP(ctx, kek, pair.Private)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := goUnwrapKWP(kekValue, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := TrimPKCS8Padding(plain)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil || !k.(*rsa.PrivateKey).PublicKey.Equal(ca.PublicKey) {
		t.Fatalf("backup does not hold the ca key: %v", err)
	}
}

func TestConcurrentPool(t *testing.T) {
	h, _ := openTestToken(t, 2)
	ctx := context.Background()
	kp, err := h.GenerateRSA(ctx, "shared", KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := h.Signer(kp)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				d := sha256.Sum256([]byte{byte(g), byte(i)})
				sig, err := s.Sign(nil, d[:], crypto.SHA256)
				if err == nil {
					err = rsa.VerifyPKCS1v15(kp.PublicKey, crypto.SHA256, d[:], sig)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			k, err := h.GenerateRSA(ctx, "g", KeyOptions{Extractable: ExtractableForCard})
			if err == nil {
				err = h.Destroy(ctx, k.Private)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCloseWhileInFlight(t *testing.T) {
	h, _ := openTestToken(t, 2)
	ctx := context.Background()
	kp, err := h.GenerateRSA(ctx, "k", KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := h.Signer(kp)
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, closed int
	var others []error
	for g := range 6 {
		wg.Go(func() {
			for {
				var err error
				if g%2 == 0 {
					_, err = h.GenerateRSA(ctx, "c", KeyOptions{})
				} else {
					d := sha256.Sum256(nil)
					_, err = s.Sign(nil, d[:], crypto.SHA256)
				}
				once.Do(func() { close(started) })
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrClosed):
					closed++
				default:
					others = append(others, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	<-started
	if err := h.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wg.Wait()
	if len(others) != 0 || closed != 6 || ok == 0 {
		t.Fatalf("ok %d closed %d others %v", ok, closed, others)
	}
}

// The KWP mechanism code comes from Config: PKCS#11 3.0's 0x210B reaches the
// token (SoftHSM 2 does not know it and says so).
func TestKWPMechanismFromConfig(t *testing.T) {
	h, _ := openTestToken(t, 1)
	h.mech = Mechanisms{AESKeyWrapPad: MechAESKeyWrapKWP}
	ctx := context.Background()
	kek, err := h.GenerateAES(ctx, "kek", KeyOptions{Usage: UseWrap})
	if err != nil {
		t.Fatal(err)
	}
	user, err := h.GenerateRSA(ctx, "user", KeyOptions{Extractable: ExtractableForCard})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WrapKWP(ctx, kek, user.Private); !errors.Is(err, ErrMechanismInvalid) {
		t.Fatalf("wrap with 0x210B on softhsm: %v, want ErrMechanismInvalid", err)
	}
	h.mech = Mechanisms{}
	if _, err := h.WrapKWP(ctx, kek, user.Private); err != nil {
		t.Fatalf("wrap with the default code: %v", err)
	}
}
