package issuance

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/jpki/wire"
)

// Card maintenance at the counter: a PIN reset (unblock) or a key destruction on a card the CA
// delivered certificates to. Both need commands the card accepts only under its issuer keys,
// held in the HSM (TS Arts. 6(ii), 7(ii)), so the CA builds the protected script over the
// same secure channel as issuance and the terminal relays it. No PIN travels to the CA
// (CPS §6.4.1.2): after a reset the PIN is "not set" and the applicant sets it with the card's
// own SET PIN at the terminal.
//
// Rules, in the order they are checked:
//   - the request is well formed, and idempotent by (terminal, request id) as prepare is;
//   - the channel is the caller's, unused and not expired (single use, short-lived);
//   - the card is one the CA delivered a certificate to (CodeCardUnknown), through a terminal of
//     the caller's municipality (CodeCardOtherMunicipality): the issuing municipality holds the
//     application and identity records of the holder (CPS §3.2, §4.1; R02 II-8-1(3));
//   - a key is destroyed only once no certificate for it on the card is valid, held or being
//     issued (CodeCertificateLive: revoke first, CPS §4.9.1.1(1); a good certificate must not outlive
//     its key);
//   - the card cryptogram verifies and the card is the one named (CodeCardAuthFailed).

// MaintenanceStore is the part of the store card maintenance uses (store.SQLite).
type MaintenanceStore interface {
	Channel(ctx context.Context, id string) (store.Channel, error)
	CardIssuances(ctx context.Context, cardSerial string) ([]store.CardIssuance, error)
	Maintenance(ctx context.Context, id string) (store.Maintenance, error)
	MaintenanceByRequest(ctx context.Context, terminalID, requestID string) (store.Maintenance, error)
	BeginMaintenance(ctx context.Context, m store.Maintenance, now time.Time) error
	FinishMaintenance(ctx context.Context, id, confirmRequestID string, confirmSHA256 []byte, now time.Time) (store.Maintenance, error)
}

var _ MaintenanceStore = (*store.SQLite)(nil)

// MaintenanceChange is one change of a maintenance script.
type MaintenanceChange struct {
	Operation string         // wire.MaintenancePINReset or wire.MaintenanceKeyDestruction
	Target    store.CertType // whose PIN or key
}

// MaintenanceSession is a CardSession that can also build a maintenance script
// (hsmissuance's card sessions). Found by type assertion on what CardChannel.Authenticate
// returns.
type MaintenanceSession interface {
	CardSession
	// BuildMaintenanceScript returns the protected APDUs applying changes, then FINALIZE.
	BuildMaintenanceScript(ctx context.Context, changes []MaintenanceChange) ([][]byte, error)
}

// maintenanceStore returns the configured store as a MaintenanceStore.
func (s *Service) maintenanceStore() (MaintenanceStore, error) {
	ms, ok := s.cfg.Store.(MaintenanceStore)
	if !ok {
		return nil, wire.Errorf(wire.CodeUnavailable, "card maintenance is not available on this store")
	}
	return ms, nil
}

