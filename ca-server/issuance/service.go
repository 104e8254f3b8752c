package issuance

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"time"

	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/issuer"
	"madoguchi/ca-server/store"
	"madoguchi/internal/wallclock"
	"madoguchi/jpki/wire"
)

// Config holds the dependencies and limits of a Service. Zero durations
// take the defaults.
type Config struct {
	Store      Store
	Keys       KeyGenerator
	Cards      CardChannel
	Issuer     Issuer
	Applicants ApplicantChecker
	Clock      func() time.Time // default time.Now
	Rand       io.Reader        // default crypto/rand.Reader
	Logger     *slog.Logger     // default slog.Default()

	// ChannelTTL bounds the time between the host challenge and prepare
	// (default 2 minutes): a challenge is single use and short-lived.
	ChannelTTL time.Duration
	// Deadline bounds the time between prepare and confirm (default 10
	// minutes); after it the sweeper revokes with reason 0 (destroyed
	// before delivery, CPS §4.9.9).
	Deadline time.Duration
}

// Caller identifies who calls: the authenticated terminal and the operator
// it acts for.
type Caller struct {
	TerminalID   string
	Municipality string
	OperatorID   string
}

// Service implements the issuance API.
type Service struct {
	cfg Config
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Keys == nil || cfg.Cards == nil || cfg.Issuer == nil || cfg.Applicants == nil {
		return nil, errors.New("issuance: store, key generator, card channel, issuer and applicant checker are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ChannelTTL == 0 {
		cfg.ChannelTTL = 2 * time.Minute
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = 10 * time.Minute
	}
	if cfg.ChannelTTL < 0 || cfg.Deadline < 0 || cfg.Deadline > 24*time.Hour {
		return nil, fmt.Errorf("issuance: channel TTL %v or deadline %v out of range", cfg.ChannelTTL, cfg.Deadline)
	}
	return &Service{cfg: cfg}, nil
}

func (s *Service) randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", wire.Wrap(wire.CodeUnavailable, err, "randomness unavailable")
	}
	return hex.EncodeToString(b), nil
}

// OpenChannel chooses a fresh host challenge for the card's INITIALIZE UPDATE.
func (s *Service) OpenChannel(ctx context.Context, c Caller) (wire.ChannelResponse, error) {
	now := s.cfg.Clock()
	id, err := s.randomHex(16)
	if err != nil {
		return wire.ChannelResponse{}, err
	}
	challenge := make([]byte, 8) // SCP03 host challenge: 8 bytes
	if _, err := io.ReadFull(s.cfg.Rand, challenge); err != nil {
		return wire.ChannelResponse{}, wire.Wrap(wire.CodeUnavailable, err, "randomness unavailable")
	}
	ch := store.Channel{ID: "ch-" + id, TerminalID: c.TerminalID, HostChallenge: challenge, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ChannelTTL)}
	if err := s.cfg.Store.CreateChannel(ctx, ch); err != nil {
		return wire.ChannelResponse{}, storeError(err)
	}
	return wire.ChannelResponse{ChannelID: ch.ID, HostChallenge: challenge, ExpiresAt: ch.ExpiresAt}, nil
}

