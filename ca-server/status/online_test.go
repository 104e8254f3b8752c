package status

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"reflect"
	"testing"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// keyOf finds the test key of a certificate issued by env.issue.
func keyOf(t *testing.T, c *x509.Certificate) *rsa.PrivateKey {
	t.Helper()
	for i := range 6 {
		if k := rsaKey(t, i); k.PublicKey.Equal(c.PublicKey) {
			return k
		}
	}
	t.Fatal("no test key for the certificate")
	return nil
}

func holderRequest(t *testing.T, key *rsa.PrivateKey, serial, id string, at time.Time) wire.HolderRevocation {
	t.Helper()
	p, err := wire.NewHolderRevocationPayload(serial, id, at)
	if err != nil {
		t.Fatal(err)
	}
	return signedRequest(t, key, p)
}

func signedRequest(t *testing.T, key *rsa.PrivateKey, p []byte) wire.HolderRevocation {
	t.Helper()
	sum := sha256.Sum256(p)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return wire.HolderRevocation{Payload: p, Signature: sig}
}

// TestRevokeOnlineRules: CPS §4.9.3.1(1). A signature certificate is revoked with reason 5 on
// its holder's request signed with its key, delivered or held; every refusal is specific and
// changes nothing: malformed payloads, a signature by another key or of a serial the CA does
// not know (one answer), the user-authentication certificate (counter only), a certificate
// not yet delivered, a stale request, a replay, a revoked one.
func TestRevokeOnlineRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	good, goodIs := e.issue(t, residentA, store.CertSign, true)
	held, heldIs := e.issue(t, residentB, store.CertSign, true)
	auth, authIs := e.issue(t, residentA, store.CertAuth, true)
	_, pendingIs := e.issue(t, "11111111111", store.CertSign, false)
	if _, err := e.svc.Hold(ctx, "callcentre", heldIs.Serial, "lost card, phone report"); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Hour)
	now := e.clk.Now()
	key := keyOf(t, good)
	other := rsaKey(t, 0) // the signature CA's own key: not the holder's

	before := map[string]store.Certificate{}
	for _, s := range []string{goodIs.Serial, heldIs.Serial, authIs.Serial, pendingIs.Serial} {
		before[s] = e.cert(t, s)
	}
	cases := []struct {
		name string
		req  wire.HolderRevocation
		code wire.Code
	}{
		{"empty", wire.HolderRevocation{}, wire.CodeInvalidRequest},
		{"not json", signedRequest(t, key, []byte("revoke please")), wire.CodeInvalidRequest},
		{"unknown field", signedRequest(t, key, []byte(`{"type":"madoguchi-holder-revocation-v1","serial":"`+goodIs.Serial+`","kind":"stop-using","request_id":"abcdefghijklmnop","signed_at":"2026-11-22T02:00:00Z","reason":1}`)), wire.CodeInvalidRequest},
		{"key compromise kind", signedRequest(t, key, []byte(`{"type":"madoguchi-holder-revocation-v1","serial":"`+goodIs.Serial+`","kind":"key-compromise","request_id":"abcdefghijklmnop","signed_at":"2026-11-22T02:00:00Z"}`)), wire.CodeInvalidRequest},
		{"short request id", holderRequest(t, key, goodIs.Serial, "short", now), wire.CodeInvalidRequest},
		{"another key", holderRequest(t, other, goodIs.Serial, "another-key-00001", now), wire.CodeHolderSignatureInvalid},
		{"unknown serial", holderRequest(t, key, "7fffffff01", "unknown-serial-01", now), wire.CodeHolderSignatureInvalid},
		{"signature tampered", func() wire.HolderRevocation {
			r := holderRequest(t, key, goodIs.Serial, "tampered-0000001", now)
			r.Payload = bytes.Replace(r.Payload, []byte("tampered-0000001"), []byte("tampered-0000002"), 1)
			return r
		}(), wire.CodeHolderSignatureInvalid},
		{"user-authentication certificate", holderRequest(t, keyOf(t, auth), authIs.Serial, "user-auth-000001", now), wire.CodeOnlineSignatureOnly},
		{"an hour old", holderRequest(t, key, goodIs.Serial, "stale-0000000001", now.Add(-time.Hour)), wire.CodeRequestStale},
		{"an hour ahead", holderRequest(t, key, goodIs.Serial, "future-000000001", now.Add(time.Hour)), wire.CodeRequestStale},
		{"not delivered", holderRequest(t, keyOf(t, mustParse(t, e.cert(t, pendingIs.Serial).DER)), pendingIs.Serial, "pending-00000001", now), wire.CodeInvalidState},
	}
	for _, tc := range cases {
		_, err := e.svc.RevokeOnline(ctx, tc.req)
		if got := wire.CodeOf(err); got != tc.code {
			t.Errorf("%s: %v (code %s), want %s", tc.name, err, got, tc.code)
		}
	}
	for s, c := range before {
		if after := e.cert(t, s); !reflect.DeepEqual(after, c) {
			t.Fatalf("certificate %s changed by a refusal: %+v", s, after)
		}
	}

	// Accepted: reason 5, the counter's acknowledgement data, OCSP told at once.
	req := holderRequest(t, key, goodIs.Serial, "accepted-0000001", now.Add(-2*time.Minute))
	done, err := e.svc.RevokeOnline(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if done.Ack.Serial != goodIs.Serial || done.Ack.Reason != 5 || done.Ack.ReasonName != "cessationOfOperation" || done.Ack.Kind != "stop-using" ||
		!done.Ack.RevokedAt.Equal(now) || done.RequestID != "accepted-0000001" || len(done.PayloadSHA256) != 64 {
		t.Fatalf("accepted: %+v", done)
	}
	if c := e.cert(t, goodIs.Serial); c.State != store.StateRevoked || c.RevocationReason != 5 {
		t.Fatalf("after: %s reason %d", c.State, c.RevocationReason)
	}
	if e.changes[len(e.changes)-1] != goodIs.Serial {
		t.Fatalf("OnChange calls %v", e.changes)
	}
	// A replay, then a new request for the revoked certificate: refused, nothing changes.
	revoked := e.cert(t, goodIs.Serial)
	if _, err := e.svc.RevokeOnline(ctx, req); wire.CodeOf(err) != wire.CodeRequestReplayed {
		t.Fatalf("replay: %v", err)
	}
	if _, err := e.svc.RevokeOnline(ctx, holderRequest(t, key, goodIs.Serial, "again-0000000001", now)); wire.CodeOf(err) != wire.CodeAlreadyRevoked {
		t.Fatalf("revoked again: %v", err)
	}
	if c := e.cert(t, goodIs.Serial); !reflect.DeepEqual(c, revoked) {
		t.Fatalf("revoked certificate changed: %+v", c)
	}
	// A held certificate (lost card reported by phone) is revoked online too.
	if done, err := e.svc.RevokeOnline(ctx, holderRequest(t, keyOf(t, held), heldIs.Serial, "held-00000000001", now)); err != nil || done.Ack.Reason != 5 {
		t.Fatalf("held: %+v %v", done, err)
	}
	if c := e.cert(t, authIs.Serial); c.State != store.StateDelivered {
		t.Fatalf("user-auth certificate %s", c.State)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
