package crl_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/crl/internal/crlgen"
)

var thisUpdate = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func params(ca *testCA, number int64) crl.Params {
	return crl.Params{
		Issuer:     ca.cert,
		Signer:     ca.key,
		Number:     big.NewInt(number),
		ThisUpdate: thisUpdate,
	}
}

func write(t *testing.T, p crl.Params, src crl.Entries) ([]byte, crl.Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := crl.Write(context.Background(), &buf, p, src)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if res.Bytes != int64(buf.Len()) {
		t.Fatalf("Result.Bytes %d, wrote %d", res.Bytes, buf.Len())
	}
	return buf.Bytes(), res
}

// The streaming writer produces exactly the bytes crypto/x509 produces for
// the same list (RSA PKCS #1 v1.5 signatures are deterministic), including
// an empty list, reason 0 without an extension, and GeneralizedTime from 2050.
func TestWriteMatchesStdlibByteForByte(t *testing.T) {
	ca := newTestCA(t)
	late := crlgen.Entry(7, 1, new([16]byte))
	late.Serial = []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	late.RevokedAt = time.Date(2050, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		n    int
		next time.Time
		tail []crl.Entry
	}{
		{name: "empty", n: 0},
		{name: "one", n: 1},
		{name: "mixed 3000", n: 3000},
		{name: "after 2049", n: 2, tail: []crl.Entry{late}, next: time.Date(2050, 6, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var es []crl.Entry
			var std []x509.RevocationListEntry
			for i := 0; i < tt.n; i++ {
				var s [16]byte
				e := crlgen.Entry(7, i, &s)
				e.Serial = append([]byte(nil), e.Serial...)
				es = append(es, e)
			}
			es = append(es, tt.tail...)
			for _, e := range es {
				std = append(std, x509.RevocationListEntry{
					SerialNumber: new(big.Int).SetBytes(e.Serial), RevocationTime: e.RevokedAt, ReasonCode: int(e.Reason),
				})
			}
			p := params(ca, 42)
			p.NextUpdate = tt.next
			got, res := write(t, p, crl.SliceEntries(es))
			next := tt.next
			if next.IsZero() {
				next = thisUpdate.Add(72 * time.Hour)
			}
			want, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
				Number: big.NewInt(42), ThisUpdate: thisUpdate, NextUpdate: next,
				RevokedCertificateEntries: std,
			}, ca.cert, ca.key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("streaming CRL (%d bytes) differs from crypto/x509's (%d bytes)", len(got), len(want))
			}
			if res.Entries != len(es) || !res.NextUpdate.Equal(next) {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// A partitioned CRL and an ARL parse, verify with the issuer's key, and
// carry the critical issuing distribution point and every reason 0–6.
func TestWriteParsesAndVerifies(t *testing.T) {
	ca := newTestCA(t)
	es := []crl.Entry{}
	for r := crl.Reason(0); r <= 6; r++ {
		es = append(es, crl.Entry{Serial: []byte{0x00, byte(0x10 + r)}, RevokedAt: thisUpdate.Add(-time.Duration(r) * time.Hour), Reason: r})
	}
	for _, tt := range []struct {
		name string
		idp  crl.IssuingDistributionPoint
		want []byte // DER of the extension value
	}{
		{name: "partition", idp: crl.IssuingDistributionPoint{URIs: []string{"ldap://dir.jpki.test/cn=crl-part-03"}, OnlyContainsUserCerts: true}},
		{name: "arl", idp: crl.IssuingDistributionPoint{OnlyContainsCACerts: true}, want: []byte{0x30, 0x03, 0x82, 0x01, 0xff}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := params(ca, 7)
			p.IssuingDistributionPoint = &tt.idp
			der, _ := write(t, p, crl.SliceEntries(es))
			rl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := rl.CheckSignatureFrom(ca.cert); err != nil {
				t.Fatalf("CheckSignatureFrom: %v", err)
			}
			if rl.Number.Int64() != 7 || !bytes.Equal(rl.AuthorityKeyId, ca.cert.SubjectKeyId) ||
				!rl.ThisUpdate.Equal(thisUpdate) || !rl.NextUpdate.Equal(thisUpdate.Add(crl.DefaultValidity)) {
				t.Fatalf("header: number %v aki %x this %v next %v", rl.Number, rl.AuthorityKeyId, rl.ThisUpdate, rl.NextUpdate)
			}
			if len(rl.RevokedCertificateEntries) != len(es) {
				t.Fatalf("%d entries", len(rl.RevokedCertificateEntries))
			}
			for i, got := range rl.RevokedCertificateEntries {
				if got.SerialNumber.Cmp(new(big.Int).SetBytes(es[i].Serial)) != 0 || got.ReasonCode != int(es[i].Reason) ||
					!got.RevocationTime.Equal(es[i].RevokedAt) {
					t.Errorf("entry %d: %v %v %d", i, got.SerialNumber, got.RevocationTime, got.ReasonCode)
				}
				if es[i].Reason == 0 && len(got.Extensions) != 0 {
					t.Errorf("reason 0 entry has extensions %v (RFC 5280 §5.3.1)", got.Extensions)
				}
			}
			var idp []byte
			for _, ext := range rl.Extensions {
				if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 28}) {
					if !ext.Critical {
						t.Error("issuing distribution point not critical (RFC 5280 §5.2.5)")
					}
					idp = ext.Value
				}
			}
			if idp == nil || tt.want != nil && !bytes.Equal(idp, tt.want) {
				t.Fatalf("issuing distribution point %x, want %x", idp, tt.want)
			}
			var parsed struct {
				DP       asn1.RawValue `asn1:"optional,tag:0"`
				OnlyUser bool          `asn1:"optional,tag:1"`
				OnlyCA   bool          `asn1:"optional,tag:2"`
			}
			if _, err := asn1.Unmarshal(idp, &parsed); err != nil {
				t.Fatal(err)
			}
			if parsed.OnlyUser != tt.idp.OnlyContainsUserCerts || parsed.OnlyCA != tt.idp.OnlyContainsCACerts {
				t.Fatalf("idp %+v", parsed)
			}
			if len(tt.idp.URIs) > 0 && !bytes.Contains(parsed.DP.Bytes, []byte(tt.idp.URIs[0])) {
				t.Fatalf("idp lacks URI: %x", parsed.DP.Bytes)
			}
		})
	}
}

