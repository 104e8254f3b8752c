// Package status is the ca-server's revocation service: revocation at the
// counter, hold by the call centre and release at the counter, change-driven
// revocation from resident-record changes, CA-compromise revocation, and the
// publication of CRLs and ARLs into the CRL archive, with an OCSP hook.
//
// Rules and their reasons (DOMAIN §5):
//
//   - CPS §4.9.9: reason codes 0–6 with their JPKI meanings come from the
//     rules table of ca-server/revocation; which request kind may come
//     through which channel is decided there too (CPS §4.9.3.1: key
//     compromise and an unusable card only at the counter, in writing).
//   - CPS §4.9: revocation is never undone. The store refuses, with
//     store.ErrAlreadyRevoked, to revoke, hold or release a revoked
//     certificate, and a trigger keeps even raw SQL from undoing one.
//   - CPS §4.9.13–16: a hold is set on a phone report (local command), is
//     released only at the counter after identity checks, and never outlives
//     the certificate.
//   - R02 II-3-1(2): a resident change carries only "this person's record
//     changed": the CA keeps the keyed person hash, the event kind and the
//     time. Deferred revocations (move-out without move-in within 30 days)
//     are applied by ApplyDue, which the schedule calls with the injected
//     clock.
//   - CPS §4.9.7: a CRL and an ARL per CA every 24 hours, each valid 72
//     hours, and at once on CA compromise or on demand; CRL numbers come
//     from the store, so they increase per series across processes
//     (RFC 5280 §5.2.3); every CRL is kept in the archive (TS Art. 17).
//
// Errors returned to terminals are *wire.Error with a specific code; the
// caller (ca-server/api) maps them to HTTP and audits the request. Local
// operations (hold, schedule, publication, compromise) are audited here.
//
// Concurrency: a Service is safe for concurrent use; the store serialises
// state changes, and publications of one series are serialised by a mutex
// (the store's CRL numbers keep two processes apart).
package status

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/revocation"
	"madoguchi/ca-server/store"
	"madoguchi/internal/wallclock"
	"madoguchi/jpki/wire"
)

// Store is the part of the store the service uses.
type Store interface {
	CertificateBySerial(ctx context.Context, serial string) (store.Certificate, error)
	HolderMunicipality(ctx context.Context, c store.Certificate) (string, error)
	RevokeCertificate(ctx context.Context, r store.StatusRequest) (store.Certificate, error)
	HoldCertificate(ctx context.Context, r store.StatusRequest) (store.Certificate, error)
	ReleaseHold(ctx context.Context, r store.StatusRequest) (store.Certificate, error)
	ApplyResidentChange(ctx context.Context, ch store.ResidentChange, plan store.ChangePlan) (store.ChangeOutcome, error)
	DuePendingRevocations(ctx context.Context, now time.Time, limit int) ([]store.PendingRevocation, error)
	ApplyPendingRevocation(ctx context.Context, id int64, operator string, now time.Time) (store.PendingRevocation, *store.Certificate, error)
	CompromiseCA(ctx context.Context, t store.CertType, arlSeries, caSerial, operator, evidence string, now time.Time) (int64, error)
	RevokedSnapshotFor(ctx context.Context, q store.SnapshotQuery) (*store.RevokedSnapshot, error)
	FillCertificateFacts(ctx context.Context) (int, error)
	ExpireHolds(ctx context.Context, operator string, now time.Time) ([]store.Certificate, error)
	AddAuthorityRevocation(ctx context.Context, a store.AuthorityRevocation) error
	AuthorityRevocations(ctx context.Context, series string) ([]store.AuthorityRevocation, error)
	NextCRLNumber(ctx context.Context, series string) (int64, error)
	RecordPublishedCRL(ctx context.Context, p store.PublishedCRL) error
	LastPublishedCRL(ctx context.Context, series string) (store.PublishedCRL, error)
}

var _ Store = (*store.SQLite)(nil)

// Auditor records local operations (audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

var _ Auditor = (*audit.Log)(nil)

// PersonHasher turns a resident-record code into the CA's keyed person hash,
// the same one issuance stores (TS Art. 31(iii): the code itself is not
// kept).
type PersonHasher interface {
	PersonHash(ctx context.Context, residentCode string) ([]byte, error)
}

