package scp_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"

	"madoguchi/cardio/apdu"
	"madoguchi/cardio/scp"
)

// Fuzz targets for the bytes the CA and the virtual card take from outside: the card's
// INITIALIZE UPDATE answer relayed by the terminal, protected responses (R-MAC, R-ENC),
// protected commands (C-MAC, C-DEC) and RFC 5649 key blobs. Seeds are real answers made at
// test time by the card end of this package (the virtual card's code), plus edge cases.

// FuzzParseInitUpdateResponse: whatever the parser accepts is a 9000 answer whose data is
// exactly serial ‖ KVN ‖ 03 ‖ i ‖ card challenge ‖ card cryptogram (it re-encodes to the
// input); a host session starts from the input only when it is the genuine answer of the card
// (a changed byte anywhere fails the parse or the card cryptogram).
func FuzzParseInitUpdateResponse(f *testing.F) {
	iss := newIssuer(f)
	serial := randBytes(f, scp.SerialLen)
	keys, err := iss.CardKeys(serial)
	if err != nil {
		f.Fatal(err)
	}
	card, err := scp.NewCardSession(serial, keys, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	hc := randBytes(f, scp.ChallengeLen)
	genuine := initUpdate(f, card, hc)
	f.Add(genuine)
	f.Add(genuine[:len(genuine)-3])           // truncated
	f.Add(append(bytes.Clone(genuine), 0x00)) // one byte too many
	f.Add([]byte{0x6A, 0x88})                 // referenced data not found
	f.Add([]byte{0x90})                       // no full status word
	f.Add(flipBit(genuine, 17))               // another SCP identifier
	f.Add(flipBit(genuine, 30))               // wrong cryptogram
	f.Fuzz(func(t *testing.T, b []byte) {
		iu, err := scp.ParseInitUpdateResponse(b)
		if err == nil {
			re := append(append([]byte{}, iu.Serial...), iu.KeyVersion, iu.SCPID, iu.Param)
			re = append(append(append(re, iu.CardChallenge...), iu.CardCryptogram...), 0x90, 0x00)
			if !bytes.Equal(re, b) {
				t.Fatalf("accepted %x re-encodes to %x", b, re)
			}
			if iu.SCPID != scp.SCPIdentifier || iu.KeyVersion != scp.KeyVersion {
				t.Fatalf("accepted key information %02X %02X", iu.KeyVersion, iu.SCPID)
			}
		}
		h, herr := scp.NewHostSession(context.Background(), iss, hc, b)
		if herr == nil {
			h.Close()
			if !bytes.Equal(b, genuine) {
				t.Fatalf("host session started from a forged answer %x", b)
			}
		}
		if err != nil && herr == nil {
			t.Fatal("host session started from an answer the parser refuses")
		}
	})
}

// FuzzVerifyResponse: (1) round trip: any response data and non-error status word the card
// wraps verifies on the host to the same data and status word; (2) any response bytes the
// host accepts with a MAC'd status word are exactly what the card sends for the plain
// response the host recovered (no forgery, no malleability); (3) an error status word is
// never accepted with data. Both security levels are covered (the first input byte picks).
func FuzzVerifyResponse(f *testing.F) {
	iss := newIssuer(f)
	type pairing struct {
		host *scp.HostSession
		card *scp.CardSession
		pc   scp.ProtectedCommand
	}
	chans := map[scp.SecurityLevel]pairing{}
	for _, level := range []scp.SecurityLevel{scp.LevelFull, scp.LevelMinimum} {
		host, card := pair(f, iss, randBytes(f, 16))
		ea, err := host.ExternalAuthenticate()
		if err != nil {
			f.Fatal(err)
		}
		// The level is the P1 of EXTERNAL AUTHENTICATE, under the C-MAC: resume the session
		// with the wanted level and build the command there.
		if level != scp.LevelFull {
			p := host.Params()
			p.Level = level
			host.Close()
			if host, err = scp.ResumeHostSession(context.Background(), iss, p); err != nil {
				f.Fatal(err)
			}
			if ea, err = host.ExternalAuthenticate(); err != nil {
				f.Fatal(err)
			}
		}
		if err := card.ExternalAuthenticate(parse(f, ea.APDU)); err != nil {
			f.Fatal(err)
		}
		pc, err := host.Protect(apdu.Command{CLA: 0x80, INS: 0xE2, P2: 1, Data: []byte{1, 2, 3}, Ne: 256})
		if err != nil {
			f.Fatal(err)
		}
		if _, err := card.UnwrapCommand(parse(f, pc.APDU)); err != nil {
			f.Fatal(err)
		}
		chans[level] = pairing{host, card, pc}
	}
	for _, level := range []byte{0, 1} {
		c := chans[[]scp.SecurityLevel{scp.LevelFull, scp.LevelMinimum}[level]]
		for _, r := range []apdu.Response{{SW: apdu.SWOK}, {Data: randBytes(f, 35), SW: apdu.SWOK}, {Data: randBytes(f, 16), SW: 0x6310}, {SW: 0x6A82}} {
			wire := c.card.WrapResponse(r).Encode()
			f.Add(level, r.Data, r.SW, wire)
			f.Add(level, r.Data, r.SW, flipBit(wire, 0))
		}
	}
	f.Add(byte(0), []byte(nil), uint16(0x9000), []byte{0x90, 0x00})
	f.Add(byte(0), []byte(nil), uint16(0x6982), []byte{0xAA, 0x69, 0x82})
	f.Fuzz(func(t *testing.T, pick byte, data []byte, sw uint16, raw []byte) {
		c := chans[[]scp.SecurityLevel{scp.LevelFull, scp.LevelMinimum}[pick&1]]
		errSW := sw != apdu.SWOK && sw>>8 != 0x62 && sw>>8 != 0x63
		if sw>>8 != 0x61 && sw>>8 != 0x6C && len(data) <= 4000 { // 61xx/6Cxx are transport-level
			wrapped := c.card.WrapResponse(apdu.Response{Data: data, SW: sw})
			got, err := c.host.VerifyResponse(c.pc, wrapped.Encode())
			switch {
			case errSW:
				if !apdu.IsStatus(err, sw) || len(wrapped.Data) != 0 {
					t.Fatalf("error status %04X: %v, %d data bytes", sw, err, len(wrapped.Data))
				}
			case err != nil:
				t.Fatalf("round trip of %d bytes, sw %04X: %v", len(data), sw, err)
			case got.SW != sw || !bytes.Equal(got.Data, data):
				t.Fatalf("round trip gave %x %04X, want %x %04X", got.Data, got.SW, data, sw)
			}
		}
		got, err := c.host.VerifyResponse(c.pc, raw)
		if err != nil {
			var se *apdu.StatusError
			if errors.As(err, &se) && len(raw) != 2 {
				t.Fatalf("error status accepted with data: %x", raw)
			}
			return
		}
		again := c.card.WrapResponse(got).Encode()
		if !bytes.Equal(again, raw) {
			t.Fatalf("host accepted %x, the card sends %x for that answer", raw, again)
		}
	})
}

// FuzzUnwrapCommand: a command the host protects unwraps on the card to the same command
// (round trip, any data up to 4000 bytes); any other bytes are refused and end the card's
// session (TS Art. 7(ii): a forged or replayed command changes nothing and stops the
// channel), and a command the card accepts is exactly the host's.
func FuzzUnwrapCommand(f *testing.F) {
	iss := newIssuer(f)
	serial := randBytes(f, 16)
	keys, err := iss.CardKeys(serial)
	if err != nil {
		f.Fatal(err)
	}
	hc := randBytes(f, scp.ChallengeLen)
	cardRand := bytes.Repeat([]byte{0x5A}, 1<<20) // same card challenge every session
	open := func(t testing.TB) (*scp.HostSession, *scp.CardSession) {
		card, err := scp.NewCardSession(serial, keys, bytes.NewReader(cardRand))
		if err != nil {
			t.Fatal(err)
		}
		host, err := scp.NewHostSession(context.Background(), iss, hc, initUpdate(t, card, hc))
		if err != nil {
			t.Fatal(err)
		}
		authenticate(t, host, card)
		return host, card
	}
	for _, d := range [][]byte{nil, {1}, randBytes(f, 16), randBytes(f, 300)} {
		host, _ := open(f)
		pc, err := host.Protect(apdu.Command{CLA: 0x80, INS: 0xE2, Data: d, Ne: 256})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(0xE2), d, pc.APDU)
		f.Add(byte(0xD8), d, flipBit(pc.APDU, len(pc.APDU)-2))
	}
	f.Fuzz(func(t *testing.T, ins byte, data []byte, raw []byte) {
		if len(data) > 4000 {
			data = data[:4000]
		}
		// Round trip: the host's first command of the session unwraps to itself.
		host, card := open(t)
		pc, err := host.Protect(apdu.Command{CLA: 0x80, INS: ins, Data: data, Ne: 256})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := card.UnwrapCommand(parse(t, pc.APDU))
		if err != nil || plain.INS != ins || plain.CLA != 0x80 || !bytes.Equal(plain.Data, data) {
			t.Fatalf("round trip: %+v, %v", plain, err)
		}
		// Arbitrary bytes as the first command of an identical session.
		cmd, err := apdu.ParseCommand(raw)
		if err != nil {
			return
		}
		_, card = open(t)
		plain, err = card.UnwrapCommand(cmd)
		if err != nil {
			if card.Authenticated() {
				t.Fatalf("refused command (%v) left the session open", err)
			}
			return
		}
		// Accepted: the host protecting the recovered plain command in the same session must
		// produce the same command; only Le is outside the C-MAC (GP Amendment D §6.2.4).
		host, _ = open(t)
		pc, err = host.Protect(plain)
		if err != nil {
			t.Fatalf("card accepted a command the host cannot build: %v", err)
		}
		want := parse(t, pc.APDU)
		if cmd.CLA != want.CLA || cmd.INS != want.INS || cmd.P1 != want.P1 || cmd.P2 != want.P2 ||
			cmd.Extended != want.Extended || !bytes.Equal(cmd.Data, want.Data) {
			t.Fatalf("card accepted %x, the host builds %x for it", raw, pc.APDU)
		}
	})
}

