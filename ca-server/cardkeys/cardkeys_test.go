package cardkeys

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"sync"
	"testing"

	"madoguchi/ca-server/hsm"
	"madoguchi/cardio/scp"
	"madoguchi/internal/testenv"
)

// openToken opens a fresh SoftHSM token from internal/testenv.
func openToken(t *testing.T) *hsm.HSM {
	t.Helper()
	tok := testenv.SoftHSM(t)
	h, err := hsm.OpenWithPIN(hsm.Config{ModulePath: tok.Module, SoftHSMConf: tok.ConfPath, TokenLabel: tok.TokenLabel, PoolSize: 2}, tok.UserPIN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// testIssuer opens a fresh SoftHSM token in t.TempDir and imports known
// master keys (for comparison with scp.SoftwareIssuer only; real master keys
// are generated non-extractable by the ceremony).
func testIssuer(t *testing.T) (*Issuer, *hsm.HSM, *scp.SoftwareIssuer) {
	t.Helper()
	h := openToken(t)
	soft := &scp.SoftwareIssuer{
		MasterENC: bytes.Repeat([]byte{0x11}, 16),
		MasterMAC: bytes.Repeat([]byte{0x22}, 16),
		MasterDEK: bytes.Repeat([]byte{0x33}, 16),
	}
	ctx := context.Background()
	for label, v := range map[string][]byte{LabelMasterENC: soft.MasterENC, LabelMasterMAC: soft.MasterMAC, LabelMasterDEK: soft.MasterDEK} {
		if _, err := h.ImportAES(ctx, label, v, hsm.KeyOptions{Usage: hsm.UseDerive}); err != nil {
			t.Fatal(err)
		}
	}
	is, err := New(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	return is, h, soft
}

// sessionObjects counts the AES and RSA objects left in the token.
func sessionObjects(t *testing.T, h *hsm.HSM) int {
	t.Helper()
	n := 0
	for _, k := range []hsm.KeyKind{hsm.KindAES, hsm.KindRSAPrivate, hsm.KindRSAPublic} {
		keys, err := h.FindKeys(context.Background(), hsm.KeyQuery{Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		n += len(keys)
	}
	return n
}

func TestCardCMACMatchesSoftwareIssuer(t *testing.T) {
	is, h, soft := testIssuer(t)
	ctx := context.Background()
	before := sessionObjects(t, h)
	serial := []byte("0123456789ABCDEF")
	for _, kind := range []scp.KeyKind{scp.KeyENC, scp.KeyMAC} {
		for _, data := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{5}, 32), scp.KDFInput(0x04, 128, 1, make([]byte, 16))} {
			got, err := is.CardCMAC(ctx, kind, serial, data)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := soft.CardCMAC(ctx, kind, serial, data)
			if !bytes.Equal(got, want) {
				t.Fatalf("%v cmac: hsm %x software %x", kind, got, want)
			}
		}
	}
	if _, err := is.CardCMAC(ctx, scp.KeyDEK, serial, nil); !errors.Is(err, ErrBadInput) {
		t.Fatalf("cmac under K-DEK: %v", err)
	}
	if _, err := is.CardCMAC(ctx, scp.KeyENC, serial[:8], nil); !errors.Is(err, ErrBadInput) {
		t.Fatalf("short serial: %v", err)
	}
	if after := sessionObjects(t, h); after != before {
		t.Fatalf("derived keys left behind: %d objects before, %d after", before, after)
	}
}

// The manufacturing export gives the same card keys as the software reference.
func TestExportCardKeysMatchesSoftwareIssuer(t *testing.T) {
	is, _, soft := testIssuer(t)
	ctx := context.Background()
	serial := bytes.Repeat([]byte{0xA5}, 16)
	ck, err := soft.CardKeys(serial)
	if err != nil {
		t.Fatal(err)
	}
	exported, err := is.ExportCardKeys(ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exported.ENC, ck.ENC) || !bytes.Equal(exported.MAC, ck.MAC) || !bytes.Equal(exported.DEK, ck.DEK) {
		t.Fatal("exported card keys differ from the software reference")
	}
}

func TestWrapForCardMatchesSoftwareIssuer(t *testing.T) {
	is, h, soft := testIssuer(t)
	ctx := context.Background()
	before := sessionObjects(t, h)
	user, err := h.GenerateRSA(ctx, "user", hsm.KeyOptions{Extractable: hsm.ExtractableForCard})
	if err != nil {
		t.Fatal(err)
	}
	p := scp.SessionParams{Serial: []byte("CARD-SERIAL-0001"), HostChallenge: []byte("hostchal"), CardChallenge: []byte("cardchal")}
	wrapped, err := is.WrapForCard(ctx, p.Serial, p.HostChallenge, p.CardChallenge, user)
	if err != nil {
		t.Fatal(err)
	}
	// The card's view: unwrap with its own K-DEK-derived S-DEK.
	ck, _ := soft.CardKeys(p.Serial)
	sdek, _ := scp.SessionDEK(ck.DEK, p.HostChallenge, p.CardChallenge)
	plain, err := scp.UnwrapKWP(sdek, wrapped)
	if err != nil {
		t.Fatalf("card-side unwrap: %v", err)
	}
	der, err := hsm.TrimPKCS8Padding(plain)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil || !k.(*rsa.PrivateKey).PublicKey.Equal(user.PublicKey) {
		t.Fatalf("card got another key: %v", err)
	}
	// Byte-identical to the software reference wrapping the same PKCS#8.
	want, err := soft.WrapForSession(p, der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wrapped, want) {
		t.Fatalf("hsm blob differs from scp.SoftwareIssuer:\nhsm %x\nsw  %x", wrapped, want)
	}
	// TS Art. 5(iv): the CA's copy is gone, and so are K-DEK and S-DEK.
	if _, err := h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindRSAPrivate, Label: "user"}); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("user key still in the hsm: %v", err)
	}
	if after := sessionObjects(t, h); after != before {
		t.Fatalf("objects left behind: %d before, %d after", before, after)
	}
}