// validRequestID: 1 to 64 characters of [A-Za-z0-9._-].
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Prepare generates the key, issues the certificate and builds the card
// script. It is idempotent by (terminal, request id): a retry with the same
// body returns the same answer; with another body, CodeRequestIDReused.
//
// Order (crash safety, see package store): the issuance row and the key
// fingerprint exist before the certificate is signed; the HSM copy of the
// key is destroyed before the issuance becomes prepared.
func (s *Service) Prepare(ctx context.Context, c Caller, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	if !validRequestID(req.RequestID) {
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	typ := store.CertType(req.CertType)
	if !typ.Valid() {
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeInvalidRequest, "cert_type must be \"sign\" or \"auth\"")
	}
	if req.ChannelID == "" || req.CardSerial == "" || len(req.CardSerial) > 64 || len(req.InitUpdateResponse) == 0 {
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeInvalidRequest, "channel_id, card_serial and init_update_response are required")
	}
	kind, err := requestKind(req)
	if err != nil {
		return wire.PrepareResponse{}, err
	}
	if err := checkCardContents(req.CardContents); err != nil {
		return wire.PrepareResponse{}, err
	}
	body, _ := json.Marshal(req) // struct encoding is deterministic
	reqHash := sha256.Sum256(body)

	if prev, err := s.cfg.Store.IssuanceByRequest(ctx, c.TerminalID, req.RequestID); err == nil {
		return s.replayPrepare(prev, reqHash[:], req)
	} else if !errors.Is(err, store.ErrNotFound) {
		return wire.PrepareResponse{}, storeError(err)
	}

	now := s.cfg.Clock()
	app, err := s.cfg.Applicants.Check(req.Applicant, now)
	if err != nil {
		return wire.PrepareResponse{}, err
	}
	ch, err := s.cfg.Store.Channel(ctx, req.ChannelID)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && ch.TerminalID != c.TerminalID):
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeNotFound, "channel %q not found", req.ChannelID)
	case err != nil:
		return wire.PrepareResponse{}, storeError(err)
	case !ch.UsedAt.IsZero():
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeChannelUsed, "channel %q already used", req.ChannelID)
	case !now.Before(ch.ExpiresAt):
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeChannelExpired, "channel %q expired", req.ChannelID)
	}
	// CPS §4.3.1.1: refuse early, before spending an HSM key; the store
	// checks again inside BeginIssuance's transaction.
	cur, err := s.cfg.Store.ValidIssuance(ctx, app.PersonHash, typ)
	hasCurrent := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return wire.PrepareResponse{}, storeError(err)
	}
	if !req.Supersedes && hasCurrent {
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeDuplicatePerson, "the person already has a valid or held %s certificate", typ)
	}
	var earlyRenewalOf time.Time
	if req.Supersedes && hasCurrent {
		if earlyRenewalOf, err = renewalRule(cur, kind, now); err != nil {
			return wire.PrepareResponse{}, err
		}
	}
	sess, err := s.cfg.Cards.Authenticate(ctx, CardAuth{CardSerial: req.CardSerial, HostChallenge: ch.HostChallenge, InitUpdateResponse: req.InitUpdateResponse})
	if err != nil {
		return wire.PrepareResponse{}, wire.Wrap(wire.CodeCardAuthFailed, err, "card cryptogram did not verify")
	}
	// Issue 17: blank stock or the applicant's own card only (ownership.go); before any key
	// is spent or anything is written.
	owner, err := s.checkCardOwner(ctx, req.CardSerial, app.PersonHash, req.CardContents)
	if err != nil {
		return wire.PrepareResponse{}, err
	}

	key, err := s.cfg.Keys.GenerateUserKey(ctx)
	if err != nil {
		return wire.PrepareResponse{}, wire.Wrap(wire.CodeUnavailable, err, "key generation failed")
	}
	destroy := func() {
		if err := key.Destroy(context.WithoutCancel(ctx)); err != nil {
			s.cfg.Logger.Error("issuance: destroy user key", "err", err)
		}
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		destroy()
		return wire.PrepareResponse{}, wire.Wrap(wire.CodeInternal, err, "generated key unusable")
	}
	fp := sha256.Sum256(spki)
	// TS Art. 5(iii): a previously generated key must never be produced
	// again; the fingerprint is kept even if this issuance fails later.
	if err := s.cfg.Store.RecordKeyFingerprint(ctx, fp[:], now); err != nil {
		destroy()
		if errors.Is(err, store.ErrDuplicateKey) {
			s.cfg.Logger.Error("issuance: HSM produced a key generated before", "spki_sha256", hex.EncodeToString(fp[:]))
			return wire.PrepareResponse{}, wire.Wrap(wire.CodeInternal, err, "key generator produced a duplicate key; refused")
		}
		return wire.PrepareResponse{}, storeError(err)
	}
	serial, err := s.newSerial()
	if err != nil {
		destroy()
		return wire.PrepareResponse{}, err
	}
	idHex, err := s.randomHex(16)
	if err != nil {
		destroy()
		return wire.PrepareResponse{}, err
	}
	is := store.Issuance{
		ID: "is-" + idHex, TerminalID: c.TerminalID, RequestID: req.RequestID, RequestSHA256: reqHash[:],
		OperatorID: c.OperatorID, ChannelID: ch.ID, CardSerial: req.CardSerial, PersonHash: app.PersonHash,
		CertType: typ, Supersedes: req.Supersedes, Serial: serial.Text(16), KeySHA256: fp[:],
		Deadline: now.Add(s.cfg.Deadline),
	}
	if err := s.cfg.Store.BeginIssuance(ctx, is, now); err != nil {
		destroy()
		if errors.Is(err, store.ErrDuplicateReq) {
			// a concurrent retry won the race: answer as a replay
			if prev, err2 := s.cfg.Store.IssuanceByRequest(ctx, c.TerminalID, req.RequestID); err2 == nil {
				return s.replayPrepare(prev, reqHash[:], req)
			}
		}
		return wire.PrepareResponse{}, storeError(err)
	}
	fail := func(code wire.Code, cause error, msg string) (wire.PrepareResponse, error) {
		destroy()
		if _, err := s.cfg.Store.AbortIssuance(context.WithoutCancel(ctx), is.ID, "", s.cfg.Clock()); err != nil {
			s.cfg.Logger.Error("issuance: revoke failed issuance", "issuance", is.ID, "err", err)
		}
		return wire.PrepareResponse{}, wire.Wrap(code, cause, "%s", msg)
	}
	der, err := s.cfg.Issuer.Issue(ctx, IssueRequest{Serial: serial, CertType: typ, PublicKey: key.Public(), Applicant: app, Now: now,
		CurrentNotAfter: earlyRenewalOf})
	if err != nil {
		return fail(wire.CodeInternal, err, "certificate issuance failed")
	}
	script, err := sess.BuildScript(ctx, key, der, s.cfg.Issuer.CACertificate(typ))
	if err != nil {
		return fail(wire.CodeInternal, err, "card script failed")
	}
	// TS Art. 5(iv), CPS §6.2.3: the only remaining copy is the one
	// wrapped for this card.
	if err := key.Destroy(ctx); err != nil {
		return fail(wire.CodeInternal, err, "could not destroy the HSM copy of the key")
	}
	scriptBlob, _ := json.Marshal(script)
	prepared, err := s.cfg.Store.MarkPrepared(ctx, is.ID, der, scriptBlob, sess.State(), s.cfg.Clock())
	if err != nil {
		if _, err2 := s.cfg.Store.AbortIssuance(context.WithoutCancel(ctx), is.ID, "", s.cfg.Clock()); err2 != nil {
			s.cfg.Logger.Error("issuance: revoke failed issuance", "issuance", is.ID, "err", err2)
		}
		return wire.PrepareResponse{}, storeError(err)
	}
	resp := prepareResponse(prepared, script)
	resp.CardOwner = owner
	return resp, nil
}

