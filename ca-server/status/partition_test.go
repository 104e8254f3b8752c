package status

import (
	"context"
	"encoding/asn1"
	"fmt"
	"io"
	"testing"
	"time"

	"crypto/x509"

	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/revocation"
	"madoguchi/ca-server/store"
)

// TestPublishPartitioned: a CA whose profile partitions its CRL in 3 shards
// (RFC 5280 §5.2.5) publishes one CRL per shard in its own series, each
// with a critical issuingDistributionPoint naming the shard's URL and
// onlyContainsUserCerts, its own CRL number sequence (§5.2.3: per scope)
// and only the revoked serials of its range; the ARL stays one; a missing
// shard makes the CA due. (The old Publish wrote one CRL, series
// "user-auth", without an issuingDistributionPoint.)
func TestPublishPartitioned(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, good := e.issue(t, residentA, store.CertAuth, true)
	revCert, rev := e.issue(t, residentB, store.CertAuth, true)
	e.clk.Add(time.Hour)
	if _, err := e.svc.Revoke(ctx, counter, revocation.ChannelCounter, rev.Serial, revokeReqFor(residentB, "r1", "auth", "key-compromise")); err != nil {
		t.Fatal(err)
	}
	part := crl.Partition{Shards: 3, URL: "http://crl.example/ua/{shard}.crl"}
	svc, err := New(Config{Store: e.st, Audit: e.svc.cfg.Audit, Archive: e.archive, Clock: e.clk.Now,
		CAs: []CA{{Name: "user-auth", CertType: store.CertAuth, Certificate: e.auth.cert, Signer: e.auth.key,
			CRLPartition: func(ski []byte) crl.Partition {
				if string(ski) != string(e.auth.cert.SubjectKeyId) {
					t.Errorf("partition asked for key %x", ski)
				}
				return part
			}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.cfg.CAs[0].CRLShardSeries(); fmt.Sprint(got) != "[user-auth-s0 user-auth-s1 user-auth-s2]" {
		t.Fatalf("shard series %v", got)
	}
	for round := int64(1); round <= 2; round++ {
		ps, err := svc.Publish(ctx, "user-auth", TriggerOnDemand)
		if err != nil {
			t.Fatal(err)
		}
		var series []string
		for _, p := range ps {
			series = append(series, fmt.Sprintf("%s#%v", p.Series, p.Meta.Number))
		}
		want := fmt.Sprintf("[user-auth-s0#%d user-auth-s1#%d user-auth-s2#%d user-auth-arl#%d]", round, round, round, round)
		if fmt.Sprint(series) != want {
			t.Fatalf("round %d published %v, want %s", round, series, want)
		}
		e.clk.Add(time.Minute)
	}
	for i := range 3 {
		rc, _, err := svc.CurrentCRL(fmt.Sprintf("user-auth-s%d", i))
		if err != nil {
			t.Fatal(err)
		}
		der, _ := io.ReadAll(rc)
		rc.Close()
		l, err := x509.ParseRevocationList(der)
		if err != nil || l.CheckSignatureFrom(e.auth.cert) != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		var idp *crl.IssuingDistributionPoint
		for _, x := range l.Extensions {
			if x.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 28}) {
				if !x.Critical {
					t.Errorf("shard %d: IDP not critical", i)
				}
				idp = &crl.IssuingDistributionPoint{}
			}
		}
		if idp == nil {
			t.Fatalf("shard %d has no issuingDistributionPoint", i)
		}
		// the test serials lie below the CA's serial space: all in shard 0
		listed := len(l.RevokedCertificateEntries) == 1 && l.RevokedCertificateEntries[0].SerialNumber.Cmp(revCert.SerialNumber) == 0
		if want := part.ShardOf(revCert.SerialNumber) == i; listed != want || (!want && len(l.RevokedCertificateEntries) != 0) {
			t.Errorf("shard %d entries %v (good %s)", i, l.RevokedCertificateEntries, good.Serial)
		}
	}
	// nothing due; a shard never published makes the CA due
	if ps, err := svc.PublishDue(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("PublishDue right after publication: %v %v", ps, err)
	}
	part.Shards = 4
	if ps, err := svc.PublishDue(ctx); err != nil || len(ps) != 5 || ps[3].Series != "user-auth-s3" || ps[3].Meta.Number.Int64() != 1 {
		t.Fatalf("PublishDue with a new shard: %v %v", ps, err)
	}
}
