package perso_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"testing"
	"time"

	"madoguchi/cardio/apdu"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
)

// memStore is an in-memory CardStore: the card content the applet may change only by Commit.
type memStore struct {
	serial  []byte
	keys    scp.CardKeys
	files   map[uint16][]byte
	privs   map[uint16]*rsa.PrivateKey
	pinSet  map[uint16]bool
	commits int
	failing bool // Commit fails (and changes nothing)
}

var _ perso.CardStore = (*memStore)(nil)

func (m *memStore) Serial() []byte           { return m.serial }
func (m *memStore) StaticKeys() scp.CardKeys { return m.keys }

func (m *memStore) Commit(changes []perso.Change) error {
	if m.failing {
		return errors.New("memstore: injected commit failure")
	}
	files := map[uint16][]byte{}
	for k, v := range m.files {
		files[k] = v
	}
	privs := map[uint16]*rsa.PrivateKey{}
	for k, v := range m.privs {
		privs[k] = v
	}
	pins := map[uint16]bool{}
	for k, v := range m.pinSet {
		pins[k] = v
	}
	for _, c := range changes {
		switch c.Kind {
		case perso.ChangeWriteFile:
			files[c.FID] = bytes.Clone(c.Data)
		case perso.ChangePutKey:
			privs[c.FID] = c.Key
		case perso.ChangeResetPIN:
			pins[c.FID] = false
		case perso.ChangeDestroyKey:
			delete(privs, c.FID)
		default:
			return fmt.Errorf("memstore: unknown change %v", c.Kind)
		}
	}
	m.files, m.privs, m.pinSet = files, privs, pins
	m.commits++
	return nil
}

// snapshot is a digest of the whole card content, to assert "nothing changed".
func (m *memStore) snapshot() string {
	h := sha256.New()
	var fids []int
	for f := range m.files {
		fids = append(fids, int(f))
	}
	sort.Ints(fids)
	for _, f := range fids {
		fmt.Fprintf(h, "f%04x:%x;", f, m.files[uint16(f)])
	}
	for _, f := range []uint16{perso.FIDUserAuthKey, perso.FIDSignatureKey} {
		if k, ok := m.privs[f]; ok {
			fmt.Fprintf(h, "k%04x:%x;", f, k.N.Bytes())
		}
	}
	for _, f := range []uint16{perso.FIDUserAuthPIN, perso.FIDSignaturePIN} {
		fmt.Fprintf(h, "p%04x:%v;", f, m.pinSet[f])
	}
	return fmt.Sprintf("%x/%d", h.Sum(nil), m.commits)
}

// fixture is one issuer, its RSA keys and certificates, made once per test binary.
type fixture struct {
	iss              *scp.SoftwareIssuer
	authKey, signKey *rsa.PrivateKey
	certs            map[uint16][]byte
}

var (
	fixOnce sync.Once
	fix     fixture
)

func getFixture(t testing.TB) fixture {
	t.Helper()
	fixOnce.Do(func() {
		rb := func(n int) []byte { b := make([]byte, n); _, _ = rand.Read(b); return b }
		fix.iss = &scp.SoftwareIssuer{MasterENC: rb(16), MasterMAC: rb(16), MasterDEK: rb(16)}
		var err error
		if fix.authKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if fix.signKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		fix.certs = map[uint16][]byte{}
		for i, f := range []uint16{perso.FIDUserAuthCert, perso.FIDSignatureCert, perso.FIDUserAuthCACert, perso.FIDSignatureCACert} {
			key := fix.authKey
			if i%2 == 1 {
				key = fix.signKey
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(int64(i + 1)),
				Subject:      pkix.Name{CommonName: fmt.Sprintf("test %04X", f)},
				NotBefore:    time.Unix(1700000000, 0), NotAfter: time.Unix(1900000000, 0),
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				panic(err)
			}
			fix.certs[f] = der
		}
	})
	return fix
}

