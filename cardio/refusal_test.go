package cardio_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"madoguchi/cardio"
	"madoguchi/cardio/apdu"
	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
)

// cardState is what "no state change" compares: the card's whole persistent memory (its
// state file: files, keys, PIN records and try counters, lifecycle) and its lifecycle.
type cardState struct {
	file      []byte
	lifecycle vcard.Lifecycle
}

func stateOf(t testing.TB, card *vcard.Card, path string) cardState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return cardState{file: b, lifecycle: card.Lifecycle()}
}

func assertUnchanged(t testing.TB, card *vcard.Card, path string, before cardState) {
	t.Helper()
	after := stateOf(t, card, path)
	if !bytes.Equal(after.file, before.file) || after.lifecycle != before.lifecycle {
		t.Fatalf("card memory changed by a refused command (lifecycle %s → %s)", before.lifecycle, after.lifecycle)
	}
}

// assertLooksBlank checks, through the JPKI read side, that nothing on the card looks issued:
// no certificate present, no PIN set, no key usable.
func assertLooksBlank(t testing.TB, api *cardio.Card) {
	t.Helper()
	ctx := context.Background()
	certs, err := api.ReadCertificates(ctx)
	if err != nil {
		t.Fatalf("read certificates of a blank card: %v", err)
	}
	for _, fid := range []uint16{cardio.FileUserAuthCert, cardio.FileUserAuthCACert, cardio.FileSignatureCACert, cardio.FileSignatureCert} {
		if certs.Present(fid) || !errors.Is(certs.Missing[fid], cardio.ErrCertificateNotPresent) {
			t.Fatalf("ef %04X on a blank card: present=%v missing=%v", fid, certs.Present(fid), certs.Missing[fid])
		}
	}
	di, _ := digestInfo([]byte("blank"))
	for _, w := range []cardio.Which{cardio.UserAuth, cardio.Signature} {
		if _, err := api.PINTriesLeft(ctx, w); !errors.Is(err, cardio.ErrPINNotSet) {
			t.Fatalf("%s pin of a blank card: %v, want ErrPINNotSet", w, err)
		}
		if _, err := api.Sign(ctx, w, di); !errors.Is(err, cardio.ErrPINNotSet) {
			t.Fatalf("%s sign on a blank card: %v, want ErrPINNotSet", w, err)
		}
	}
}

