package app

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/pinrule"
	"madoguchi/app/printout"
	"madoguchi/app/workflow"
	"madoguchi/cardio"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// ---- Reception procedures that talk to the CA (CPS §4.9.3.1, §4.9.13–16, §4.4.1.1) ----
//
// Each runs on a reception case of its kind that an operator opened for the holder (by record
// code, from the register), whose identity check is recorded (CPS §3.2.3, §4.1.2.1: photo ID;
// a proxy's documents; any doubt stops the case) and which the operator approved. The CA call
// happens outside a database transaction; its answer, the audit record and the completion of
// the case are committed together. Revocation and hold release send the holder's
// resident-record code from the case, which the CA checks against the certificate's person key
// and its residence (it acts only for this municipality's residents). Request ids are derived
// from this terminal's installation id, the case and the certificate type, so repeating a call
// after a lost answer is answered idempotently by the CA (revocation is never done twice, and
// never undone).

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
	ca, err := s.t.ca()
	var c *workflow.Case
	var kind string
	if err == nil {
		c, kind, err = s.revocationCase(ctx, req)
	}
	if err != nil {
		s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: resultOf(err), Detail: refusalDetail(detail, err)})
		return nil, err
	}
	inst, err := s.t.installationID(ctx)
	if err != nil {
		return nil, err
	}
	res := &RevocationResult{Notice: printout.RevocationNotice{Municipality: s.t.Municipality(), ReceiptNo: target,
		OperatorID: s.operatorID, HolderName: c.Applicant.Name, ReceivedAt: c.OpenedAt}}
	for _, ref := range req.Certificates {
		d := map[string]string{"kind": kind, "cert_type": string(ref.Type), "serial": ref.Serial, "written_request": req.WrittenRequest}
		// the resident-record code of the identity-checked case (imported from the resident
		// file) proves the person to the CA; it goes only into the request, never into the
		// terminal's audit detail
		ack, err := ca.Revoke(ctx, s.operatorID, ref.Serial, wire.RevokeRequest{
			RequestID: "rv-" + inst + "-" + target + "-" + wireType[ref.Type], CertType: wireType[ref.Type], Kind: kind,
			WrittenRequest: req.WrittenRequest, IdentityDocument: string(c.Identity.Document), ResidentCode: c.Applicant.RecordCode})
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
	ca, err := s.t.ca()
	if err != nil {
		return fail(err)
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
	st, err := ca.ReleaseHold(ctx, s.operatorID, ref.Serial, wire.ReleaseHoldRequest{
		RequestID: "rh-" + inst + "-" + target + "-" + wireType[ref.Type], CertType: wireType[ref.Type], IdentityDocument: string(c.Identity.Document),
		ResidentCode: c.Applicant.RecordCode})
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
// Both need commands the card accepts only under the card issuer's keys, which the CA holds in
// its HSM (ca-server/cardkeys): the CA authorises a protected script for this card over a
// secure channel, as for issuance (TS Arts. 6(ii), 7(ii)); the terminal only relays.
// Concurrency: the card must be held by the caller for the whole call (opened exclusively):
// nothing may interleave commands between INITIALIZE UPDATE, the script and the new PIN.

// CardMaintenanceCA is the CA service a counter PIN reset or key destruction needs
// (raclient.Client): a channel, the protected script, and the confirmation with the card's
// protected responses.
type CardMaintenanceCA interface {
	OpenChannel(ctx context.Context, operator string) (wire.ChannelResponse, error)
	PrepareMaintenance(ctx context.Context, operator string, req wire.MaintenanceRequest) (wire.MaintenanceResponse, error)
	ConfirmMaintenance(ctx context.Context, operator, maintenanceID string, req wire.ConfirmRequest) (wire.MaintenanceStatus, error)
}

var _ CardMaintenanceCA = (*raclient.Client)(nil)

// CardMaintenanceCA returns the CA client in effect now as a CardMaintenanceCA, or nil when
// the terminal has no CA or its client offers no card maintenance.
func (t *Terminal) CardMaintenanceCA() CardMaintenanceCA {
	c, _ := t.ca()
	ca, _ := c.(CardMaintenanceCA)
	return ca
}

// MaxNewPINAttempts bounds the applicant's entries refused by the PIN rules during a PIN reset; after it the PIN stays "not set" (kind PINNotSet) and the procedure can be run
// again.
const MaxNewPINAttempts = 5

// maintenanceTarget is what a maintenance targets on the card, per PIN kind.
var maintenanceTarget = map[pinrule.Kind]struct {
	wire  string
	which cardio.Which
}{
	pinrule.Signature: {"sign", cardio.Signature},
	pinrule.UserAuth:  {"auth", cardio.UserAuth},
}

// ResetPIN returns one PIN of the holder's card to "not set" with a full try counter through a
// CA-authorised script, then asks the applicant (newPIN, same contract as issue.PINEntry, with
// Existing=false) for the new PIN and sets it on the card. Reception permission; approved
// PINReset case.
//
// The CA authorises the script only for a card it delivered a certificate to through this
// municipality (kinds CardUnknown, CardOtherMunicipality). The new PIN goes from newPIN to the
// card's own SET PIN and nowhere else: never to the CA, never stored, logged or audited
// (CPS §6.4.1.2; R02 II-2-3(3)). It must pass the PIN rules of TS Art. 4 (app/pinrule, with the
// applicant's birthday) and be typed twice; a refused entry is asked again with
// PINRequest.Refused set, up to MaxNewPINAttempts. If the applicant gives up after the reset,
// the PIN stays "not set" (kind PINNotSet; the card cannot be used with that PIN until set) and
// the case stays approved so the procedure can be repeated. On success the new PIN is verified
// on the card and the case is completed. Audited as "card.pin_reset".
func (s *Session) ResetPIN(ctx context.Context, caseID int64, which pinrule.Kind, newPIN issue.PINEntry) error {
	const action = "card.pin_reset"
	target := strconv.FormatInt(caseID, 10)
	detail := map[string]string{"operation": wire.MaintenancePINReset, "pin": which.String()}
	if err := s.precheck(ctx, action, target, operator.Reception, detail); err != nil {
		return err
	}
	err := func() error {
		t, ok := maintenanceTarget[which]
		if !ok {
			return apperr.New(apperr.InvalidInput, "app: unknown PIN kind %d", which)
		}
		if newPIN == nil {
			return apperr.New(apperr.InvalidInput, "app: a PIN reset needs the applicant's PIN entry")
		}
		c, ca, card, closeCard, err := s.maintenanceCase(ctx, caseID, workflow.PINReset)
		if err != nil {
			return err
		}
		defer closeCard()
		birth, err := c.Applicant.Birth()
		if err != nil {
			return err
		}
		serial, err := s.runMaintenance(ctx, ca, card, wire.MaintenancePINReset, []string{t.wire}, detail)
		if err != nil {
			return err
		}
		// From here the PIN is "not set" on the card (docs/CARD-PROTOCOL.md §5).
		return setNewPIN(ctx, card, serial, which, t.which, birth, newPIN)
	}()
	return s.finishMaintenance(ctx, action, caseID, detail, err)
}

// DestroyKeys erases the private keys (both, or the ones named) on the holder's card through a
// CA-authorised script.
//
// The keys are those of the case's certificate types (workflow.Case.CertTypes), both when the
// case names none. The CA refuses (kind CertificateNotRevoked: "revoke the certificate first")
// while a certificate for a key to destroy on this card is valid, held or being issued
// (CPS §4.9.1.1(1): a certificate must not stay good after its key is gone), and refuses unknown
// cards and cards of another municipality as for ResetPIN. Afterwards the JPKI AP refuses to
// sign with the destroyed keys. Reception permission; approved KeyDestruction case, completed on
// success. Audited as "card.key_destruction".
func (s *Session) DestroyKeys(ctx context.Context, caseID int64) error {
	const action = "card.key_destruction"
	target := strconv.FormatInt(caseID, 10)
	detail := map[string]string{"operation": wire.MaintenanceKeyDestruction}
	if err := s.precheck(ctx, action, target, operator.Reception, detail); err != nil {
		return err
	}
	err := func() error {
		c, ca, card, closeCard, err := s.maintenanceCase(ctx, caseID, workflow.KeyDestruction)
		if err != nil {
			return err
		}
		defer closeCard()
		types := c.CertTypes
		if len(types) == 0 {
			types = []workflow.CertType{workflow.SignatureCert, workflow.UserAuthCert}
		}
		var targets []string
		for _, typ := range types {
			if wireType[typ] == "" {
				return apperr.New(apperr.InvalidInput, "app: unknown certificate type %q", typ)
			}
			targets = append(targets, wireType[typ])
		}
		detail["keys"] = strings.Join(targets, ",")
		_, err = s.runMaintenance(ctx, ca, card, wire.MaintenanceKeyDestruction, targets, detail)
		return err
	}()
	return s.finishMaintenance(ctx, action, caseID, detail, err)
}

// maintenanceCase loads and checks the case of a card maintenance, then takes the terminal's
// CA client in effect and opens the card in its reader (exclusively: nothing may interleave
// commands with the CA's script); closeCard releases it.
func (s *Session) maintenanceCase(ctx context.Context, caseID int64, kind workflow.Kind) (c *workflow.Case, ca CardMaintenanceCA, card issue.Card, closeCard func(), err error) {
	c, err = workflow.Load(ctx, s.t.db, caseID)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if c.Kind != kind {
		return nil, nil, nil, nil, apperr.New(apperr.InvalidTransition, "app: case %d is a %s, not a %s", caseID, c.Kind, kind)
	}
	if err := approved(c); err != nil {
		return nil, nil, nil, nil, err
	}
	if ca = s.t.CardMaintenanceCA(); ca == nil {
		return nil, nil, nil, nil, ErrNoCA
	}
	if card, closeCard, err = s.t.openCard(ctx); err != nil {
		return nil, nil, nil, nil, err
	}
	return c, ca, card, closeCard, nil
}

// runMaintenance opens the secure channel between the card and the CA, has the CA authorise
// and protect the script, relays it and confirms with the card's protected responses (the CA
// verifies every R-MAC and the card's attestation). The terminal only relays (TS Arts. 6(ii),
// 7(ii)); the request id is fresh per attempt, and raclient retries a lost answer with it. It
// returns the card serial, and notes the maintenance id and card serial in detail.
func (s *Session) runMaintenance(ctx context.Context, ca CardMaintenanceCA, card issue.Card, op string, targets []string, detail map[string]string) ([]byte, error) {
	serial, err := card.CardSerial(ctx)
	if err != nil {
		return nil, cardError("read the card serial", err)
	}
	detail["card_serial"] = strings.ToUpper(hex.EncodeToString(serial))
	reqID, err := raclient.NewRequestID()
	if err != nil {
		return nil, apperr.Wrap(apperr.Internal, err, "app: request id")
	}
	ch, err := ca.OpenChannel(ctx, s.operatorID)
	if err != nil {
		return nil, maintenanceCAError(op, err)
	}
	iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
	if err != nil {
		return nil, cardError("initialize update", err)
	}
	resp, err := ca.PrepareMaintenance(ctx, s.operatorID, wire.MaintenanceRequest{RequestID: "mt-" + reqID, ChannelID: ch.ChannelID,
		CardSerial: detail["card_serial"], InitUpdateResponse: iu, Operation: op, Targets: targets})
	if err != nil {
		return nil, maintenanceCAError(op, err)
	}
	detail["maintenance_id"] = resp.MaintenanceID
	responses, err := card.RunScript(ctx, resp.Script)
	if err != nil {
		return nil, cardError("run the CA's script", err)
	}
	if _, err := ca.ConfirmMaintenance(ctx, s.operatorID, resp.MaintenanceID, wire.ConfirmRequest{RequestID: "mt-" + reqID + ".c", CardResponses: responses}); err != nil {
		return nil, maintenanceCAError(op, err)
	}
	return serial, nil
}

// setNewPIN asks the applicant for the new PIN until the rules of TS Art. 4 and the card accept
// it, sets it with the card's SET PIN and verifies it. The PIN bytes are cleared after use.
func setNewPIN(ctx context.Context, card issue.Card, serial []byte, kind pinrule.Kind, which cardio.Which, birth time.Time, newPIN issue.PINEntry) error {
	if err := card.CheckSerial(ctx, serial); err != nil {
		return cardError("the card changed", err)
	}
	var refused error
	for attempt := 1; attempt <= MaxNewPINAttempts; attempt++ {
		pin, confirm, err := newPIN(ctx, issue.PINRequest{Kind: kind, Existing: false, Attempt: attempt, Refused: refused})
		if err != nil {
			return apperr.Wrap(apperr.PINNotSet, err, "app: the applicant set no new PIN")
		}
		if err := pinrule.Check(kind, pin, confirm, pinrule.Applicant{BirthDate: birth}); err != nil {
			refused = err
			continue
		}
		b := []byte(pin.Reveal())
		err = card.SetPIN(ctx, which, b)
		if err == nil {
			err = card.VerifyPIN(ctx, which, b)
		}
		clear(b)
		if err != nil {
			return cardError("set the new PIN", err)
		}
		return nil
	}
	return apperr.New(apperr.PINNotSet, "app: %d PIN entries refused; the PIN stays not set", MaxNewPINAttempts)
}

// finishMaintenance audits a card maintenance and, on success, completes its case.
func (s *Session) finishMaintenance(ctx context.Context, action string, caseID int64, detail map[string]string, err error) error {
	target := strconv.FormatInt(caseID, 10)
	if err != nil {
		s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: resultOf(err), Detail: refusalDetail(detail, err)})
		return err
	}
	if err := s.t.record(ctx, audit.Entry{Operator: s.operatorID, Action: action, Target: target, Result: audit.ResultOK, Detail: detail}); err != nil {
		return err
	}
	_, err = s.Complete(ctx, caseID)
	return err
}