func opensslCRL(t *testing.T, path string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", append([]string{"crl", "-inform", "DER", "-in", path}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Real openssl parses the CRL, verifies its signature and shows each reason
// and extension.
func TestOpenSSLAcceptsCRL(t *testing.T) {
	ca := newTestCA(t)
	var es []crl.Entry
	for r := crl.Reason(0); r <= 6; r++ {
		es = append(es, crl.Entry{Serial: []byte{0x01, 0x00, byte(r)}, RevokedAt: thisUpdate.Add(-time.Hour), Reason: r})
	}
	p := params(ca, 1234)
	p.IssuingDistributionPoint = &crl.IssuingDistributionPoint{URIs: []string{"http://crl.jpki.test/auth-03.crl"}, OnlyContainsUserCerts: true}
	der, _ := write(t, p, crl.SliceEntries(es))
	path := filepath.Join(t.TempDir(), "test.crl")
	if err := os.WriteFile(path, der, 0o644); err != nil {
		t.Fatal(err)
	}
	text := opensslCRL(t, path, "-noout", "-text", "-CAfile", ca.pem)
	for _, want := range []string{
		"verify OK",
		"Signature Algorithm: sha256WithRSAEncryption",
		"Last Update: Mar  1 09:00:00 2026 GMT",
		"Next Update: Mar  4 09:00:00 2026 GMT",
		"X509v3 CRL Number: \n                1234",
		"X509v3 Issuing Distribution Point: critical",
		"URI:http://crl.jpki.test/auth-03.crl",
		"Only User Certificates",
		"Serial Number: 010000",
		"Key Compromise", "CA Compromise", "Affiliation Changed", "Superseded",
		"Cessation Of Operation", "Certificate Hold",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl output lacks %q", want)
		}
	}
	if strings.Contains(text, "Unspecified") {
		t.Error("reason 0 written as an explicit Unspecified (RFC 5280 §5.3.1: SHOULD be absent)")
	}
	if t.Failed() {
		t.Log(text)
	}
}

