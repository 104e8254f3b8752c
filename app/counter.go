package app

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"math/big"
	"strconv"
	"strings"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/operator"
	"madoguchi/app/pinrule"
	"madoguchi/app/printout"
	"madoguchi/app/workflow"
	"madoguchi/ca-server/api/wire"
	"madoguchi/ca-server/profile"
	"madoguchi/cardio"
)

// ---- Reception procedures that talk to the CA (CPS §4.9.3.1, §4.9.13–16, §4.4.1.1) ----
//
// Each runs on a reception case of its kind that an operator opened for the holder (by record
// code, from the register), whose identity check is recorded (CPS §3.2.3, §4.1.2.1: photo ID;
// a proxy's documents; any doubt stops the case) and which the operator approved. The CA call
// happens outside a database transaction; its answer, the audit record and the completion of
// the case are committed together. Request ids are derived from this terminal's installation
// id, the case and the certificate type, so repeating a call after a lost answer is answered
// idempotently by the CA (revocation is never done twice, and never undone).

// CertRef names one certificate at the CA.
type CertRef struct {
	Type   workflow.CertType
	Serial string // hexadecimal, as on the certificate copy or the card read-back
}

// RevokeRequest asks the CA to revoke the holder's certificates at the counter.
type RevokeRequest struct {
	CaseID       int64
	Certificates []CertRef
	// Kind is the CA's request kind. A Revocation case: "stop-using" (default; reason 5) or
	// "card-abolished". A LossReport case: "key-compromise" (default; reason 1, the key was
	// leaked, lost or damaged) or "card-unusable". Loss and compromise are accepted only at the
	// counter and in writing (CPS §4.9.3.1(2)): the terminal is the counter.
	Kind string
	// WrittenRequest is the reference of the holder's written request (CPS §4.9.3.1: in writing).
	WrittenRequest string
}

// RevocationResult is what the CA did, with the written acknowledgement for the holder.
type RevocationResult struct {
	Acks []wire.RevocationAck
	// Notice is the acknowledgement ready for printout.Printer.RevocationNotice (CPS §4.9.3.1:
	// after the CA has revoked, the holder gets a written acknowledgement). Printing is the UI's.
	Notice printout.RevocationNotice
	Case   *workflow.Case
}

var revokeKinds = map[workflow.Kind][]string{
	workflow.Revocation: {"stop-using", "card-abolished"},
	workflow.LossReport: {"key-compromise", "card-unusable"},
}

var wireType = map[workflow.CertType]string{workflow.SignatureCert: "sign", workflow.UserAuthCert: "auth"}

// Revoke revokes certificates at the holder's request (Revocation case) or on a report of
// loss or compromise (LossReport case), then completes the case (Reception). Every CA answer is
// audited ("certificate.revoke"). On a failure part-way the case stays approved and the call
// can be repeated: certificates revoked already are answered from the CA's record.
func (s *Session) Revoke(ctx context.Context, req RevokeRequest) (*RevocationResult, error) {
	const action = "certificate.revoke"
	target := strconv.FormatInt(req.CaseID, 10)
	detail := map[string]string{"kind": req.Kind}
	if err := s.precheck(ctx, action, target, operator.Reception, detail); err != nil {
		return nil, err
	}
	c, kind, err := s.revocationCase(ctx, req)
	if err != nil {
		s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: resultOf(err), Detail: refusalDetail(detail, err)})
		return nil, err
	}
	inst, err := s.t.installationID(ctx)
	if err != nil {
		return nil, err
	}
	res := &RevocationResult{Notice: printout.RevocationNotice{Municipality: s.t.cfg.Municipality, ReceiptNo: target,
		OperatorID: s.operatorID, HolderName: c.Applicant.Name, ReceivedAt: c.OpenedAt}}
	for _, ref := range req.Certificates {
		d := map[string]string{"kind": kind, "cert_type": string(ref.Type), "serial": ref.Serial, "written_request": req.WrittenRequest}
		ack, err := s.t.cfg.CA.Revoke(ctx, s.operatorID, ref.Serial, wire.RevokeRequest{
			RequestID: "rv-" + inst + "-" + target + "-" + wireType[ref.Type], CertType: wireType[ref.Type], Kind: kind,
			WrittenRequest: req.WrittenRequest, IdentityDocument: string(c.Identity.Document)})
		if err != nil {
			err = caError("revoke", err)
			s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: resultOf(err), Detail: refusalDetail(d, err)})
			return res, err
		}
		d["reason"], d["revoked_at"] = strconv.Itoa(ack.Reason), ack.RevokedAt.UTC().Format("2006-01-02T15:04:05Z")
		if err := s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: audit.ResultOK, Detail: d}); err != nil {
			return res, err
		}
		res.Acks = append(res.Acks, ack)
		serial, _ := new(big.Int).SetString(ack.Serial, 16)
		pk, _ := printout.KindOf(ref.Type)
		res.Notice.Revoked = append(res.Notice.Revoked, printout.Revoked{Kind: pk, Serial: serial, Reason: printout.Reason(ack.Reason), RevokedAt: ack.RevokedAt})
	}
	res.Notice.Date = s.t.now()
	res.Case, err = s.Complete(ctx, req.CaseID)
	return res, err
}

