package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/profiles"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
)

// TestPartitionedCRLEndToEnd: a profile override partitions the
// user-authentication CA's CRL in 4 shards (RFC 5280 §5.2.5, as Boulder
// shards its CRLs; docs/CAPACITY.md: a 10 M-entry CRL is too large for a
// relying party). Through the real serve (SoftHSM keys, mutual TLS, the
// verifier listener) and openssl:
//
//   - every certificate's cRLDistributionPoints names its shard
//     (crl.Partition.ShardOf of its serial; RFC 5280 §4.2.1.13);
//   - `crl publish --now` signs one CRL per shard, each with a critical
//     issuingDistributionPoint naming that URL, its own CRL number
//     sequence (§5.2.3) and only the serials of its range;
//   - the verifier listener serves each shard at the path of that URL
//     (GET /crl/user-auth/{shard}); `openssl verify -crl_check` reports a
//     revoked certificate revoked and a good one good against its own
//     shard, and refuses another shard's CRL for it (error 44, "different
//     CRL scope");
//   - the signature CA (default profile, one shard) keeps its one CRL at
//     GET /crl/signature, without an issuingDistributionPoint;
//   - the ARL stays unpartitioned.
//
// On the code before this change the certificates named
// http://…/user-authentication/{issuerKeyID}.crl (the {shard} placeholder
// was refused by the profile loader), and there was one CRL.
func TestPartitionedCRLEndToEnd(t *testing.T) { partitionedCRLEndToEnd(t) }

// TestPartitionedCRLEndToEndPostgres: the same on PostgreSQL, where the
// shards are archived in the database (crl_archive) and the range filter
// runs in PostgreSQL.
func TestPartitionedCRLEndToEndPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	partitionedCRLEndToEnd(t, "--database", pg.DSN)
}