// CA is one issuing CA whose certificates this service revokes and whose
// CRLs and ARLs it publishes: one CRL and one ARL per CA key generation
// still in use (CPS §5.6: after a key changeover both keys sign CRLs while
// certificates of the old key live).
type CA struct {
	// Name names the CA in commands, URLs and CRL series: "signature" or
	// "user-auth".
	Name     string
	CertType store.CertType
	// Certificate and Signer are the issuing key's: they sign its CRLs and
	// ARLs; Signer may be nil when the CA key is not active (revocation
	// still works, publication fails with ErrNoSigner).
	Certificate *x509.Certificate
	Signer      crypto.Signer
	// Generation of the issuing key (0 and 1 both mean the first; the
	// ceremony numbers keys from 1).
	Generation int
	// Older are the superseded (CRL-only) keys still signing CRLs for the
	// certificates they issued, each until its Until (the ceremony's
	// CRLSigningUntil), oldest first.
	Older []KeyGeneration
	// Links are the CA's link certificates (OldWithNew, NewWithOld; CPS
	// §5.6, §7.1(3)): revoked with the CA and then listed in the ARL of
	// the generation whose key signed them (CPS §7.2(3)).
	Links []*x509.Certificate
	// CRLPartition returns the partition of the CRL of the key generation
	// with subject key identifier issuerKeyID (the profile's crlShards and
	// distribution point: RFC 5280 §5.2.5, as Boulder shards its CRLs);
	// nil, or one shard, is one CRL without an issuingDistributionPoint.
	CRLPartition func(issuerKeyID []byte) crl.Partition
}

// Partition returns the CRL partition of key generation g.
func (c CA) Partition(g *x509.Certificate) crl.Partition {
	if c.CRLPartition == nil || g == nil {
		return crl.Partition{Shards: 1}
	}
	return c.CRLPartition(g.SubjectKeyId)
}

// ShardSeries names the CRL series of shard shard of generation gen of a
// partitioned CRL; shard -1 is the unpartitioned CRL (SeriesName, so an
// unpartitioned CA's series continue). Each shard is its own CRL scope
// (RFC 5280 §5.2.5) with its own archive series and CRL number sequence
// (§5.2.3: the number increases for a given scope and issuer).
func ShardSeries(ca string, gen, shard int) string {
	s := SeriesName(ca, gen, false)
	if shard >= 0 {
		s = fmt.Sprintf("%s-s%d", s, shard)
	}
	return s
}

// shardIndex is shard, or -1 when there is one CRL.
func shardIndex(shards, shard int) int {
	if shards <= 1 {
		return -1
	}
	return shard
}

// CRLShardSeries names the series of every shard of the issuing
// generation's CRL, shard 0 first (one name when unpartitioned).
func (c CA) CRLShardSeries() []string {
	n := max(c.Partition(c.Certificate).Shards, 1)
	out := make([]string, n)
	for i := range out {
		out[i] = ShardSeries(c.Name, c.Generation, shardIndex(n, i))
	}
	return out
}

// KeyGeneration is one CA key generation: its certificate, CRL signer and
// the end of its CRL signing.
type KeyGeneration struct {
	Generation  int
	Certificate *x509.Certificate
	// Signer signs CRLs and ARLs only (ceremony.CAKey.CRLSigner for a
	// superseded key).
	Signer crypto.Signer
	// Until ends the generation's CRLs: no certificate it issued is valid
	// after it (zero: the issuing key, no end).
	Until time.Time
}

// SeriesName names the CRL (or ARL) series of generation gen of the CA
// named ca in the archive and the store: the first generation keeps the
// bare name, so series published before rollovers existed continue.
func SeriesName(ca string, gen int, arl bool) string {
	s := ca
	if gen > 1 {
		s = fmt.Sprintf("%s-g%d", ca, gen)
	}
	if arl {
		s += "-arl"
	}
	return s
}

// CRLSeries and ARLSeries name the issuing generation's series.
func (c CA) CRLSeries() string { return SeriesName(c.Name, c.Generation, false) }
func (c CA) ARLSeries() string { return SeriesName(c.Name, c.Generation, true) }

// Generations returns the issuing generation first, then the older ones.
func (c CA) Generations() []KeyGeneration {
	gen := max(c.Generation, 1)
	out := []KeyGeneration{{Generation: gen, Certificate: c.Certificate, Signer: c.Signer}}
	return append(out, c.Older...)
}

