package issue

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
	"madoguchi/jpki"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// fakeCA is an in-process stand-in for ca-server behind raclient, for unit tests only: real
// secure channel (scp host session over a software issuer), real card scripts (perso), real
// response verification at confirm, software RSA keys. The end-to-end test uses the real
// ca-server.
type fakeCA struct {
	t      testing.TB
	issuer *scp.SoftwareIssuer
	caKey  *rsa.PrivateKey
	caCert []byte

	mu        sync.Mutex
	channels  map[string][]byte // id → host challenge; deleted when used
	issuances map[string]*fakeIssuance
	byRequest map[string]*fakeIssuance
	seq       int

	// failure injection; each is consumed by the next call of its kind
	failOpen, failPrepare, failConfirm, failAbort error
	// loseConfirmAnswer: confirm takes effect but answers as if the network dropped
	loseConfirmAnswer bool
	// corruptScript flips a bit in the MAC of the given APDU index of the next script
	corruptScript int
	// alterSAN changes the applicant data the next signature certificate is made from
	alterSAN func(*wire.Applicant)
	calls    map[string]int
	// prepared, aborts: every prepare and abort request received, in order
	prepared []wire.PrepareRequest
	aborts   []wire.AbortRequest
}

type fakeIssuance struct {
	id, requestID, typ string
	bodyHash           [32]byte
	state              string
	reason             *int
	cert               []byte
	apdus              [][]byte
	script             *perso.Script
}

var fakeKeys struct {
	once sync.Once
	keys []*rsa.PrivateKey
	next int
	mu   sync.Mutex
}

// userKey hands out RSA-2048 keys generated once per test binary (key generation is slow under
// -race; uniqueness is the real CA's job, TS Art. 5).
func userKey() *rsa.PrivateKey {
	fakeKeys.once.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			fakeKeys.keys = append(fakeKeys.keys, k)
		}
	})
	fakeKeys.mu.Lock()
	defer fakeKeys.mu.Unlock()
	fakeKeys.next++
	return fakeKeys.keys[fakeKeys.next%len(fakeKeys.keys)]
}

func newFakeCA(t testing.TB, issuer *scp.SoftwareIssuer) *fakeCA {
	caKey := userKey()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test JPKI CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeCA{t: t, issuer: issuer, caKey: caKey, caCert: der, channels: map[string][]byte{},
		issuances: map[string]*fakeIssuance{}, byRequest: map[string]*fakeIssuance{}, corruptScript: -1, calls: map[string]int{}}
}