// unwrapKWPReference is RFC 5649 §4.2 written out as the RFC states it, with RFC 3394 §2.2.2
// in its index-based form, as the reference implementation for FuzzUnwrapKWP.
func unwrapKWPReference(kek, c []byte) ([]byte, bool) {
	block, err := aes.NewCipher(kek)
	if err != nil || len(c)%8 != 0 || len(c) < 16 {
		return nil, false
	}
	n := len(c)/8 - 1
	var a [8]byte
	var p [][]byte
	if n == 1 {
		var b [16]byte
		block.Decrypt(b[:], c)
		copy(a[:], b[:8])
		p = [][]byte{b[8:]}
	} else {
		copy(a[:], c[:8])
		r := make([][]byte, n+1)
		for i := 1; i <= n; i++ {
			r[i] = bytes.Clone(c[8*i : 8*i+8])
		}
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				var b [16]byte
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
				copy(b[8:], r[i])
				block.Decrypt(b[:], b[:])
				copy(a[:], b[:8])
				r[i] = bytes.Clone(b[8:])
			}
		}
		p = r[1:]
	}
	if !bytes.Equal(a[:4], []byte{0xA6, 0x59, 0x59, 0xA6}) {
		return nil, false
	}
	mli := uint64(binary.BigEndian.Uint32(a[4:]))
	if 8*(uint64(n)-1) >= mli || mli > 8*uint64(n) {
		return nil, false
	}
	plain := bytes.Join(p, nil)
	for _, z := range plain[mli:] {
		if z != 0 {
			return nil, false
		}
	}
	return plain[:mli], true
}