// openScript does INITIALIZE UPDATE through api and builds a 2-change script (PUT KEY 0017,
// WRITE FILE 000A): EXTERNAL AUTHENTICATE, PUT KEY, WRITE FILE, FINALIZE.
func openScript(t testing.TB, api *cardio.Card, cn string) (*scp.HostSession, *perso.Script) {
	t.Helper()
	ctx := context.Background()
	hc, err := scp.NewHostChallenge(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	initResp, err := api.InitializeUpdate(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := scp.NewHostSession(ctx, vcardtest.Issuer, hc, initResp)
	if err != nil {
		t.Fatal(err)
	}
	authKey, _ := vcardtest.Keys()
	script, err := perso.BuildIssuanceScript(ctx, sess,
		perso.ImportKey{FID: perso.FIDUserAuthKey, Key: perso.SoftwareKey{Issuer: vcardtest.Issuer, Key: authKey}},
		perso.WriteFile{FID: perso.FIDUserAuthCert, Content: vcardtest.Certificate(t, authKey, cn)})
	if err != nil {
		t.Fatal(err)
	}
	return sess, script
}

func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	out[i] ^= 0x01
	return out
}

// TestScriptRefusalsRealStack runs the secure channel's refusals through pcscd and vpcd
// (cardio/perso covers each in process): replay, reorder, a flipped C-MAC bit, a script of
// an older session, a truncated APDU, a change without EXTERNAL AUTHENTICATE and an
// unprotected change (TS Art. 6(ii), 7(ii)). Each stops the relay at the refused APDU with the
// specific status word, the CA refuses the answers, and the card's memory is byte-for-byte
// unchanged.
func TestScriptRefusalsRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	path := filepath.Join(t.TempDir(), "card.json")
	card := vcardtest.Blank(t, path, 0x71)
	api, _, _ := realCard(t, env, card)
	ctx := context.Background()
	before := stateOf(t, card, path)

	for _, tc := range []struct {
		name   string
		apdus  func(t *testing.T, s *perso.Script) [][]byte
		index  int
		sw     uint16
		ownRun bool
	}{
		{"replay", func(_ *testing.T, s *perso.Script) [][]byte {
			c := s.APDUs()
			return [][]byte{c[0], c[1], c[1], c[2], c[3]}
		}, 2, apdu.SWSecurityNotSatisfied, false},
		{"reorder", func(_ *testing.T, s *perso.Script) [][]byte {
			c := s.APDUs()
			return [][]byte{c[0], c[2], c[1], c[3]}
		}, 1, apdu.SWSecurityNotSatisfied, false},
		{"flipped-mac", func(_ *testing.T, s *perso.Script) [][]byte {
			c := s.APDUs()
			// WRITE FILE is extended: ... C-MAC(8) Le(2); flip a bit inside the C-MAC.
			return [][]byte{c[0], c[1], flip(c[2], len(c[2])-5), c[3]}
		}, 2, apdu.SWSecurityNotSatisfied, false},
		{"wrong-session", nil, 0, apdu.SWSecurityNotSatisfied, true},
		{"truncated-apdu", func(_ *testing.T, s *perso.Script) [][]byte {
			c := s.APDUs()
			return [][]byte{c[0], c[1][:len(c[1])-9], c[2], c[3]}
		}, 1, apdu.SWWrongLength, false},
		{"no-external-authenticate", func(_ *testing.T, s *perso.Script) [][]byte {
			return s.APDUs()[1:]
		}, 0, apdu.SWConditionsNotSatisfied, false},
		{"unprotected-change", func(t *testing.T, s *perso.Script) [][]byte {
			authKey, _ := vcardtest.Keys()
			plain, err := apdu.Command{CLA: perso.CLAProprietary, INS: perso.INSWriteFile, P2: 0x0A,
				Data: vcardtest.Certificate(t, authKey, "forged")}.Encode()
			if err != nil {
				t.Fatal(err)
			}
			c := s.APDUs()
			return [][]byte{c[0], plain, c[3]}
		}, 1, apdu.SWSecurityNotSatisfied, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, script := openScript(t, api, "refused "+tc.name)
			var apdus [][]byte
			if tc.ownRun {
				// The card opens a new session (fresh card challenge): the older script
				// belongs to another session and its EXTERNAL AUTHENTICATE fails.
				openScript(t, api, "newer session")
				apdus = script.APDUs()
			} else {
				apdus = tc.apdus(t, script)
			}
			responses, err := api.RunScript(ctx, apdus)
			var se *cardio.ScriptError
			if !errors.As(err, &se) || se.Index != tc.index || !apdu.IsStatus(err, tc.sw) {
				t.Fatalf("RunScript: %v, want apdu %d refused with %04X", err, tc.index, tc.sw)
			}
			if len(responses) != tc.index+1 {
				t.Fatalf("%d responses, want %d", len(responses), tc.index+1)
			}
			if _, err := perso.VerifyResponses(sess, script.WithoutAPDUs(), responses); err == nil {
				t.Fatal("the CA accepted the answers of a refused script")
			}
			assertUnchanged(t, card, path, before)
		})
	}
	assertLooksBlank(t, api)
	assertUnchanged(t, card, path, before)
}

