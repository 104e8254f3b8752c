package crl_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"madoguchi/ca-server/crl"
)

func TestHexEntries(t *testing.T) {
	ca := newTestCA(t)
	rows := []struct {
		serial string
		reason int
	}{{"f", 1}, {"0ff", 6}, {"100", 0}, {"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", 4}}
	each := func(_ context.Context, yield func(string, time.Time, int) bool) error {
		for _, r := range rows {
			if !yield(r.serial, thisUpdate, r.reason) {
				return nil
			}
		}
		return nil
	}
	var buf bytes.Buffer
	if _, err := crl.Write(context.Background(), &buf, params(ca, 1), crl.HexEntries(context.Background(), each)); err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"f", "ff", "100", "7fffffffffffffffffffffffffffffff"}
	for i, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber.Text(16) != want[i] || e.ReasonCode != rows[i].reason {
			t.Errorf("entry %d: %x reason %d", i, e.SerialNumber, e.ReasonCode)
		}
	}
	rows = append(rows, struct {
		serial string
		reason int
	}{"xyz", 1})
	if _, err := crl.Write(context.Background(), &bytes.Buffer{}, params(ca, 2), crl.HexEntries(context.Background(), each)); !errors.Is(err, crl.ErrEntry) {
		t.Fatalf("bad hex: %v", err)
	}
}