// Errors of local operations (callers branch with errors.Is).
var (
	ErrUnknownCA = errors.New("status: unknown CA")
	ErrNoSigner  = errors.New("status: CA key not active; cannot sign a CRL")
)

// Config configures a Service.
type Config struct {
	Store   Store
	Audit   Auditor
	Rules   *revocation.Rules // default revocation.Default()
	Persons PersonHasher      // needed for resident changes
	CAs     []CA
	Archive crl.Archive // needed for publication
	Clock   func() time.Time
	Logger  *slog.Logger
	// OnChange is called after each status change of a certificate (OCSP
	// responders re-sign at once, TS Art. 36: immediate response). Errors
	// are logged; the change stands.
	OnChange func(ctx context.Context, t store.CertType, serial string) error
	// CRLValidity and CRLInterval default to crl.DefaultValidity (72 h)
	// and crl.DefaultIssueInterval (24 h) (CPS §4.9.7).
	CRLValidity time.Duration
	CRLInterval time.Duration
	// Fence, when set, says whether this process runs the schedule now
	// and gives the context its writes are made under (a fleet's job
	// lease with its fencing token, ca-server/fleet): in a fleet one
	// replica applies due changes, ends holds and publishes CRLs (issue
	// 14). Nil: always.
	Fence func(ctx context.Context) (context.Context, bool)
}

// Service is the revocation service.
type Service struct {
	cfg   Config
	pubMu sync.Mutex
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil {
		return nil, errors.New("status: store and auditor are required")
	}
	if cfg.Rules == nil {
		cfg.Rules = revocation.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CRLValidity == 0 {
		cfg.CRLValidity = crl.DefaultValidity
	}
	if cfg.CRLInterval == 0 {
		cfg.CRLInterval = crl.DefaultIssueInterval
	}
	if cfg.CRLValidity <= cfg.CRLInterval {
		return nil, fmt.Errorf("status: CRL validity %v must exceed the issue interval %v (CPS §4.9.7: 72 h and 24 h)", cfg.CRLValidity, cfg.CRLInterval)
	}
	seen := map[string]bool{}
	for _, ca := range cfg.CAs {
		if ca.Name == "" || seen[ca.Name] || !ca.CertType.Valid() || ca.Certificate == nil {
			return nil, fmt.Errorf("status: CA %q needs a unique name, a certificate type and a certificate", ca.Name)
		}
		seen[ca.Name] = true
		gens := map[int]bool{}
		for _, g := range ca.Generations() {
			if g.Certificate == nil || gens[g.Generation] || (len(ca.Older) > 0 && len(g.Certificate.SubjectKeyId) == 0) {
				return nil, fmt.Errorf("status: CA %q: each key generation needs its own number and a certificate with a subject key identifier", ca.Name)
			}
			gens[g.Generation] = true
		}
	}
	return &Service{cfg: cfg}, nil
}

// CAs returns the configured CAs.
func (s *Service) CAs() []CA { return append([]CA(nil), s.cfg.CAs...) }

// CA returns the CA named name.
func (s *Service) CA(name string) (CA, error) {
	for _, ca := range s.cfg.CAs {
		if ca.Name == name {
			return ca, nil
		}
	}
	return CA{}, fmt.Errorf("%w: %q", ErrUnknownCA, name)
}

// Caller is the authenticated terminal, its municipality and its operator.
// Municipality scopes every terminal request (issue 13, threat 3): a
// terminal acts only for residents of its own municipality.
type Caller struct {
	TerminalID   string
	Municipality string
	OperatorID   string
}

func (s *Service) record(ctx context.Context, e audit.Entry) error {
	if e.Terminal == "" {
		e.Terminal = "local"
	}
	return s.cfg.Audit.Record(context.WithoutCancel(ctx), e)
}

func (s *Service) changed(ctx context.Context, c store.Certificate) {
	if s.cfg.OnChange == nil {
		return
	}
	if err := s.cfg.OnChange(context.WithoutCancel(ctx), c.CertType, c.Serial); err != nil {
		s.cfg.Logger.Error("status: status-change hook", "serial", c.Serial, "err", err)
	}
}

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

// validText: 1 to 200 bytes of printable text without control characters.
func validText(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// storeError maps store errors to wire codes, once for this package.
func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return wire.Wrap(wire.CodeNotFound, err, "certificate not found")
	case errors.Is(err, store.ErrAlreadyRevoked):
		return wire.Wrap(wire.CodeAlreadyRevoked, err, "the certificate is already revoked; revocation is never undone")
	case errors.Is(err, store.ErrNotHeld):
		return wire.Wrap(wire.CodeNotOnHold, err, "the certificate is not on hold")
	case errors.Is(err, store.ErrAlreadyHeld):
		return wire.Wrap(wire.CodeAlreadyHeld, err, "the certificate is already on hold")
	case errors.Is(err, store.ErrDuplicateReq):
		return wire.Wrap(wire.CodeRequestIDReused, err, "request_id already used for another request")
	case errors.Is(err, store.ErrState):
		return wire.Wrap(wire.CodeInvalidState, err, "the certificate has not been delivered")
	case errors.Is(err, store.ErrOtherMunicipality):
		return wire.Wrap(wire.CodeOtherMunicipality, err, "the person is a resident of another municipality; that municipality's counter handles the request")
	case errors.Is(err, store.ErrPersonMismatch):
		return wire.Wrap(wire.CodePersonMismatch, err, "the resident-record code is not the certificate holder's")
	default:
		return wire.Wrap(wire.CodeInternal, err, "storage error")
	}
}