// A million entries stream out, and openssl verifies the 44 MB result.
func TestOpenSSLVerifiesMillionEntryCRL(t *testing.T) {
	ca := newTestCA(t)
	path := filepath.Join(t.TempDir(), "big.crl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	res, err := crl.Write(context.Background(), f, params(ca, 99), crlgen.Source(1_000_000, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if res.Entries != 1_000_000 {
		t.Fatalf("%d entries", res.Entries)
	}
	if out := opensslCRL(t, path, "-noout", "-CAfile", ca.pem); !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl: %s", out)
	}
}

// Certificate hold (RFC 5280 §5.3.1, CPS §4.9.13–16): a held certificate is
// listed with reason certificateHold; after release it is absent from the
// next CRL; a later revocation lists it with the final reason.
func TestHoldThenReleaseThenRevoke(t *testing.T) {
	ca := newTestCA(t)
	serial := []byte{0x5a, 0x01}
	other := crl.Entry{Serial: []byte{0x01}, RevokedAt: thisUpdate.Add(-48 * time.Hour), Reason: crl.ReasonSuperseded}
	held := crl.Entry{Serial: serial, RevokedAt: thisUpdate.Add(-time.Hour), Reason: crl.ReasonCertificateHold}
	revoked := crl.Entry{Serial: serial, RevokedAt: thisUpdate.Add(47 * time.Hour), Reason: crl.ReasonKeyCompromise}
	steps := []struct {
		entries []crl.Entry
		want    int // reason of serial 0x5a01, -1 when absent
	}{
		{[]crl.Entry{other, held}, int(crl.ReasonCertificateHold)},
		{[]crl.Entry{other}, -1},
		{[]crl.Entry{other, revoked}, int(crl.ReasonKeyCompromise)},
	}
	for i, s := range steps {
		p := params(ca, int64(10+i))
		p.ThisUpdate = thisUpdate.Add(time.Duration(i) * 24 * time.Hour)
		der, _ := write(t, p, crl.SliceEntries(s.entries))
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		got := -1
		for _, e := range rl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(new(big.Int).SetBytes(serial)) == 0 {
				got = e.ReasonCode
			}
		}
		if got != s.want {
			t.Errorf("CRL %d: reason %d, want %d", i, got, s.want)
		}
	}
}

type badSigner struct{ crypto.Signer }

