package status

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/revocation"
	"madoguchi/ca-server/store"
)

// newGenCA is a signature CA key generation with its own subject key
// identifier and the subject name every generation shares.
func newGenCA(t *testing.T, gen, keyIndex int) testCA {
	t.Helper()
	key := rsaKey(t, keyIndex)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(0x2000 + gen)), Subject: pkix.Name{CommonName: "JPKI Signature CA (test)", Organization: []string{"Madoguchi test"}},
		NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(9, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{0x5a, byte(gen), 1, 2, 3, 4, 5, 6}, SignatureAlgorithm: x509.SHA256WithRSA}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert, key}
}

// link certifies subject's key under signer (a rollover link certificate).
func link(t *testing.T, serial int64, subject, signer testCA) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), RawSubject: subject.cert.RawSubject, NotBefore: t0.AddDate(-1, 0, 0),
		NotAfter: t0.AddDate(8, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId: subject.cert.SubjectKeyId, AuthorityKeyId: signer.cert.SubjectKeyId}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, subject.key.Public(), signer.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func (e *env) crlOf(t *testing.T, series string) *x509.RevocationList {
	t.Helper()
	rc, _, err := e.svc.CurrentCRL(series)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf strings.Builder
	b := make([]byte, 32<<10)
	for {
		n, err := rc.Read(b)
		buf.Write(b[:n])
		if err != nil {
			break
		}
	}
	l, err := x509.ParseRevocationList([]byte(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func listed(l *x509.RevocationList) []string {
	var out []string
	for _, e := range l.RevokedCertificateEntries {
		out = append(out, e.SerialNumber.Text(16))
	}
	return out
}

// TestCRLPerKeyGeneration: CPS §5.6: after a CA key changeover the old key
// (CRL-only) and the new key each sign a CRL and an ARL; each CRL lists
// the revoked certificates its key issued, both verify with `openssl crl
// -CAfile` against their own CA certificate only, and the old key's CRLs
// stop once its CRL signing ends. A CA compromise lists every generation's
// CA certificate and both link certificates in the ARL of the key that
// signed each (CPS §7.2(2)(3)).
func TestCRLPerKeyGeneration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	g1, g2 := newGenCA(t, 1, 0), newGenCA(t, 2, 5)
	e.sig = g1
	oldCert, oldIs := e.issue(t, residentA, store.CertSign, true)
	e.sig = g2
	newCert, newIs := e.issue(t, residentB, store.CertSign, true)
	oldWithNew, newWithOld := link(t, 0x77, g1, g2), link(t, 0x78, g2, g1)
	cfg := e.svc.cfg
	cfg.CAs = []CA{{Name: "signature", CertType: store.CertSign, Certificate: g2.cert, Signer: g2.key, Generation: 2,
		Older: []KeyGeneration{{Generation: 1, Certificate: g1.cert, Signer: g1.key, Until: t0.AddDate(5, 0, 1)}},
		Links: []*x509.Certificate{oldWithNew, newWithOld}}}
	var err error
	if e.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Hour)
	for i, s := range []string{oldIs.Serial, newIs.Serial} {
		if _, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, s, revokeReqFor([]string{residentA, residentB}[i], "gen-"+s, "sign", "key-compromise")); err != nil {
			t.Fatalf("revoke %d: %v", i, err)
		}
	}
	ps, err := e.svc.PublishAll(ctx, TriggerOnDemand)
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, p := range ps {
		series = append(series, p.Series)
	}
	if want := []string{"signature-g2", "signature-g2-arl", "signature", "signature-arl"}; !slices.Equal(series, want) {
		t.Fatalf("published %q, want %q", series, want)
	}
	oldCRL, newCRL := e.crlOf(t, "signature"), e.crlOf(t, "signature-g2")
	if got := listed(oldCRL); !slices.Equal(got, []string{oldCert.SerialNumber.Text(16)}) {
		t.Errorf("old key's CRL lists %q, want only the old key's certificate", got)
	}
	if got := listed(newCRL); !slices.Equal(got, []string{newCert.SerialNumber.Text(16)}) {
		t.Errorf("new key's CRL lists %q, want only the new key's certificate", got)
	}
	if oldCRL.CheckSignatureFrom(g1.cert) != nil || newCRL.CheckSignatureFrom(g2.cert) != nil {
		t.Fatal("a generation's CRL is not signed by its own key")
	}
	g1PEM := writePEM(t, filepath.Join(e.dir, "g1.pem"), "CERTIFICATE", g1.cert.Raw)
	g2PEM := writePEM(t, filepath.Join(e.dir, "g2.pem"), "CERTIFICATE", g2.cert.Raw)
	for _, c := range []struct{ series, ca, other string }{{"signature", g1PEM, g2PEM}, {"signature-g2", g2PEM, g1PEM}} {
		p := e.saveCRL(t, c.series, c.series+".crl")
		if out, err := openssl(t, "crl", "-in", p, "-noout", "-CAfile", c.ca); err != nil || !strings.Contains(out, "verify OK") {
			t.Fatalf("openssl crl %s: %v\n%s", c.series, err, out)
		}
		if out, _ := openssl(t, "crl", "-in", p, "-noout", "-CAfile", c.other); strings.Contains(out, "verify OK") {
			t.Fatalf("%s verified under the other generation's certificate:\n%s", c.series, out)
		}
	}

	if _, _, err := e.svc.CompromiseDrill(ctx, "signature", "drill-op"); err != nil {
		t.Fatal(err)
	}
	arl1, arl2 := listed(e.crlOf(t, "signature-arl")), listed(e.crlOf(t, "signature-g2-arl"))
	want1 := []string{g1.cert.SerialNumber.Text(16), newWithOld.SerialNumber.Text(16)}
	want2 := []string{g2.cert.SerialNumber.Text(16), oldWithNew.SerialNumber.Text(16)}
	slices.Sort(arl1)
	slices.Sort(arl2)
	slices.Sort(want1)
	slices.Sort(want2)
	if !slices.Equal(arl1, want1) || !slices.Equal(arl2, want2) {
		t.Fatalf("ARLs after compromise: old %q (want %q), new %q (want %q)", arl1, want1, arl2, want2)
	}

	// The old key's CRL signing ends: only the new key publishes.
	e.clk.Add(5*365*24*time.Hour + 72*time.Hour)
	ps, err = e.svc.Publish(ctx, "signature", TriggerOnDemand)
	if err != nil || len(ps) != 2 || ps[0].Generation != 2 || ps[1].Generation != 2 {
		t.Fatalf("after the old key's CRL signing ended: %v %+v", err, ps)
	}
}