// checkMaintenanceRequest checks the shape of req and returns its targets, sorted.
func checkMaintenanceRequest(req wire.MaintenanceRequest) ([]store.CertType, error) {
	if !validRequestID(req.RequestID) {
		return nil, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	if req.ChannelID == "" || req.CardSerial == "" || len(req.CardSerial) > 64 || len(req.InitUpdateResponse) == 0 {
		return nil, wire.Errorf(wire.CodeInvalidRequest, "channel_id, card_serial and init_update_response are required")
	}
	var targets []store.CertType
	for _, t := range req.Targets {
		ct := store.CertType(t)
		if !ct.Valid() {
			return nil, wire.Errorf(wire.CodeInvalidRequest, "targets must be \"sign\" or \"auth\", not %q", t)
		}
		if slices.Contains(targets, ct) {
			return nil, wire.Errorf(wire.CodeInvalidRequest, "target %q named twice", t)
		}
		targets = append(targets, ct)
	}
	slices.Sort(targets)
	switch req.Operation {
	case wire.MaintenancePINReset:
		if len(targets) != 1 {
			return nil, wire.Errorf(wire.CodeInvalidRequest, "a pin reset names exactly one PIN")
		}
	case wire.MaintenanceKeyDestruction:
		if len(targets) == 0 {
			return nil, wire.Errorf(wire.CodeInvalidRequest, "a key destruction names the keys to destroy")
		}
	default:
		return nil, wire.Errorf(wire.CodeInvalidRequest, "operation must be %q or %q", wire.MaintenancePINReset, wire.MaintenanceKeyDestruction)
	}
	return targets, nil
}

// PrepareMaintenance authorises one maintenance of the card and returns its protected script
// (rules above). It is idempotent by (terminal, request id): a retry with the same body gets
// the same script while the maintenance is not confirmed; with another body,
// CodeRequestIDReused.
func (s *Service) PrepareMaintenance(ctx context.Context, c Caller, req wire.MaintenanceRequest) (wire.MaintenanceResponse, error) {
	ms, err := s.maintenanceStore()
	if err != nil {
		return wire.MaintenanceResponse{}, err
	}
	targets, err := checkMaintenanceRequest(req)
	if err != nil {
		return wire.MaintenanceResponse{}, err
	}
	body, _ := json.Marshal(req) // struct encoding is deterministic
	reqHash := sha256.Sum256(body)
	if prev, err := ms.MaintenanceByRequest(ctx, c.TerminalID, req.RequestID); err == nil {
		return replayMaintenance(prev, reqHash[:])
	} else if !errors.Is(err, store.ErrNotFound) {
		return wire.MaintenanceResponse{}, storeError(err)
	}

	now := s.cfg.Clock()
	ch, err := ms.Channel(ctx, req.ChannelID)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && ch.TerminalID != c.TerminalID):
		return wire.MaintenanceResponse{}, wire.Errorf(wire.CodeNotFound, "channel %q not found", req.ChannelID)
	case err != nil:
		return wire.MaintenanceResponse{}, storeError(err)
	case !ch.UsedAt.IsZero():
		return wire.MaintenanceResponse{}, wire.Errorf(wire.CodeChannelUsed, "channel %q already used", req.ChannelID)
	case !now.Before(ch.ExpiresAt):
		return wire.MaintenanceResponse{}, wire.Errorf(wire.CodeChannelExpired, "channel %q expired", req.ChannelID)
	}
	if err := s.checkCard(ctx, ms, c, req.CardSerial, req.Operation, targets, now); err != nil {
		return wire.MaintenanceResponse{}, err
	}
	sess, err := s.cfg.Cards.Authenticate(ctx, CardAuth{CardSerial: req.CardSerial, HostChallenge: ch.HostChallenge, InitUpdateResponse: req.InitUpdateResponse})
	if err != nil {
		return wire.MaintenanceResponse{}, wire.Wrap(wire.CodeCardAuthFailed, err, "card cryptogram did not verify")
	}
	msess, ok := sess.(MaintenanceSession)
	if !ok {
		return wire.MaintenanceResponse{}, wire.Errorf(wire.CodeUnavailable, "the card channel cannot build maintenance scripts")
	}
	changes := make([]MaintenanceChange, len(targets))
	for i, t := range targets {
		changes[i] = MaintenanceChange{Operation: req.Operation, Target: t}
	}
	script, err := msess.BuildMaintenanceScript(ctx, changes)
	if err != nil {
		return wire.MaintenanceResponse{}, wire.Wrap(wire.CodeInternal, err, "card script failed")
	}
	idHex, err := s.randomHex(16)
	if err != nil {
		return wire.MaintenanceResponse{}, err
	}
	scriptBlob, _ := json.Marshal(script)
	m := store.Maintenance{ID: "mt-" + idHex, TerminalID: c.TerminalID, RequestID: req.RequestID, RequestSHA256: reqHash[:],
		OperatorID: c.OperatorID, ChannelID: ch.ID, CardSerial: req.CardSerial, Operation: req.Operation, Targets: targets,
		Script: scriptBlob, ChannelState: msess.State()}
	if err := ms.BeginMaintenance(ctx, m, now); err != nil {
		if errors.Is(err, store.ErrDuplicateReq) {
			// a concurrent retry won the race: answer as a replay
			if prev, err2 := ms.MaintenanceByRequest(ctx, c.TerminalID, req.RequestID); err2 == nil {
				return replayMaintenance(prev, reqHash[:])
			}
		}
		if errors.Is(err, store.ErrCertificateLive) {
			return wire.MaintenanceResponse{}, wire.Wrap(wire.CodeCertificateLive, err, "revoke the certificate first: a certificate for this key on the card is valid, held or being issued")
		}
		return wire.MaintenanceResponse{}, storeError(err)
	}
	return maintenanceResponse(m, script), nil
}

