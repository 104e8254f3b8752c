package scp_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"madoguchi/cardio/apdu"
	"madoguchi/cardio/scp"
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newIssuer(t testing.TB) *scp.SoftwareIssuer {
	return &scp.SoftwareIssuer{MasterENC: randBytes(t, 16), MasterMAC: randBytes(t, 16), MasterDEK: randBytes(t, 16)}
}

// pair opens a session between a SoftwareIssuer host and a card with serial.
func pair(t testing.TB, iss *scp.SoftwareIssuer, serial []byte) (*scp.HostSession, *scp.CardSession) {
	t.Helper()
	keys, err := iss.CardKeys(serial)
	if err != nil {
		t.Fatal(err)
	}
	card, err := scp.NewCardSession(serial, keys, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := scp.NewHostChallenge(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	host, err := scp.NewHostSession(context.Background(), iss, hc, initUpdate(t, card, hc))
	if err != nil {
		t.Fatal(err)
	}
	return host, card
}

func initUpdate(t testing.TB, card *scp.CardSession, hc []byte) []byte {
	t.Helper()
	raw, err := scp.InitializeUpdateCommand(hc)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := apdu.ParseCommand(raw)
	if err != nil {
		t.Fatal(err)
	}
	data, err := card.InitializeUpdate(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return apdu.Response{Data: data, SW: apdu.SWOK}.Encode()
}

func parse(t testing.TB, b []byte) apdu.Command {
	t.Helper()
	c, err := apdu.ParseCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func authenticate(t testing.TB, host *scp.HostSession, card *scp.CardSession) {
	t.Helper()
	ea, err := host.ExternalAuthenticate()
	if err != nil {
		t.Fatal(err)
	}
	if err := card.ExternalAuthenticate(parse(t, ea.APDU)); err != nil {
		t.Fatal(err)
	}
}

func TestDiversifyIsOneECBBlock(t *testing.T) {
	mk, serial := randBytes(t, 16), randBytes(t, 16)
	got, err := scp.Diversify(mk, serial)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(mk)
	want := make([]byte, 16)
	block.Encrypt(want, serial)
	if !bytes.Equal(got, want) {
		t.Fatal("Diversify is not AES-ECB(MK, serial)")
	}
	if _, err := scp.Diversify(mk, serial[:10]); err == nil {
		t.Error("10-byte serial accepted")
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	iss := newIssuer(t)
	keys, _ := iss.CardKeys(randBytes(t, 16))
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", keys, keys, keys), fmt.Sprintf("%v %+v %#v", iss, iss, iss)} {
		if bytes.Contains([]byte(s), []byte(fmt.Sprintf("%x", keys.ENC[:4]))) || !bytes.Contains([]byte(s), []byte("redacted")) {
			t.Fatalf("formatted secret: %s", s)
		}
	}
}

func TestRoundTripProtectedCommands(t *testing.T) {
	iss := newIssuer(t)
	host, card := pair(t, iss, randBytes(t, 16))
	authenticate(t, host, card)
	for i, data := range [][]byte{nil, {1}, bytes.Repeat([]byte{7}, 15), bytes.Repeat([]byte{8}, 16), randBytes(t, 300), randBytes(t, 4000)} {
		pc, err := host.Protect(apdu.Command{CLA: 0x80, INS: 0xE2, P1: 0, P2: byte(i), Data: data, Ne: 256})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := card.UnwrapCommand(parse(t, pc.APDU))
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if plain.CLA != 0x80 || plain.P2 != byte(i) || !bytes.Equal(plain.Data, data) {
			t.Fatalf("command %d: unwrapped %+v", i, plain)
		}
		reply := randBytes(t, i*7)
		out := card.WrapResponse(apdu.Response{Data: reply, SW: apdu.SWOK})
		r, err := host.VerifyResponse(pc, out.Encode())
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if !bytes.Equal(r.Data, reply) {
			t.Fatalf("response %d: %x, want %x", i, r.Data, reply)
		}
		if len(reply) > 0 && bytes.Contains(out.Data, reply) {
			t.Fatalf("response %d travelled in the clear", i)
		}
	}
}

func TestWrongCardFailsCardCryptogram(t *testing.T) {
	iss := newIssuer(t)
	serial := randBytes(t, 16)
	keys, _ := iss.CardKeys(randBytes(t, 16)) // keys of another card
	card, _ := scp.NewCardSession(serial, keys, rand.Reader)
	hc, _ := scp.NewHostChallenge(rand.Reader)
	_, err := scp.NewHostSession(context.Background(), iss, hc, initUpdate(t, card, hc))
	if !errors.Is(err, scp.ErrCardCryptogram) {
		t.Fatalf("got %v, want ErrCardCryptogram", err)
	}
	// A foreign issuer (other master keys) fails the same way.
	other := newIssuer(t)
	own, _ := iss.CardKeys(serial)
	cs, _ := scp.NewCardSession(serial, own, rand.Reader)
	if _, err := scp.NewHostSession(context.Background(), other, hc, initUpdate(t, cs, hc)); !errors.Is(err, scp.ErrCardCryptogram) {
		t.Fatalf("foreign issuer: got %v", err)
	}
}

func TestCardRefusals(t *testing.T) {
	iss := newIssuer(t)
	serial := randBytes(t, 16)
	cmd := apdu.Command{CLA: 0x80, INS: 0xE2, Data: []byte("hello"), Ne: 256}

	t.Run("flipped MAC bit", func(t *testing.T) {
		host, card := pair(t, iss, serial)
		authenticate(t, host, card)
		pc, _ := host.Protect(cmd)
		bad := bytes.Clone(pc.APDU)
		bad[len(bad)-2] ^= 0x01 // last MAC byte (before Le)
		if _, err := card.UnwrapCommand(parse(t, bad)); !errors.Is(err, scp.ErrBadMAC) {
			t.Fatalf("got %v", err)
		}
		if card.Authenticated() {
			t.Fatal("session survived a bad MAC")
		}
		if _, err := card.UnwrapCommand(parse(t, pc.APDU)); !errors.Is(err, scp.ErrNoSession) {
			t.Fatalf("after failure: got %v", err)
		}
	})
	t.Run("replay", func(t *testing.T) {
		host, card := pair(t, iss, serial)
		authenticate(t, host, card)
		pc, _ := host.Protect(cmd)
		if _, err := card.UnwrapCommand(parse(t, pc.APDU)); err != nil {
			t.Fatal(err)
		}
		if _, err := card.UnwrapCommand(parse(t, pc.APDU)); !errors.Is(err, scp.ErrBadMAC) {
			t.Fatalf("replay: got %v", err)
		}
	})
	t.Run("reorder", func(t *testing.T) {
		host, card := pair(t, iss, serial)
		authenticate(t, host, card)
		_, _ = host.Protect(cmd)
		second, _ := host.Protect(cmd)
		if _, err := card.UnwrapCommand(parse(t, second.APDU)); !errors.Is(err, scp.ErrBadMAC) {
			t.Fatalf("reorder: got %v", err)
		}
	})
	t.Run("no external authenticate", func(t *testing.T) {
		host, card := pair(t, iss, serial)
		_, _ = host.ExternalAuthenticate()
		pc, _ := host.Protect(cmd)
		if _, err := card.UnwrapCommand(parse(t, pc.APDU)); !errors.Is(err, scp.ErrNoSession) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("external authenticate of another session", func(t *testing.T) {
		host, _ := pair(t, iss, serial)
		_, card := pair(t, iss, serial)
		ea, _ := host.ExternalAuthenticate()
		if err := card.ExternalAuthenticate(parse(t, ea.APDU)); !errors.Is(err, scp.ErrBadMAC) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unprotected command", func(t *testing.T) {
		host, card := pair(t, iss, serial)
		authenticate(t, host, card)
		if _, err := card.UnwrapCommand(cmd); !errors.Is(err, scp.ErrNotProtected) {
			t.Fatalf("got %v", err)
		}
		if scp.StatusFor(scp.ErrNotProtected) != apdu.SWSecurityNotSatisfied {
			t.Fatal("unprotected command must map to 6982")
		}
	})
	t.Run("host refuses forged response", func(t *testing.T) {
		host, card := pair(t, iss, serial)
		authenticate(t, host, card)
		first, _ := host.Protect(cmd)
		second, _ := host.Protect(cmd)
		_, _ = card.UnwrapCommand(parse(t, first.APDU))
		out := card.WrapResponse(apdu.Response{SW: apdu.SWOK}).Encode()
		if _, err := host.VerifyResponse(second, out); !errors.Is(err, scp.ErrBadMAC) {
			t.Fatalf("response to another command: got %v", err)
		}
		if _, err := host.VerifyResponse(first, []byte{0x90, 0x00}); !errors.Is(err, scp.ErrSMFormat) {
			t.Fatalf("response without r-mac: got %v", err)
		}
		if _, err := host.VerifyResponse(first, []byte{0x69, 0x82}); !apdu.IsStatus(err, 0x6982) {
			t.Fatalf("error status: got %v", err)
		}
		if _, err := host.VerifyResponse(first, out); err != nil {
			t.Fatalf("genuine response: %v", err)
		}
	})
}

func TestResumeHostSessionVerifiesLater(t *testing.T) {
	iss := newIssuer(t)
	host, card := pair(t, iss, randBytes(t, 16))
	authenticate(t, host, card)
	pc, _ := host.Protect(apdu.Command{CLA: 0x80, INS: 0xF0, Ne: 256})
	_, _ = card.UnwrapCommand(parse(t, pc.APDU))
	resp := card.WrapResponse(apdu.Response{Data: []byte("attestation"), SW: apdu.SWOK}).Encode()
	params := host.Params()
	host.Close()
	if _, err := host.VerifyResponse(pc, resp); !errors.Is(err, scp.ErrSessionState) {
		t.Fatalf("closed session: got %v", err)
	}
	again, err := scp.ResumeHostSession(context.Background(), iss, params)
	if err != nil {
		t.Fatal(err)
	}
	pc.APDU = nil // the CA stores only counter and MAC
	r, err := again.VerifyResponse(pc, resp)
	if err != nil || string(r.Data) != "attestation" {
		t.Fatalf("resumed verify: %q, %v", r.Data, err)
	}
	if _, err := again.Protect(apdu.Command{CLA: 0x80, INS: 0xE2}); !errors.Is(err, scp.ErrSessionState) {
		t.Fatalf("protect before external authenticate: got %v", err)
	}
}

func BenchmarkProtectUnwrap1KB(b *testing.B) {
	iss := newIssuer(b)
	host, card := pair(b, iss, randBytes(b, 16))
	authenticate(b, host, card)
	data := randBytes(b, 1024)
	b.SetBytes(1024)
	for b.Loop() {
		pc, err := host.Protect(apdu.Command{CLA: 0x80, INS: 0xE2, Data: data, Ne: 256})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := card.UnwrapCommand(parse(b, pc.APDU)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCMAC16 is the baseline for BenchmarkProtectUnwrap1KB: one block of CMAC.
func BenchmarkCMAC16(b *testing.B) {
	key, msg := randBytes(b, 16), randBytes(b, 16)
	for b.Loop() {
		_, _ = scp.CMAC(key, msg)
	}
}
