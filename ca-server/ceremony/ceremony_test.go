package ceremony

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/cardkeys"
	"madoguchi/ca-server/hsm"
	"madoguchi/cardio/scp"
	"madoguchi/cardio/vcard"
)

func TestMain(m *testing.M) {
	// Cheaper argon2id for tests (the floor the code accepts); production
	// cost is covered by TestSealDefaultCost.
	sealCost.time, sealCost.memKiB, sealCost.threads = 1, 8*1024, 1
	os.Exit(m.Run())
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func common(t *testing.T, dir string, clk *fakeClock) Common {
	t.Setenv("SOFTHSM2_CONF", "") // restored after the test; hsm sets it
	return Common{DataDir: dir, Now: clk.now, HSM: hsm.Config{PoolSize: 1}}
}

// Each custodian's own passphrase (CheckPassphrase).
const (
	alicePass = "alice: heron over the river"
	bobPass   = "bob keeps seven blue lanterns"
	carolPass = "carol: tide, salt & cedar"
	davePass  = "dave counts slow winter stars"
	erinPass  = "erin's copper kettle sings"
)

var custodians = []Custodian{{Name: "alice", Passphrase: alicePass}, {Name: "bob", Passphrase: bobPass}, {Name: "carol", Passphrase: carolPass}}

// outs gives each custodian their own destination under root (one
// directory each, as checkShareOuts wants).
func outs(t *testing.T, root string, cs []Custodian) []Custodian {
	t.Helper()
	out := make([]Custodian, len(cs))
	for i, c := range cs {
		dir := filepath.Join(root, c.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		c.ShareOut = filepath.Join(dir, c.Name+".share")
		out[i] = c
	}
	return out
}

func sharePath(t *testing.T, dir, purpose, who string) string {
	t.Helper()
	if p := filepath.Join(dir, who, who+".share"); fileExists(p) {
		return p
	}
	m, _ := filepath.Glob(filepath.Join(dir, purpose+"-*-"+who+".share"))
	if len(m) != 1 {
		t.Fatalf("%s share of %s: %v", purpose, who, m)
	}
	return m[0]
}

func TestCeremonyLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
	dataDir, sharesDir := t.TempDir(), t.TempDir()
	st, err := Init(ctx, InitOptions{Common: common(t, dataDir, clk), Custodians: outs(t, sharesDir, custodians), Threshold: 2,
		Names: CANames{Signature: "Test Sig CA"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Keys) != 8 { // 2 CA, 3 card master, person hash, audit checkpoint, TLS CA
		t.Fatalf("keys: %+v", st.Keys)
	}
	if _, err := Init(ctx, InitOptions{Common: common(t, dataDir, clk), Custodians: outs(t, t.TempDir(), custodians), Threshold: 2}); !errors.Is(err, ErrAlreadyInitialised) {
		t.Fatalf("second init: %v", err)
	}
	sig, _ := st.Key(RoleSignatureCA)
	cert, err := ReadCertificate(sig)
	if err != nil || cert.Subject.CommonName != "Test Sig CA" || !cert.IsCA {
		t.Fatalf("certificate: %v %+v", err, cert)
	}
	if y := cert.NotAfter.Year() - cert.NotBefore.Year(); y != 10 {
		t.Fatalf("certificate valid %d years", y)
	}
	alice := PresentedShare{Path: sharePath(t, sharesDir, PurposeToken, "alice"), Passphrase: alicePass}
	bob := PresentedShare{Path: sharePath(t, sharesDir, PurposeToken, "bob"), Passphrase: bobPass}
	carol := PresentedShare{Path: sharePath(t, sharesDir, PurposeToken, "carol"), Passphrase: carolPass}

	// Activation needs M custodians with the right passphrases.
	if _, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{alice}}); !errors.Is(err, ErrNotEnoughShares) {
		t.Fatalf("one share: %v", err)
	}
	if _, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{alice, {Path: bob.Path, Passphrase: "wrong"}}}); !errors.Is(err, ErrBadShare) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{alice, alice}}); !errors.Is(err, ErrBadShare) {
		t.Fatalf("same share twice: %v", err)
	}
	a, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{bob, carol}})
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := a.HSM.Signer(a.SignatureCA)
	d := sha256.Sum256([]byte("tbs"))
	sigBytes, err := signer.Sign(nil, d[:], crypto.SHA256)
	if err != nil || rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, d[:], sigBytes) != nil {
		t.Fatalf("activated signer: %v", err)
	}
	// The CA key may not be wrapped under an ordinary key, even by the activated server.
	plainKEK, _ := a.HSM.GenerateAES(ctx, "k", hsm.KeyOptions{Usage: hsm.UseWrap})
	if _, err := a.HSM.WrapKWP(ctx, plainKEK, a.SignatureCA.Private); !errors.Is(err, hsm.ErrKeyNotWrappable) {
		t.Fatalf("ca key wrapped by a user: %v", err)
	}
	// Nor may a card master key: backup-wrappable means under the trusted KEK only.
	for _, label := range []string{cardkeys.LabelMasterENC, cardkeys.LabelMasterMAC, cardkeys.LabelMasterDEK} {
		mk, err := a.HSM.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindAES, Label: label})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.HSM.WrapKWP(ctx, plainKEK, mk); !errors.Is(err, hsm.ErrKeyNotWrappable) {
			t.Fatalf("%s wrapped by a user: %v", label, err)
		}
	}
	if err := a.HSM.Close(); err != nil {
		t.Fatal(err)
	}

	// Card batch: keys consistent with the host end over the HSM.
	batch := filepath.Join(t.TempDir(), "batch.txt")
	if err := CardBatch(ctx, CardBatchOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{alice, carol}, Count: 5, Out: batch}); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, batch)
	if len(lines) != 5 {
		t.Fatalf("batch lines: %d", len(lines))
	}
	// The card side reads it (vcard stock).
	bf, _ := os.Open(batch)
	entries, err := vcard.ParseKeyBatch(bf)
	bf.Close()
	if err != nil || len(entries) != 5 {
		t.Fatalf("vcard.ParseKeyBatch: %d entries, %v", len(entries), err)
	}
	a, err = Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{alice, carol}})
	if err != nil {
		t.Fatal(err)
	}
	is, err := a.CardKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Fatalf("batch line %q", l)
		}
		serial, _ := hex.DecodeString(f[0])
		kmac, _ := hex.DecodeString(f[2])
		got, err := is.CardCMAC(ctx, scp.KeyMAC, serial, []byte("x"))
		want, _ := scp.CMAC(kmac, []byte("x"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("exported K-MAC disagrees with the hsm: %v", err)
		}
	}
	// What the original token computes for the cards of this batch, to
	// compare with the restored token below.
	userKey, transport := testUserKey(t)
	origCard := cardKeyOutputs(t, ctx, a.HSM, is, lines, userKey, transport)
	a.HSM.Close()
	if err := CardBatch(ctx, CardBatchOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{alice, carol}, Count: 1, Out: batch}); err == nil {
		t.Fatal("card batch overwrote an existing file")
	}

	// Backup 2-of-2 under a new KEK, restore on a new token.
	kekDir, backupDir := t.TempDir(), t.TempDir()
	kekCustodians := []Custodian{{Name: "dave", Passphrase: davePass}, {Name: "erin", Passphrase: erinPass}}
	backupPath, err := Backup(ctx, BackupOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{alice, bob},
		Custodians: outs(t, kekDir, kekCustodians), Threshold: 2, OutDir: backupDir})
	if err != nil {
		t.Fatal(err)
	}
	dave := PresentedShare{Path: sharePath(t, kekDir, PurposeBackupKEK, "dave"), Passphrase: davePass}
	erin := PresentedShare{Path: sharePath(t, kekDir, PurposeBackupKEK, "erin"), Passphrase: erinPass}

	clk.t = clk.t.AddDate(1, 0, 0)
	newDir, newShares := t.TempDir(), t.TempDir()
	if _, err := Restore(ctx, RestoreOptions{Common: common(t, newDir, clk), BackupFile: backupPath, KEKShares: []PresentedShare{dave, alice},
		Custodians: outs(t, newShares, custodians), Threshold: 2}); !errors.Is(err, ErrBadShare) {
		t.Fatalf("restore with a token share: %v", err)
	}
	rst, err := Restore(ctx, RestoreOptions{Common: common(t, newDir, clk), BackupFile: backupPath, KEKShares: []PresentedShare{dave, erin},
		Custodians: outs(t, newShares, custodians), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	rsig, _ := rst.Key(RoleSignatureCA)
	if !rsig.Generated.Equal(sig.Generated) || rsig.Restored == nil {
		t.Fatalf("restored generation date %v, want %v", rsig.Generated, sig.Generated)
	}
	ra, err := Activate(ctx, ActivateOptions{Common: common(t, newDir, clk), Shares: []PresentedShare{
		{Path: sharePath(t, newShares, PurposeToken, "alice"), Passphrase: alicePass}, {Path: sharePath(t, newShares, PurposeToken, "carol"), Passphrase: carolPass}}})
	if err != nil {
		t.Fatal(err)
	}
	if !ra.SignatureCA.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("restored signature ca key differs")
	}
	ph, err := ra.HSM.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindHMAC, Label: LabelPersonHash})
	if err != nil {
		t.Fatal(err)
	}
	restoredHash, _ := ra.HSM.HMACSHA256(ctx, ph, []byte("resident-0001"))
	// The card master keys came back: the batch made before the backup
	// still works with the restored CA, byte for byte.
	ris, err := ra.CardKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restoredCard := cardKeyOutputs(t, ctx, ra.HSM, ris, lines, userKey, transport)
	ra.HSM.Close()
	if len(restoredCard) != len(origCard) || len(origCard) != 3*len(lines) {
		t.Fatalf("card outputs: %d restored, %d original", len(restoredCard), len(origCard))
	}
	for k, v := range origCard {
		if !bytes.Equal(restoredCard[k], v) {
			t.Fatalf("%s from the restored token differs from the original", k)
		}
	}
	// And the card end of the batch opens the restored token's wrap.
	for _, l := range lines {
		f := strings.Fields(l)
		kdek, _ := hex.DecodeString(f[3])
		sdek, err := scp.SessionDEK(kdek, hostChallenge, cardChallenge)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := scp.UnwrapKWP(sdek, restoredCard["wrap "+f[0]])
		if err != nil {
			t.Fatalf("card K-DEK cannot unwrap the restored token's wrap: %v", err)
		}
		der, err := hsm.TrimPKCS8Padding(plain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil || !userKey.Equal(got) {
			t.Fatalf("unwrapped user key differs: %v", err)
		}
	}
	// The person hash is the same as on the original token.
	a, err = Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{alice, bob}})
	if err != nil {
		t.Fatal(err)
	}
	oph, _ := a.HSM.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindHMAC, Label: LabelPersonHash})
	origHash, _ := a.HSM.HMACSHA256(ctx, oph, []byte("resident-0001"))
	a.HSM.Close()
	if !bytes.Equal(origHash, restoredHash) {
		t.Fatal("restored person-hash key gives another hash")
	}

	// Destroy: all token keys and the backup file go.
	if err := Destroy(ctx, DestroyOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{bob}}); !errors.Is(err, ErrNotEnoughShares) {
		t.Fatalf("destroy with one custodian: %v", err)
	}
	if err := Destroy(ctx, DestroyOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{bob, carol}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(backupPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backup file survived destroy: %v", err)
	}
	if _, err := LoadState(dataDir); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("state after destroy: %v", err)
	}
	if _, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{bob, carol}}); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("activate after destroy: %v", err)
	}
	// The token holds no key object any more.
	stDestroyed, _ := LoadState(dataDir)
	t.Setenv("SOFTHSM2_CONF", "")
	secret, _, _, err := combineShares(PurposeToken, []PresentedShare{bob, carol})
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := parseTokenSecret(secret)
	h, err := hsm.OpenWithPIN(tokenConfig(Common{DataDir: dataDir}, stDestroyed), ts.user)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, k := range []hsm.KeyKind{hsm.KindRSAPrivate, hsm.KindRSAPublic, hsm.KindAES, hsm.KindHMAC} {
		if keys, err := h.FindKeys(ctx, hsm.KeyQuery{Kind: k}); err != nil || len(keys) != 0 {
			t.Fatalf("%v objects left: %v %v", k, keys, err)
		}
	}

	// Every step is on the record, chained, with who was present.
	events, err := NewFileRecord(RecordPath(dataDir)).Events()
	if err != nil {
		t.Fatal(err)
	}
	var sawDestroy bool
	for _, e := range events {
		if e.Command == "destroy" && e.Step == "destroy signature-ca key" {
			sawDestroy = strings.Join(e.Who, ",") == "bob,carol" && e.Result == "ok"
		}
	}
	if !sawDestroy || len(events) < 20 {
		t.Fatalf("record: %d events, destroy step seen with custodians: %v", len(events), sawDestroy)
	}
}