// requestKind checks the stated kind of request against Supersedes; an
// empty kind (a terminal from before the field) is KindNew without
// Supersedes and KindNewCard with it.
func requestKind(req wire.PrepareRequest) (string, error) {
	switch req.Kind {
	case "":
		if req.Supersedes {
			return wire.KindNewCard, nil
		}
		return wire.KindNew, nil
	case wire.KindNew:
		if req.Supersedes {
			return "", wire.Errorf(wire.CodeInvalidRequest, "kind \"new\" cannot supersede a certificate")
		}
	case wire.KindRenewal, wire.KindNewCard:
		if !req.Supersedes {
			return "", wire.Errorf(wire.CodeInvalidRequest, "kind %q supersedes the current certificate: supersedes must be true", req.Kind)
		}
	default:
		return "", wire.Errorf(wire.CodeInvalidRequest, "kind must be \"new\", \"renewal\" or \"new_card\"")
	}
	return req.Kind, nil
}

// renewalRule decides, from the CA's own record of the person's current
// certificate cur (delivered or held, same person key and type), which
// validity rule a superseding issuance at now gets (CPS §6.3.2.2 ①):
//
//   - cur still valid with less than three months left
//     (issuer.InRenewalWindow): the new certificate runs to the 6th
//     birthday; the result is cur's notAfter, for IssueRequest.CurrentNotAfter.
//     This holds for a renewal and for a new card alike: the CPS grants the
//     6th birthday to whoever, inside the window, asks for the current
//     certificate's revocation and a new certificate.
//   - cur still valid with three months or more left: a renewal is refused
//     (CodeRenewalTooEarly). CPS §4.7.1.1 makes the current certificate's
//     coming expiry the one reason for a renewal, and J-LIS tells holders
//     that renewal opens three months before expiry (公的個人認証サービス
//     ポータル「電子証明書の有効期間と失効」: 有効期間満了日の3ヶ月前から更新
//     手続きを行うことができます). A holder who needs new certificates
//     earlier (lost card, new card) asks for a new card or for revocation
//     and a new issuance, which get the 5th birthday (zero result).
//   - cur already expired: no current certificate; the 5th birthday.
//
// The terminal's own refusal (app/workflow RenewalTooEarly) is for the
// counter's sake; this is the rule.
func renewalRule(cur store.Issuance, kind string, now time.Time) (time.Time, error) {
	c, err := x509.ParseCertificate(cur.DER)
	if err != nil {
		return time.Time{}, wire.Wrap(wire.CodeInternal, err, "the person's current certificate is unreadable")
	}
	switch {
	case now.After(c.NotAfter):
		return time.Time{}, nil
	case issuer.InRenewalWindow(now, applicant.DateOf(c.NotAfter)):
		return c.NotAfter, nil
	case kind == wire.KindRenewal:
		return time.Time{}, wire.Errorf(wire.CodeRenewalTooEarly, "the person's current %s certificate is valid until %s: renewal opens three months before",
			cur.CertType, applicant.DateOf(c.NotAfter))
	}
	return time.Time{}, nil
}

