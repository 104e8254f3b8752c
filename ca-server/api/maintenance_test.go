package api_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/hsmissuance"
	"madoguchi/ca-server/store"
	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// enrolIn makes a terminal of municipality through the real enrolment endpoint.
func (e *env) enrolIn(municipality string) (tls.Certificate, wire.EnrollResponse) {
	e.t.Helper()
	tok, err := e.ca.NewEnrolmentToken(context.Background(), municipality, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := raclient.Enroll(context.Background(), raclient.EnrollConfig{BaseURL: e.url, RootCAs: e.pool, Token: tok, Key: key, Operator: "installer"})
	if err != nil {
		e.t.Fatal(err)
	}
	cert, err := raclient.TLSCertificate(resp, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return cert, resp
}

// deliver records in the store a certificate of type typ delivered through terminalID to the
// card with cardSerial (the rows an issuance leaves), and returns its serial.
func (e *env) deliver(terminalID, cardSerial string, typ store.CertType) string {
	e.t.Helper()
	ctx, now := context.Background(), time.Now()
	rnd := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	id := hex.EncodeToString(rnd(8))
	ch := store.Channel{ID: "ch-seed-" + id, TerminalID: terminalID, HostChallenge: rnd(8), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	fp := rnd(32)
	serial := "4" + hex.EncodeToString(rnd(15))
	holder := sha256.Sum256([]byte(strings.ToLower(cardSerial))) // one card, one person (issue 17)
	for _, err := range []error{e.st.CreateChannel(ctx, ch), e.st.RecordKeyFingerprint(ctx, fp, now),
		e.st.BeginIssuance(ctx, store.Issuance{ID: "is-seed-" + id, TerminalID: terminalID, RequestID: "seed-" + id, RequestSHA256: rnd(32),
			OperatorID: "op-1", ChannelID: ch.ID, CardSerial: cardSerial, PersonHash: holder[:], CertType: typ, Serial: serial, KeySHA256: fp,
			Deadline: now.Add(time.Hour)}, now)} {
		if err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.st.MarkPrepared(ctx, "is-seed-"+id, []byte{0x30, 0x00}, nil, nil, now); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.ConfirmIssuance(ctx, "is-seed-"+id, "seed-c-"+id, rnd(32), now); err != nil {
		e.t.Fatal(err)
	}
	return serial
}

func (e *env) maintenanceRows() int {
	e.t.Helper()
	var n int
	if err := e.raw.QueryRow(`SELECT count(*) FROM card_maintenance`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// maintenanceCard is a personalised virtual card (both keys, PINs 4321 / JPKI2024) whose
// card keys come from vcardtest.Issuer, the same issuer keys the CA's host end uses here.
func maintenanceCard(t *testing.T, b byte) (*vcard.Card, *cardio.Card, string) {
	t.Helper()
	l := vcardtest.Personalised(t, "", b)
	return l.Card, cardio.New(vcard.Insert(l.Card)), strings.ToUpper(hex.EncodeToString(l.Card.Serial()))
}

// prepareMaintenance opens a channel, runs INITIALIZE UPDATE on card and asks for the script.
func prepareMaintenance(t *testing.T, c *raclient.Client, card *cardio.Card, serial, reqID, op string, targets ...string) (wire.MaintenanceRequest, wire.MaintenanceResponse, error) {
	t.Helper()
	ctx := context.Background()
	ch, err := c.OpenChannel(ctx, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
	if err != nil {
		t.Fatal(err)
	}
	req := wire.MaintenanceRequest{RequestID: reqID, ChannelID: ch.ChannelID, CardSerial: serial, InitUpdateResponse: iu, Operation: op, Targets: targets}
	resp, err := c.PrepareMaintenance(ctx, "op-1", req)
	return req, resp, err
}

func wantCode(t *testing.T, what string, err error, code wire.Code, status int) {
	t.Helper()
	var re *raclient.Error
	if !errors.As(err, &re) || re.Code != code || re.Status != status {
		t.Fatalf("%s: got %v, want %s (%d)", what, err, code, status)
	}
}

// TestCardMaintenanceOverMutualTLS drives the card maintenance endpoints over the real mTLS
// listener, with the real host end of the card channel (hsmissuance.CardChannel over software
// card keys) and a personalised virtual card: every refusal has its code and HTTP status, is
// audited, and changes nothing (unknown card, other municipality, live certificate for a key
// destruction, replayed channel, replayed card answer, another card, reused request id, a bad
// MAC at confirm); a PIN reset and, after revocation, a key destruction are authorised,
// applied by the card and confirmed, idempotently by request id.
func TestCardMaintenanceOverMutualTLS(t *testing.T) {
	e := newEnvWith(t, &hsmissuance.CardChannel{Keys: vcardtest.Issuer})
	ctx := context.Background()
	certA, enrA := e.enrolIn("131016")
	certB, _ := e.enrolIn("271004")
	a, b := e.client(certA), e.client(certB)
	vc, card, serial := maintenanceCard(t, 0x31)

	// Unknown card: the CA delivered nothing to it.
	_, _, err := prepareMaintenance(t, a, card, serial, "m-1", wire.MaintenancePINReset, "auth")
	wantCode(t, "unknown card", err, wire.CodeCardUnknown, http.StatusNotFound)
	if !errors.Is(err, raclient.ErrCardUnknown) {
		t.Errorf("unknown card: not raclient.ErrCardUnknown: %v", err)
	}
	if r := e.lastAudit(); r.Action != "card.maintenance.prepare" || r.Result != string(wire.CodeCardUnknown) || r.Terminal != enrA.TerminalID || !strings.Contains(r.Target, serial) {
		t.Errorf("audit of the refusal: %+v", r)
	}

	e.deliver(enrA.TerminalID, strings.ToLower(serial), store.CertSign)
	authSerial := e.deliver(enrA.TerminalID, strings.ToLower(serial), store.CertAuth)

	// Another municipality's terminal.
	_, _, err = prepareMaintenance(t, b, card, serial, "m-1", wire.MaintenancePINReset, "auth")
	wantCode(t, "other municipality", err, wire.CodeCardOtherMunicipality, http.StatusForbidden)
	// A key whose certificate is valid: revoke first.
	_, _, err = prepareMaintenance(t, a, card, serial, "m-2", wire.MaintenanceKeyDestruction, "auth")
	wantCode(t, "live certificate", err, wire.CodeCertificateLive, http.StatusConflict)
	if !errors.Is(err, raclient.ErrCertificateLive) || e.lastAudit().Result != string(wire.CodeCertificateLive) {
		t.Errorf("live certificate: %v, audit %+v", err, e.lastAudit())
	}
	// Malformed: a PIN reset names one PIN.
	_, _, err = prepareMaintenance(t, a, card, serial, "m-3", wire.MaintenancePINReset, "auth", "sign")
	wantCode(t, "two PINs", err, wire.CodeInvalidRequest, http.StatusBadRequest)
	if n := e.maintenanceRows(); n != 0 {
		t.Fatalf("%d maintenance rows after refusals", n)
	}

	// PIN reset of the user-auth PIN, after locking it with 3 wrong tries.
	for range 3 {
		card.VerifyPIN(ctx, cardio.UserAuth, []byte("0000"))
	}
	if err := card.VerifyPIN(ctx, cardio.UserAuth, []byte("4321")); !errors.Is(err, cardio.ErrPINBlocked) {
		t.Fatalf("PIN not blocked after 3 wrong tries: %v", err)
	}
	req, prep, err := prepareMaintenance(t, a, card, serial, "m-4", wire.MaintenancePINReset, "auth")
	if err != nil || prep.State != wire.MaintenanceAuthorised || len(prep.Script) != 3 {
		t.Fatalf("pin reset: %+v %v", prep, err)
	}
	// The same request again: the same script (idempotent); another body under the same id: refused.
	again, err := a.PrepareMaintenance(ctx, "op-1", req)
	if err != nil || again.MaintenanceID != prep.MaintenanceID || string(again.Script[1]) != string(prep.Script[1]) {
		t.Fatalf("replayed prepare: %+v %v", again, err)
	}
	other := req
	other.Targets = []string{"sign"}
	_, err = a.PrepareMaintenance(ctx, "op-1", other)
	wantCode(t, "reused request id", err, wire.CodeRequestIDReused, http.StatusConflict)
	// The channel is single use; the card's answer to an old challenge does not open a new one.
	used := req
	used.RequestID = "m-5"
	_, err = a.PrepareMaintenance(ctx, "op-1", used)
	wantCode(t, "used channel", err, wire.CodeChannelUsed, http.StatusConflict)
	ch, err := a.OpenChannel(ctx, "op-1")
	if err != nil {
		t.Fatal(err)
	}
	stale := req
	stale.RequestID, stale.ChannelID = "m-6", ch.ChannelID
	_, err = a.PrepareMaintenance(ctx, "op-1", stale)
	wantCode(t, "replayed card answer", err, wire.CodeCardAuthFailed, http.StatusUnprocessableEntity)
	// Another card's answer under this card's serial.
	_, card2, _ := maintenanceCard(t, 0x32)
	_, _, err = prepareMaintenance(t, a, card2, serial, "m-7", wire.MaintenancePINReset, "auth")
	wantCode(t, "another card", err, wire.CodeCardAuthFailed, http.StatusUnprocessableEntity)
	if n := e.maintenanceRows(); n != 1 {
		t.Fatalf("%d maintenance rows, want the one authorised", n)
	}

	// The card had INITIALIZE UPDATE again since: a fresh channel for the script to run.
	_, prep, err = prepareMaintenance(t, a, card, serial, "m-8", wire.MaintenancePINReset, "auth")
	if err != nil {
		t.Fatal(err)
	}
	responses, err := card.RunScript(ctx, prep.Script)
	if err != nil {
		t.Fatalf("card refused the script: %v", err)
	}
	bad := make([][]byte, len(responses))
	for i, r := range responses {
		bad[i] = append([]byte(nil), r...)
	}
	bad[len(bad)-1][0] ^= 1 // the attestation, bit-flipped
	_, err = a.ConfirmMaintenance(ctx, "op-1", prep.MaintenanceID, wire.ConfirmRequest{RequestID: "m-8.c", CardResponses: bad})
	wantCode(t, "bad MAC", err, wire.CodeCardResponseFailed, http.StatusUnprocessableEntity)
	_, err = b.ConfirmMaintenance(ctx, "op-1", prep.MaintenanceID, wire.ConfirmRequest{RequestID: "m-8.c", CardResponses: responses})
	wantCode(t, "another terminal's maintenance", err, wire.CodeNotFound, http.StatusNotFound)
	st, err := a.ConfirmMaintenance(ctx, "op-1", prep.MaintenanceID, wire.ConfirmRequest{RequestID: "m-8.c", CardResponses: responses})
	if err != nil || st.State != wire.MaintenanceDone || st.DoneAt == nil || st.Operation != wire.MaintenancePINReset {
		t.Fatalf("confirm: %+v %v", st, err)
	}
	if st2, err := a.ConfirmMaintenance(ctx, "op-1", prep.MaintenanceID, wire.ConfirmRequest{RequestID: "m-8.c", CardResponses: responses}); err != nil || st2.State != wire.MaintenanceDone {
		t.Fatalf("replayed confirm: %+v %v", st2, err)
	}
	if r := e.lastAudit(); r.Action != "card.maintenance.confirm" || r.Result != "ok" {
		t.Errorf("audit of the confirmation: %+v", r)
	}
	if state, _, err := vc.PINStatus(vcard.EFUserAuthPIN); err != nil || state != vcard.PINNotSet {
		t.Fatalf("user-auth PIN after the reset: %v %v", state, err)
	}
	if err := card.SetPIN(ctx, cardio.UserAuth, []byte("5931")); err != nil {
		t.Fatal(err)
	}
	if n, err := card.PINTriesLeft(ctx, cardio.UserAuth); err != nil || n != 3 {
		t.Fatalf("user-auth PIN tries after the reset: %d %v", n, err)
	}
	if err := card.VerifyPIN(ctx, cardio.UserAuth, []byte("5931")); err != nil {
		t.Fatalf("new PIN: %v", err)
	}
	digest := sha256.Sum256([]byte("log in"))
	di := append([]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, digest[:]...)
	if _, err := card.Sign(ctx, cardio.UserAuth, di); err != nil {
		t.Fatalf("sign with the user-auth key after the reset: %v", err)
	}

	// Key destruction after the certificate is revoked; the signature key stays (its
	// certificate is still valid).
	if _, err := e.st.RevokeCertificate(ctx, store.StatusRequest{Serial: authSerial, Kind: "stop-using", Reason: 5, Channel: "counter",
		Terminal: enrA.TerminalID, Operator: "op-1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, _, err = prepareMaintenance(t, a, card, serial, "m-9", wire.MaintenanceKeyDestruction, "auth", "sign")
	wantCode(t, "one of two keys live", err, wire.CodeCertificateLive, http.StatusConflict)
	_, prep, err = prepareMaintenance(t, a, card, serial, "m-10", wire.MaintenanceKeyDestruction, "auth")
	if err != nil {
		t.Fatal(err)
	}
	if responses, err = card.RunScript(ctx, prep.Script); err != nil {
		t.Fatal(err)
	}
	if st, err = a.ConfirmMaintenance(ctx, "op-1", prep.MaintenanceID, wire.ConfirmRequest{RequestID: "m-10.c", CardResponses: responses}); err != nil || st.State != wire.MaintenanceDone {
		t.Fatalf("confirm destruction: %+v %v", st, err)
	}
	if err := card.VerifyPIN(ctx, cardio.UserAuth, []byte("5931")); err != nil {
		t.Fatal(err)
	}
	if _, err := card.Sign(ctx, cardio.UserAuth, di); err == nil {
		t.Fatal("the card signed with a destroyed key")
	}
	if err := card.VerifyPIN(ctx, cardio.Signature, []byte("JPKI2024")); err != nil {
		t.Fatal(err)
	}
	sig, err := card.Sign(ctx, cardio.Signature, di)
	if err != nil {
		t.Fatalf("the signature key went too: %v", err)
	}
	_, signKey := vcardtest.Keys()
	if err := rsa.VerifyPKCS1v15(&signKey.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("signature with the kept key: %v", err)
	}
}
