package vcard

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"madoguchi/cardio/scp"
)

// testKeys holds RSA keys generated once per test binary: key generation dominates run time.
var testKeys struct {
	once sync.Once
	auth *rsa.PrivateKey
	sign *rsa.PrivateKey
}

func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	testKeys.once.Do(func() {
		var err error
		if testKeys.auth, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if testKeys.sign, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return testKeys.auth, testKeys.sign
}

func selfSigned(t testing.TB, key *rsa.PrivateKey, cn string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// loadedCard returns a personalised card with both keys, certificates and PINs 1234 / ABC123.
func loadedCard(t testing.TB, statePath string) (*Card, []byte, []byte) {
	t.Helper()
	authKey, signKey := keys(t)
	c, err := New(Config{Serial: bytes.Repeat([]byte{0x42}, 16), Keys: stockKeys(t, bytes.Repeat([]byte{0x42}, 16)), StatePath: statePath})
	if err != nil {
		t.Fatal(err)
	}
	authCert := selfSigned(t, authKey, "auth")
	signCert := selfSigned(t, signKey, "sign")
	for _, step := range []error{
		c.InstallCertificate(EFUserAuthCert, authCert),
		c.InstallCertificate(EFSignatureCert, signCert),
		c.InstallCertificate(EFUserAuthCACert, authCert),
		c.InstallCertificate(EFSignatureCACert, signCert),
		c.InstallPrivateKey(EFUserAuthKey, authKey),
		c.InstallPrivateKey(EFSignatureKey, signKey),
		c.SetPIN(EFUserAuthPIN, []byte("1234")),
		c.SetPIN(EFSignaturePIN, []byte("ABC123")),
		c.SetLifecycle(LifecyclePersonalised),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	return c, authCert, signCert
}

func tx(t testing.TB, tr *InProcess, hexCmd string) []byte {
	t.Helper()
	rsp, err := tr.Transmit(context.Background(), mustHex(hexCmd))
	if err != nil {
		t.Fatal(err)
	}
	return rsp
}

func sw(rsp []byte) uint16 { return uint16(rsp[len(rsp)-2])<<8 | uint16(rsp[len(rsp)-1]) }

func wantSW(t testing.TB, rsp []byte, want uint16) {
	t.Helper()
	if got := sw(rsp); got != want {
		t.Fatalf("status %04X, want %04X", got, want)
	}
}

const (
	selectJPKI    = "00A4040C0AD392F000260100000001"
	selectAuthPIN = "00A4020C020018"
	selectSignPIN = "00A4020C02001B"
)

func TestReadCertificateInChunks(t *testing.T) {
	c, authCert, _ := loadedCard(t, "")
	tr := Insert(c)
	wantSW(t, tx(t, tr, selectJPKI), swOK)
	wantSW(t, tx(t, tr, "00A4020C02000A"), swOK)
	head := tx(t, tr, "00B0000004")
	wantSW(t, head, swOK)
	size := int(head[2])<<8 | int(head[3]) + 4
	if size != len(authCert) {
		t.Fatalf("size from header %d, want %d", size, len(authCert))
	}
	var got []byte
	for off := 0; off < size; {
		n := min(256, size-off)
		le := byte(n)
		rsp, _ := tr.Transmit(context.Background(), []byte{0, 0xB0, byte(off >> 8), byte(off), le})
		wantSW(t, rsp, swOK)
		got = append(got, rsp[:len(rsp)-2]...)
		off += len(rsp) - 2
	}
	if !bytes.Equal(got, authCert) {
		t.Fatal("certificate read back differs")
	}
	wantSW(t, tx(t, tr, "00B0FFFF00"), swWrongP1P2)
	wantSW(t, tx(t, tr, "00B07FFF00"), swWrongOffset)
}

func TestSignatureCertNeedsSignaturePIN(t *testing.T) {
	c, _, signCert := loadedCard(t, "")
	tr := Insert(c)
	tx(t, tr, selectJPKI)
	wantSW(t, tx(t, tr, "00A4020C020001"), swOK)
	wantSW(t, tx(t, tr, "00B0000004"), swSecurityNotSatisfied)
	tx(t, tr, selectSignPIN)
	wantSW(t, tx(t, tr, "0020008006"+hex.EncodeToString([]byte("ABC123"))), swOK)
	tx(t, tr, "00A4020C020001")
	rsp := tx(t, tr, "00B0000004")
	wantSW(t, rsp, swOK)
	if !bytes.Equal(rsp[:4], signCert[:4]) {
		t.Fatal("wrong header")
	}
	// Power cycle forgets the verification.
	c.PowerOff()
	c.PowerOn()
	tx(t, tr, selectJPKI)
	tx(t, tr, "00A4020C020001")
	wantSW(t, tx(t, tr, "00B0000004"), swSecurityNotSatisfied)
}

func TestKeysAndPINsCannotBeRead(t *testing.T) {
	c, _, _ := loadedCard(t, "")
	tr := Insert(c)
	tx(t, tr, selectJPKI)
	for _, ef := range []string{"0017", "001A", "0018", "001B"} {
		tx(t, tr, "00A4020C02"+ef)
		wantSW(t, tx(t, tr, "00B0000000"), swIncompatibleFile)
	}
}

func TestUnknownAIDAndINS(t *testing.T) {
	c, _, _ := loadedCard(t, "")
	tr := Insert(c)
	wantSW(t, tx(t, tr, "00A4040C07A0000000030000"), swFileNotFound)
	wantSW(t, tx(t, tr, "00CA010000"), swINSNotSupported)
	tx(t, tr, selectJPKI)
	wantSW(t, tx(t, tr, "00CA010000"), swINSNotSupported)
	wantSW(t, tx(t, tr, "00A4020C02ABCD"), swFileNotFound)
	wantSW(t, tx(t, tr, "00A4020C03AABB"), swWrongLength)
}

func TestPINCountdownBlockAndPersistence(t *testing.T) {
	for _, tc := range []struct {
		name, sel, right, wrong string
		tries                   int
		ef                      uint16
	}{
		{"user-auth", selectAuthPIN, "1234", "9999", 3, EFUserAuthPIN},
		{"signature", selectSignPIN, "ABC123", "ZZZ999", 5, EFSignaturePIN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "card.json")
			c, _, _ := loadedCard(t, path)
			tr := Insert(c)
			tx(t, tr, selectJPKI)
			tx(t, tr, tc.sel)
			wantSW(t, tx(t, tr, "00200080"), 0x63C0|uint16(tc.tries))
			verify := func(pin string) []byte {
				return tx(t, tr, "00200080"+hex.EncodeToString([]byte{byte(len(pin))})+hex.EncodeToString([]byte(pin)))
			}
			wantSW(t, verify(tc.wrong), 0x63C0|uint16(tc.tries-1))
			wantSW(t, verify(tc.right), swOK) // a right PIN restores the counter
			wantSW(t, tx(t, tr, "00200080"), 0x63C0|uint16(tc.tries))
			for left := tc.tries - 1; left >= 0; left-- {
				wantSW(t, verify(tc.wrong), 0x63C0|uint16(left))
			}
			wantSW(t, verify(tc.right), swPINBlocked)
			wantSW(t, tx(t, tr, "00200080"), 0x63C0) // tries without data: 63C0 when blocked, as OpenSC reads it
			// Power cycle and reload from the state file: still blocked.
			c.PowerOff()
			c.PowerOn()
			tx(t, tr, selectJPKI)
			tx(t, tr, tc.sel)
			wantSW(t, verify(tc.right), swPINBlocked)
			c2, err := Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			st, left, err := c2.PINStatus(tc.ef)
			if err != nil || st != PINBlocked || left != 0 {
				t.Fatalf("reloaded pin state %s %d %v, want blocked 0", st, left, err)
			}
			tr2 := Insert(c2)
			tx(t, tr2, selectJPKI)
			tx(t, tr2, tc.sel)
			wantSW(t, verify(tc.right), swPINBlocked)
			wantSW(t, tx(t, tr2, "00200080"+hex.EncodeToString([]byte{byte(len(tc.right))})+hex.EncodeToString([]byte(tc.right))), swPINBlocked)
		})
	}
}

func TestStateFileHoldsNoPIN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.json")
	loadedCard(t, path)
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{"1234", "ABC123", hex.EncodeToString([]byte("ABC123"))} {
		if bytes.Contains(b, []byte(pin)) {
			t.Fatalf("state file contains the pin %q", pin)
		}
	}
}

