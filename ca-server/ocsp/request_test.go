package ocsp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	xocsp "golang.org/x/crypto/ocsp"
)

// reqShape describes one OCSPRequest to build; the zero value (plus a hash
// OID and serial) is the RFC 5019 shape the fast path reads.
type reqShape struct {
	oid          string // DER contents of the hash OID
	nullParams   bool
	otherParams  bool // parameters other than NULL
	serial       []byte
	version      bool // [0] version v1, explicitly
	requestor    bool // [1] requestorName
	requests     int  // Requests in requestList; 0 means 1
	singleExts   bool // singleRequestExtensions
	nonce        bool // [2] requestExtensions with a nonce
	signature    bool // [0] optionalSignature
	trailingData bool
}

func (s reqShape) build(t testing.TB) []byte {
	t.Helper()
	var b cryptobyte.Builder
	certID := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s.oid)) })
				if s.nullParams {
					b.AddASN1NULL()
				}
				if s.otherParams {
					b.AddASN1OctetString([]byte{1})
				}
			})
			b.AddASN1OctetString(bytes.Repeat([]byte{0xa1}, 20))
			b.AddASN1OctetString(bytes.Repeat([]byte{0xb2}, 20))
			b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(s.serial) })
		})
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if s.version {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(0) })
			}
			if s.requestor {
				b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {}) // empty RDNSequence
				})
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for range max(s.requests, 1) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						certID(b)
						if s.singleExts {
							b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
								b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {})
							})
						}
					})
				}
			})
			if s.nonce {
				b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier([]int{1, 3, 6, 1, 5, 5, 7, 48, 1, 2})
							b.AddASN1OctetString([]byte{0x04, 0x02, 0xca, 0xfe})
						})
					})
				})
			}
		})
		if s.signature {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {})
			})
		}
	})
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if s.trailingData {
		out = append(out, 0)
	}
	return out
}

const (
	oidSHA1   = "\x2b\x0e\x03\x02\x1a"
	oidSHA256 = "\x60\x86\x48\x01\x65\x03\x04\x02\x01"
	oidMD5    = "\x2a\x86\x48\x86\xf7\x0d\x02\x05"
)

var serial16 = []byte{0x5c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// requestCorpus: inputs with whether the fast path should take them.
func requestCorpus(t testing.TB) map[string]struct {
	raw  []byte
	fast bool
} {
	t.Helper()
	corpus := map[string]struct {
		raw  []byte
		fast bool
	}{}
	add := func(name string, raw []byte, fast bool) {
		corpus[name] = struct {
			raw  []byte
			fast bool
		}{raw, fast}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// CreateRequest reads only the issuer's raw subject and key.
	issuer := &x509.Certificate{RawSubject: []byte{0x30, 0}, RawSubjectPublicKeyInfo: spki}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		for _, serial := range []*big.Int{big.NewInt(1), big.NewInt(0x80), new(big.Int).SetBytes(serial16),
			new(big.Int).Lsh(big.NewInt(1), 159)} {
			raw, err := xocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, issuer, &xocsp.RequestOptions{Hash: h})
			if err != nil {
				t.Fatal(err)
			}
			add("x/crypto "+h.String()+" "+serial.Text(16), raw, true)
		}
	}
	add("absent params", reqShape{oid: oidSHA1, serial: serial16}.build(t), true)
	add("NULL params", reqShape{oid: oidSHA256, nullParams: true, serial: serial16}.build(t), true)
	add("other params", reqShape{oid: oidSHA1, otherParams: true, serial: serial16}.build(t), false)
	add("unknown hash", reqShape{oid: oidMD5, nullParams: true, serial: serial16}.build(t), false)
	add("explicit version", reqShape{oid: oidSHA1, serial: serial16, version: true}.build(t), false)
	add("requestor name", reqShape{oid: oidSHA1, serial: serial16, requestor: true}.build(t), false)
	add("two requests", reqShape{oid: oidSHA1, serial: serial16, requests: 2}.build(t), false)
	add("single request extensions", reqShape{oid: oidSHA1, serial: serial16, singleExts: true}.build(t), false)
	add("nonce", reqShape{oid: oidSHA1, serial: serial16, nonce: true}.build(t), false)
	add("signed", reqShape{oid: oidSHA1, serial: serial16, signature: true}.build(t), false)
	add("trailing data", reqShape{oid: oidSHA1, serial: serial16, trailingData: true}.build(t), false)
	add("zero serial", reqShape{oid: oidSHA1, serial: []byte{0}}.build(t), false)
	add("negative serial", reqShape{oid: oidSHA1, serial: []byte{0xff, 1}}.build(t), false)
	add("non-minimal serial", reqShape{oid: oidSHA1, serial: []byte{0, 1}}.build(t), false)
	add("empty serial", reqShape{oid: oidSHA1, serial: nil}.build(t), false)
	good := reqShape{oid: oidSHA1, serial: serial16}.build(t)
	for _, n := range []int{0, 1, 2, 10, len(good) - 1} {
		add("truncated "+big.NewInt(int64(n)).String(), good[:n], false)
	}
	long := append([]byte{0x30, 0x81, byte(len(good) - 2)}, good[2:]...) // non-minimal length
	add("long-form length", long, false)
	return corpus
}

// The fast path must agree with xocsp.ParseRequest: whatever it accepts,
// xocsp accepts with the same fields; parseRequest matches xocsp on every
// input; and the common RFC 5019 shapes do take the fast path.
func TestParseRequestMatchesXOCSP(t *testing.T) {
	for name, c := range requestCorpus(t) {
		t.Run(name, func(t *testing.T) {
			fast, ok := parseSimpleRequest(c.raw)
			if ok != c.fast {
				t.Errorf("fast path taken: %v, want %v", ok, c.fast)
			}
			ref, refErr := xocsp.ParseRequest(c.raw)
			if ok {
				checkSameRequest(t, fast, ref, refErr)
			}
			got, err := parseRequest(c.raw)
			if (err != nil) != (refErr != nil) {
				t.Fatalf("parseRequest error %v, xocsp error %v", err, refErr)
			}
			if err == nil {
				checkSameRequest(t, got, ref, refErr)
			}
		})
	}
}

func checkSameRequest(t *testing.T, got, ref *xocsp.Request, refErr error) {
	t.Helper()
	if refErr != nil {
		t.Fatalf("fast path accepted what xocsp refuses (%v)", refErr)
	}
	if got.HashAlgorithm != ref.HashAlgorithm || !bytes.Equal(got.IssuerNameHash, ref.IssuerNameHash) ||
		!bytes.Equal(got.IssuerKeyHash, ref.IssuerKeyHash) || got.SerialNumber.Cmp(ref.SerialNumber) != 0 {
		t.Fatalf("fast %+v, xocsp %+v", got, ref)
	}
}

// FuzzParseRequest: for any input the fast path accepts, xocsp.ParseRequest
// accepts it with the same fields.
func FuzzParseRequest(f *testing.F) {
	for _, c := range requestCorpus(f) {
		f.Add(c.raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := parseSimpleRequest(raw)
		if !ok {
			return
		}
		ref, err := xocsp.ParseRequest(raw)
		checkSameRequest(t, fast, ref, err)
	})
}

func BenchmarkParseRequest(b *testing.B) {
	raw := reqShape{oid: oidSHA1, nullParams: true, serial: serial16}.build(b)
	b.Run("fast path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := parseSimpleRequest(raw); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("x/crypto/ocsp baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := xocsp.ParseRequest(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
