package perso_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"madoguchi/cardio/apdu"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
)

// Fuzz targets for what the CA takes from the card through the terminal (the responses to a
// script, the attestation) and what the card takes from the CA (the PUT KEY key blob). Seeds
// are a real issuance between this package's host and applet, made at test time.

// FuzzParseAttestation: an accepted attestation re-encodes to its input; any other length or
// version is ErrAttestation; any attestation built from parts encodes and parses back.
func FuzzParseAttestation(f *testing.F) {
	fx := getFixture(f)
	_, a := newCard(f, fx.iss)
	sess := openSession(f, fx.iss, a)
	script := build(f, sess, fullItems(fx)...)
	f.Add(script.Attestation)
	f.Add(script.Attestation[:perso.AttestationLen-1])
	f.Add(append(bytes.Clone(script.Attestation), 0))
	f.Add(append([]byte{0x02}, script.Attestation[1:]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		att, err := perso.ParseAttestation(b)
		if err != nil {
			if !errors.Is(err, perso.ErrAttestation) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		} else if !bytes.Equal(att.Encode(), b) {
			t.Fatalf("accepted %x re-encodes to %x", b, att.Encode())
		}
		if len(b) < 1+scp.SerialLen+2*scp.ChallengeLen+1+32 {
			return
		}
		parts := perso.Attestation{Serial: b[:16], HostChallenge: b[16:24], CardChallenge: b[24:32], Count: int(b[32])}
		copy(parts.Digest[:], b[33:65])
		back, err := perso.ParseAttestation(parts.Encode())
		if err != nil || !bytes.Equal(back.Serial, parts.Serial) || !bytes.Equal(back.HostChallenge, parts.HostChallenge) ||
			!bytes.Equal(back.CardChallenge, parts.CardChallenge) || back.Count != parts.Count || back.Digest != parts.Digest {
			t.Fatalf("round trip of %+v: %+v, %v", parts, back, err)
		}
	})
}

// FuzzVerifyResponses: the CA's check of the card's answers to a full issuance script, on a
// session resumed from the stored script as at confirm. One answer replaced by arbitrary
// bytes (or the list cut short) is accepted only when it is byte for byte the card's answer,
// and a refused list changes nothing: the genuine answers still verify afterwards to the
// expected attestation.
func FuzzVerifyResponses(f *testing.F) {
	fx := getFixture(f)
	_, a := newCard(f, fx.iss)
	sess := openSession(f, fx.iss, a)
	script := build(f, sess, fullItems(fx)...)
	genuine := relay(a, script.APDUs())
	if len(genuine) != len(script.Steps) {
		f.Fatalf("relay stopped after %d answers", len(genuine))
	}
	stored := script.WithoutAPDUs()
	resumed, err := scp.ResumeHostSession(context.Background(), fx.iss, stored.Session)
	if err != nil {
		f.Fatal(err)
	}
	for i, r := range genuine {
		f.Add(byte(i), r, byte(0))
		c := bytes.Clone(r)
		c[0] ^= 0x80
		f.Add(byte(i), c, byte(0))
	}
	f.Add(byte(7), genuine[6], byte(0))
	f.Add(byte(1), []byte{0x90, 0x00}, byte(0))
	f.Add(byte(0), genuine[0], byte(0x83))
	f.Fuzz(func(t *testing.T, idx byte, answer []byte, cut byte) {
		i := int(idx) % len(genuine)
		resps := append([][]byte(nil), genuine...)
		resps[i] = answer
		if cut&0x80 != 0 {
			resps = resps[:len(resps)-1-int(cut)%len(resps)]
		}
		att, err := perso.VerifyResponses(resumed, stored, resps)
		same := len(resps) == len(genuine) && bytes.Equal(answer, genuine[i])
		if (err == nil) != same {
			t.Fatalf("answer %d = %x (%d answers): %v", i, answer, len(resps), err)
		}
		if err == nil && !bytes.Equal(att.Encode(), stored.Attestation) {
			t.Fatal("verified attestation differs from the expected one")
		}
		if att, err := perso.VerifyResponses(resumed, stored, genuine); err != nil || !bytes.Equal(att.Encode(), stored.Attestation) {
			t.Fatalf("genuine answers after a refused list: %v", err)
		}
	})
}