func (b badSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	sig, err := b.Signer.Sign(r, d, o)
	if err == nil {
		sig[10] ^= 1
	}
	return sig, err
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// Bad input yields the specific error; errors found before writing leave
// the output untouched.
func TestWriteRejects(t *testing.T) {
	ca := newTestCA(t)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leaf := *ca.cert
	leaf.IsCA = false
	noCRLSign := *ca.cert
	noCRLSign.KeyUsage = x509.KeyUsageCertSign
	e := func(serial byte, r crl.Reason) crl.Entry {
		return crl.Entry{Serial: []byte{serial}, RevokedAt: thisUpdate, Reason: r}
	}
	ok := []crl.Entry{e(1, 1), e(2, 2)}
	calls := 0
	changing := func(yield func(crl.Entry) bool) error {
		calls++
		for i := 0; i < calls; i++ {
			if !yield(e(byte(i+1), 1)) {
				return nil
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		mutate    func(*crl.Params)
		src       crl.Entries
		ctx       context.Context
		w         io.Writer
		want      error
		untouched bool
	}{
		{name: "no issuer", mutate: func(p *crl.Params) { p.Issuer = nil }, want: crl.ErrParams, untouched: true},
		{name: "no number", mutate: func(p *crl.Params) { p.Number = nil }, want: crl.ErrParams, untouched: true},
		{name: "negative number", mutate: func(p *crl.Params) { p.Number = big.NewInt(-1) }, want: crl.ErrParams, untouched: true},
		{name: "number over 20 octets", mutate: func(p *crl.Params) { p.Number = new(big.Int).Lsh(big.NewInt(1), 160) }, want: crl.ErrParams, untouched: true},
		{name: "next before this", mutate: func(p *crl.Params) { p.NextUpdate = thisUpdate.Add(-time.Hour) }, want: crl.ErrParams, untouched: true},
		{name: "both only-CA and only-user", mutate: func(p *crl.Params) {
			p.IssuingDistributionPoint = &crl.IssuingDistributionPoint{OnlyContainsCACerts: true, OnlyContainsUserCerts: true}
		}, want: crl.ErrParams, untouched: true},
		{name: "not a CA", mutate: func(p *crl.Params) { p.Issuer = &leaf }, want: crl.ErrIssuer, untouched: true},
		{name: "no cRLSign", mutate: func(p *crl.Params) { p.Issuer = &noCRLSign }, want: crl.ErrIssuer, untouched: true},
		{name: "other key", mutate: func(p *crl.Params) { p.Signer = otherKey }, want: crl.ErrKeyMismatch, untouched: true},
		{name: "descending", src: crl.SliceEntries([]crl.Entry{e(2, 1), e(1, 1)}), want: crl.ErrOrder, untouched: true},
		{name: "duplicate", src: crl.SliceEntries([]crl.Entry{e(1, 1), {Serial: []byte{0, 1}, RevokedAt: thisUpdate}}), want: crl.ErrOrder, untouched: true},
		{name: "zero serial", src: crl.SliceEntries([]crl.Entry{e(0, 1)}), want: crl.ErrEntry, untouched: true},
		{name: "21-octet serial", src: crl.SliceEntries([]crl.Entry{{Serial: bytes.Repeat([]byte{1}, 21), RevokedAt: thisUpdate}}), want: crl.ErrEntry, untouched: true},
		{name: "reason 7", src: crl.SliceEntries([]crl.Entry{e(1, 7)}), want: crl.ErrEntry, untouched: true},
		{name: "reason 8 removeFromCRL", src: crl.SliceEntries([]crl.Entry{e(1, 8)}), want: crl.ErrEntry, untouched: true},
		{name: "no revocation time", src: crl.SliceEntries([]crl.Entry{{Serial: []byte{1}, Reason: 1}}), want: crl.ErrEntry, untouched: true},
		{name: "source error", src: func(yield func(crl.Entry) bool) error { yield(e(1, 1)); return errors.New("database is locked") }, want: crl.ErrSource, untouched: true},
		{name: "cancelled", ctx: ctx, want: context.Canceled, untouched: true},
		{name: "source changed", src: changing, want: crl.ErrSourceChanged},
		{name: "faulty signer", mutate: func(p *crl.Params) { p.Signer = badSigner{ca.key} }, want: crl.ErrSign},
		{name: "write fails", w: &failingWriter{after: 100}, want: crl.ErrWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := params(ca, 1)
			if tt.mutate != nil {
				tt.mutate(&p)
			}
			src := tt.src
			if src == nil {
				src = crl.SliceEntries(ok)
			}
			c := tt.ctx
			if c == nil {
				c = context.Background()
			}
			var buf bytes.Buffer
			w := tt.w
			if w == nil {
				w = &buf
			}
			calls = 0
			_, err := crl.Write(c, w, p, src)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "crl: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.untouched && buf.Len() != 0 {
				t.Errorf("%d bytes written before the error", buf.Len())
			}
		})
	}
}

func ExampleWrite() {
	// Production: the store's iterator over revoked entries, the HSM signer.
	fmt.Println(crl.DefaultValidity, crl.DefaultIssueInterval)
	// Output: 72h0m0s 24h0m0s
}