// TestTwoCardsScriptsCrossedRealStack: two cards in two readers at once, each with its own
// session. A script built for one card is refused by the other (static keys diversified by
// serial: EXTERNAL AUTHENTICATE fails, 6982) and neither card changes; then both cards are
// personalised concurrently with their own scripts and each holds only its own certificate.
func TestTwoCardsScriptsCrossedRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")}
	cards := []*vcard.Card{vcardtest.Blank(t, paths[0], 0x72), vcardtest.Blank(t, paths[1], 0x73)}
	apis := make([]*cardio.Card, 2)
	for i := range cards {
		vcardtest.PlugIn(t, cards[i], env.Ports[i], env.Readers[i])
		apis[i] = cardio.New(vcardtest.Connect(t, env.Readers[i]))
	}
	ctx := context.Background()
	befores := []cardState{stateOf(t, cards[0], paths[0]), stateOf(t, cards[1], paths[1])}

	sessA, scriptA := openScript(t, apis[0], "card A")
	sessB, scriptB := openScript(t, apis[1], "card B")
	for i, s := range []*perso.Script{scriptB, scriptA} { // crossed
		responses, err := apis[i].RunScript(ctx, s.APDUs())
		var se *cardio.ScriptError
		if !errors.As(err, &se) || se.Index != 0 || !apdu.IsStatus(err, apdu.SWSecurityNotSatisfied) {
			t.Fatalf("reader %d with the other card's script: %v, want apdu 0 refused with 6982", i, err)
		}
		if _, err := perso.VerifyResponses([]*scp.HostSession{sessB, sessA}[i], s, responses); err == nil {
			t.Fatal("the CA accepted the other card's answers")
		}
		assertUnchanged(t, cards[i], paths[i], befores[i])
	}

	// Now each card its own script, both at once.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	certs := make([][]byte, 2)
	for i := range apis {
		sess, script := openScript(t, apis[i], fmt.Sprintf("card %c", 'A'+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			responses, err := apis[i].RunScript(ctx, script.APDUs())
			if err == nil {
				_, err = perso.VerifyResponses(sess, script, responses)
			}
			if err == nil {
				certs[i], err = apis[i].ReadCertificate(ctx, cardio.FileUserAuthCert)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		if cards[i].Lifecycle() != vcard.LifecyclePersonalised {
			t.Fatalf("card %d not personalised", i)
		}
		c, err := x509.ParseCertificate(certs[i])
		if want := fmt.Sprintf("card %c", 'A'+i); err != nil || c.Subject.CommonName != want {
			t.Fatalf("reader %d holds %v (%v), want the certificate of %s", i, c.Subject, err, want)
		}
	}
}

// TestForeignCardRefusedRealStack: a card of another kind (different ATR, no JPKI AP, no
// management application) in the reader gives cardio.ErrNotJPKICard from every operation,
// through pcscd, and nothing is written to it.
func TestForeignCardRefusedRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	path := filepath.Join(t.TempDir(), "foreign.json")
	keys, err := vcardtest.Issuer.CardKeys(vcardtest.Serial(0x74))
	if err != nil {
		t.Fatal(err)
	}
	card, err := vcard.New(vcard.Config{Serial: vcardtest.Serial(0x74), Keys: keys, StatePath: path, Foreign: true})
	if err != nil {
		t.Fatal(err)
	}
	api, _, pc := realCard(t, env, card)
	if !bytes.Equal(pc.ATR(), vcard.ForeignATR) || bytes.Equal(pc.ATR(), vcard.ATR) {
		t.Fatalf("ATR % X, want the foreign ATR % X", pc.ATR(), vcard.ForeignATR)
	}
	before := stateOf(t, card, path)
	ctx := context.Background()
	di, _ := digestInfo([]byte("foreign"))
	hc, _ := scp.NewHostChallenge(rand.Reader)
	for name, op := range map[string]func() error{
		"read certificates": func() error { _, err := api.ReadCertificates(ctx); return err },
		"read certificate":  func() error { _, err := api.ReadCertificate(ctx, cardio.FileUserAuthCert); return err },
		"pin tries":         func() error { _, err := api.PINTriesLeft(ctx, cardio.UserAuth); return err },
		"verify pin":        func() error { return api.VerifyPIN(ctx, cardio.UserAuth, []byte("1234")) },
		"set pin":           func() error { return api.SetPIN(ctx, cardio.Signature, []byte("MADO2024")) },
		"sign":              func() error { _, err := api.Sign(ctx, cardio.UserAuth, di); return err },
		"card serial":       func() error { _, err := api.CardSerial(ctx); return err },
		"initialize update": func() error { _, err := api.InitializeUpdate(ctx, hc); return err },
	} {
		if err := op(); !errors.Is(err, cardio.ErrNotJPKICard) {
			t.Errorf("%s on a foreign card: %v, want ErrNotJPKICard", name, err)
		}
	}
	assertUnchanged(t, card, path, before)
}

// TestReadCertificatesPartialCard: a card issued with the user-auth key and certificate only
// (no CA certificates, no signature pair) reads as exactly that: the user-auth certificate,
// and "not present" for the three others (CARD-PROTOCOL §2: an empty certificate EF answers
// 6A82 at selection), through pcscd.
func TestReadCertificatesPartialCard(t *testing.T) {
	env := testenv.PCSCD(t)
	card := vcardtest.Blank(t, "", 0x75)
	api, _, _ := realCard(t, env, card)
	ctx := context.Background()
	sess, script := openScript(t, api, "user-auth only")
	responses, err := api.RunScript(ctx, script.APDUs())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := perso.VerifyResponses(sess, script, responses); err != nil {
		t.Fatal(err)
	}
	certs, err := api.ReadCertificates(ctx)
	if err != nil {
		t.Fatalf("read certificates of a user-auth-only card: %v", err)
	}
	want := script.Steps[2] // WRITE FILE 000A
	if want.FID != perso.FIDUserAuthCert || !certs.Present(cardio.FileUserAuthCert) || len(certs.UserAuth) < 256 {
		t.Fatalf("user-auth certificate not read (%d bytes)", len(certs.UserAuth))
	}
	for _, fid := range []uint16{cardio.FileUserAuthCACert, cardio.FileSignatureCACert, cardio.FileSignatureCert} {
		if certs.Present(fid) || !errors.Is(certs.Missing[fid], cardio.ErrCertificateNotPresent) {
			t.Errorf("ef %04X: present=%v missing=%v, want ErrCertificateNotPresent", fid, certs.Present(fid), certs.Missing[fid])
		}
	}
	if _, err := api.ReadCertificate(ctx, cardio.FileSignatureCert); !errors.Is(err, cardio.ErrCertificateNotPresent) {
		t.Fatalf("read absent signature certificate: %v, want ErrCertificateNotPresent", err)
	}
}

// garbling is an in-process transport that replaces the answer to chosen APDUs.
type garbling struct {
	cardio.Transport
	n       int
	replace map[int][]byte // APDU number (from 1) → response to give instead
}

func (g *garbling) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	g.n++
	rsp, err := g.Transport.Transmit(ctx, cmd)
	if r, ok := g.replace[g.n]; ok && err == nil {
		return bytes.Clone(r), nil
	}
	return rsp, err
}