// newSerial returns a positive 127-bit random serial (RFC 5280 §4.1.2.2:
// at most 20 octets; CA/B practice: at least 64 random bits).
func (s *Service) newSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return nil, wire.Wrap(wire.CodeUnavailable, err, "randomness unavailable")
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // never shorter than 16 octets' worth, never zero
	return new(big.Int).SetBytes(b), nil
}

func (s *Service) replayPrepare(prev store.Issuance, reqHash []byte, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	if string(prev.RequestSHA256) != string(reqHash) {
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeRequestIDReused, "request_id %q was used for a different request", prev.RequestID)
	}
	switch prev.State {
	case store.StatePrepared:
		var script [][]byte
		if err := json.Unmarshal(prev.Script, &script); err != nil {
			return wire.PrepareResponse{}, wire.Wrap(wire.CodeInternal, err, "stored script unreadable")
		}
		resp := prepareResponse(prev, script)
		resp.CardOwner = replayCardOwner(req)
		return resp, nil
	case store.StateIssuing:
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeUnavailable, "issuance %s is still being prepared; retry", prev.ID)
	default:
		return wire.PrepareResponse{}, wire.Errorf(wire.CodeInvalidState, "issuance %s is %s", prev.ID, prev.State)
	}
}

func prepareResponse(is store.Issuance, script [][]byte) wire.PrepareResponse {
	return wire.PrepareResponse{IssuanceID: is.ID, State: string(is.State), Serial: is.Serial, Certificate: is.DER, Script: script, Deadline: is.Deadline}
}

// own returns the caller's issuance; another terminal's is reported as not
// found, so a terminal learns nothing about others' issuances.
func (s *Service) own(ctx context.Context, c Caller, id string) (store.Issuance, error) {
	is, err := s.cfg.Store.Issuance(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && is.TerminalID != c.TerminalID) {
		return store.Issuance{}, wire.Errorf(wire.CodeNotFound, "issuance %q not found", id)
	}
	if err != nil {
		return store.Issuance{}, storeError(err)
	}
	return is, nil
}