var (
	hostChallenge = bytes.Repeat([]byte{0x11}, scp.ChallengeLen)
	cardChallenge = bytes.Repeat([]byte{0x22}, scp.ChallengeLen)
)

// testUserKey generates, at test time, a user key and a transport key with
// which the same user key can be put into two tokens.
func testUserKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	transport := make([]byte, 32)
	rand.Read(transport)
	return k, transport
}

// cardKeyOutputs returns, per batch card, CardCMAC under K-ENC and K-MAC and
// WrapForCard of the same user key (unwrapped into the token as a session
// key for the purpose): all deterministic, so two tokens with the same
// master keys give the same bytes.
func cardKeyOutputs(t *testing.T, ctx context.Context, h *hsm.HSM, is *cardkeys.Issuer, lines []string, user *rsa.PrivateKey, transport []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	der, err := x509.MarshalPKCS8PrivateKey(user)
	if err != nil {
		t.Fatal(err)
	}
	wrappedUser, err := scp.WrapKWP(transport, der)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := h.ImportAES(ctx, "TEST-TRANSPORT", transport, hsm.KeyOptions{Usage: hsm.UseUnwrap})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Destroy(ctx, tk)
	for _, l := range lines {
		f := strings.Fields(l)
		serial, _ := hex.DecodeString(f[0])
		for _, kind := range []scp.KeyKind{scp.KeyENC, scp.KeyMAC} {
			m, err := is.CardCMAC(ctx, kind, serial, []byte("card challenge data"))
			if err != nil {
				t.Fatal(err)
			}
			out[kind.String()+" "+f[0]] = m
		}
		kp, err := h.UnwrapRSAKWP(ctx, tk, wrappedUser, "TEST-USER", hsm.KeyOptions{Extractable: hsm.ExtractableForCard})
		if err != nil {
			t.Fatal(err)
		}
		w, err := is.WrapForCard(ctx, serial, hostChallenge, cardChallenge, kp)
		if err != nil {
			t.Fatal(err)
		}
		out["wrap "+f[0]] = w
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestUsablePeriod(t *testing.T) {
	gen := time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC)
	k := KeyRecord{Role: RoleSignatureCA, Label: "x", Generated: gen}
	if err := k.CheckUsable(gen.AddDate(4, 0, 0).Add(-time.Second)); err != nil {
		t.Fatalf("last second of year 4: %v", err)
	}
	if err := k.CheckUsable(gen.AddDate(4, 0, 0)); !errors.Is(err, ErrCAKeyExpired) {
		t.Fatalf("after 4 years: %v", err)
	}
	if from, until := k.UsablePeriod(); !from.Equal(gen) || !until.Equal(time.Date(2030, 2, 28, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("period %v..%v", from, until)
	}
}

func TestActivateRefusesExpiredKey(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dataDir, sharesDir := t.TempDir(), t.TempDir()
	if _, err := Init(ctx, InitOptions{Common: common(t, dataDir, clk), Custodians: []Custodian{{Name: "dev"}}, Threshold: 1, SharesDir: sharesDir, Dev: true}); err != nil {
		t.Fatal(err)
	}
	share := PresentedShare{Path: sharePath(t, sharesDir, PurposeToken, "dev")}
	clk.t = clk.t.AddDate(4, 0, 1)
	if _, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{share}}); !errors.Is(err, ErrCAKeyExpired) {
		t.Fatalf("activate after 4 years: %v", err)
	}
}