// checkCard applies the card rules: known card, same municipality, no live certificate for a
// key to destroy.
func (s *Service) checkCard(ctx context.Context, ms MaintenanceStore, c Caller, serial, op string, targets []store.CertType, now time.Time) error {
	all, err := ms.CardIssuances(ctx, serial)
	if err != nil {
		return storeError(err)
	}
	var delivered, here bool
	for _, ci := range all {
		if !ci.Delivered {
			continue
		}
		delivered = true
		here = here || ci.Municipality == c.Municipality
	}
	if !delivered {
		return wire.Errorf(wire.CodeCardUnknown, "this CA delivered no certificate to card %s", serial)
	}
	if !here {
		return wire.Errorf(wire.CodeCardOtherMunicipality, "card %s was issued through another municipality; its counter handles it", serial)
	}
	if op != wire.MaintenanceKeyDestruction {
		return nil
	}
	for _, ci := range all {
		if slices.Contains(targets, ci.CertType) && ci.Live(now) {
			return wire.Errorf(wire.CodeCertificateLive, "revoke the certificate first: %s certificate %s on the card is %s", ci.CertType, ci.Serial, ci.State)
		}
	}
	return nil
}

func replayMaintenance(prev store.Maintenance, reqHash []byte) (wire.MaintenanceResponse, error) {
	if string(prev.RequestSHA256) != string(reqHash) {
		return wire.MaintenanceResponse{}, wire.Errorf(wire.CodeRequestIDReused, "request_id %q was used for a different request", prev.RequestID)
	}
	if prev.State != store.MaintenanceAuthorised {
		return wire.MaintenanceResponse{}, wire.Errorf(wire.CodeInvalidState, "maintenance %s is %s", prev.ID, prev.State)
	}
	var script [][]byte
	if err := json.Unmarshal(prev.Script, &script); err != nil {
		return wire.MaintenanceResponse{}, wire.Wrap(wire.CodeInternal, err, "stored script unreadable")
	}
	return maintenanceResponse(prev, script), nil
}

func maintenanceResponse(m store.Maintenance, script [][]byte) wire.MaintenanceResponse {
	return wire.MaintenanceResponse{MaintenanceID: m.ID, State: store.MaintenanceAuthorised, Operation: m.Operation, Targets: targetNames(m.Targets), Script: script}
}

func targetNames(ts []store.CertType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// ConfirmMaintenance records that the card applied the script: every R-MAC and the card's
// attestation must verify (CodeCardResponseFailed otherwise, nothing recorded). A replay with
// the same request id returns the same status. Another terminal's maintenance is not found.
func (s *Service) ConfirmMaintenance(ctx context.Context, c Caller, id string, req wire.ConfirmRequest) (wire.MaintenanceStatus, error) {
	ms, err := s.maintenanceStore()
	if err != nil {
		return wire.MaintenanceStatus{}, err
	}
	if !validRequestID(req.RequestID) {
		return wire.MaintenanceStatus{}, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	if len(req.CardResponses) == 0 {
		return wire.MaintenanceStatus{}, wire.Errorf(wire.CodeInvalidRequest, "card_responses are required")
	}
	m, err := ms.Maintenance(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && m.TerminalID != c.TerminalID) {
		return wire.MaintenanceStatus{}, wire.Errorf(wire.CodeNotFound, "maintenance %q not found", id)
	}
	if err != nil {
		return wire.MaintenanceStatus{}, storeError(err)
	}
	if m.State == store.MaintenanceDone && m.ConfirmRequestID == req.RequestID {
		return MaintenanceStatus(m), nil
	}
	if m.State != store.MaintenanceAuthorised {
		return wire.MaintenanceStatus{}, wire.Errorf(wire.CodeInvalidState, "maintenance %s is %s", id, m.State)
	}
	if err := s.cfg.Cards.VerifyConfirmation(ctx, m.ChannelState, req.CardResponses); err != nil {
		return wire.MaintenanceStatus{}, wire.Wrap(wire.CodeCardResponseFailed, err, "card responses did not verify")
	}
	h := sha256.New()
	for _, r := range req.CardResponses {
		fmt.Fprintf(h, "%d:", len(r))
		h.Write(r)
	}
	done, err := ms.FinishMaintenance(ctx, id, req.RequestID, h.Sum(nil), s.cfg.Clock())
	if err != nil {
		return wire.MaintenanceStatus{}, storeError(err)
	}
	return MaintenanceStatus(done), nil
}

// MaintenanceStatus converts a stored maintenance to its wire status.
func MaintenanceStatus(m store.Maintenance) wire.MaintenanceStatus {
	st := wire.MaintenanceStatus{MaintenanceID: m.ID, State: m.State, Operation: m.Operation, Targets: targetNames(m.Targets),
		CardSerial: m.CardSerial, AuthorisedAt: m.CreatedAt}
	if !m.DoneAt.IsZero() {
		d := m.DoneAt
		st.DoneAt = &d
	}
	return st
}
