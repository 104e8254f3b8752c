package vcard

import (
	"bytes"
	"crypto/rsa"
	"encoding/hex"
	"math/big"
	"path/filepath"
	"testing"
)

// selectMgmt selects the management application (perso.AID).
const selectMgmt = "00A404000AF04D41444F475543484900"

// TestJPKIRefusalsChangeNothing lists every refusal of the JPKI AP and of the management
// application's entry points and checks each answers its specific status word
// (docs/CARD-PROTOCOL.md §§2, 3, 4, 7) and leaves the card's persistent memory byte-for-byte
// as it was. Each case starts from a fresh power-on, runs its setup commands (not checked)
// and then the refused command.
func TestJPKIRefusalsChangeNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "card.json")
	c, _, _ := loadedCard(t, path)
	pinAPDU := func(ins, p1 string, pin string) string {
		return "00" + ins + p1 + "80" + hex.EncodeToString([]byte{byte(len(pin))}) + hex.EncodeToString([]byte(pin))
	}
	digest := bytes.Repeat([]byte{0xAB}, 51)
	sign := "802A0080" + hex.EncodeToString([]byte{byte(len(digest))}) + hex.EncodeToString(digest) + "00"
	tooLong := "802A0080" + "F6" + hex.EncodeToString(bytes.Repeat([]byte{1}, 246)) + "00"
	for _, tc := range []struct {
		name  string
		setup []string
		cmd   string
		sw    uint16
	}{
		{"lc longer than data", nil, "00A4040C0AD392F0", swWrongLength},
		{"unknown aid", nil, "00A4040C07A0000000030000", swFileNotFound},
		{"command before any select", nil, "00B0000004", swINSNotSupported},
		{"wrong cla", []string{selectJPKI}, "10B0000004", swCLANotSupported},
		{"unknown ins", []string{selectJPKI}, "00CA010000", swINSNotSupported},
		{"verify with cla 80", []string{selectJPKI, selectAuthPIN}, "8020008004" + hex.EncodeToString([]byte("1234")), swINSNotSupported},
		{"select ef wrong p1p2", []string{selectJPKI}, "00A40200020" + "00A", swWrongP1P2},
		{"select ef bad length", []string{selectJPKI}, "00A4020C03000A00", swWrongLength},
		{"select unknown ef", []string{selectJPKI}, "00A4020C02ABCD", swFileNotFound},
		{"read without ef", []string{selectJPKI}, "00B0000004", swNoCurrentEF},
		{"read with sfi", []string{selectJPKI, "00A4020C02000A"}, "00B0810004", swWrongP1P2},
		{"read outside ef", []string{selectJPKI, "00A4020C02000A"}, "00B07FFF00", swWrongOffset},
		{"read without le", []string{selectJPKI, "00A4020C02000A"}, "00B00000", swWrongLength},
		{"read key ef", []string{selectJPKI, "00A4020C020017"}, "00B0000000", swIncompatibleFile},
		{"read pin ef", []string{selectJPKI, selectSignPIN}, "00B0000000", swIncompatibleFile},
		{"read signature cert without pin", []string{selectJPKI, "00A4020C020001"}, "00B0000004", swSecurityNotSatisfied},
		{"read signature cert with user-auth pin", []string{selectJPKI, selectAuthPIN, pinAPDU("20", "00", "1234"), "00A4020C020001"}, "00B0000004", swSecurityNotSatisfied},
		{"verify wrong p1p2", []string{selectJPKI, selectAuthPIN}, "00200081", swWrongP1P2},
		{"verify without pin ef", []string{selectJPKI, "00A4020C02000A"}, pinAPDU("20", "00", "1234"), swNoCurrentEF},
		{"set pin wrong p1p2", []string{selectJPKI, selectAuthPIN}, pinAPDU("24", "00", "5678"), swWrongP1P2},
		{"set pin without pin ef", []string{selectJPKI, "00A4020C020017"}, pinAPDU("24", "01", "5678"), swNoCurrentEF},
		{"set pin twice", []string{selectJPKI, selectAuthPIN}, pinAPDU("24", "01", "5678"), swConditionsNotMet},
		{"set pin bad format", []string{selectJPKI, selectSignPIN}, pinAPDU("24", "01", "abc123"), swWrongData},
		{"sign wrong p1p2", []string{selectJPKI, "00A4020C020017"}, "802A9E9A" + sign[8:], swWrongP1P2},
		{"sign without key ef", []string{selectJPKI, "00A4020C02000A"}, sign, swReferenceNotFound},
		{"sign without pin", []string{selectJPKI, "00A4020C020017"}, sign, swSecurityNotSatisfied},
		{"sign with the other pin", []string{selectJPKI, selectAuthPIN, pinAPDU("20", "00", "1234"), "00A4020C02001A"}, sign, swSecurityNotSatisfied},
		{"sign digestinfo too long", []string{selectJPKI, selectAuthPIN, pinAPDU("20", "00", "1234"), "00A4020C020017"}, tooLong, swWrongLength},
		{"pin lost on reselect of another app", []string{selectJPKI, selectAuthPIN, pinAPDU("20", "00", "1234"), selectMgmt, selectJPKI, "00A4020C020017"}, sign, swSecurityNotSatisfied},
		{"management: unknown kvn", []string{selectMgmt}, "8050FF0008" + "0102030405060708" + "00", swReferenceNotFound},
		{"management: plain write", []string{selectMgmt}, "80E2000A04" + "30820000" + "00", swSecurityNotSatisfied},
		{"management: protected command without session", []string{selectMgmt}, "84E2000A0C" + "000102030405060708090A0B" + "00", swConditionsNotMet},
		{"management: external authenticate without initialize update", []string{selectMgmt}, "8482330010" + "000102030405060708090A0B0C0D0E0F", swConditionsNotMet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.PowerOff()
			tr := Insert(c)
			for _, s := range tc.setup {
				tx(t, tr, s)
			}
			before, err := c.m.marshal()
			if err != nil {
				t.Fatal(err)
			}
			wantSW(t, tx(t, tr, tc.cmd), tc.sw)
			after, err := c.m.marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("card memory changed by a refused command")
			}
			if c.mgmt.Staged() != 0 {
				t.Fatal("changes staged after a refusal")
			}
		})
	}
}

