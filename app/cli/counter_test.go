package cli

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/audit"
	"madoguchi/app/auth"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// cliFakeCA answers the counter procedures for the CLI unit tests (the real ca-server is in
// e2e_test.go).
type cliFakeCA struct {
	mu       sync.Mutex
	changes  []wire.ResidentChangeRequest
	revokes  []wire.RevokeRequest
	releases []wire.ReleaseHoldRequest
}

var _ app.CA = (*cliFakeCA)(nil)

var errNoIssuance = errors.New("fake: no issuance here")

func (f *cliFakeCA) OpenChannel(context.Context, string) (wire.ChannelResponse, error) {
	return wire.ChannelResponse{}, errNoIssuance
}
func (f *cliFakeCA) Prepare(context.Context, string, wire.PrepareRequest) (wire.PrepareResponse, error) {
	return wire.PrepareResponse{}, errNoIssuance
}
func (f *cliFakeCA) Confirm(context.Context, string, string, wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, errNoIssuance
}
func (f *cliFakeCA) Abort(context.Context, string, string, wire.AbortRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, errNoIssuance
}
func (f *cliFakeCA) Status(context.Context, string, string) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, errNoIssuance
}
func (f *cliFakeCA) Revoke(_ context.Context, _, serial string, req wire.RevokeRequest) (wire.RevocationAck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes = append(f.revokes, req)
	return wire.RevocationAck{Serial: serial, CertType: req.CertType, Reason: 5, ReasonName: "cessationOfOperation", Kind: req.Kind, RevokedAt: time.Now(), WrittenAcknowledgement: true}, nil
}
func (f *cliFakeCA) ReleaseHold(_ context.Context, _, serial string, req wire.ReleaseHoldRequest) (wire.CertificateStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases = append(f.releases, req)
	if len(f.releases) > 1 {
		return wire.CertificateStatus{}, &raclient.Error{Status: 409, Code: wire.CodeNotOnHold}
	}
	return wire.CertificateStatus{Serial: serial, CertType: req.CertType, State: "delivered"}, nil
}
func (f *cliFakeCA) PrepareMaintenance(context.Context, string, wire.MaintenanceRequest) (wire.MaintenanceResponse, error) {
	return wire.MaintenanceResponse{}, errNoIssuance
}
func (f *cliFakeCA) ConfirmMaintenance(context.Context, string, string, wire.ConfirmRequest) (wire.MaintenanceStatus, error) {
	return wire.MaintenanceStatus{}, errNoIssuance
}
func (f *cliFakeCA) ReportResidentChange(_ context.Context, _ string, req wire.ResidentChangeRequest) (wire.ResidentChangeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, req)
	return wire.ResidentChangeResponse{ChangeID: int64(len(f.changes)), Event: req.Event, Revoked: []string{"sign", "auth"}, Deferred: []string{}}, nil
}

