package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/store"
	"madoguchi/internal/testenv"
)

// TestLocalHoldReachesRunningServeOCSP: one machine, the SQLite default. A
// hold set with the local `ca-server hold` command while serve runs is
// answered by serve's OCSP responder as certificateHold at once (TS Art.
// 36: an immediate answer), even though serve had answered "good" and
// cached it. Seen failing on the old code: the cached "good" stood until
// the half-life refresh (~12 h), since nothing told the running responder.
func TestLocalHoldReachesRunningServeOCSP(t *testing.T) {
	testenv.SoftHSM(t)
	data, stock, tok := devCA(t, 1)
	vdir := t.TempDir()
	cmdOut(t, "verifier-add", "--data-dir", data, "--dev", "--name", "relying-party-1", "--out-dir", vdir)
	addrs, _ := servedAt(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0")

	tc, pool := enrolTerminal(t, data, addrs["listening"], tok)
	cert := counterAt(t, addrs["listening"], tc, pool, stock).issue(t, 0, "sign", "12345678901", "hold")
	issuer := readPEMCert(t, filepath.Join(data, "ceremony", "signature-ca.crt.pem"))
	vcert, err := tls.LoadX509KeyPair(filepath.Join(vdir, "verifier.crt"), filepath.Join(vdir, "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	hc := clientTLS(t, pool, vcert)
	url := "https://" + addrs["verifier status (mutual TLS)"] + "/ocsp/signature"
	if r, raw := ocspPost(t, hc, url, cert, issuer); r == nil || r.Status != xocsp.Good {
		t.Fatalf("OCSP before the hold: %+v (%x)", r, raw)
	}
	start := time.Now()
	runCmd(t, "hold", "--data-dir", data, "--serial", cert.SerialNumber.Text(16), "--operator", "callcentre-1", "--note", "phone report 1")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, _ := ocspPost(t, hc, url, cert, issuer)
		if r != nil && r.Status == xocsp.Revoked && r.RevocationReason == xocsp.CertificateHold {
			t.Logf("serve's OCSP answered certificateHold %v after the local hold", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			if r == nil {
				t.Fatal("no OCSP answer 5 s after `ca-server hold`")
			}
			t.Fatalf("OCSP still answers status %d (0 good, 1 revoked) reason %d 5 s after `ca-server hold`", r.Status, r.RevocationReason)
		}
	}
}

// TestDBArchiveKeepsLegacyCRLs: on PostgreSQL the CRL archive is in the
// database (issue 14: every replica serves the same newest CRL); CRLs a
// data directory archived before stay listed and readable (TS Art. 17),
// and a number not newer than the newest is refused as crl.ErrNotNewer.
// (The store here is SQLite: the archive methods are the same statements.)
func TestDBArchiveKeepsLegacyCRLs(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	legacy, err := crl.NewFSArchive(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	put := func(a crl.Archive, n int64, body string) error {
		p, err := a.Create(crl.Meta{Series: "signature", Number: big.NewInt(n), ThisUpdate: now.Add(time.Duration(n) * time.Hour), NextUpdate: now.Add(time.Duration(n+72) * time.Hour)})
		if err != nil {
			return err
		}
		p.Write([]byte(body))
		_, err = p.Commit()
		return err
	}
	if err := put(legacy, 1, "one"); err != nil {
		t.Fatal(err)
	}
	a := dbArchive{st: st, legacy: legacy}
	if err := put(a, 2, "two"); err != nil {
		t.Fatal(err)
	}
	if err := put(a, 2, "again"); !errors.Is(err, crl.ErrNotNewer) {
		t.Fatalf("same number again: %v, want crl.ErrNotNewer", err)
	}
	ms, err := a.List("signature")
	if err != nil || len(ms) != 2 || ms[0].Number.Int64() != 1 || ms[1].Number.Int64() != 2 {
		t.Fatalf("list %+v, %v", ms, err)
	}
	for n, want := range map[int64]string{1: "one", 2: "two"} {
		rc, _, err := a.Open("signature", big.NewInt(n))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != want {
			t.Fatalf("CRL %d: %q", n, b)
		}
	}
	if m, err := a.InForce("signature", now.Add(90*time.Minute)); err != nil || m.Number.Int64() != 1 {
		t.Fatalf("in force between the two: %+v, %v", m, err)
	}
}