// TestEmptyCertificateEFNotFound: a certificate EF that WRITE FILE never filled does not
// exist for the read side: selecting it answers 6A82 (CARD-PROTOCOL §2), also for the
// PIN-guarded signature certificate; key and PIN EFs always exist.
func TestEmptyCertificateEFNotFound(t *testing.T) {
	c, err := New(Config{Serial: bytes.Repeat([]byte{3}, 16), Keys: stockKeys(t, bytes.Repeat([]byte{3}, 16))})
	if err != nil {
		t.Fatal(err)
	}
	tr := Insert(c)
	wantSW(t, tx(t, tr, selectJPKI), swOK)
	for _, ef := range []string{"000A", "0001", "000B", "0002"} {
		wantSW(t, tx(t, tr, "00A4020C02"+ef), swFileNotFound)
		wantSW(t, tx(t, tr, "00B0000004"), swNoCurrentEF) // the failed select left no EF
	}
	for _, ef := range []string{"0017", "001A", "0018", "001B"} {
		wantSW(t, tx(t, tr, "00A4020C02"+ef), swOK)
	}
	authKey, _ := keys(t)
	if err := c.InstallCertificate(EFUserAuthCert, selfSigned(t, authKey, "only")); err != nil {
		t.Fatal(err)
	}
	wantSW(t, tx(t, tr, "00A4020C02000A"), swOK)
	wantSW(t, tx(t, tr, "00A4020C02000B"), swFileNotFound)
}