func TestWrapForCardDestroysKeyOnFailure(t *testing.T) {
	is, h, _ := testIssuer(t)
	ctx := context.Background()
	// A non-extractable key cannot be wrapped; it must still be destroyed.
	user, err := h.GenerateRSA(ctx, "user", hsm.KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = is.WrapForCard(ctx, []byte("CARD-SERIAL-0001"), []byte("hostchal"), []byte("cardchal"), user)
	if !errors.Is(err, hsm.ErrKeyUnextractable) {
		t.Fatalf("wrap: %v, want ErrKeyUnextractable", err)
	}
	if _, err := h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindRSAPrivate, Label: "user"}); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("user key kept after a failed wrap: %v", err)
	}
	user2, _ := h.GenerateRSA(ctx, "user2", hsm.KeyOptions{Extractable: hsm.ExtractableForCard})
	if _, err := is.WrapForCard(ctx, []byte("short"), []byte("hostchal"), []byte("cardchal"), user2); !errors.Is(err, ErrBadInput) {
		t.Fatalf("short serial: %v", err)
	}
	if _, err := h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindRSAPrivate, Label: "user2"}); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("user key kept after bad input: %v", err)
	}
}

func TestConcurrentCardCMAC(t *testing.T) {
	is, _, soft := testIssuer(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			serial := bytes.Repeat([]byte{byte(g)}, 16)
			for i := range 20 {
				got, err := is.CardCMAC(ctx, scp.KeyMAC, serial, []byte{byte(i)})
				want, _ := soft.CardCMAC(ctx, scp.KeyMAC, serial, []byte{byte(i)})
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("goroutine %d: %x %v", g, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMissingMasterKeys(t *testing.T) {
	h := openToken(t)
	if _, err := New(context.Background(), h); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("New without master keys: %v", err)
	}
}