// revocationCase checks the request against its case and returns the case and the CA kind.
func (s *Session) revocationCase(ctx context.Context, req RevokeRequest) (*workflow.Case, string, error) {
	if s.t.cfg.CA == nil {
		return nil, "", apperr.New(apperr.CAUnavailable, "app: no CA configured")
	}
	c, err := workflow.Load(ctx, s.t.db, req.CaseID)
	if err != nil {
		return nil, "", err
	}
	kinds, ok := revokeKinds[c.Kind]
	if !ok {
		return nil, "", apperr.New(apperr.InvalidTransition, "app: case %d is a %s, not a revocation or loss report", c.ID, c.Kind)
	}
	kind := req.Kind
	if kind == "" {
		kind = kinds[0]
	}
	if !contains(kinds, kind) {
		return nil, "", apperr.New(apperr.InvalidInput, "app: a %s takes the request kinds %s, not %q", c.Kind, strings.Join(kinds, ", "), kind)
	}
	if err := approved(c); err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(req.WrittenRequest) == "" {
		return nil, "", apperr.New(apperr.InvalidInput, "app: revocation needs the reference of the holder's written request (CPS §4.9.3.1)")
	}
	if err := checkRefs(req.Certificates); err != nil {
		return nil, "", err
	}
	return c, kind, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// approved checks that a case's identity check is recorded and the operator approved it.
func approved(c *workflow.Case) error {
	if c.State != workflow.Approved || c.Identity == nil {
		return apperr.New(apperr.InvalidTransition, "app: case %d is %s; the identity check and the approval come first (CPS §4.1.2.1)", c.ID, c.State)
	}
	return nil
}

func checkRefs(refs []CertRef) error {
	if len(refs) == 0 {
		return apperr.New(apperr.InvalidInput, "app: name at least one certificate")
	}
	seen := map[workflow.CertType]bool{}
	for _, r := range refs {
		if wireType[r.Type] == "" {
			return apperr.New(apperr.InvalidInput, "app: unknown certificate type %q", r.Type)
		}
		if seen[r.Type] {
			return apperr.New(apperr.InvalidInput, "app: certificate type %s named twice", r.Type)
		}
		seen[r.Type] = true
		if n, ok := new(big.Int).SetString(r.Serial, 16); !ok || n.Sign() <= 0 {
			return apperr.New(apperr.InvalidInput, "app: serial %q is not a positive hexadecimal number", r.Serial)
		}
	}
	return nil
}

// ReleaseHold releases the hold on a certificate at the counter, after the existence, identity
// and authenticity checks recorded on a HoldRelease case (CPS §4.9.13–16: a hold is set on a
// phone report and released only at the counter), then completes the case (Reception).
func (s *Session) ReleaseHold(ctx context.Context, caseID int64, ref CertRef) (wire.CertificateStatus, error) {
	const action = "certificate.release_hold"
	target := strconv.FormatInt(caseID, 10)
	detail := map[string]string{"cert_type": string(ref.Type), "serial": ref.Serial}
	if err := s.precheck(ctx, action, target, operator.Reception, detail); err != nil {
		return wire.CertificateStatus{}, err
	}
	fail := func(err error) (wire.CertificateStatus, error) {
		s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: resultOf(err), Detail: refusalDetail(detail, err)})
		return wire.CertificateStatus{}, err
	}
	if s.t.cfg.CA == nil {
		return fail(apperr.New(apperr.CAUnavailable, "app: no CA configured"))
	}
	c, err := workflow.Load(ctx, s.t.db, caseID)
	if err != nil {
		return fail(err)
	}
	if c.Kind != workflow.HoldRelease {
		return fail(apperr.New(apperr.InvalidTransition, "app: case %d is a %s, not a hold release", caseID, c.Kind))
	}
	if err := approved(c); err != nil {
		return fail(err)
	}
	if err := checkRefs([]CertRef{ref}); err != nil {
		return fail(err)
	}
	inst, err := s.t.installationID(ctx)
	if err != nil {
		return fail(err)
	}
	st, err := s.t.cfg.CA.ReleaseHold(ctx, s.operatorID, ref.Serial, wire.ReleaseHoldRequest{
		RequestID: "rh-" + inst + "-" + target + "-" + wireType[ref.Type], CertType: wireType[ref.Type], IdentityDocument: string(c.Identity.Document)})
	if err != nil {
		return fail(caError("release-hold", err))
	}
	detail["state"] = st.State
	if err := s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: audit.ResultOK, Detail: detail}); err != nil {
		return st, err
	}
	_, err = s.Complete(ctx, caseID)
	return st, err
}