func TestSignPKCS1v15(t *testing.T) {
	c, _, _ := loadedCard(t, "")
	authKey, signKey := keys(t)
	tr := Insert(c)
	digest := sha256.Sum256([]byte("hello"))
	prefix := mustHex("3031300d060960864801650304020105000420")
	di := append(prefix, digest[:]...)
	signCmd := "802A008033" + hex.EncodeToString(di) + "00"
	tx(t, tr, selectJPKI)
	tx(t, tr, "00A4020C020017")
	wantSW(t, tx(t, tr, signCmd), swSecurityNotSatisfied)
	tx(t, tr, selectAuthPIN)
	wantSW(t, tx(t, tr, "0020008004"+hex.EncodeToString([]byte("1234"))), swOK)
	// user-auth PIN does not unlock the signature key
	tx(t, tr, "00A4020C02001A")
	wantSW(t, tx(t, tr, signCmd), swSecurityNotSatisfied)
	tx(t, tr, "00A4020C020017")
	rsp := tx(t, tr, signCmd)
	wantSW(t, rsp, swOK)
	if err := rsa.VerifyPKCS1v15(&authKey.PublicKey, crypto.SHA256, digest[:], rsp[:len(rsp)-2]); err != nil {
		t.Fatal(err)
	}
	tx(t, tr, selectSignPIN)
	wantSW(t, tx(t, tr, "0020008006"+hex.EncodeToString([]byte("ABC123"))), swOK)
	tx(t, tr, "00A4020C02001A")
	rsp = tx(t, tr, signCmd)
	wantSW(t, rsp, swOK)
	if err := rsa.VerifyPKCS1v15(&signKey.PublicKey, crypto.SHA256, digest[:], rsp[:len(rsp)-2]); err != nil {
		t.Fatal(err)
	}
}