// Confirm marks a prepared issuance delivered once the card's protected
// responses verify (DOMAIN §4.7: only then is the certificate delivered).
// A replay with the same request id returns the same status.
func (s *Service) Confirm(ctx context.Context, c Caller, id string, req wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	if !validRequestID(req.RequestID) {
		return wire.IssuanceStatus{}, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	if len(req.CardResponses) == 0 {
		return wire.IssuanceStatus{}, wire.Errorf(wire.CodeInvalidRequest, "card_responses are required")
	}
	is, err := s.own(ctx, c, id)
	if err != nil {
		return wire.IssuanceStatus{}, err
	}
	if is.State == store.StateDelivered && is.ConfirmRequestID == req.RequestID {
		return Status(is), nil
	}
	if is.State != store.StatePrepared {
		return wire.IssuanceStatus{}, wire.Errorf(wire.CodeInvalidState, "issuance %s is %s, not prepared", id, is.State)
	}
	now := s.cfg.Clock()
	if !now.Before(is.Deadline) {
		if _, err := s.cfg.Store.AbortIssuance(ctx, id, "", now); err != nil && !errors.Is(err, store.ErrState) {
			return wire.IssuanceStatus{}, storeError(err)
		}
		return wire.IssuanceStatus{}, wire.Errorf(wire.CodeInvalidState, "issuance %s passed its deadline and was revoked", id)
	}
	if err := s.cfg.Cards.VerifyConfirmation(ctx, is.ChannelState, req.CardResponses); err != nil {
		return wire.IssuanceStatus{}, wire.Wrap(wire.CodeCardResponseFailed, err, "card responses did not verify")
	}
	h := sha256.New()
	for _, r := range req.CardResponses {
		fmt.Fprintf(h, "%d:", len(r))
		h.Write(r)
	}
	done, err := s.cfg.Store.ConfirmIssuance(ctx, id, req.RequestID, h.Sum(nil), now)
	if err != nil {
		return wire.IssuanceStatus{}, storeError(err)
	}
	return Status(done), nil
}

// Abort revokes an issuance before delivery with reason 0 (CPS §4.9.9:
// destroyed before delivery). A replay with the same request id returns the
// same status.
func (s *Service) Abort(ctx context.Context, c Caller, id string, req wire.AbortRequest) (wire.IssuanceStatus, error) {
	if !validRequestID(req.RequestID) {
		return wire.IssuanceStatus{}, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	is, err := s.own(ctx, c, id)
	if err != nil {
		return wire.IssuanceStatus{}, err
	}
	if is.State == store.StateRevoked && is.RevocationReason == store.ReasonDestroyedBeforeDelivery && is.AbortRequestID == "" {
		// the sweeper or a failed prepare already ended it
		return Status(is), s.revokeReplaced(ctx, is, req)
	}
	done, err := s.cfg.Store.AbortIssuance(ctx, id, req.RequestID, s.cfg.Clock())
	if err != nil {
		return wire.IssuanceStatus{}, storeError(err)
	}
	return Status(done), s.revokeReplaced(ctx, done, req)
}

// KeyReplacer is the part of the store an aborted renewal on a written card needs.
type KeyReplacer interface {
	RevokeReplacedOnCard(ctx context.Context, id string, now time.Time) (int, error)
}

// revokeReplaced: a renewal aborted after its script's FINALIZE was sent may have replaced
// the applicant's previous key on the same card (the card commits the staged key at
// FINALIZE, cardio/perso). The certificate of that key must not stay valid or held without
// it (issue 17), so it is revoked as superseded (reason 4), as a completed renewal would have
// done at confirm (CPS §4.3.1.1). A renewal onto another card leaves the old card alone.
func (s *Service) revokeReplaced(ctx context.Context, is store.Issuance, req wire.AbortRequest) error {
	if !req.CardWritten || !is.Supersedes || is.State != store.StateRevoked {
		return nil
	}
	kr, ok := s.cfg.Store.(KeyReplacer)
	if !ok {
		return wire.Errorf(wire.CodeUnavailable, "the store cannot revoke a replaced key's certificate")
	}
	n, err := kr.RevokeReplacedOnCard(context.WithoutCancel(ctx), is.ID, s.cfg.Clock())
	if err != nil {
		return storeError(err)
	}
	if n > 0 {
		s.cfg.Logger.Info("issuance: revoked the certificate of a key replaced by an aborted renewal", "issuance", is.ID, "revoked", n, "reason", store.ReasonSuperseded)
	}
	return nil
}

// Status returns the caller's issuance.
func (s *Service) Status(ctx context.Context, c Caller, id string) (wire.IssuanceStatus, error) {
	is, err := s.own(ctx, c, id)
	if err != nil {
		return wire.IssuanceStatus{}, err
	}
	return Status(is), nil
}

// Sweep revokes, with reason 0, every issuing or prepared issuance past its
// deadline, and returns how many it revoked.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	n := 0
	for {
		now := s.cfg.Clock()
		due, err := s.cfg.Store.OverdueIssuances(ctx, now, 100)
		if err != nil {
			return n, err
		}
		if len(due) == 0 {
			return n, nil
		}
		for _, is := range due {
			_, err := s.cfg.Store.AbortIssuance(ctx, is.ID, "", now)
			if errors.Is(err, store.ErrState) {
				continue // confirmed or aborted meanwhile
			}
			if err != nil {
				return n, err
			}
			n++
			s.cfg.Logger.Info("issuance: revoked overdue issuance", "issuance", is.ID, "reason", store.ReasonDestroyedBeforeDelivery)
		}
	}
}

// RunSweeper calls Sweep whenever tick delivers, until ctx ends. The caller
// chooses the ticker (time.NewTicker in production), so tests drive it.
func (s *Service) RunSweeper(ctx context.Context, tick <-chan time.Time, onSweep func(int, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			n, err := s.Sweep(ctx)
			if err != nil {
				s.cfg.Logger.Error("issuance: sweep", "err", err)
			}
			if onSweep != nil {
				onSweep(n, err)
			}
		}
	}
}

