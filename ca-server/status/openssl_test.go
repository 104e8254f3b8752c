package status

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/ocsp"
	"madoguchi/ca-server/revocation"
	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

func (e *env) saveCRL(t *testing.T, series, name string) string {
	t.Helper()
	rc, _, err := e.svc.CurrentCRL(series)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	der, _ := io.ReadAll(rc)
	if _, err := x509.ParseRevocationList(der); err != nil {
		t.Fatalf("%s: Go cannot parse: %v", series, err)
	}
	return writePEM(t, filepath.Join(e.dir, name), "X509 CRL", der)
}

// TestOpenSSLAcceptsCRLsARLsAndOCSP is the issue's "done when": openssl
// parses every CRL and ARL, `openssl verify -crl_check` rejects a revoked
// and a held certificate and accepts a good one, and `openssl ocsp` gets
// good / revoked / unknown from the responder over the status source.
func TestOpenSSLAcceptsCRLsARLsAndOCSP(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	goodCert, _ := e.issue(t, residentA, store.CertSign, true)
	revCert, rev := e.issue(t, residentB, store.CertSign, true)
	heldCert, held := e.issue(t, "11111111111", store.CertSign, true)
	authCert, _ := e.issue(t, residentA, store.CertAuth, true)
	e.clk.Add(time.Hour)
	if _, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, rev.Serial, revokeReqFor(residentB, "r1", "sign", "key-compromise")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Hold(ctx, "callcentre1", held.Serial, "lost card reported by phone"); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Minute)
	if _, err := e.svc.PublishAll(ctx, TriggerOnDemand); err != nil {
		t.Fatal(err)
	}
	caPEM := writePEM(t, filepath.Join(e.dir, "sig-ca.pem"), "CERTIFICATE", e.sig.cert.Raw)
	crlPEM := e.saveCRL(t, "signature", "sig.crl")
	arlPEM := e.saveCRL(t, "signature-arl", "sig-arl.crl")
	authCRL := e.saveCRL(t, "user-auth", "auth.crl")
	e.saveCRL(t, "user-auth-arl", "auth-arl.crl")

	out, err := openssl(t, "crl", "-in", crlPEM, "-noout", "-text", "-CAfile", caPEM)
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	for _, want := range []string{"verify OK", "X509v3 CRL Number", "Key Compromise", "Certificate Hold", strings.ToUpper(hexSerial(revCert)), strings.ToUpper(hexSerial(heldCert))} {
		if !strings.Contains(out, want) {
			t.Errorf("CRL text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, strings.ToUpper(hexSerial(goodCert))) {
		t.Error("good certificate listed")
	}
	out, err = openssl(t, "crl", "-in", arlPEM, "-noout", "-text", "-CAfile", caPEM)
	if err != nil || !strings.Contains(out, "Only CA Certificates") || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl ARL: %v\n%s", err, out)
	}
	if out, err := openssl(t, "crl", "-in", authCRL, "-noout", "-text"); err != nil || strings.Contains(out, "Key Compromise") {
		t.Fatalf("user-auth CRL: %v\n%s", err, out)
	}

	verify := func(c *x509.Certificate, name string) (string, error) {
		p := writePEM(t, filepath.Join(e.dir, name), "CERTIFICATE", c.Raw)
		return openssl(t, "verify", "-attime", strconv.FormatInt(t0.Add(2*time.Hour).Unix(), 10), "-crl_check", "-CAfile", caPEM, "-CRLfile", crlPEM, p)
	}
	if out, err := verify(goodCert, "good.pem"); err != nil || !strings.Contains(out, "OK") {
		t.Errorf("good certificate refused: %v\n%s", err, out)
	}
	if out, err := verify(revCert, "revoked.pem"); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("revoked certificate accepted: %v\n%s", err, out)
	}
	if out, err := verify(heldCert, "held.pem"); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("held certificate accepted: %v\n%s", err, out)
	}

	// OCSP through the real openssl client against the responder
	respKey := rsaKey(t, 5)
	rder, err := ocsp.IssueResponderCertificate(ocsp.ResponderCertRequest{Issuer: e.sig.cert, IssuerSigner: e.sig.key, PublicKey: respKey.Public(),
		Subject: pkix.Name{CommonName: "OCSP responder (test)"}, Serial: big.NewInt(77), NotBefore: t0, Policy: asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 1, 3, 330}})
	if err != nil {
		t.Fatal(err)
	}
	rcert, _ := x509.ParseCertificate(rder)
	resp, err := ocsp.New(ocsp.Config{Issuer: e.sig.cert, ResponderCert: rcert, Signer: respKey, Source: e.svc.OCSPSource(store.CertSign), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(resp) // plain loopback listener of the same handler
	defer srv.Close()
	stranger, _ := e.issue(t, "22222222222", store.CertSign, false) // signed by the CA, never delivered
	for _, c := range []struct {
		cert *x509.Certificate
		want string
	}{{goodCert, ": good"}, {revCert, ": revoked"}, {heldCert, ": revoked"}, {stranger, ": unknown"}, {authCert, ""}} {
		p := writePEM(t, filepath.Join(e.dir, "q.pem"), "CERTIFICATE", c.cert.Raw)
		out, err := openssl(t, "ocsp", "-issuer", caPEM, "-cert", p, "-url", srv.URL, "-CAfile", caPEM, "-resp_text")
		if c.want == "" { // another CA's certificate: the responder refuses it
			if !strings.Contains(out, "unauthorized") {
				t.Errorf("other CA's certificate: %v\n%s", err, out)
			}
			continue
		}
		if err != nil || !strings.Contains(out, c.want) || !strings.Contains(out, "Response verify OK") {
			t.Errorf("ocsp %s: %v\n%s", c.want, err, out)
		}
		if c.cert == revCert && !strings.Contains(out, "Reason: keyCompromise") {
			t.Errorf("revocation reason missing:\n%s", out)
		}
		if c.cert == heldCert && !strings.Contains(out, "Reason: certificateHold") {
			t.Errorf("hold reason missing:\n%s", out)
		}
	}
	os.Remove(filepath.Join(e.dir, "q.pem"))
}

// TestCompromiseDrill: CPS §4.9.1.1(3), §4.9.7, §4.9.12(1): everything the
// key signed is revoked with reason 2 in one transaction and a new CRL and
// ARL are published at once.
func TestCompromiseDrill(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, _ := e.issue(t, residentA, store.CertSign, true)
	b, _ := e.issue(t, residentB, store.CertSign, false)
	other, _ := e.issue(t, residentA, store.CertAuth, true)
	if _, err := e.svc.PublishAll(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Hour)
	n, ps, err := e.svc.CompromiseDrill(ctx, "signature", "custodian-a")
	if err != nil || n != 2 || len(ps) != 2 || ps[0].Meta.Number.Int64() != 2 || !ps[0].Meta.ThisUpdate.Equal(t0.Add(time.Hour)) {
		t.Fatalf("drill: %v %d %+v", err, n, ps)
	}
	caPEM := writePEM(t, filepath.Join(e.dir, "sig-ca.pem"), "CERTIFICATE", e.sig.cert.Raw)
	out, err := openssl(t, "crl", "-in", e.saveCRL(t, "signature", "sig.crl"), "-noout", "-text", "-CAfile", caPEM)
	if err != nil || strings.Count(out, "CA Compromise") != 2 {
		t.Fatalf("CRL after drill: %v\n%s", err, out)
	}
	for _, c := range []*x509.Certificate{a, b} {
		if !strings.Contains(out, strings.ToUpper(hexSerial(c))) {
			t.Errorf("%x not listed", c.SerialNumber)
		}
	}
	out, err = openssl(t, "crl", "-in", e.saveCRL(t, "signature-arl", "arl.crl"), "-noout", "-text")
	if err != nil || !strings.Contains(out, "CA Compromise") || !strings.Contains(out, strings.ToUpper(hexSerial(e.sig.cert))) {
		t.Fatalf("ARL after drill: %v\n%s", err, out)
	}
	if e.cert(t, other.SerialNumber.Text(16)).State != store.StateDelivered {
		t.Fatal("the other CA's certificate was revoked")
	}
	if r := e.lastAudit(t); r.Action != "crl.publish" {
		t.Fatalf("last audit = %+v", r)
	}
	if _, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, a.SerialNumber.Text(16), revokeReq("x", "sign", "stop-using")); wire.CodeOf(err) != wire.CodeAlreadyRevoked {
		t.Fatalf("revoke after drill: %v", err)
	}
}