func caErr(status int, code wire.Code, format string, args ...any) error {
	return &raclient.Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func take(p *error) error {
	err := *p
	*p = nil
	return err
}

func (f *fakeCA) OpenChannel(ctx context.Context, operator string) (wire.ChannelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["open"]++
	if err := take(&f.failOpen); err != nil {
		return wire.ChannelResponse{}, err
	}
	hc, err := scp.NewHostChallenge(rand.Reader)
	if err != nil {
		return wire.ChannelResponse{}, err
	}
	f.seq++
	id := fmt.Sprintf("ch-%d", f.seq)
	f.channels[id] = hc
	return wire.ChannelResponse{ChannelID: id, HostChallenge: hc, ExpiresAt: time.Now().Add(2 * time.Minute)}, nil
}

func (f *fakeCA) Prepare(ctx context.Context, operator string, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["prepare"]++
	f.prepared = append(f.prepared, req)
	if operator == "" {
		return wire.PrepareResponse{}, caErr(403, wire.CodeOperatorRequired, "operator required")
	}
	body, _ := json.Marshal(req)
	h := sha256.Sum256(body)
	if prev, ok := f.byRequest[req.RequestID]; ok {
		if prev.bodyHash != h {
			return wire.PrepareResponse{}, caErr(409, wire.CodeRequestIDReused, "request id reused")
		}
		if prev.state != "prepared" {
			return wire.PrepareResponse{}, caErr(409, wire.CodeInvalidState, "issuance %s is %s", prev.id, prev.state)
		}
		return wire.PrepareResponse{IssuanceID: prev.id, State: prev.state, Certificate: prev.cert, Script: cloneAll(prev.apdus)}, nil
	}
	if err := take(&f.failPrepare); err != nil {
		return wire.PrepareResponse{}, err
	}
	hc, ok := f.channels[req.ChannelID]
	if !ok {
		return wire.PrepareResponse{}, caErr(404, wire.CodeNotFound, "channel %q not found", req.ChannelID)
	}
	delete(f.channels, req.ChannelID)
	sess, err := scp.NewHostSession(ctx, f.issuer, hc, req.InitUpdateResponse)
	if err != nil {
		return wire.PrepareResponse{}, caErr(422, wire.CodeCardAuthFailed, "card cryptogram: %v", err)
	}
	defer sess.Close()
	if got := hex.EncodeToString(sess.Params().Serial); !equalFold(got, req.CardSerial) {
		return wire.PrepareResponse{}, caErr(422, wire.CodeCardAuthFailed, "serial %s is not the card's %s", req.CardSerial, got)
	}
	key := userKey()
	f.seq++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(1000 + f.seq)), Subject: pkix.Name{CommonName: req.CertType + " " + req.Applicant.ResidentCode},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if req.CertType == "sign" {
		// Like the real CA: the four items and positions in the subjectAltName (jpki layout).
		a := req.Applicant
		if f.alterSAN != nil {
			f.alterSAN(&a)
			f.alterSAN = nil
		}
		san, err := fakeSAN(a)
		if err != nil {
			return wire.PrepareResponse{}, caErr(422, wire.CodeInvalidApplicant, "%v", err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: jpki.OIDSubjectAltName(), Value: san}}
	}
	ca, _ := x509.ParseCertificate(f.caCert)
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, f.caKey)
	if err != nil {
		return wire.PrepareResponse{}, err
	}
	keyFID, certFID, caFID := perso.FIDUserAuthKey, perso.FIDUserAuthCert, perso.FIDUserAuthCACert
	if req.CertType == "sign" {
		keyFID, certFID, caFID = perso.FIDSignatureKey, perso.FIDSignatureCert, perso.FIDSignatureCACert
	}
	script, err := perso.BuildIssuanceScript(ctx, sess,
		perso.ImportKey{FID: keyFID, Key: perso.SoftwareKey{Issuer: f.issuer, Key: key}},
		perso.WriteFile{FID: certFID, Content: cert}, perso.WriteFile{FID: caFID, Content: f.caCert})
	if err != nil {
		return wire.PrepareResponse{}, err
	}
	apdus := script.APDUs()
	if i := f.corruptScript; i >= 0 && i < len(apdus) {
		apdus[i][len(apdus[i])-2] ^= 0x01 // a MAC byte (before Le)
		f.corruptScript = -1
	}
	is := &fakeIssuance{id: fmt.Sprintf("is-%d", f.seq), requestID: req.RequestID, typ: req.CertType, bodyHash: h, state: "prepared",
		cert: cert, apdus: cloneAll(apdus), script: script.WithoutAPDUs()}
	f.issuances[is.id], f.byRequest[req.RequestID] = is, is
	return wire.PrepareResponse{IssuanceID: is.id, State: is.state, Certificate: cert, Script: apdus, Deadline: time.Now().Add(10 * time.Minute)}, nil
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func cloneAll(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

func (f *fakeCA) status(is *fakeIssuance) wire.IssuanceStatus {
	return wire.IssuanceStatus{IssuanceID: is.id, State: is.state, CertType: is.typ, RevocationReason: is.reason}
}

func (f *fakeCA) Confirm(ctx context.Context, operator, id string, req wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["confirm"]++
	if err := take(&f.failConfirm); err != nil {
		return wire.IssuanceStatus{}, err
	}
	is, ok := f.issuances[id]
	if !ok {
		return wire.IssuanceStatus{}, caErr(404, wire.CodeNotFound, "issuance %q not found", id)
	}
	if is.state != "prepared" {
		return wire.IssuanceStatus{}, caErr(409, wire.CodeInvalidState, "issuance %s is %s", id, is.state)
	}
	sess, err := scp.ResumeHostSession(ctx, f.issuer, is.script.Session)
	if err != nil {
		return wire.IssuanceStatus{}, err
	}
	defer sess.Close()
	if _, err := perso.VerifyResponses(sess, is.script, req.CardResponses); err != nil {
		return wire.IssuanceStatus{}, caErr(422, wire.CodeCardResponseFailed, "card responses: %v", err)
	}
	is.state = "delivered"
	if f.loseConfirmAnswer {
		f.loseConfirmAnswer = false
		return wire.IssuanceStatus{}, &raclient.Error{Code: wire.CodeUnavailable, Err: fmt.Errorf("connection reset")}
	}
	return f.status(is), nil
}

func (f *fakeCA) Abort(ctx context.Context, operator, id string, req wire.AbortRequest) (wire.IssuanceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["abort"]++
	f.aborts = append(f.aborts, req)
	if err := take(&f.failAbort); err != nil {
		return wire.IssuanceStatus{}, err
	}
	is, ok := f.issuances[id]
	if !ok {
		return wire.IssuanceStatus{}, caErr(404, wire.CodeNotFound, "issuance %q not found", id)
	}
	switch is.state {
	case "revoked":
		return f.status(is), nil
	case "prepared":
		zero := 0
		is.state, is.reason = "revoked", &zero
		return f.status(is), nil
	}
	return wire.IssuanceStatus{}, caErr(409, wire.CodeInvalidState, "issuance %s is %s", id, is.state)
}

func (f *fakeCA) Status(ctx context.Context, operator, id string) (wire.IssuanceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	is, ok := f.issuances[id]
	if !ok {
		return wire.IssuanceStatus{}, caErr(404, wire.CodeNotFound, "issuance %q not found", id)
	}
	return f.status(is), nil
}

func (f *fakeCA) get(id string) fakeIssuance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.issuances[id]
}

func (f *fakeCA) all() []fakeIssuance {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeIssuance
	for _, is := range f.issuances {
		out = append(out, *is)
	}
	return out
}

var _ CA = (*fakeCA)(nil)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// fakeSAN encodes the applicant's four items as the real CA does (ca-server/issuer), so that the
// read-back (jpki.ReadBasicInfo) finds what was sent.
func fakeSAN(a wire.Applicant) ([]byte, error) {
	layout, err := signatureLayout()
	if err != nil {
		return nil, err
	}
	bd, err := time.Parse("2006-01-02", a.BirthDate)
	if err != nil {
		return nil, err
	}
	dob, err := jpki.BirthDate(bd.Year(), int(bd.Month()), bd.Day())
	if err != nil {
		return nil, err
	}
	name := jpki.CertificateName(a.Name)
	pos := func(p, text string) string {
		if p == "" {
			return jpki.Positions(utf8.RuneCountInString(text), nil)
		}
		return p
	}
	return jpki.MarshalSubjectAltName(jpki.BasicInfo{Name: name, BirthDate: dob, Sex: a.Sex, Address: a.Address,
		NamePositions: pos(a.NameSubstitutes, name), AddressPositions: pos(a.AddressSubstitutes, a.Address)}, layout)
}