// maintenanceCAError classifies a CA refusal of a card maintenance: the maintenance kinds
// first, then as every CA call (caError).
func maintenanceCAError(op string, err error) error {
	kind := apperr.Kind(0)
	switch {
	case errors.Is(err, raclient.ErrCardUnknown):
		kind = apperr.CardUnknown
	case errors.Is(err, raclient.ErrCardOtherMunicipality):
		kind = apperr.CardOtherMunicipality
	case errors.Is(err, raclient.ErrCertificateLive):
		kind = apperr.CertificateNotRevoked
	case errors.Is(err, raclient.ErrCard), errors.Is(err, raclient.ErrChannelExpired):
		kind = apperr.CardRefused
	default:
		return caError(op, err)
	}
	return &CAError{Kind: kind, Op: op, Err: err}
}

// cardError classifies a failure at the card (removed, refused, another card).
func cardError(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return apperr.Wrap(apperr.Cancelled, err, "app: card: "+what)
	}
	return apperr.Wrap(apperr.CardRefused, err, "app: card: "+what)
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
		leafDER, caDER := certs.UserAuth, certs.UserAuthCA
		if typ == workflow.SignatureCert {
			leafDER, caDER = certs.Signature, certs.SignatureCA
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
		kind, err := printout.KindOf(typ)
		if err != nil {
			return err
		}
		if out, err = printout.CopyOf(leaf, kind); err != nil {
			return err
		}
		out.Municipality, out.Date, out.OperatorID = s.t.Municipality(), s.t.now(), s.operatorID
		detail["serial"] = strings.ToUpper(leaf.SerialNumber.Text(16))
		return nil
	}()
	err := s.call(ctx, action, "", operator.Reception, detail, func(*sql.Tx, operator.Operator) error { return readErr })
	if err != nil {
		return printout.CertificateCopy{}, err
	}
	return out, nil
}
