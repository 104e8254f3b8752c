package crl_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"io"
	"math/big"
	"testing"

	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/crl/internal/crlgen"
)

const benchEntries = 1_000_000

// BenchmarkStreamingCRL1M writes a 1,000,000-entry CRL (16-byte serials,
// mixed reasons) with the streaming writer; the entries are generated on the
// fly, as a store cursor would yield them. Compare with
// BenchmarkStdlibCRL1M, run in the same invocation; peak memory of each is
// measured by `go run ./ca-server/crl/cmd/crlbench`.
func BenchmarkStreamingCRL1M(b *testing.B) {
	ca := newTestCA(b)
	src := crlgen.Source(benchEntries, 1)
	p := crl.Params{Issuer: ca.cert, Signer: ca.key, Number: big.NewInt(1), ThisUpdate: thisUpdate}
	b.ReportAllocs()
	var size int64
	for b.Loop() {
		res, err := crl.Write(context.Background(), io.Discard, p, src)
		if err != nil {
			b.Fatal(err)
		}
		size = res.Bytes
	}
	b.ReportMetric(float64(size)/1e6, "MB/crl")
}

// BenchmarkStdlibCRL1M is the baseline: crypto/x509.CreateRevocationList on
// the same entries and key. Building the entry slice is not timed (that
// favours the baseline).
func BenchmarkStdlibCRL1M(b *testing.B) {
	ca := newTestCA(b)
	entries := crlgen.Stdlib(benchEntries, 1)
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: thisUpdate,
		NextUpdate: thisUpdate.Add(crl.DefaultValidity), RevokedCertificateEntries: entries}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
		if err != nil {
			b.Fatal(err)
		}
		size = len(der)
	}
	b.ReportMetric(float64(size)/1e6, "MB/crl")
}