// lookup finds the certificate for a terminal request and checks the
// caller's authority over it, in this order: a malformed serial is
// invalid_request, an unknown one not_found; a holder resident in another
// municipality is other_municipality, a resident-record code not the
// holder's is person_mismatch (both before anything else about the
// certificate is revealed); another CA's certificate is wrong_ca. It returns
// the person hash the store checks again when it changes the certificate.
func (s *Service) lookup(ctx context.Context, c Caller, serial, certType, residentCode string) (store.Certificate, []byte, error) {
	norm, ok := store.NormalizeSerial(serial)
	if !ok {
		return store.Certificate{}, nil, wire.Errorf(wire.CodeInvalidRequest, "serial %q is not a positive hexadecimal number of at most 20 octets", serial)
	}
	t := store.CertType(certType)
	if !t.Valid() {
		return store.Certificate{}, nil, wire.Errorf(wire.CodeInvalidRequest, "cert_type must be \"sign\" or \"auth\"")
	}
	if !validResidentCode(residentCode) {
		return store.Certificate{}, nil, wire.Errorf(wire.CodeInvalidRequest, "resident_code must be the holder's 11-digit resident-record code")
	}
	cert, err := s.cfg.Store.CertificateBySerial(ctx, norm)
	if err != nil {
		return store.Certificate{}, nil, storeError(err)
	}
	muni, err := s.cfg.Store.HolderMunicipality(ctx, cert)
	if err != nil {
		return store.Certificate{}, nil, storeError(err)
	}
	if c.Municipality == "" || muni != c.Municipality {
		return store.Certificate{}, nil, wire.Errorf(wire.CodeOtherMunicipality, "certificate %s: the holder is a resident of another municipality; that municipality's counter handles the request", norm)
	}
	person, err := s.personHash(ctx, residentCode)
	if err != nil {
		return store.Certificate{}, nil, err
	}
	if !hmac.Equal(person, cert.PersonHash) {
		return store.Certificate{}, nil, wire.Errorf(wire.CodePersonMismatch, "certificate %s: the resident-record code is not the holder's", norm)
	}
	if cert.CertType != t {
		return store.Certificate{}, nil, wire.Errorf(wire.CodeWrongCA, "certificate %s was issued by the %s CA, not the %s CA", norm, cert.CertType, t)
	}
	return cert, person, nil
}

// personHash hashes a resident-record code to the CA's person key (the HSM
// HMAC in production, as issuance does). Neither the code nor the hash goes
// into an error, a log or the audit.
func (s *Service) personHash(ctx context.Context, residentCode string) ([]byte, error) {
	if s.cfg.Persons == nil {
		return nil, wire.Errorf(wire.CodeUnavailable, "person key not configured (the CA is not active)")
	}
	person, err := s.cfg.Persons.PersonHash(ctx, residentCode)
	if err != nil {
		return nil, wire.Wrap(wire.CodeUnavailable, err, "person key unavailable")
	}
	return person, nil
}

func validResidentCode(code string) bool { return len(code) == 11 && allDigits(code) }

// notAfter returns the certificate's expiry (zero if it has no DER yet).
func notAfter(c store.Certificate) time.Time {
	if len(c.DER) == 0 {
		return time.Time{}
	}
	x, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return time.Time{}
	}
	return x.NotAfter
}