// blobKey is an ImportKey source that wraps arbitrary plaintext for the session, as a
// faulty or hostile key source would.
type blobKey struct {
	iss   *scp.SoftwareIssuer
	pub   *rsa.PublicKey
	plain []byte
}

func (k blobKey) Public() *rsa.PublicKey { return k.pub }
func (k blobKey) WrapForSession(_ context.Context, p scp.SessionParams) ([]byte, error) {
	kdek, _ := k.iss.CardKeys(p.Serial)
	sdek, _ := scp.SessionDEK(kdek.DEK, p.HostChallenge, p.CardChallenge)
	return scp.WrapKWP(sdek, k.plain)
}

// refDecodeKey is what the card must accept as a PUT KEY plaintext: one strict-DER
// SEQUENCE (read with cryptobyte), then 0–7 zero bytes, holding a PKCS#8 RSA-2048 key
// that passes Validate.
func refDecodeKey(b []byte) (*rsa.PrivateKey, bool) {
	s := cryptobyte.String(b)
	var elem cryptobyte.String
	if !s.ReadASN1Element(&elem, cbasn1.SEQUENCE) || len(s) > 7 || bytes.Count(s, []byte{0}) != len(s) {
		return nil, false
	}
	k, err := x509.ParsePKCS8PrivateKey(elem)
	if err != nil {
		return nil, false
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != 2048 || rk.Validate() != nil {
		return nil, false
	}
	return rk, true
}

// FuzzPutKeyBlob: the card's decoding of an imported key (RFC 5649 unwrap under S-DEK,
// trimDER, strict PKCS#8, RSA-2048, Validate) for arbitrary plaintexts, through the real
// applet: the card answers PUT KEY 9000 exactly when the reference decoder accepts the
// plaintext; a refused key leaves the card unchanged; the CA marks the script delivered
// only when the card holds exactly the key the CA meant to import.
func FuzzPutKeyBlob(f *testing.F) {
	fx := getFixture(f)
	der, err := x509.MarshalPKCS8PrivateKey(fx.authKey)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := x509.MarshalPKCS8PrivateKey(fx.signKey)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	f.Add(der)
	f.Add(append(bytes.Clone(der), make([]byte, 7)...))
	f.Add(append(bytes.Clone(der), make([]byte, 8)...))
	f.Add(append(bytes.Clone(der), 0, 1))
	f.Add(der[:len(der)-1])
	f.Add(other)
	f.Add(ecDER)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, plain []byte) {
		if len(plain) == 0 || len(plain) > 4000 {
			return
		}
		st, a := newCard(t, fx.iss)
		before := st.snapshot()
		sess := openSession(t, fx.iss, a)
		script := build(t, sess, perso.ImportKey{FID: perso.FIDUserAuthKey, Key: blobKey{fx.iss, &fx.authKey.PublicKey, plain}})
		resps := relay(a, script.APDUs())
		want, ok := refDecodeKey(plain)
		if got := sw(resps[1]) == apdu.SWOK; got != ok {
			t.Fatalf("put key answered %04X, reference decoder says %v", sw(resps[1]), ok)
		}
		if !ok && st.snapshot() != before {
			t.Fatal("a refused key blob changed the card")
		}
		_, err := perso.VerifyResponses(sess, script, resps)
		held := st.privs[perso.FIDUserAuthKey]
		delivered := held != nil && held.PublicKey.Equal(&fx.authKey.PublicKey)
		if (err == nil) != delivered {
			t.Fatalf("verify: %v; card holds the intended key: %v", err, delivered)
		}
		if held != nil && !held.PublicKey.Equal(&want.PublicKey) {
			t.Fatal("card holds a key other than the one in the blob")
		}
	})
}