func partitionedCRLEndToEnd(t *testing.T, storeFlags ...string) {
	testenv.SoftHSM(t)
	ctx := context.Background()
	const cards = 6
	data, stock, tok := devCA(t, cards, storeFlags...)
	vdir := t.TempDir()
	cmdOut(t, append([]string{"verifier-add", "--data-dir", data, "--dev", "--name", "relying-party-1", "--out-dir", vdir}, storeFlags...)...)

	// the override: 4 shards, the URL path is the verifier listener's route
	const shards = 4
	profDir := t.TempDir()
	raw, err := profiles.FS.ReadFile("user-authentication.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["crlShards"], m["crlDistributionPoint"] = shards, "http://crl.jpki.madoguchi.example/crl/user-auth/{shard}"
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(profDir, "user-authentication.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	serveArgs := []string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0",
		"--profiles", profDir}
	serveArgs = append(serveArgs, storeFlags...)

	// 1. issue: one auth certificate per card (one person each), one
	// signature certificate; revoke every other auth certificate and the
	// signature one
	addrs, stopA := servedAt(t, serveArgs...)
	terminalCert, pool := enrolTerminal(t, data, addrs["listening"], tok)
	ct := counterAt(t, addrs["listening"], terminalCert, pool, stock)
	resident := func(i int) string { return strings.Repeat(fmt.Sprint(i+1), 11) }
	var auth []*x509.Certificate
	revoked := map[string]bool{}
	for i := range cards {
		auth = append(auth, ct.issue(t, i, "auth", resident(i), fmt.Sprintf("auth-%d", i)))
	}
	sign := ct.issue(t, 0, "sign", resident(0), "sign-0")
	revoke := func(cert *x509.Certificate, typ, who string) {
		t.Helper()
		serial := cert.SerialNumber.Text(16)
		if _, err := ct.client.Revoke(ctx, "op-1", serial, wire.RevokeRequest{RequestID: "rv-" + serial, CertType: typ, Kind: "key-compromise",
			WrittenRequest: "form 2026-0042", IdentityDocument: "my number card", ResidentCode: who}); err != nil {
			t.Fatalf("revoke %s: %v", serial, err)
		}
		revoked[serial] = true
	}
	for i := 0; i < cards; i += 2 {
		revoke(auth[i], "auth", resident(i))
	}
	revoke(sign, "sign", resident(0))
	stopA()

	part := crl.Partition{Shards: shards, URL: "http://crl.jpki.madoguchi.example/crl/user-auth/{shard}"}
	for _, a := range auth {
		want := part.URLFor(part.ShardOf(a.SerialNumber))
		if len(a.CRLDistributionPoints) != 1 || a.CRLDistributionPoints[0] != want {
			t.Fatalf("certificate %x names %q, want its shard %q", a.SerialNumber, a.CRLDistributionPoints, want)
		}
	}
	if len(sign.CRLDistributionPoints) != 1 || strings.Contains(sign.CRLDistributionPoints[0], "/crl/") || !strings.HasSuffix(sign.CRLDistributionPoints[0], ".crl") {
		t.Fatalf("signature certificate (one CRL) names %q", sign.CRLDistributionPoints)
	}

	// 2. publish: one CRL per shard, the ARL once
	out := cmdOut(t, append([]string{"crl", "publish", "--now", "--data-dir", data, "--dev", "--profiles", profDir}, storeFlags...)...)
	for _, s := range []string{"user-auth-s0 #", "user-auth-s1 #", "user-auth-s2 #", "user-auth-s3 #", "user-auth-arl #", "signature #"} {
		if !strings.Contains(out, s) {
			t.Fatalf("crl publish --now did not publish %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "user-auth #") || strings.Contains(out, "user-auth-s4") || strings.Contains(out, "user-auth-arl-s") {
		t.Fatalf("crl publish --now published an unpartitioned or extra user-auth CRL:\n%s", out)
	}

	// 3. the verifier listener serves each shard at its URL's path
	addrs, _ = servedAt(t, serveArgs...)
	vcert, err := tls.LoadX509KeyPair(filepath.Join(vdir, "verifier.crt"), filepath.Join(vdir, "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	hc := clientTLS(t, pool, vcert)
	vbase := "https://" + addrs["verifier status (mutual TLS)"]
	authCA := readPEMCert(t, filepath.Join(data, "ceremony", "user-auth-ca.crt.pem"))
	dir := t.TempDir()
	writePEMFile := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := writePEMFile("user-auth-ca.pem", "CERTIFICATE", authCA.Raw)
	shardFiles := make([]string, shards)
	for i := range shards {
		u, _ := url.Parse(part.URLFor(i))
		code, body := get(t, hc, vbase+u.Path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u.Path, code, body)
		}
		l, err := x509.ParseRevocationList(body)
		if err != nil || l.CheckSignatureFrom(authCA) != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		lo, hi := part.Range(i)
		for _, e := range l.RevokedCertificateEntries {
			if (lo != nil && e.SerialNumber.Cmp(lo) < 0) || (hi != nil && e.SerialNumber.Cmp(hi) >= 0) || !revoked[e.SerialNumber.Text(16)] {
				t.Errorf("shard %d lists %x, outside its range or not revoked", i, e.SerialNumber)
			}
		}
		for _, a := range auth {
			listed := false
			for _, e := range l.RevokedCertificateEntries {
				listed = listed || e.SerialNumber.Cmp(a.SerialNumber) == 0
			}
			if want := revoked[a.SerialNumber.Text(16)] && part.ShardOf(a.SerialNumber) == i; listed != want {
				t.Errorf("shard %d lists %x: %v, want %v", i, a.SerialNumber, listed, want)
			}
		}
		shardFiles[i] = writePEMFile(fmt.Sprintf("shard%d.crl", i), "X509 CRL", body)
		o, err := exec.Command("openssl", "crl", "-in", shardFiles[i], "-noout", "-text").CombinedOutput()
		if err != nil || !strings.Contains(string(o), "X509v3 Issuing Distribution Point: critical") || !strings.Contains(string(o), "URI:"+part.URLFor(i)) ||
			!strings.Contains(string(o), "Only User Certificates") {
			t.Fatalf("openssl crl shard %d: %v\n%s", i, err, o)
		}
	}
	verify := func(cert *x509.Certificate, shard int) (string, error) {
		f := writePEMFile(fmt.Sprintf("%x.pem", cert.SerialNumber), "CERTIFICATE", cert.Raw)
		o, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", caFile, "-CRLfile", shardFiles[shard], f).CombinedOutput()
		return string(o), err
	}
	for _, a := range auth {
		own := part.ShardOf(a.SerialNumber)
		o, err := verify(a, own)
		if revoked[a.SerialNumber.Text(16)] {
			if err == nil || !strings.Contains(o, "certificate revoked") {
				t.Errorf("revoked %x against its shard %d: %v\n%s", a.SerialNumber, own, err, o)
			}
		} else if err != nil || !strings.Contains(o, ": OK") {
			t.Errorf("good %x against its shard %d: %v\n%s", a.SerialNumber, own, err, o)
		}
		// another shard's CRL does not cover this certificate (its IDP
		// names another distribution point): openssl refuses it, error 44
		other := (own + 1) % shards
		if o, err := verify(a, other); err == nil || !strings.Contains(o, "different CRL scope") {
			t.Errorf("%x against shard %d (not its own): %v\n%s, want no CRL in scope", a.SerialNumber, other, err, o)
		}
	}

	// 4. unpartitioned paths: the signature CA's one CRL (no IDP), its
	// shard 0 alias; the partitioned CA has no whole CRL; bad shards
	code, body := get(t, hc, vbase+"/crl/signature")
	if code != http.StatusOK {
		t.Fatalf("GET /crl/signature: %d %s", code, body)
	}
	if l, err := x509.ParseRevocationList(body); err != nil || len(l.RevokedCertificateEntries) != 1 {
		t.Fatalf("signature CRL: %v", err)
	} else {
		for _, e := range l.Extensions {
			if e.Id.String() == "2.5.29.28" {
				t.Fatal("the one signature CRL carries an issuingDistributionPoint")
			}
		}
	}
	if code, b0 := get(t, hc, vbase+"/crl/signature/0"); code != http.StatusOK || string(b0) != string(body) {
		t.Fatalf("GET /crl/signature/0: %d", code)
	}
	for _, p := range []string{"/crl/user-auth", "/crl/user-auth/4", "/crl/user-auth/01", "/crl/user-auth/-1", "/crl/user-auth/x", "/crl/signature/1"} {
		if code, b := get(t, hc, vbase+p); code != http.StatusNotFound || !strings.Contains(string(b), string(wire.CodeNotFound)) {
			t.Errorf("GET %s: %d %s, want 404 not_found", p, code, b)
		}
	}
	// ARLs stay unpartitioned
	if code, b := get(t, hc, vbase+"/arl/user-auth"); code != http.StatusOK {
		t.Fatalf("GET /arl/user-auth: %d %s", code, b)
	}
	// crl archive --shard writes a shard's CRL in force
	der := filepath.Join(dir, "archived.crl")
	cmdOut(t, append([]string{"crl", "archive", "--data-dir", data, "--ca", "user-auth", "--shard", "2", "--at", time.Now().Format(time.RFC3339), "--out", der}, storeFlags...)...)
	if b, err := os.ReadFile(der); err != nil {
		t.Fatal(err)
	} else if l, err := x509.ParseRevocationList(b); err != nil || l.CheckSignatureFrom(authCA) != nil {
		t.Fatalf("archived shard 2: %v", err)
	}
}