func certStatus(c store.Certificate) revocation.Status {
	switch c.State {
	case store.StateHeld:
		return revocation.StatusHeld
	case store.StateRevoked:
		return revocation.StatusRevoked
	}
	return revocation.StatusGood
}

func rulesError(err error) error {
	switch {
	case errors.Is(err, revocation.ErrFinal):
		return wire.Wrap(wire.CodeAlreadyRevoked, err, "the certificate is already revoked; revocation is never undone")
	case errors.Is(err, revocation.ErrChannel):
		return wire.Wrap(wire.CodeChannelNotAllowed, err, "not accepted through this channel")
	case errors.Is(err, revocation.ErrExpired):
		return wire.Wrap(wire.CodeCertificateExpired, err, "the certificate has expired")
	case errors.Is(err, revocation.ErrTransition):
		return wire.Wrap(wire.CodeNotOnHold, err, "transition not allowed in the certificate's state")
	case errors.Is(err, revocation.ErrUnknownRequest):
		return wire.Wrap(wire.CodeInvalidRequest, err, "unknown revocation request kind")
	case errors.Is(err, revocation.ErrUnknownEvent):
		return wire.Wrap(wire.CodeUnknownEvent, err, "unknown resident change event")
	}
	return wire.Wrap(wire.CodeInternal, err, "revocation rules failed")
}