func TestInitRefusals(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Now()}
	dir := t.TempDir()
	for name, o := range map[string]InitOptions{
		"1-of-1 without dev": {Custodians: []Custodian{{Name: "a"}}, Threshold: 1, SharesDir: t.TempDir()},
		"1-of-3 without dev": {Custodians: outs(t, t.TempDir(), custodians), Threshold: 1},
		"3-of-2":             {Custodians: outs(t, t.TempDir(), custodians[:2]), Threshold: 3},
		"duplicate names":    {Custodians: []Custodian{{Name: "a"}, {Name: "a"}}, Threshold: 2, SharesDir: t.TempDir()},
		"no shares dir":      {Custodians: custodians, Threshold: 2},
	} {
		o.Common = common(t, dir, clk)
		if _, err := Init(ctx, o); !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(hsm.SoftHSMDir(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused init created a token")
	}
}

func TestDevShareRefusedForProductionCA(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{time.Now()}
	dataDir, sharesDir := t.TempDir(), t.TempDir()
	if _, err := Init(ctx, InitOptions{Common: common(t, dataDir, clk), Custodians: outs(t, sharesDir, custodians[1:]), Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	// A forged 1-of-1 share file for the same ceremony cannot stand in for two custodians.
	sf, err := ReadShareFile(sharePath(t, sharesDir, PurposeToken, "carol"))
	if err != nil {
		t.Fatal(err)
	}
	sf.Threshold, sf.Total = 1, 1
	b, _ := jsonIndent(sf)
	forged := filepath.Join(t.TempDir(), "forged.share")
	os.WriteFile(forged, b, 0o600)
	if _, err := Activate(ctx, ActivateOptions{Common: common(t, dataDir, clk), Shares: []PresentedShare{{Path: forged}}}); !errors.Is(err, ErrBadShare) {
		t.Fatalf("forged share: %v", err)
	}
}

func TestRecordChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	r := NewFileRecord(path)
	ctx := context.Background()
	for i := range 3 {
		if err := r.Record(ctx, Event{Time: time.Unix(int64(i), 0), Command: "init", Step: "s", Who: []string{"a"}, Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := VerifyRecord(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	for name, tampered := range map[string]string{
		"altered":   strings.Replace(string(b), `"who":["a"]`, `"who":["b"]`, 1),
		"removed":   lines[0] + lines[2],
		"reordered": lines[1] + lines[0] + lines[2],
	} {
		os.WriteFile(path, []byte(tampered), 0o600)
		if err := VerifyRecord(path); !errors.Is(err, ErrRecordBroken) {
			t.Errorf("%s record: %v", name, err)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestShareSealing(t *testing.T) {
	secret := bytes.Repeat([]byte{0x42}, 32)
	// a dev-style set: carol's share unsealed
	custodians := []Custodian{custodians[0], custodians[1], {Name: "carol"}}
	if _, err := splitSecret(nil, PurposeToken, "c1", secret, custodians, 2); err == nil {
		t.Fatal("nil rand accepted")
	}
	shares, err := splitSecret(strings.NewReader(strings.Repeat("r", 4096)), PurposeToken, "c1", secret, custodians, 2)
	if err != nil {
		t.Fatal(err)
	}
	if shares[0].Share != nil || shares[0].Ciphertext == nil || shares[2].Share == nil {
		t.Fatal("sealing: sealed shares must hold only ciphertext, unsealed ones the share")
	}
	dir := t.TempDir()
	paths, err := writeShareFiles(dir, nil, shares)
	if err != nil {
		t.Fatal(err)
	}
	got, who, _, err := combineShares(PurposeToken, []PresentedShare{{paths[0], alicePass}, {Path: paths[2]}})
	if err != nil || !bytes.Equal(got, secret) || strings.Join(who, ",") != "alice,carol" {
		t.Fatalf("combine: %v %v", err, who)
	}
	// A relabelled sealed share fails to open (header is authenticated).
	sf, _ := ReadShareFile(paths[0])
	sf.Custodian = "mallory"
	b, _ := jsonIndent(sf)
	os.WriteFile(paths[0], b, 0o600)
	if _, _, _, err := combineShares(PurposeToken, []PresentedShare{{paths[0], alicePass}, {Path: paths[2]}}); !errors.Is(err, ErrBadShare) {
		t.Fatalf("relabelled share: %v", err)
	}
	if s := shares[1].String(); strings.Contains(s, bobPass) {
		t.Fatal("String leaks")
	}
}

func TestSealDefaultCost(t *testing.T) {
	saved := sealCost
	t.Cleanup(func() { sealCost = saved })
	sealCost = defaultSealCost
	shares, err := splitSecret(rand.Reader, PurposeBackupKEK, "c", bytes.Repeat([]byte{1}, 32), custodians[:2], 2)
	if err != nil {
		t.Fatal(err)
	}
	if p := shares[0].Sealed; p.MemKiB != 64*1024 || p.Time != 3 {
		t.Fatalf("default sealing cost %+v", p)
	}
	paths, err := writeShareFiles(t.TempDir(), nil, shares)
	if err != nil {
		t.Fatal(err)
	}
	got, _, _, err := combineShares(PurposeBackupKEK, []PresentedShare{{paths[0], alicePass}, {paths[1], bobPass}})
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{1}, 32)) {
		t.Fatalf("combine: %v", err)
	}
}