// ---- PIN reset / unblock and key destruction at the counter ----
//
// On a real card both need a command the card accepts only under the card issuer's keys: the
// CA (which holds the card keys in its HSM, ca-server/cardkeys) would have to authorise a
// protected script for this card, as it does for issuance. The CA's API has no such endpoint
// yet (ARCHITECTURE "Issuance API" covers issuance only), so the terminal runs the gate, the
// case checks and the PIN rules, and then refuses with kind NotSupported instead of pretending
// (no fake success). CardMaintenanceCA is the boundary a CA client will implement.

// CardMaintenanceCA is the CA service a counter PIN reset or key destruction needs: a script
// protected for the card (over a channel opened with issue.CA.OpenChannel) that resets one PIN
// or destroys the keys. No CA client implements it yet.
type CardMaintenanceCA interface {
	CardMaintenanceScript(ctx context.Context, operator string, req CardMaintenanceRequest) ([][]byte, error)
}

// CardMaintenanceRequest is what the terminal would send: never a PIN (the applicant types the
// new PIN into the card's own SET PIN command after the script unblocks it).
type CardMaintenanceRequest struct {
	RequestID  string
	CardSerial string // hex
	ChannelID  string
	Operation  string // "pin-reset:signature", "pin-reset:user-auth", "key-destruction"
	// CardChallenge is the card's answer to INITIALIZE UPDATE, as for issuance.
	CardChallenge []byte
}

// ResetPIN resets or unblocks one PIN of the holder's card on an approved PINReset case
// (Reception). Until the CA offers the authorised script it returns kind NotSupported, audited.
func (s *Session) ResetPIN(ctx context.Context, caseID int64, which pinrule.Kind) error {
	return s.cardMaintenance(ctx, "card.pin_reset", caseID, workflow.PINReset, "pin-reset:"+which.String())
}

// DestroyKeys destroys the keys on the holder's card on an approved KeyDestruction case
// (Reception). Until the CA offers the authorised script it returns kind NotSupported, audited.
func (s *Session) DestroyKeys(ctx context.Context, caseID int64) error {
	return s.cardMaintenance(ctx, "card.key_destruction", caseID, workflow.KeyDestruction, "key-destruction")
}

func (s *Session) cardMaintenance(ctx context.Context, action string, caseID int64, kind workflow.Kind, op string) error {
	target := strconv.FormatInt(caseID, 10)
	detail := map[string]string{"operation": op}
	if err := s.precheck(ctx, action, target, operator.Reception, detail); err != nil {
		return err
	}
	err := func() error {
		c, err := workflow.Load(ctx, s.t.db, caseID)
		if err != nil {
			return err
		}
		if c.Kind != kind {
			return apperr.New(apperr.InvalidTransition, "app: case %d is a %s, not a %s", caseID, c.Kind, kind)
		}
		if err := approved(c); err != nil {
			return err
		}
		if _, ok := s.t.cfg.CA.(CardMaintenanceCA); !ok {
			return apperr.New(apperr.NotSupported, "app: %s: the CA offers no card maintenance script yet", op)
		}
		// Unreachable today: no CA client implements CardMaintenanceCA.
		return apperr.New(apperr.NotSupported, "app: %s: not implemented on the terminal", op)
	}()
	s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: resultOf(err), Detail: refusalDetail(detail, err)})
	return err
}