// TestCLICounterProcedures drives the counter procedures headless against a fake CA: cases
// (open, identity, approve), revocation with the written request, hold release, resident
// changes sent to the CA, PIN reset refused as not supported, recovery at start, and the
// refusals the GUI gives (permissions, case state, no PIN on the command line).
func TestCLICounterProcedures(t *testing.T) {
	dir := t.TempDir()
	fp := auth.NewFake()
	ca := &cliFakeCA{}
	cfg := app.Config{DBPath: filepath.Join(dir, "t.db"), Fingerprint: fp, Argon2: auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}}
	withCA := cfg
	withCA.CA = ca
	const sup = "supervisor-pass-1\n"
	for i, s := range []struct {
		cfg            app.Config
		stdin          string
		args           []string
		code           int
		outHas, errHas string
		present        string
	}{
		{cfg, sup, []string{"bootstrap", "-id", "sup", "-name", "管理 太郎", "-reason", "指紋装置の設置前"}, 0, "created", "", ""},
		{cfg, sup, []string{"-user", "sup", "operator", "create", "rc1", "受付 花子"}, 0, "", "", ""},
		{cfg, sup, []string{"-user", "sup", "operator", "grant", "rc1", "reception"}, 0, "", "", ""},
		{cfg, sup, []string{"-user", "sup", "operator", "grant", "rc1", "cs"}, 0, "", "", ""},
		{cfg, sup, []string{"-user", "sup", "operator", "enroll", "rc1", "right-index-finger"}, 0, "", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "resident", "import-fixtures"}, 0, "8 residents", "", "print-rc1"},
		// Revocation: case 1.
		{cfg, "", []string{"-user", "rc1", "case", "open", "-kind", "revocation", "-code", "90000000011"}, 0, "case 1 opened", "", "print-rc1"},
		{withCA, "", []string{"-user", "rc1", "revoke", "-case", "1", "-cert", "signature:1A2B", "-written", "申請書17"}, 1, "", "現在の状態ではこの操作はできません", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "case", "identity", "1", "-document", "drivers_licence", "-ref", "1234"}, 0, "identity_checked", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "case", "approve", "1"}, 0, "approved", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "revoke", "-case", "1", "-cert", "signature:1A2B", "-written", "申請書17"}, 1, "", "認証局と通信できません", "print-rc1"},
		{withCA, sup, []string{"-user", "sup", "revoke", "-case", "1", "-cert", "signature:1A2B", "-written", "申請書17"}, 1, "", "権限がありません", ""},
		{withCA, "", []string{"-user", "rc1", "revoke", "-case", "1", "-cert", "signature:1A2B", "-cert", "user_auth:1A2C", "-written", "申請書17"}, 0, "revoked auth serial 1A2C reason 5", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "case", "show", "1"}, 0, "completed", "", "print-rc1"},
		// Hold release: case 2.
		{cfg, "", []string{"-user", "rc1", "case", "open", "-kind", "hold_release", "-code", "90000000022"}, 0, "case 2 opened", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "case", "identity", "2", "-document", "my_number_card"}, 0, "", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "case", "approve", "2"}, 0, "", "", "print-rc1"},
		{withCA, "", []string{"-user", "rc1", "release-hold", "-case", "2", "-cert", "signature:C0FFEE"}, 0, "is delivered", "", "print-rc1"},
		// PIN reset: case 3. It needs the CA and the card; the new PIN never comes from the
		// command line (the real run is in e2e_test.go).
		{cfg, "", []string{"-user", "rc1", "case", "open", "-kind", "pin_reset", "-code", "90000000022"}, 0, "case 3", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "case", "identity", "3", "-document", "passport"}, 0, "", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "case", "approve", "3"}, 0, "", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "pin-reset", "-case", "3", "-pin", "signature", "-reader", "x"}, 2, "", "CA flags", "print-rc1"},
		{withCA, "", []string{"-user", "rc1", "pin-reset", "-case", "3", "-pin", "signature"}, 2, "", "-reader names the card reader", "print-rc1"},
		{withCA, "", []string{"-user", "rc1", "pin-reset", "-case", "3", "-pin", "both", "-reader", "x"}, 2, "", "-pin signature|user-auth", "print-rc1"},
		{withCA, "", []string{"-user", "rc1", "pin-reset", "-case", "3", "-pin", "signature", "-reader", "x", "-new-pin", "5931"}, 2, "", "flag provided but not defined: -new-pin", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "destroy-keys", "-case", "3", "-reader", "x"}, 2, "", "CA flags", "print-rc1"},
		// A doubt stops a case: case 4.
		{cfg, "", []string{"-user", "rc1", "case", "open", "-kind", "loss_report", "-code", "90000000022"}, 0, "case 4", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "case", "identity", "4", "-document", "passport", "-doubt", "写真が別人"}, 1, "stopped", "疑義", "print-rc1"},
		// Resident changes reach the CA.
		{cfg, "", []string{"-user", "rc1", "resident", "change", "90000000033", "death", "2026-01-05"}, 0, "", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "resident", "send-changes"}, 1, "", "認証局と通信できません", "print-rc1"},
		{withCA, "", []string{"-user", "rc1", "resident", "send-changes"}, 0, "death\tdelivered\trevoked=sign,auth", "", "print-rc1"},
		{cfg, "", []string{"-user", "rc1", "resident", "pending"}, 0, "", "", "print-rc1"},
		// Recovery runs at start with a CA, before any log-in.
		{withCA, "", []string{"recover"}, 0, "0 unfinished issuances resolved", "", ""},
		{cfg, "", []string{"recover"}, 2, "", "CA flags", ""},
		// Issuance needs the CA and never takes a PIN on the command line.
		{cfg, "", []string{"-user", "rc1", "issue", "-case", "1", "-reader", "x", "-card-expiry", "2035-01-01"}, 2, "", "CA flags", "print-rc1"},
		{withCA, "", []string{"-user", "rc1", "issue", "-case", "1", "-reader", "x", "-card-expiry", "2035-01-01", "-pin", "1234"}, 2, "", "flag provided but not defined: -pin", "print-rc1"},
		{withCA, "", []string{"-user", "rc1", "copy", "-reader", "x", "-type", "user_auth"}, 2, "", "usage", "print-rc1"},
	} {
		fp.Present(s.present)
		r := run(t, s.cfg, s.stdin, s.args...)
		if r.code != s.code || !strings.Contains(r.out, s.outHas) || !strings.Contains(r.errOut, s.errHas) {
			t.Fatalf("step %d %v: code %d\nstdout: %s\nstderr: %s", i, s.args, r.code, r.out, r.errOut)
		}
	}
	if len(ca.revokes) != 2 || ca.revokes[0].WrittenRequest != "申請書17" || ca.revokes[0].IdentityDocument != "drivers_licence" || ca.revokes[0].Kind != "stop-using" {
		t.Errorf("revocations at the CA: %+v", ca.revokes)
	}
	if len(ca.changes) != 1 || ca.changes[0].ResidentCode != "90000000033" || ca.changes[0].Event != "death" {
		t.Errorf("changes at the CA: %+v", ca.changes)
	}
	// The same audit as the GUI: the CLI's actions are in the chain, which is intact.
	r := run(t, cfg, sup, "-user", "sup", "audit", "history", "rc1")
	for _, action := range []string{"certificate.revoke", "certificate.release_hold", "resident.change_send", "case.identity"} {
		if !strings.Contains(r.out, action) {
			t.Errorf("history of rc1 lacks %s:\n%s", action, r.out)
		}
	}
	if r := run(t, cfg, sup, "-user", "sup", "audit", "verify"); r.code != 0 {
		t.Errorf("audit verify: %s", r.errOut)
	}
	_ = audit.ResultOK
}