// TestForeignCard: a card of another kind has its own ATR and none of our applications.
func TestForeignCard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "foreign.json")
	c, err := New(Config{Serial: bytes.Repeat([]byte{4}, 16), Keys: stockKeys(t, bytes.Repeat([]byte{4}, 16)), StatePath: path, Foreign: true})
	if err != nil {
		t.Fatal(err)
	}
	if atr := c.PowerOn(); !bytes.Equal(atr, ForeignATR) || !bytes.Equal(c.ATR(), ForeignATR) {
		t.Fatalf("ATR % X", atr)
	}
	tr := Insert(c)
	wantSW(t, tx(t, tr, selectJPKI), swFileNotFound)
	wantSW(t, tx(t, tr, selectMgmt), swFileNotFound)
	wantSW(t, tx(t, tr, "8050000008010203040506070800"), swINSNotSupported)
	reloaded, err := Open(path, nil)
	if err != nil || !bytes.Equal(reloaded.ATR(), ForeignATR) {
		t.Fatalf("reloaded foreign card: %v", err)
	}
	// The JPKI card's ATR is what OpenSC's jpki driver matches; the foreign one must differ.
	if bytes.Equal(ATR, ForeignATR) {
		t.Fatal("foreign ATR equals the JPKI ATR")
	}
}

// TestNoCommandReadsAPrivateKey: with both PINs verified and each key EF selected in turn,
// no command of any class and instruction, to the JPKI AP or the management application,
// answers with any part of a private key (TS Art. 6(iv): the private key can never be read
// out of the card), and none changes the card's memory. The probe reaches the card: COMPUTE
// DIGITAL SIGNATURE answers signatures, which must not contain key material either.
func TestNoCommandReadsAPrivateKey(t *testing.T) {
	c, _, _ := loadedCard(t, "")
	authKey, signKey := keys(t)
	var secrets [][]byte
	for _, k := range []*rsa.PrivateKey{authKey, signKey} {
		for _, v := range []*big.Int{k.D, k.Primes[0], k.Primes[1], k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv} {
			secrets = append(secrets, v.Bytes()[:16])
		}
	}
	before, err := c.m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	tr := Insert(c)
	answered := 0
	data := bytes.Repeat([]byte{0x5A}, 51)
	for _, app := range []string{selectJPKI, selectMgmt} {
		for _, ef := range []string{"0017", "001A"} {
			for _, cla := range []byte{0x00, 0x80, 0x84, 0x0C} {
				c.PowerOff()
				c.PowerOn()
				tx(t, tr, selectJPKI)
				tx(t, tr, selectAuthPIN)
				wantSW(t, tx(t, tr, "0020008004"+hex.EncodeToString([]byte("1234"))), swOK)
				tx(t, tr, selectSignPIN)
				wantSW(t, tx(t, tr, "0020008006"+hex.EncodeToString([]byte("ABC123"))), swOK)
				tx(t, tr, app)
				tx(t, tr, "00A4020C02"+ef)
				for ins := 0; ins < 256; ins++ {
					for _, cmd := range [][]byte{
						{cla, byte(ins), 0x00, 0x00, 0x00},
						{cla, byte(ins), mustHex(ef)[0], mustHex(ef)[1], 0x00},
						{cla, byte(ins), 0x00, 0x00, 0x00, 0x00, 0x00},
						append(append([]byte{cla, byte(ins), 0x00, 0x80, byte(len(data))}, data...), 0x00),
					} {
						rsp := tx(t, tr, hex.EncodeToString(cmd))
						if len(rsp) > 2 {
							answered++
						}
						for _, s := range secrets {
							if bytes.Contains(rsp, s) {
								t.Fatalf("% X answered private key material", cmd)
							}
						}
					}
				}
			}
		}
	}
	after, err := c.m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("card memory changed")
	}
	if answered == 0 {
		t.Fatal("no command answered any data: the probe did not reach the card")
	}
}