// TestTruncatedAndGarbageResponsesAreTypedErrors: every answer that is too short (a dropped
// link), has the wrong length, or does not fit its command gives a typed error, never data.
func TestTruncatedAndGarbageResponsesAreTypedErrors(t *testing.T) {
	l := vcardtest.Personalised(t, "", 0x76)
	ctx := context.Background()
	di, _ := digestInfo([]byte("garbage"))
	ok := []byte{0x90, 0x00}
	for _, tc := range []struct {
		name    string
		replace map[int][]byte
		op      func(api *cardio.Card) error
		want    error
	}{
		{"empty answer", map[int][]byte{1: {}}, func(api *cardio.Card) error { _, err := api.ReadCertificates(ctx); return err }, apdu.ErrShortResponse},
		{"one byte", map[int][]byte{2: {0x90}}, func(api *cardio.Card) error { _, err := api.ReadCertificates(ctx); return err }, apdu.ErrShortResponse},
		{"select with data", map[int][]byte{1: {0x01, 0x90, 0x00}}, func(api *cardio.Card) error { _, err := api.ReadCertificates(ctx); return err }, cardio.ErrBadResponse},
		{"header not a sequence", map[int][]byte{3: {0x04, 0x82, 0x01, 0x00, 0x90, 0x00}}, func(api *cardio.Card) error { _, err := api.ReadCertificates(ctx); return err }, cardio.ErrBadCertificateFile},
		{"header too large", map[int][]byte{3: {0x30, 0x82, 0xFF, 0xF0, 0x90, 0x00}}, func(api *cardio.Card) error { _, err := api.ReadCertificates(ctx); return err }, cardio.ErrBadCertificateFile},
		{"more than asked", map[int][]byte{3: append(bytes.Repeat([]byte{0x30}, 5), ok...)}, func(api *cardio.Card) error { _, err := api.ReadCertificates(ctx); return err }, cardio.ErrBadResponse},
		{"body cut short", map[int][]byte{4: append(bytes.Repeat([]byte{0x30}, 10), ok...)}, func(api *cardio.Card) error { _, err := api.ReadCertificates(ctx); return err }, cardio.ErrBadResponse},
		{"pin tries without counter", map[int][]byte{3: ok}, func(api *cardio.Card) error { _, err := api.PINTriesLeft(ctx, cardio.UserAuth); return err }, cardio.ErrBadResponse},
		{"short signature", map[int][]byte{6: append(bytes.Repeat([]byte{1}, 10), ok...)}, func(api *cardio.Card) error {
			if err := api.VerifyPIN(ctx, cardio.UserAuth, []byte(l.AuthPIN)); err != nil {
				return err
			}
			_, err := api.Sign(ctx, cardio.UserAuth, di)
			return err
		}, cardio.ErrBadResponse},
		{"initialize update cut", map[int][]byte{2: append(bytes.Repeat([]byte{1}, 20), ok...)}, func(api *cardio.Card) error { _, err := api.CardSerial(ctx); return err }, cardio.ErrBadResponse},
		{"script answer cut", map[int][]byte{1: {0x90}}, func(api *cardio.Card) error {
			_, err := api.RunScript(ctx, [][]byte{perso.SelectCommand()})
			var se *cardio.ScriptError
			if !errors.As(err, &se) || se.Index != 0 {
				return fmt.Errorf("not a script error at 0: %w", err)
			}
			return err
		}, apdu.ErrShortResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := cardio.New(&garbling{Transport: vcard.Insert(l.Card), replace: tc.replace})
			if err := tc.op(api); !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
}

// TestDroppedLinkLeavesCardBlankRealStack: the link drops at the FINALIZE of a full
// personalisation; the relay reports a typed transport error, and the card, back in the
// reader, is byte-for-byte the blank card it was and does not look issued through the JPKI
// read side (no certificate, no PIN, no usable key; DOMAIN §4.7).
func TestDroppedLinkLeavesCardBlankRealStack(t *testing.T) {
	env := testenv.PCSCD(t)
	path := filepath.Join(t.TempDir(), "card.json")
	card := vcardtest.Blank(t, path, 0x77)
	api, link, pc := realCard(t, env, card)
	before := stateOf(t, card, path)
	_, script := openScript(t, api, "dropped")
	apdus := script.APDUs()
	link.Faults.DropLinkAt(len(apdus)) // the FINALIZE
	_, err := api.RunScript(context.Background(), apdus)
	var se *cardio.ScriptError
	if !errors.As(err, &se) || se.Index != len(apdus)-1 ||
		!(errors.Is(err, pcsc.ErrShortResponse) || errors.Is(err, pcsc.ErrCardRemoved)) {
		t.Fatalf("RunScript across a dropped link: %v", err)
	}
	assertUnchanged(t, card, path, before)
	// The terminal drops its dead connection; the card comes back (the link reconnects) and a
	// new connection sees a blank card.
	pc.Close(false)
	vcardtest.WaitPresent(t, env.Readers[0], false)
	vcardtest.WaitPresent(t, env.Readers[0], true)
	assertLooksBlank(t, cardio.New(vcardtest.Connect(t, env.Readers[0])))
	assertUnchanged(t, card, path, before)
}