func TestApplicantPINSet(t *testing.T) {
	c, err := New(Config{Serial: bytes.Repeat([]byte{1}, 16), Keys: stockKeys(t, bytes.Repeat([]byte{1}, 16))})
	if err != nil {
		t.Fatal(err)
	}
	tr := Insert(c)
	tx(t, tr, selectJPKI)
	tx(t, tr, selectAuthPIN)
	wantSW(t, tx(t, tr, "00200080"), swReferenceNotUsable)
	wantSW(t, tx(t, tr, "0024018005"+hex.EncodeToString([]byte("12345"))), swWrongData)
	wantSW(t, tx(t, tr, "0024018004"+hex.EncodeToString([]byte("12a4"))), swWrongData)
	wantSW(t, tx(t, tr, "0024018004"+hex.EncodeToString([]byte("5678"))), swOK)
	wantSW(t, tx(t, tr, "00200080"), 0x63C3)
	wantSW(t, tx(t, tr, "0024018004"+hex.EncodeToString([]byte("1111"))), swConditionsNotMet)
	wantSW(t, tx(t, tr, "0020008004"+hex.EncodeToString([]byte("5678"))), swOK)
	tx(t, tr, selectSignPIN)
	wantSW(t, tx(t, tr, "0024018005"+hex.EncodeToString([]byte("ABC12"))), swWrongData)
	wantSW(t, tx(t, tr, "0024018006"+hex.EncodeToString([]byte("abc123"))), swWrongData)
	wantSW(t, tx(t, tr, "0024018006"+hex.EncodeToString([]byte("ABC123"))), swOK)
}

func TestStateFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.json")
	c, authCert, _ := loadedCard(t, path)
	if _, err := New(Config{Serial: c.Serial(), Keys: stockKeys(t, c.Serial()), StatePath: path}); err == nil {
		t.Fatal("New over an existing state file succeeded")
	}
	c2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c2.Serial(), c.Serial()) || c2.Lifecycle() != LifecyclePersonalised {
		t.Fatal("serial or lifecycle lost")
	}
	tr := Insert(c2)
	tx(t, tr, selectJPKI)
	tx(t, tr, "00A4020C02000A")
	rsp := tx(t, tr, "00B0000000")
	if !bytes.Equal(rsp[:len(rsp)-2], authCert[:256]) {
		t.Fatal("certificate lost")
	}
	tx(t, tr, selectAuthPIN)
	wantSW(t, tx(t, tr, "0020008004"+hex.EncodeToString([]byte("1234"))), swOK)
}

func TestParseCommandCases(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ok     bool
		nc, ne int
	}{
		{"00A40000", true, 0, 0},
		{"00B0000000", true, 0, 256},
		{"00B0000010", true, 0, 16},
		{"00A4020C020001", true, 2, 0},
		{"802A0080020102" + "00", true, 2, 256},
		{"00B00000000000", true, 0, 65536},
		{"00B00000000100", true, 0, 256},
		{"00D60000000002AABB", true, 2, 0},
		{"00D60000000002AABB0000", true, 2, 65536},
		{"00A4020C03AABB", false, 0, 0},
		{"00A4", false, 0, 0},
	} {
		c, ok := parseCommand(mustHex(tc.in))
		if ok != tc.ok || len(c.data) != tc.nc || c.ne != tc.ne {
			t.Errorf("%s: ok=%v nc=%d ne=%d, want %v %d %d", tc.in, ok, len(c.data), c.ne, tc.ok, tc.nc, tc.ne)
		}
	}
}

func TestFaultSpecs(t *testing.T) {
	f := NewFaults()
	for _, bad := range []string{"drop@0", "sw@1=XYZW", "sw@1", "delay=-1s", "explode", "garbage@0", "truncate@x", "garbage", "seed=-1"} {
		if err := f.Apply(bad); err == nil {
			t.Errorf("Apply(%q) succeeded", bad)
		}
	}
	for _, good := range []string{"drop@2", "sw@1=6A82", "delay=1ms", "garbage@3", "truncate@4", "seed=42"} {
		if err := f.Apply(good); err != nil {
			t.Errorf("Apply(%q): %v", good, err)
		}
	}
	if a := f.next(); !a.hasSW || a.sw != 0x6A82 || a.drop || a.delay != time.Millisecond {
		t.Fatalf("first apdu action %+v", a)
	}
	if a := f.next(); !a.drop {
		t.Fatalf("second apdu action %+v", a)
	}
	if a := f.next(); a.drop || a.hasSW || !a.garbage || a.truncate {
		t.Fatalf("third apdu action %+v", a)
	}
	if a := f.next(); a.drop || a.hasSW || a.garbage || !a.truncate {
		t.Fatalf("fourth apdu action %+v", a)
	}
	if a := f.next(); a.garbage || a.truncate {
		t.Fatalf("fifth apdu action %+v", a)
	}
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// testIssuer holds issuer master keys drawn at test time (never committed).
var testIssuer = func() *scp.SoftwareIssuer {
	m := make([]byte, 48)
	if _, err := rand.Read(m); err != nil {
		panic(err)
	}
	return &scp.SoftwareIssuer{MasterENC: m[:16], MasterMAC: m[16:32], MasterDEK: m[32:]}
}()

func stockKeys(t testing.TB, serial []byte) StaticKeys {
	t.Helper()
	k, err := testIssuer.CardKeys(serial)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