// ---- Certificate copy (CPS §4.4.1.1) ----

// CertificateReader is the part of the card a copy needs (cardio.Card).
type CertificateReader interface {
	ReadCertificates(ctx context.Context) (*cardio.Certificates, error)
}

var _ CertificateReader = (*cardio.Card)(nil)

// CertificateCopy reads one certificate back from the holder's card and returns its
// human-readable copy for printout.Printer.CertificateCopy (Reception; CPS §4.4.1.1). The
// signature certificate is read only after the holder entered the signature PIN on the card in
// this card session (it carries the 4 items, TS Art. 11); otherwise kind InvalidInput. The
// certificate must verify under the CA certificate on the card and, when the terminal has its
// installed CA certificates, that CA certificate must be the installed one (a copy of a
// certificate this service did not issue is refused). Audited with the serial.
func (s *Session) CertificateCopy(ctx context.Context, card CertificateReader, typ workflow.CertType) (printout.CertificateCopy, error) {
	const action = "certificate.copy"
	var out printout.CertificateCopy
	detail := map[string]string{"cert_type": string(typ)}
	if err := s.precheck(ctx, action, "", operator.Reception, detail); err != nil {
		return out, err
	}
	// The card is read outside any database transaction; the result is recorded after.
	readErr := func() error {
		if wireType[typ] == "" {
			return apperr.New(apperr.InvalidInput, "app: unknown certificate type %q", typ)
		}
		certs, err := card.ReadCertificates(ctx)
		if err != nil {
			return apperr.Wrap(apperr.InvalidInput, err, "app: read the card")
		}
		leafDER, caDER, profName := certs.UserAuth, certs.UserAuthCA, "user-authentication"
		if typ == workflow.SignatureCert {
			leafDER, caDER, profName = certs.Signature, certs.SignatureCA, "signature"
			if leafDER == nil {
				return apperr.New(apperr.InvalidInput, "app: the holder must enter the signature PIN on the card before its certificate can be read")
			}
		}
		if len(leafDER) == 0 || len(caDER) == 0 {
			return apperr.New(apperr.NotFound, "app: the card holds no %s certificate", typ)
		}
		if want := s.t.cfg.CACertificates[typ]; want != nil && !bytes.Equal(want, caDER) {
			return apperr.New(apperr.InvalidInput, "app: the CA certificate on the card is not this service's %s CA", typ)
		}
		leaf, err := x509.ParseCertificate(leafDER)
		if err != nil {
			return apperr.Wrap(apperr.InvalidInput, err, "app: certificate on the card")
		}
		caCert, err := x509.ParseCertificate(caDER)
		if err != nil {
			return apperr.Wrap(apperr.InvalidInput, err, "app: CA certificate on the card")
		}
		if err := leaf.CheckSignatureFrom(caCert); err != nil {
			return apperr.Wrap(apperr.InvalidInput, err, "app: the certificate on the card does not verify under its CA certificate")
		}
		profiles, err := profile.Default()
		if err != nil {
			return apperr.Wrap(apperr.Internal, err, "app: certificate profiles")
		}
		p, err := profiles.Get(profName)
		if err != nil {
			return apperr.Wrap(apperr.Internal, err, "app: certificate profiles")
		}
		if out, err = printout.CopyOf(leaf, p); err != nil {
			return err
		}
		out.Municipality, out.Date, out.OperatorID = s.t.cfg.Municipality, s.t.now(), s.operatorID
		detail["serial"] = strings.ToUpper(leaf.SerialNumber.Text(16))
		return nil
	}()
	err := s.call(ctx, action, "", operator.Reception, detail, func(*sql.Tx, operator.Operator) error { return readErr })
	if err != nil {
		return printout.CertificateCopy{}, err
	}
	return out, nil
}
