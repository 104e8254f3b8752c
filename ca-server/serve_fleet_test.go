package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
	"madoguchi/raclient"
)

// TestLocalHoldReachesRunningServeOCSP: one machine, the SQLite default. A
// hold set with the local `ca-server hold` command while serve runs is
// answered by serve's OCSP responder as certificateHold at once (TS Art.
// 36: an immediate answer), even though serve had answered "good" and
// cached it. Seen failing on the old code: the cached "good" stood until
// the half-life refresh (~12 h), since nothing told the running responder.
func TestLocalHoldReachesRunningServeOCSP(t *testing.T) {
	testenv.SoftHSM(t)
	ctx := context.Background()
	data := t.TempDir()
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	batch := filepath.Join(t.TempDir(), "batch.txt")
	runCmd(t, "card-batch", "--data", data, "--dev", "--count", "1", "--out", batch)
	bf, err := os.Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	stock, err := vcard.ParseKeyBatch(bf)
	bf.Close()
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016"))
	vdir := t.TempDir()
	cmdOut(t, "verifier-add", "--data-dir", data, "--dev", "--name", "relying-party-1", "--out-dir", vdir)
	addrs, _ := servedAt(t, "--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0")

	pool := x509.NewCertPool()
	pool.AddCert(readPEMCert(t, filepath.Join(data, "tls-ca.crt")))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: "https://" + addrs["listening"], RootCAs: pool, Token: tok, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := raclient.TLSCertificate(enr, key)
	c, err := raclient.New(raclient.Config{BaseURL: "https://" + addrs["listening"], Certificate: tc, RootCAs: pool, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cert := (&counterTerminal{client: c, stock: stock}).issue(t, 0, "sign", "12345678901", "hold")
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