// Status converts a stored issuance to its wire status.
func Status(is store.Issuance) wire.IssuanceStatus {
	st := wire.IssuanceStatus{IssuanceID: is.ID, State: string(is.State), CertType: string(is.CertType), Serial: is.Serial, Deadline: is.Deadline}
	tp := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	st.PreparedAt, st.DeliveredAt, st.RevokedAt = tp(is.PreparedAt), tp(is.DeliveredAt), tp(is.RevokedAt)
	if is.State == store.StateRevoked {
		r := is.RevocationReason
		st.RevocationReason = &r
	}
	return st
}

// storeError maps store errors to wire codes, once.
func storeError(err error) error {
	var code wire.Code
	var msg string
	switch {
	case errors.Is(err, store.ErrNotFound):
		code, msg = wire.CodeNotFound, "not found"
	case errors.Is(err, store.ErrDuplicatePerson):
		code, msg = wire.CodeDuplicatePerson, "the person already has a valid or held certificate of this type"
	case errors.Is(err, store.ErrPendingPerson):
		code, msg = wire.CodePendingPerson, "a certificate of this type is already being issued to the person"
	case errors.Is(err, store.ErrCardOtherPerson):
		code, msg = wire.CodeCardOtherPerson, "the card holds or was delivered with another person's certificates"
	case errors.Is(err, store.ErrDuplicateReq):
		code, msg = wire.CodeRequestIDReused, "request_id already used"
	case errors.Is(err, store.ErrChannelUsed):
		code, msg = wire.CodeChannelUsed, "channel already used"
	case errors.Is(err, store.ErrChannelExpired):
		code, msg = wire.CodeChannelExpired, "channel expired"
	case errors.Is(err, store.ErrState):
		code, msg = wire.CodeInvalidState, "not allowed in the issuance's current state"
	default:
		code, msg = wire.CodeInternal, "storage error"
	}
	return wire.Wrap(code, err, "%s", msg)
}