func newCard(t testing.TB, iss *scp.SoftwareIssuer) (*memStore, *perso.Applet) {
	t.Helper()
	serial := make([]byte, 16)
	_, _ = rand.Read(serial)
	keys, err := iss.CardKeys(serial)
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{serial: serial, keys: keys, files: map[uint16][]byte{}, privs: map[uint16]*rsa.PrivateKey{},
		pinSet: map[uint16]bool{perso.FIDUserAuthPIN: true, perso.FIDSignaturePIN: true}}
	a, err := perso.NewApplet(st, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return st, a
}

// openSession does what terminal and CA do before a script: SELECT, INITIALIZE UPDATE, host
// session from the relayed answer.
func openSession(t testing.TB, iss *scp.SoftwareIssuer, a *perso.Applet) *scp.HostSession {
	t.Helper()
	if r := a.Process(perso.SelectCommand()); !bytes.Equal(r, []byte{0x90, 0x00}) {
		t.Fatalf("select: %x", r)
	}
	hc, err := scp.NewHostChallenge(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iu, err := scp.InitializeUpdateCommand(hc)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := scp.NewHostSession(context.Background(), iss, hc, a.Process(iu))
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func fullItems(f fixture) []perso.Item {
	return []perso.Item{
		perso.ImportKey{FID: perso.FIDUserAuthKey, Key: perso.SoftwareKey{Issuer: f.iss, Key: f.authKey}},
		perso.ImportKey{FID: perso.FIDSignatureKey, Key: perso.SoftwareKey{Issuer: f.iss, Key: f.signKey}},
		perso.WriteFile{FID: perso.FIDUserAuthCert, Content: f.certs[perso.FIDUserAuthCert]},
		perso.WriteFile{FID: perso.FIDSignatureCert, Content: f.certs[perso.FIDSignatureCert]},
		perso.WriteFile{FID: perso.FIDUserAuthCACert, Content: f.certs[perso.FIDUserAuthCACert]},
		perso.WriteFile{FID: perso.FIDSignatureCACert, Content: f.certs[perso.FIDSignatureCACert]},
	}
}

func build(t testing.TB, sess *scp.HostSession, items ...perso.Item) *perso.Script {
	t.Helper()
	s, err := perso.BuildIssuanceScript(context.Background(), sess, items...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// relay sends every APDU like the terminal does, stopping after the first non-9000 answer.
func relay(a *perso.Applet, apdus [][]byte) [][]byte {
	var out [][]byte
	for _, c := range apdus {
		r := a.Process(c)
		out = append(out, r)
		if len(r) < 2 || r[len(r)-2] != 0x90 || r[len(r)-1] != 0x00 {
			break
		}
	}
	return out
}

func sw(r []byte) uint16 { return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1]) }

func TestIssuanceRoundTrip(t *testing.T) {
	f := getFixture(t)
	st, a := newCard(t, f.iss)
	sess := openSession(t, f.iss, a)
	script := build(t, sess, fullItems(f)...)
	if len(script.Steps) != 8 {
		t.Fatalf("%d steps, want 8", len(script.Steps))
	}
	for _, c := range script.APDUs() {
		der, _ := x509.MarshalPKCS8PrivateKey(f.authKey)
		if bytes.Contains(c, der[40:80]) || bytes.Contains(c, f.certs[perso.FIDUserAuthCert][100:140]) {
			t.Fatal("key or certificate travels in the clear")
		}
	}
	resps := relay(a, script.APDUs())
	if len(resps) != len(script.Steps) {
		t.Fatalf("card stopped at step %d with %04X", len(resps)-1, sw(resps[len(resps)-1]))
	}
	// The CA verifies at confirm, in another request: rebuild the session from stored data.
	stored := script.WithoutAPDUs()
	again, err := scp.ResumeHostSession(context.Background(), f.iss, stored.Session)
	if err != nil {
		t.Fatal(err)
	}
	att, err := perso.VerifyResponses(again, stored, resps)
	if err != nil {
		t.Fatal(err)
	}
	if att.Count != 6 || !bytes.Equal(att.Serial, st.serial) {
		t.Fatalf("attestation %+v", att)
	}
	if st.commits != 1 {
		t.Fatalf("%d commits", st.commits)
	}
	for fid, der := range f.certs {
		if !bytes.Equal(st.files[fid], der) {
			t.Errorf("ef %04X not written", fid)
		}
	}
	if !st.privs[perso.FIDUserAuthKey].Equal(f.authKey) || !st.privs[perso.FIDSignatureKey].Equal(f.signKey) {
		t.Error("keys not imported")
	}
	// The session ended with FINALIZE: replaying it (or anything) is refused.
	before := st.snapshot()
	if r := a.Process(script.APDUs()[1]); sw(r) == apdu.SWOK {
		t.Fatal("command accepted after finalize")
	}
	if st.snapshot() != before {
		t.Fatal("card changed after finalize")
	}
}

func TestResetPINAndDestroyKey(t *testing.T) {
	f := getFixture(t)
	st, a := newCard(t, f.iss)
	relay(a, build(t, openSession(t, f.iss, a), fullItems(f)...).APDUs())
	sess := openSession(t, f.iss, a)
	script := build(t, sess, perso.ResetPIN{FID: perso.FIDSignaturePIN}, perso.DestroyKey{FID: perso.FIDSignatureKey})
	resps := relay(a, script.APDUs())
	if _, err := perso.VerifyResponses(sess, script, resps); err != nil {
		t.Fatal(err)
	}
	if st.pinSet[perso.FIDSignaturePIN] || !st.pinSet[perso.FIDUserAuthPIN] {
		t.Fatalf("pins %v", st.pinSet)
	}
	if _, ok := st.privs[perso.FIDSignatureKey]; ok {
		t.Fatal("signature key not destroyed")
	}
	if _, ok := st.privs[perso.FIDUserAuthKey]; !ok {
		t.Fatal("user-auth key destroyed too")
	}
}

// refusal runs attack against a personalised-then-fresh-session card and asserts that the
// card refused and that nothing changed, not even after the rest of the script is sent.
func refusal(t *testing.T, attack func(t *testing.T, f fixture, a *perso.Applet, script *perso.Script) [][]byte) {
	f := getFixture(t)
	st, a := newCard(t, f.iss)
	sess := openSession(t, f.iss, a)
	script := build(t, sess, fullItems(f)...)
	before := st.snapshot()
	resps := attack(t, f, a, script)
	if st.snapshot() != before || st.commits != 0 {
		t.Fatal("card content changed")
	}
	if a.Staged() != 0 {
		t.Fatalf("%d changes still staged", a.Staged())
	}
	if _, err := perso.VerifyResponses(sess, script, resps); err == nil {
		t.Fatal("CA accepted the responses")
	}
}

func sendAll(a *perso.Applet, apdus [][]byte) [][]byte {
	var out [][]byte
	for _, c := range apdus {
		out = append(out, a.Process(c))
	}
	return out
}

func wantRefused(t *testing.T, resps [][]byte, at int, want uint16) {
	t.Helper()
	if got := sw(resps[at]); got != want {
		t.Fatalf("step %d answered %04X, want %04X", at, got, want)
	}
	for i := at + 1; i < len(resps); i++ {
		if sw(resps[i]) == apdu.SWOK {
			t.Fatalf("step %d accepted after the session ended", i)
		}
	}
}

func TestRefuseReplay(t *testing.T) {
	refusal(t, func(t *testing.T, _ fixture, a *perso.Applet, s *perso.Script) [][]byte {
		c := s.APDUs()
		resps := sendAll(a, [][]byte{c[0], c[1], c[2], c[2], c[3], c[4], c[5], c[6], c[7]})
		wantRefused(t, resps, 3, apdu.SWSecurityNotSatisfied)
		return resps[:8]
	})
}

func TestRefuseReorder(t *testing.T) {
	refusal(t, func(t *testing.T, _ fixture, a *perso.Applet, s *perso.Script) [][]byte {
		c := s.APDUs()
		resps := sendAll(a, [][]byte{c[0], c[2], c[1], c[3], c[4], c[5], c[6], c[7]})
		wantRefused(t, resps, 1, apdu.SWSecurityNotSatisfied)
		return resps
	})
}

func TestRefuseFinalizeEarly(t *testing.T) {
	refusal(t, func(t *testing.T, _ fixture, a *perso.Applet, s *perso.Script) [][]byte {
		c := s.APDUs()
		resps := sendAll(a, [][]byte{c[0], c[1], c[7]}) // drop 5 changes, jump to FINALIZE
		wantRefused(t, resps, 2, apdu.SWSecurityNotSatisfied)
		return resps
	})
}

func TestRefuseWrongCardSerial(t *testing.T) {
	f := getFixture(t)
	// Script for card A …
	_, cardA := newCard(t, f.iss)
	script := build(t, openSession(t, f.iss, cardA), fullItems(f)...)
	// … sent to card B after B's own INITIALIZE UPDATE.
	stB, cardB := newCard(t, f.iss)
	sessB := openSession(t, f.iss, cardB)
	before := stB.snapshot()
	resps := sendAll(cardB, script.APDUs())
	wantRefused(t, resps, 0, apdu.SWSecurityNotSatisfied)
	if stB.snapshot() != before || cardB.Staged() != 0 {
		t.Fatal("card B changed")
	}
	// And the CA refuses answers from card B for card A's session.
	if _, err := perso.VerifyResponses(sessB, script, resps); err == nil {
		t.Fatal("CA accepted")
	}
}

func TestRefuseFlippedMACBit(t *testing.T) {
	refusal(t, func(t *testing.T, _ fixture, a *perso.Applet, s *perso.Script) [][]byte {
		c := s.APDUs()
		bad := bytes.Clone(c[3])
		bad[len(bad)-3] ^= 0x01 // inside the C-MAC (the last 2 bytes are the extended Le)
		resps := sendAll(a, [][]byte{c[0], c[1], c[2], bad, c[4], c[5], c[6], c[7]})
		wantRefused(t, resps, 3, apdu.SWSecurityNotSatisfied)
		return resps
	})
}

func TestRefuseFlippedDataBit(t *testing.T) {
	refusal(t, func(t *testing.T, _ fixture, a *perso.Applet, s *perso.Script) [][]byte {
		c := s.APDUs()
		bad := bytes.Clone(c[1])
		bad[100] ^= 0x80 // inside the encrypted key blob
		resps := sendAll(a, [][]byte{c[0], bad, c[2]})
		wantRefused(t, resps, 1, apdu.SWSecurityNotSatisfied)
		return resps
	})
}

func TestRefuseTruncatedAPDU(t *testing.T) {
	refusal(t, func(t *testing.T, _ fixture, a *perso.Applet, s *perso.Script) [][]byte {
		c := s.APDUs()
		resps := sendAll(a, [][]byte{c[0], c[1][:len(c[1])-9], c[1], c[2], c[3], c[4], c[5], c[6], c[7]})
		wantRefused(t, resps, 1, apdu.SWWrongLength)
		return resps[:2]
	})
}

func TestRefuseWrongSession(t *testing.T) {
	refusal(t, func(t *testing.T, f fixture, a *perso.Applet, s *perso.Script) [][]byte {
		// The card starts a new session (new card challenge); the old script no longer fits.
		_ = openSession(t, f.iss, a)
		resps := sendAll(a, s.APDUs())
		wantRefused(t, resps, 0, apdu.SWSecurityNotSatisfied)
		return resps
	})
}

func TestRefuseMissingExternalAuthenticate(t *testing.T) {
	refusal(t, func(t *testing.T, _ fixture, a *perso.Applet, s *perso.Script) [][]byte {
		resps := sendAll(a, s.APDUs()[1:])
		wantRefused(t, resps, 0, apdu.SWConditionsNotSatisfied)
		return append([][]byte{{0x90, 0x00}}, resps...)
	})
}

func TestRefuseUnprotectedCommand(t *testing.T) {
	refusal(t, func(t *testing.T, f fixture, a *perso.Applet, s *perso.Script) [][]byte {
		c := s.APDUs()
		plain, _ := apdu.Command{CLA: 0x80, INS: perso.INSWriteFile, P2: 0x0A, Data: f.certs[perso.FIDUserAuthCert]}.Encode()
		resps := sendAll(a, [][]byte{c[0], plain, c[1]})
		wantRefused(t, resps, 1, apdu.SWSecurityNotSatisfied)
		return resps
	})
}

func TestRefuseDroppedLink(t *testing.T) {
	refusal(t, func(t *testing.T, _ fixture, a *perso.Applet, s *perso.Script) [][]byte {
		c := s.APDUs()
		resps := sendAll(a, c[:7]) // everything but FINALIZE
		for i, r := range resps {
			if sw(r) != apdu.SWOK {
				t.Fatalf("step %d: %04X", i, sw(r))
			}
		}
		if a.Staged() != 6 {
			t.Fatalf("%d staged", a.Staged())
		}
		a.Reset() // the link drops: pcscd powers the card off
		r := a.Process(c[7])
		if sw(r) == apdu.SWOK {
			t.Fatal("finalize accepted after power off")
		}
		return append(resps, r)
	})
}

func TestRefuseCommitFailure(t *testing.T) {
	f := getFixture(t)
	st, a := newCard(t, f.iss)
	sess := openSession(t, f.iss, a)
	script := build(t, sess, fullItems(f)...)
	st.failing = true
	before := st.snapshot()
	resps := relay(a, script.APDUs())
	if got := sw(resps[len(resps)-1]); got != apdu.SWMemoryFailure || len(resps) != 8 {
		t.Fatalf("finalize: %04X after %d steps", got, len(resps))
	}
	if st.snapshot() != before {
		t.Fatal("card changed")
	}
	_, err := perso.VerifyResponses(sess, script, resps)
	var se *perso.StepError
	if !errors.As(err, &se) || se.Index != 7 || !apdu.IsStatus(err, apdu.SWMemoryFailure) {
		t.Fatalf("got %v", err)
	}
}

func TestVerifyResponsesRefusesForgery(t *testing.T) {
	f := getFixture(t)
	_, a := newCard(t, f.iss)
	sess := openSession(t, f.iss, a)
	script := build(t, sess, fullItems(f)...)
	resps := relay(a, script.APDUs())
	if _, err := perso.VerifyResponses(sess, script, resps); err != nil {
		t.Fatal(err)
	}
	// A terminal that claims success without the card.
	fake := make([][]byte, len(resps))
	for i := range fake {
		fake[i] = []byte{0x90, 0x00}
	}
	if _, err := perso.VerifyResponses(sess, script, fake); !errors.Is(err, scp.ErrSMFormat) {
		t.Fatalf("bare 9000s: %v", err)
	}
	// A flipped bit in the attestation.
	tampered := append([][]byte(nil), resps...)
	last := bytes.Clone(resps[7])
	last[3] ^= 0x01
	tampered[7] = last
	var se *perso.StepError
	if _, err := perso.VerifyResponses(sess, script, tampered); !errors.As(err, &se) || se.Index != 7 || !errors.Is(err, scp.ErrBadMAC) {
		t.Fatalf("tampered attestation: %v", err)
	}
	// Responses swapped between steps.
	swapped := append([][]byte(nil), resps...)
	swapped[2], swapped[3] = swapped[3], swapped[2]
	if _, err := perso.VerifyResponses(sess, script, swapped); !errors.Is(err, scp.ErrBadMAC) {
		t.Fatalf("swapped: %v", err)
	}
	if _, err := perso.VerifyResponses(sess, script, resps[:7]); !errors.Is(err, perso.ErrResponseCount) {
		t.Fatalf("missing finalize: %v", err)
	}
	// The expected attestation itself edited by someone who can change the stored script.
	edited := script.WithoutAPDUs()
	edited.Attestation[40] ^= 1
	if _, err := perso.VerifyResponses(sess, edited, resps); !errors.Is(err, perso.ErrAttestation) {
		t.Fatalf("edited expectation: %v", err)
	}
}

// hsmShapedKey wraps like a PKCS#11 token would, with a chosen padding.
type hsmShapedKey struct {
	iss  *scp.SoftwareIssuer
	key  *rsa.PrivateKey
	tail []byte
}

func (k hsmShapedKey) Public() *rsa.PublicKey { return &k.key.PublicKey }
func (k hsmShapedKey) WrapForSession(_ context.Context, p scp.SessionParams) ([]byte, error) {
	der, _ := x509.MarshalPKCS8PrivateKey(k.key)
	kdek, _ := k.iss.CardKeys(p.Serial)
	sdek, _ := scp.SessionDEK(kdek.DEK, p.HostChallenge, p.CardChallenge)
	return scp.WrapKWP(sdek, append(der, k.tail...))
}

func TestKeyBlobPadding(t *testing.T) {
	f := getFixture(t)
	der, _ := x509.MarshalPKCS8PrivateKey(f.authKey)
	for _, tc := range []struct {
		name string
		tail []byte
		ok   bool
	}{
		{"no padding", nil, true},
		{"pad to a multiple of 8", make([]byte, (8-len(der)%8)%8), true},
		{"7 zeros", make([]byte, 7), true},
		{"8 zeros", make([]byte, 8), false},
		{"non-zero tail", []byte{0, 0, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, a := newCard(t, f.iss)
			sess := openSession(t, f.iss, a)
			script := build(t, sess, perso.ImportKey{FID: perso.FIDUserAuthKey, Key: hsmShapedKey{f.iss, f.authKey, tc.tail}})
			resps := relay(a, script.APDUs())
			_, err := perso.VerifyResponses(sess, script, resps)
			if tc.ok != (err == nil) {
				t.Fatalf("verify: %v", err)
			}
			if tc.ok != (st.commits == 1) {
				t.Fatalf("%d commits", st.commits)
			}
			if !tc.ok && sw(resps[1]) != apdu.SWWrongData {
				t.Fatalf("bad blob answered %04X", sw(resps[1]))
			}
		})
	}
}

func TestBuildRefusesBadItems(t *testing.T) {
	f := getFixture(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cert := f.certs[perso.FIDUserAuthCert]
	for name, it := range map[string]perso.Item{
		"key into cert ef":     perso.ImportKey{FID: perso.FIDUserAuthCert, Key: perso.SoftwareKey{Issuer: f.iss, Key: f.authKey}},
		"rsa-1024":             perso.ImportKey{FID: perso.FIDUserAuthKey, Key: perso.SoftwareKey{Issuer: f.iss, Key: small}},
		"cert into key ef":     perso.WriteFile{FID: perso.FIDUserAuthKey, Content: cert},
		"cert with trailer":    perso.WriteFile{FID: perso.FIDUserAuthCert, Content: append(bytes.Clone(cert), 0)},
		"reset pin of key ef":  perso.ResetPIN{FID: perso.FIDUserAuthKey},
		"destroy cert":         perso.DestroyKey{FID: perso.FIDUserAuthCert},
		"key without a source": perso.ImportKey{FID: perso.FIDUserAuthKey},
	} {
		_, a := newCard(t, f.iss)
		sess := openSession(t, f.iss, a)
		if _, err := perso.BuildIssuanceScript(context.Background(), sess, it); err == nil {
			t.Errorf("%s: built", name)
		}
		// The session is untouched by a refused build: a good script still works.
		if _, err := perso.BuildIssuanceScript(context.Background(), sess, perso.ResetPIN{FID: perso.FIDUserAuthPIN}); err != nil {
			t.Errorf("%s: session spoiled: %v", name, err)
		}
	}
}

func TestChangeFormattingHidesKey(t *testing.T) {
	f := getFixture(t)
	c := perso.Change{Kind: perso.ChangePutKey, FID: perso.FIDUserAuthKey, Key: f.authKey}
	s := fmt.Sprintf("%v %+v %#v %s", c, c, c, perso.SoftwareKey{Issuer: f.iss, Key: f.authKey})
	if bytes.Contains([]byte(s), []byte(f.authKey.D.String()[:12])) {
		t.Fatal("private key formatted")
	}
}

// BenchmarkIssuanceScript: build (CA side: session from INITIALIZE UPDATE, 2 key wraps,
// protect 8 APDUs) and apply (card side: verify, decrypt, parse and validate 2 RSA keys,
// commit) a full issuance, in process. Compare with BenchmarkBaselineParseKeys, the two
// PKCS#8 parses + validations that dominate the card side.
func BenchmarkIssuanceScript(b *testing.B) {
	f := getFixture(b)
	_, a := newCard(b, f.iss)
	items := fullItems(f)
	for b.Loop() {
		sess := openSession(b, f.iss, a)
		s, err := perso.BuildIssuanceScript(context.Background(), sess, items...)
		if err != nil {
			b.Fatal(err)
		}
		resps := relay(a, s.APDUs())
		if _, err := perso.VerifyResponses(sess, s, resps); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineParseKeys(b *testing.B) {
	f := getFixture(b)
	d1, _ := x509.MarshalPKCS8PrivateKey(f.authKey)
	d2, _ := x509.MarshalPKCS8PrivateKey(f.signKey)
	for b.Loop() {
		for _, d := range [][]byte{d1, d2} {
			k, err := x509.ParsePKCS8PrivateKey(d)
			if err != nil {
				b.Fatal(err)
			}
			if err := k.(*rsa.PrivateKey).Validate(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