// FuzzUnwrapKWP: UnwrapKWP agrees with the reference (same accept/refuse, same plaintext)
// for any key and blob, and any plaintext wraps and unwraps to itself.
func FuzzUnwrapKWP(f *testing.F) {
	kek := randBytes(f, 16)
	for _, n := range []int{1, 7, 8, 9, 16, 100, 1217} {
		w, err := scp.WrapKWP(kek, randBytes(f, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kek, w)
		f.Add(kek, flipBit(w, len(w)-1))
	}
	f.Add(randBytes(f, 32), make([]byte, 24))
	f.Add(randBytes(f, 24), make([]byte, 15))
	f.Fuzz(func(t *testing.T, kek, blob []byte) {
		switch len(kek) {
		case 16, 24, 32:
		default:
			kek = append(bytes.Clone(kek), make([]byte, 16)...)[:16]
		}
		got, err := scp.UnwrapKWP(kek, blob)
		want, ok := unwrapKWPReference(kek, blob)
		if (err == nil) != ok || !bytes.Equal(got, want) {
			t.Fatalf("unwrap = %x, %v; reference %x, %v", got, err, want, ok)
		}
		if err != nil && !errors.Is(err, scp.ErrUnwrap) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		// The blob as plaintext: wrap → unwrap round trip.
		if len(blob) == 0 {
			return
		}
		w, err := scp.WrapKWP(kek, blob)
		if err != nil {
			t.Fatal(err)
		}
		back, err := scp.UnwrapKWP(kek, w)
		if err != nil || !bytes.Equal(back, blob) {
			t.Fatalf("round trip: %x, %v", back, err)
		}
		if ref, ok := unwrapKWPReference(kek, w); !ok || !bytes.Equal(ref, blob) {
			t.Fatal("reference disagrees with WrapKWP")
		}
	})
}

// flipBit returns a copy of b with the low bit of byte i flipped.
func flipBit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}
