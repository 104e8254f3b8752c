package crl_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/crl"
)

// Every serial is in exactly one shard, the ranges tile the serial space
// in order, and the CA's serials (16 random octets, top bits 01) spread
// evenly over the shards.
func TestPartitionRangesTileTheSerialSpace(t *testing.T) {
	p := crl.Partition{Shards: 64, URL: "http://crl.jpki.test/auth/{shard}.crl"}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if err := (crl.Partition{Shards: 4, URL: "http://crl.jpki.test/auth.crl"}).Check(); err == nil {
		t.Fatal("a partition URL without {shard} accepted")
	}
	for i := range p.Shards {
		lo, hi := p.Range(i)
		if (i == 0) != (lo == nil) || (i == p.Shards-1) != (hi == nil) {
			t.Fatalf("shard %d: bounds %v %v", i, lo, hi)
		}
		if lo != nil && p.ShardOf(lo) != i {
			t.Fatalf("shard %d: its lower bound is in shard %d", i, p.ShardOf(lo))
		}
		if hi != nil && p.ShardOf(new(big.Int).Sub(hi, big.NewInt(1))) != i {
			t.Fatalf("shard %d: the serial below its upper bound is elsewhere", i)
		}
	}
	for _, s := range []*big.Int{big.NewInt(1), new(big.Int).Lsh(big.NewInt(1), 159)} {
		if got := p.ShardOf(s); got != 0 && got != p.Shards-1 {
			t.Fatalf("serial %x outside the space in shard %d", s, got)
		}
	}
	counts := make([]int, p.Shards)
	for range 64 * 200 {
		counts[p.ShardOf(caSerial(t))]++
	}
	for i, c := range counts {
		if c < 100 || c > 300 { // mean 200; a binomial far tail
			t.Fatalf("shard %d got %d of 12,800 random serials", i, c)
		}
	}
}

// caSerial draws a serial as issuance.newSerial does.
func caSerial(t testing.TB) *big.Int {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40
	return new(big.Int).SetBytes(b)
}

// A partitioned CRL as relying parties check it: certificates name their
// shard in cRLDistributionPoints, each shard carries the critical
// IssuingDistributionPoint of that URL and lists exactly the revoked
// serials of its range; x509.ParseRevocationList reads every shard, and
// `openssl verify -crl_check` reports a revoked certificate as revoked and
// a good one as OK against its own shard, and refuses to decide from
// another shard's CRL (the scope does not match: RFC 5280 §6.3.3 (b)).
func TestPartitionedCRLsWithOpenSSL(t *testing.T) {
	ca := newTestCA(t)
	p := crl.Partition{Shards: 4, URL: "http://crl.jpki.test/auth/{shard}.crl"}
	dir := t.TempDir()
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	type leaf struct {
		serial  *big.Int
		path    string
		revoked bool
	}
	var leaves []leaf
	for i := range 24 {
		s := caSerial(t)
		tmpl := &x509.Certificate{
			SerialNumber: s, Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: thisUpdate.Add(-24 * time.Hour), NotAfter: thisUpdate.AddDate(1, 0, 0),
			KeyUsage: x509.KeyUsageDigitalSignature, CRLDistributionPoints: []string{p.URLFor(p.ShardOf(s))},
			AuthorityKeyId: ca.cert.SubjectKeyId,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &leafKey.PublicKey, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, s.Text(16)+".pem")
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf{serial: s, path: path, revoked: i%2 == 0})
	}
	slices.SortFunc(leaves, func(a, b leaf) int { return a.serial.Cmp(b.serial) })
	var all []crl.Entry
	for _, l := range leaves {
		if l.revoked {
			all = append(all, crl.Entry{Serial: l.serial.Bytes(), RevokedAt: thisUpdate.Add(-time.Hour), Reason: 1})
		}
	}
	shardPath := make([]string, p.Shards)
	listed := 0
	for i := range p.Shards {
		lo, hi := p.Range(i)
		prm := params(ca, int64(100+i))
		prm.IssuingDistributionPoint = p.IDP(i)
		var buf bytes.Buffer
		res, err := crl.Write(context.Background(), &buf, prm, crl.RangeEntries(crl.SliceEntries(all), lo, hi))
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		rl, err := x509.ParseRevocationList(buf.Bytes())
		if err != nil {
			t.Fatalf("shard %d: ParseRevocationList: %v", i, err)
		}
		if err := rl.CheckSignatureFrom(ca.cert); err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if len(rl.RevokedCertificateEntries) != res.Entries {
			t.Fatalf("shard %d: parsed %d entries, wrote %d", i, len(rl.RevokedCertificateEntries), res.Entries)
		}
		for _, e := range rl.RevokedCertificateEntries {
			if p.ShardOf(e.SerialNumber) != i {
				t.Fatalf("shard %d lists %x of shard %d", i, e.SerialNumber, p.ShardOf(e.SerialNumber))
			}
		}
		listed += res.Entries
		shardPath[i] = filepath.Join(dir, "shard-"+string(rune('0'+i))+".crl.pem")
		if err := os.WriteFile(shardPath[i], pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: buf.Bytes()}), 0o644); err != nil {
			t.Fatal(err)
		}
		text := opensslCRL(t, shardPath[i], "-inform", "PEM", "-noout", "-text")
		if !strings.Contains(text, "X509v3 Issuing Distribution Point: critical") || !strings.Contains(text, "URI:"+p.URLFor(i)) {
			t.Fatalf("shard %d: openssl shows no IDP for %s:\n%s", i, p.URLFor(i), text)
		}
	}
	if listed != len(all) {
		t.Fatalf("shards list %d entries, %d revoked", listed, len(all))
	}
	verify := func(l leaf, crlPath string) (string, error) {
		out, err := exec.Command("openssl", "verify", "-crl_check", "-attime", strconv.FormatInt(thisUpdate.Add(time.Hour).Unix(), 10), "-CAfile", ca.pem, "-CRLfile", crlPath, l.path).CombinedOutput()
		return string(out), err
	}
	for _, l := range leaves {
		own := p.ShardOf(l.serial)
		out, err := verify(l, shardPath[own])
		switch {
		case l.revoked && (err == nil || !strings.Contains(out, "certificate revoked")):
			t.Errorf("revoked %x against its shard %d: %v %s", l.serial, own, err, out)
		case !l.revoked && (err != nil || !strings.Contains(out, ": OK")):
			t.Errorf("good %x against its shard %d: %v %s", l.serial, own, err, out)
		}
		other := (own + 1) % p.Shards
		if out, err := verify(l, shardPath[other]); err == nil || !strings.Contains(out, "different CRL scope") {
			t.Errorf("%x decided by shard %d, not its own (%d): %v %s", l.serial, other, own, err, out)
		}
	}
}