// TestExpiredLeaveCRLAndHoldsEnd: a revoked certificate stays on the CRL
// until one scheduled CRL after its expiry and is then left out (CPS
// glossary "CRL": certificates revoked within their validity; RFC 5280
// §5.1.2.6); a hold ends when the certificate expires (CPS §4.9.16): the
// schedule releases it with a recorded system request and an audit record.
func TestExpiredLeaveCRLAndHoldsEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	revCert, rev := e.issue(t, residentA, store.CertSign, true)
	heldCert, held := e.issue(t, residentB, store.CertSign, true)
	e.clk.Add(time.Hour)
	if _, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, rev.Serial, revokeReq("x1", "sign", "key-compromise")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Hold(ctx, "callcentre1", held.Serial, "lost card reported by phone"); err != nil {
		t.Fatal(err)
	}
	// just after expiry: both still listed; the hold has not yet been ended
	e.clk.Add(revCert.NotAfter.Sub(e.clk.Now()) + time.Hour)
	if _, err := e.svc.PublishAll(ctx, TriggerSchedule); err != nil {
		t.Fatal(err)
	}
	if got := listed(e.crlOf(t, "signature")); len(got) != 2 {
		t.Fatalf("CRL just after expiry lists %q, want both", got)
	}
	e.changes = nil
	tick := make(chan time.Time)
	done := make(chan struct{})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 1)
	go func() {
		defer close(done)
		e.svc.RunSchedule(runCtx, tick, func(err error) { errs <- err })
	}()
	e.clk.Add(25 * time.Hour)
	tick <- e.clk.Now()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if c := e.cert(t, held.Serial); c.State != store.StateDelivered || !c.HeldAt.IsZero() {
		t.Fatalf("expired held certificate is %s (held at %v), want the hold ended", c.State, c.HeldAt)
	}
	reqs, err := e.st.StatusRequests(ctx, held.Serial)
	if err != nil || len(reqs) != 2 || reqs[1].Kind != "hold-expired" || reqs[1].Channel != "system" || reqs[1].Action != store.ActionRelease {
		t.Fatalf("status requests %+v, %v", reqs, err)
	}
	if !slices.Contains(e.changes, held.Serial) {
		t.Error("OCSP hook not told of the ended hold")
	}
	if c := e.cert(t, rev.Serial); c.State != store.StateRevoked {
		t.Fatal("revocation undone by expiry")
	}
	if got := listed(e.crlOf(t, "signature")); len(got) != 0 {
		t.Fatalf("CRL a day after expiry lists %q (revoked %s, held %s), want none", got, revCert.SerialNumber.Text(16), heldCert.SerialNumber.Text(16))
	}
	recs, err := e.st.AuditRecords(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		found = found || (r.Action == "certificate.hold-expired" && r.Target == held.Serial && r.Result == "ok")
	}
	if !found {
		t.Fatal("no audit record of the ended hold")
	}
}