// Revoke revokes one certificate on a request that came through ch (the
// counter for terminal requests). Preconditions, checked in this order:
// request id, kind and channel (CPS §4.9.3.1), the written request and the
// identity document (in writing, after the identity checks), the serial,
// the resident-record code, the serial, the caller's authority over the
// holder (other_municipality, person_mismatch; see lookup), the certificate
// type (wrong_ca). The answer carries the data of the holder's written
// acknowledgement. A retry with the same request id
// returns the same acknowledgement; another request for a revoked
// certificate fails with already_revoked and changes nothing.
func (s *Service) Revoke(ctx context.Context, c Caller, ch revocation.Channel, serial string, req wire.RevokeRequest) (wire.RevocationAck, error) {
	if !validRequestID(req.RequestID) {
		return wire.RevocationAck{}, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	rule, err := s.cfg.Rules.Request(req.Kind, ch)
	if err != nil {
		return wire.RevocationAck{}, rulesError(err)
	}
	if ch == revocation.ChannelCounter && (!validText(req.WrittenRequest) || !validText(req.IdentityDocument)) {
		return wire.RevocationAck{}, wire.Errorf(wire.CodeInvalidRequest, "written_request and identity_document are required at the counter (CPS §4.9.3.1)")
	}
	cert, person, err := s.lookup(ctx, c, serial, req.CertType, req.ResidentCode)
	if err != nil {
		return wire.RevocationAck{}, err
	}
	if cert.State != store.StateRevoked {
		if _, err := s.cfg.Rules.Transition(certStatus(cert), revocation.Revoke, ch, s.cfg.Clock(), notAfter(cert)); err != nil && !errors.Is(err, revocation.ErrExpired) {
			return wire.RevocationAck{}, rulesError(err)
		}
	}
	done, err := s.cfg.Store.RevokeCertificate(ctx, store.StatusRequest{Serial: cert.Serial, Kind: rule.Kind, Reason: int(rule.Reason),
		Channel: string(ch), Terminal: c.TerminalID, Operator: c.OperatorID, RequestID: req.RequestID,
		Evidence: "written request " + req.WrittenRequest + "; identity document " + req.IdentityDocument, At: s.cfg.Clock(),
		Municipality: c.Municipality, PersonHash: person})
	if err != nil {
		return wire.RevocationAck{}, storeError(err)
	}
	s.changed(ctx, done)
	return s.ack(done, rule), nil
}

func (s *Service) ack(c store.Certificate, rule revocation.RequestRule) wire.RevocationAck {
	info, _ := s.cfg.Rules.Reason(revocation.Reason(c.RevocationReason))
	return wire.RevocationAck{Serial: c.Serial, CertType: string(c.CertType), Reason: c.RevocationReason, ReasonName: info.Name,
		ReasonJa: info.Ja, ReasonEn: info.En, Kind: rule.Kind, RevokedAt: c.RevokedAt, WrittenAcknowledgement: rule.WrittenAck}
}

// ReleaseHold releases a hold at the counter after the identity checks
// (CPS §4.9.13–16). Errors: invalid_request, not_found, other_municipality,
// person_mismatch, wrong_ca, already_revoked, not_on_hold,
// certificate_expired; none changes anything.
func (s *Service) ReleaseHold(ctx context.Context, c Caller, serial string, req wire.ReleaseHoldRequest) (wire.CertificateStatus, error) {
	if !validRequestID(req.RequestID) {
		return wire.CertificateStatus{}, wire.Errorf(wire.CodeInvalidRequest, "request_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	if !validText(req.IdentityDocument) {
		return wire.CertificateStatus{}, wire.Errorf(wire.CodeInvalidRequest, "identity_document is required: a hold is released only after the identity checks (CPS §4.9.15)")
	}
	cert, person, err := s.lookup(ctx, c, serial, req.CertType, req.ResidentCode)
	if err != nil {
		return wire.CertificateStatus{}, err
	}
	now := s.cfg.Clock()
	if cert.State == store.StateHeld {
		if _, err := s.cfg.Rules.Transition(revocation.StatusHeld, revocation.Release, revocation.ChannelCounter, now, notAfter(cert)); err != nil {
			return wire.CertificateStatus{}, rulesError(err)
		}
	}
	done, err := s.cfg.Store.ReleaseHold(ctx, store.StatusRequest{Serial: cert.Serial, Kind: "release-hold", Channel: string(revocation.ChannelCounter),
		Terminal: c.TerminalID, Operator: c.OperatorID, RequestID: req.RequestID, Evidence: "identity document " + req.IdentityDocument, At: now,
		Municipality: c.Municipality, PersonHash: person})
	if err != nil {
		return wire.CertificateStatus{}, storeError(err)
	}
	s.changed(ctx, done)
	return Status(done), nil
}

// Hold puts a certificate on hold on a phone report of a lost card (the
// J-LIS call centre; CPS §4.9.13–14). It is a local operation only and is
// audited here, refusals included. note says who called and why; it must not
// hold personal data beyond that.
func (s *Service) Hold(ctx context.Context, operator, serial, note string) (store.Certificate, error) {
	c, err := s.hold(ctx, operator, serial, note)
	result, detail := "ok", ""
	if err != nil {
		result, detail = string(wire.CodeOf(err)), err.Error()
	}
	if aerr := s.record(ctx, audit.Entry{Operator: operator, Action: "certificate.hold", Target: serial, Result: result, Detail: detail}); aerr != nil {
		return store.Certificate{}, errors.Join(err, aerr)
	}
	return c, err
}

func (s *Service) hold(ctx context.Context, operator, serial, note string) (store.Certificate, error) {
	if !validText(operator) || !validText(note) {
		return store.Certificate{}, wire.Errorf(wire.CodeInvalidRequest, "operator and note are required")
	}
	norm, ok := store.NormalizeSerial(serial)
	if !ok {
		return store.Certificate{}, wire.Errorf(wire.CodeInvalidRequest, "serial %q is not a positive hexadecimal number", serial)
	}
	cert, err := s.cfg.Store.CertificateBySerial(ctx, norm)
	if err != nil {
		return store.Certificate{}, storeError(err)
	}
	now := s.cfg.Clock()
	if cert.State == store.StateDelivered {
		if _, err := s.cfg.Rules.Transition(revocation.StatusGood, revocation.Hold, revocation.ChannelPhone, now, notAfter(cert)); err != nil {
			return store.Certificate{}, rulesError(err)
		}
	}
	done, err := s.cfg.Store.HoldCertificate(ctx, store.StatusRequest{Serial: norm, Kind: "lost-card-phone-report", Channel: string(revocation.ChannelPhone),
		Terminal: "local", Operator: operator, Evidence: note, At: now})
	if err != nil {
		return store.Certificate{}, storeError(err)
	}
	s.changed(ctx, done)
	return done, nil
}

// Status converts a certificate to its wire status.
func Status(c store.Certificate) wire.CertificateStatus {
	st := wire.CertificateStatus{Serial: c.Serial, CertType: string(c.CertType), State: string(c.State)}
	if !c.HeldAt.IsZero() {
		t := c.HeldAt
		st.HeldAt = &t
	}
	if c.State == store.StateRevoked {
		t, r := c.RevokedAt, c.RevocationReason
		st.RevokedAt, st.RevocationReason = &t, &r
	}
	return st
}
