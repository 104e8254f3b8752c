package ceremony

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"

	"madoguchi/ca-server/cardkeys"
	"madoguchi/ca-server/hsm"
	"madoguchi/internal/wallclock"
)

// Common holds what every ceremony needs. Zero values: crypto/rand, the
// system clock, the file record under the data dir, the SoftHSM module.
type Common struct {
	DataDir string
	// HSM supplies ModulePath, Mechanisms and PoolSize; the token itself
	// is the embedded one under DataDir.
	HSM      hsm.Config
	Rand     io.Reader
	Now      func() time.Time
	Recorder Recorder
	// Log receives human-readable progress (never secrets); nil discards.
	Log io.Writer
}

func (c *Common) fill() error {
	if c.DataDir == "" {
		return fmt.Errorf("%w: no data dir", ErrBadInput)
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = wallclock.Now
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if err := os.MkdirAll(CeremonyDir(c.DataDir), 0o700); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	if c.Recorder == nil {
		c.Recorder = NewFileRecord(RecordPath(c.DataDir))
	}
	return nil
}

// run wraps one ceremony: it records every step and the outcome.
type run struct {
	c       *Common
	id      string
	command string
	who     []string
}

func (c *Common) newRun(command string, who []string) (*run, error) {
	suffix, err := randomBytes(c.Rand, 4)
	if err != nil {
		return nil, err
	}
	id := c.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(suffix)
	return &run{c: c, id: id, command: command, who: who}, nil
}

// step records one step with its result; a step's error is returned
// (joined with a recording failure, which also fails the ceremony: an
// unrecorded ceremony step is not acceptable, TS Art. 20(2)).
func (r *run) step(ctx context.Context, what string, detail map[string]string, err error) error {
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	rerr := r.c.Recorder.Record(ctx, Event{Time: r.c.Now(), Ceremony: r.id, Command: r.command, Step: what,
		Who: r.who, Result: result, Detail: detail})
	if err == nil {
		fmt.Fprintf(r.c.Log, "  [%s] %s: ok\n", r.command, what)
	}
	return errors.Join(err, rerr)
}

func (r *run) setWho(who []string) { r.who = who }

// tokenSecret is the split secret of a token: SO PIN and user PIN (16 random
// bytes each, used as 32 hex digits).
type tokenSecret struct{ so, user string }

func newTokenSecret(rnd io.Reader) ([]byte, error) { return randomBytes(rnd, 32) }

func parseTokenSecret(b []byte) (tokenSecret, error) {
	if len(b) != 32 {
		return tokenSecret{}, fmt.Errorf("%w: token secret of %d bytes", ErrBadShare, len(b))
	}
	return tokenSecret{so: hex.EncodeToString(b[:16]), user: hex.EncodeToString(b[16:])}, nil
}

// CANames are the subject common names of the two CA certificates.
type CANames struct {
	Signature string // default "JPKI Signature CA (Madoguchi)"
	UserAuth  string // default "JPKI User Authentication CA (Madoguchi)"
}

// InitOptions configures the init ceremony.
type InitOptions struct {
	Common
	Custodians []Custodian // N custodians of the token secret
	Threshold  int         // M
	SharesDir  string      // dev only: where the share files go (custodians' ShareOut otherwise)
	Names      CANames
	TokenLabel string // default hsm.DefaultTokenLabel
	// Dev allows a 1-of-1 ceremony; never for production.
	Dev bool
}

// Key labels in the token.
const (
	LabelSignatureCA = "JPKI-SIG-CA"
	LabelAuthCA      = "JPKI-AUTH-CA"
	LabelPersonHash  = "PERSON-HASH"
)

// checkCustodians checks who receives the shares of a new secret. Outside a
// dev ceremony (TS Art. 27, 45; CPS §6.2) each custodian seals their share
// with their own passphrase (CheckPassphrase; no two alike) and receives
// it at their own destination (checkShareOuts); a shares dir for all of
// them is refused. A dev ceremony may use sharesDir.
func checkCustodians(dataDir string, cs []Custodian, threshold int, dev bool, sharesDir string) error {
	if err := checkCustodianCount(cs, threshold, dev); err != nil {
		return err
	}
	if dev {
		for _, c := range cs {
			if c.ShareOut == "" && sharesDir == "" {
				return fmt.Errorf("%w: no shares dir", ErrBadInput)
			}
		}
		return nil
	}
	if sharesDir != "" {
		return fmt.Errorf("%w: one directory for every custodian's share is for --dev only: give each custodian their own destination (--share-out NAME=PATH)", ErrBadInput)
	}
	for _, c := range cs {
		if c.Passphrase == "" {
			return fmt.Errorf("%w: custodian %q gave no passphrase: outside --dev every share is sealed under its custodian's own passphrase (%s)", ErrWeakPassphrase, c.Name, PassphraseRule)
		}
		if err := CheckPassphrase(c.Name, c.Passphrase); err != nil {
			return err
		}
	}
	if err := distinctPassphrases(cs); err != nil {
		return err
	}
	return checkShareOuts(dataDir, cs)
}

func checkCustodianCount(cs []Custodian, threshold int, dev bool) error {
	if len(cs) == 0 {
		return fmt.Errorf("%w: no custodians", ErrBadInput)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if c.Name == "" || seen[c.Name] {
			return fmt.Errorf("%w: custodian names must be unique and non-empty", ErrBadInput)
		}
		seen[c.Name] = true
	}
	// TS Art. 27, 45; CPS §6.2: custodian work needs several people.
	if !dev && (threshold < 2 || len(cs) < threshold) {
		return fmt.Errorf("%w: %d-of-%d custodians: at least 2 must be needed (use --dev only for tests)", ErrBadInput, threshold, len(cs))
	}
	if threshold < 1 || threshold > len(cs) {
		return fmt.Errorf("%w: threshold %d with %d custodians", ErrBadInput, threshold, len(cs))
	}
	return nil
}

func names(cs []Custodian) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// Init is the key-generation ceremony (TS Art. 27, 45; CPS §6.1): it creates
// the token under the data dir, generates the two CA keys with 10-year
// self-signed certificates, the card issuer master keys, the person-hash
// key, the audit checkpoint key and the internal TLS CA key (each with its
// certificate), records each key's generation date, and splits the token's PINs
// among the custodians. It refuses a data dir that already holds a CA.
func Init(ctx context.Context, o InitOptions) (*State, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	if err := checkCustodians(o.DataDir, o.Custodians, o.Threshold, o.Dev, o.SharesDir); err != nil {
		return nil, err
	}
	if _, err := LoadState(o.DataDir); !errors.Is(err, ErrNotInitialised) {
		return nil, ErrAlreadyInitialised
	}
	if o.Names.Signature == "" {
		o.Names.Signature = "JPKI Signature CA (Madoguchi)"
	}
	if o.Names.UserAuth == "" {
		o.Names.UserAuth = "JPKI User Authentication CA (Madoguchi)"
	}
	if o.TokenLabel == "" {
		o.TokenLabel = hsm.DefaultTokenLabel
	}
	r, err := o.newRun("init", names(o.Custodians))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "key ceremony %s: init, custodians %v, %d of %d\n", r.id, r.who, o.Threshold, len(o.Custodians))
	if err := r.step(ctx, "start", map[string]string{"data_dir": o.DataDir, "threshold": fmt.Sprint(o.Threshold), "dev": fmt.Sprint(o.Dev)}, nil); err != nil {
		return nil, err
	}
	st, err := initKeys(ctx, &o, r)
	return st, r.step(ctx, "finish", nil, err)
}

func initKeys(ctx context.Context, o *InitOptions, r *run) (*State, error) {
	secret, err := newTokenSecret(o.Rand)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	ts, _ := parseTokenSecret(secret)
	cfg, err := provision(o.Common, o.TokenLabel, ts)
	if err := r.step(ctx, "initialise token", map[string]string{"token": o.TokenLabel}, err); err != nil {
		return nil, err
	}
	h, err := hsm.OpenWithPIN(cfg, ts.user)
	if err != nil {
		return nil, err
	}
	defer h.Close()

	st := &State{Version: StateVersion, Ceremony: r.id, TokenLabel: o.TokenLabel, Custodians: names(o.Custodians), Threshold: o.Threshold, Dev: o.Dev}
	for _, ca := range []struct{ role, label, cn string }{
		{RoleSignatureCA, LabelSignatureCA, o.Names.Signature},
		{RoleAuthCA, LabelAuthCA, o.Names.UserAuth},
	} {
		now := o.Now().UTC()
		kp, err := h.GenerateRSA(ctx, ca.label, hsm.KeyOptions{Token: true, Extractable: hsm.ExtractableForBackup})
		if err := r.step(ctx, "generate "+ca.role+" key", map[string]string{"label": ca.label, "id": hex.EncodeToString(kp.Private.ID)}, err); err != nil {
			return nil, err
		}
		path := caCertPath(o.DataDir, ca.role, 1)
		cert, err := selfSign(o.Common, h, kp, pkix.Name{CommonName: ca.cn, Country: []string{"JP"}}, nil, path, now)
		var fp Fingerprints
		if err == nil {
			fp = FingerprintsOf(cert.Raw)
		}
		if err := r.step(ctx, "self-sign "+ca.role+" certificate", map[string]string{"subject": ca.cn, "sha256": fp.SHA256, "sha1": fp.SHA1, "valid_years": "10"}, err); err != nil {
			return nil, err
		}
		st.Keys = append(st.Keys, KeyRecord{Role: ca.role, Label: ca.label, ID: kp.Private.ID, Generated: now, Certificate: path,
			Generation: 1, Status: StatusIssuing, Fingerprints: &fp, BackupWrappable: true})
		printCertificate(o.Log, ca.role+" certificate (generation 1)", fp)
		fmt.Fprintf(o.Log, "    key usable for issuance until %s\n", UsableUntil(now).Format(time.DateOnly))
	}
	for _, mk := range []struct{ role, label string }{
		{RoleMasterENC, "MK-ENC"}, {RoleMasterMAC, "MK-MAC"}, {RoleMasterDEK, "MK-DEK"},
	} {
		now := o.Now().UTC()
		k, err := h.GenerateAES(ctx, mk.label, masterKeyOptions())
		if err := r.step(ctx, "generate "+mk.role+" key", map[string]string{"label": mk.label, "id": hex.EncodeToString(k.ID), "backup": "wrappable under the trusted backup kek only"}, err); err != nil {
			return nil, err
		}
		st.Keys = append(st.Keys, KeyRecord{Role: mk.role, Label: mk.label, ID: k.ID, Generated: now, BackupWrappable: true})
	}
	now := o.Now().UTC()
	k, err := h.GenerateHMAC(ctx, LabelPersonHash, hsm.KeyOptions{Token: true, Extractable: hsm.ExtractableForBackup})
	if err := r.step(ctx, "generate "+RolePersonHash+" key", map[string]string{"label": LabelPersonHash, "id": hex.EncodeToString(k.ID)}, err); err != nil {
		return nil, err
	}
	st.Keys = append(st.Keys, KeyRecord{Role: RolePersonHash, Label: LabelPersonHash, ID: k.ID, Generated: now, BackupWrappable: true})
	// Service keys (servicekeys.go): the audit checkpoint key and the
	// internal TLS CA key, in the token like the CA keys.
	for _, role := range []string{RoleAuditCheckpoint, RoleTLSCA} {
		rec, err := generateServiceKey(ctx, o.Common, h, r, role)
		if err != nil {
			return nil, err
		}
		st.Keys = append(st.Keys, rec)
	}

	shares, err := splitSecret(o.Rand, PurposeToken, r.id, secret, o.Custodians, o.Threshold)
	if err != nil {
		return nil, err
	}
	paths, err := writeShareFiles(o.SharesDir, o.Custodians, shares)
	if err := r.step(ctx, "split token pins among custodians", map[string]string{"shares": fmt.Sprint(paths), "threshold": fmt.Sprint(o.Threshold)}, err); err != nil {
		return nil, err
	}
	err = saveState(o.DataDir, st)
	return st, r.step(ctx, "write key inventory", nil, err)
}

func provision(c Common, label string, ts tokenSecret) (hsm.Config, error) {
	cfg, err := hsm.Provision(c.DataDir, hsm.ProvisionOptions{TokenLabel: label, SOPIN: ts.so, UserPIN: ts.user})
	if err != nil {
		return hsm.Config{}, err
	}
	cfg.ModulePath, cfg.Mechanisms, cfg.PoolSize = c.HSM.ModulePath, c.HSM.Mechanisms, c.HSM.PoolSize
	return cfg, nil
}

// tokenConfig is the Config of the data dir's existing token.
func tokenConfig(c Common, st *State) hsm.Config {
	return hsm.Config{
		ModulePath:  c.HSM.ModulePath,
		SoftHSMConf: filepath.Join(hsm.SoftHSMDir(c.DataDir), "softhsm2.conf"),
		TokenLabel:  st.TokenLabel,
		Mechanisms:  c.HSM.Mechanisms,
		PoolSize:    c.HSM.PoolSize,
		CallTimeout: c.HSM.CallTimeout,
	}
}

// masterKeyOptions: card issuer master keys are AES-128, derive-only token
// keys that can leave the token only wrapped under the custodians' trusted
// backup KEK (CKA_WRAP_WITH_TRUSTED): a restored CA must open secure
// channels with the cards already in stock (TS Art. 27: backup by
// splitting key information among several people).
func masterKeyOptions() hsm.KeyOptions {
	return hsm.KeyOptions{Token: true, Usage: hsm.UseDerive, Extractable: hsm.ExtractableForBackup}
}

// caCertPath is where a CA key generation's certificate lives: generation
// 1 keeps the name used before rollovers existed.
func caCertPath(dataDir, role string, gen int) string {
	if gen <= 1 {
		return filepath.Join(CeremonyDir(dataDir), role+".crt.pem")
	}
	return filepath.Join(CeremonyDir(dataDir), fmt.Sprintf("%s-g%d.crt.pem", role, gen))
}

func printCertificate(w io.Writer, what string, fp Fingerprints) {
	fmt.Fprintf(w, "  %s\n    SHA-256 %s\n    SHA-1   %s\n", what, Colons(fp.SHA256), Colons(fp.SHA1))
}

// selfSign issues the CA's self-signed certificate, valid 10 years
// (CPS §6.3.2.1), and writes it as PEM to path. rawSubject, when set,
// is the subject byte for byte (a rollover keeps the CA's name).
func selfSign(c Common, h *hsm.HSM, kp hsm.RSAKeyPair, subject pkix.Name, rawSubject []byte, path string, now time.Time) (*x509.Certificate, error) {
	serial, err := randomBytes(c.Rand, 16)
	if err != nil {
		return nil, err
	}
	serial[0] &= 0x7f
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		Subject:               subject,
		RawSubject:            rawSubject,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    x509.SHA256WithRSA, // TS Art. 2
	}
	signer, err := h.Signer(kp)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(c.Rand, tmpl, tmpl, kp.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("ceremony: self-sign: %w", err)
	}
	if err := checkCertMatches(der, kp); err != nil {
		return nil, err
	}
	if err := writeNew(path, pemCert(der)); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func checkCertMatches(der []byte, kp hsm.RSAKeyPair) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("ceremony: certificate: %w", err)
	}
	if !kp.PublicKey.Equal(cert.PublicKey) {
		return ErrKeyMismatch
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return fmt.Errorf("%w: %v", ErrKeyMismatch, err)
	}
	return nil
}

// ReadCertificate reads a CA key's certificate.
func ReadCertificate(k KeyRecord) (*x509.Certificate, error) { return readCertFile(k.Certificate) }

// ReadLinkCertificate reads a link certificate.
func ReadLinkCertificate(l LinkRecord) (*x509.Certificate, error) { return readCertFile(l.Certificate) }

func readCertFile(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ceremony: %s is not a pem certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

// openWithShares reconstructs the token secret from custodian shares and
// opens the token. The state's custodians are recorded as present.
func openWithShares(ctx context.Context, c Common, st *State, r *run, shares []PresentedShare) (*hsm.HSM, tokenSecret, error) {
	secret, who, hdr, err := combineShares(PurposeToken, shares)
	if who != nil {
		r.setWho(who)
	}
	if err == nil && hdr.Threshold == 1 && !st.Dev {
		err = fmt.Errorf("%w: a 1-of-1 share outside a dev ca", ErrBadShare)
	}
	if err := r.step(ctx, "custodians present token shares", map[string]string{"presented": fmt.Sprint(len(shares))}, err); err != nil {
		return nil, tokenSecret{}, err
	}
	defer clear(secret)
	ts, err := parseTokenSecret(secret)
	if err != nil {
		return nil, tokenSecret{}, err
	}
	h, err := hsm.OpenWithPIN(tokenConfig(c, st), ts.user)
	return h, ts, r.step(ctx, "open token", map[string]string{"token": st.TokenLabel}, err)
}

// ActivateOptions configures activation.
type ActivateOptions struct {
	Common
	Shares []PresentedShare // at least M token shares
}

// Active is an activated CA: the open token and its CA keys, checked
// against their certificates. The caller owns HSM and closes it to
// deactivate.
//
// SignatureCA and AuthCA are the issuing keys (as before rollovers
// existed). Issuing and CRLOnly give the same keys with their records and
// certificates: after a rollover (CPS §5.6), Issuing holds each CA's new
// key and CRLOnly the superseded keys, which sign CRLs and OCSP responses
// for the certificates they issued and never a new certificate.
type Active struct {
	HSM         *hsm.HSM
	State       *State
	SignatureCA hsm.RSAKeyPair
	AuthCA      hsm.RSAKeyPair
	Who         []string

	// Issuing maps RoleSignatureCA and RoleAuthCA to their issuing key.
	Issuing map[string]*CAKey
	// CRLOnly lists the superseded keys still signing CRLs, oldest first.
	CRLOnly []*CAKey

	// AuditCheckpoint signs audit checkpoints and TLSCA is the internal
	// TLS CA key; each is nil for a CA initialised before it existed (see
	// AddAuditKey).
	AuditCheckpoint *ServiceKey
	TLSCA           *ServiceKey
}

// IssuingKey returns the issuing key of a CA role.
func (a *Active) IssuingKey(role string) (*CAKey, error) {
	if k := a.Issuing[role]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: no issuing %q key", ErrBadInput, role)
}

// CRLOnlyKeys returns the superseded keys of a CA role, oldest first.
func (a *Active) CRLOnlyKeys(role string) []*CAKey {
	var out []*CAKey
	for _, k := range a.CRLOnly {
		if k.Record.Role == role {
			out = append(out, k)
		}
	}
	return out
}

// CardKeys returns the host end of the card secure channel over the card
// issuer master keys, or ErrNoMasterKeys when this CA has none (restored
// from a backup made before master keys were backed up).
func (a *Active) CardKeys(ctx context.Context) (*cardkeys.Issuer, error) {
	if err := checkMasterKeys(a.State); err != nil {
		return nil, err
	}
	return cardkeys.New(ctx, a.HSM)
}

func checkMasterKeys(st *State) error {
	for _, role := range []string{RoleMasterENC, RoleMasterMAC, RoleMasterDEK} {
		if !st.hasRole(role) {
			return fmt.Errorf("%w: it was restored from a backup made without them, so it cannot open a secure channel "+
				"with cards made from the old master keys; re-key the master keys (ceremony-rekey-card-masters) and make new card batches", ErrNoMasterKeys)
		}
	}
	return nil
}

// Activate is CA key activation by M custodians (TS Art. 27, 45): the token
// user PIN exists only as custodian shares, so the CA keys become usable by
// a process only when M custodians present their shares to it. It opens the
// token, checks each CA key (issuing and CRL-only) against its certificate
// (refusing a mismatch) and each issuing key against its usable period
// (TS Art. 8(3)), and returns the open token. `ca-server serve` calls it at
// start with the shares presented on its console; `ca-server
// ceremony-activate` runs the same checks and closes again.
func Activate(ctx context.Context, o ActivateOptions) (*Active, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	st, err := LoadState(o.DataDir)
	if err != nil {
		return nil, err
	}
	r, err := o.newRun("activate", nil)
	if err != nil {
		return nil, err
	}
	h, _, err := openWithShares(ctx, o.Common, st, r, o.Shares)
	if err != nil {
		return nil, r.step(ctx, "finish", nil, err)
	}
	a := &Active{HSM: h, State: st, Who: r.who, Issuing: map[string]*CAKey{}}
	fail := func(err error) (*Active, error) {
		h.Close()
		return nil, r.step(ctx, "finish", nil, err)
	}
	for _, rec := range st.Keys {
		if !rec.IsCA() || rec.KeyStatus() == StatusRetired {
			continue
		}
		k, err := loadCAKey(ctx, h, rec)
		if err == nil && rec.KeyStatus() == StatusIssuing {
			err = rec.CheckUsable(o.Now())
		}
		what := fmt.Sprintf("check %s key", rec.Role)
		if rec.Gen() > 1 || rec.KeyStatus() != StatusIssuing {
			what = fmt.Sprintf("check %s key generation %d (%s)", rec.Role, rec.Gen(), rec.KeyStatus())
		}
		if err := r.step(ctx, what, nil, err); err != nil {
			return fail(err)
		}
		switch rec.KeyStatus() {
		case StatusIssuing:
			if a.Issuing[rec.Role] != nil {
				return fail(fmt.Errorf("ceremony: state lists two issuing %s keys", rec.Role))
			}
			a.Issuing[rec.Role] = k
			if rec.Role == RoleSignatureCA {
				a.SignatureCA = k.KeyPair
			} else {
				a.AuthCA = k.KeyPair
			}
		case StatusCRLOnly:
			a.CRLOnly = append(a.CRLOnly, k)
		default:
			return fail(fmt.Errorf("ceremony: %s key %q has unknown status %q", rec.Role, rec.Label, rec.Status))
		}
	}
	for _, role := range []string{RoleSignatureCA, RoleAuthCA} {
		if a.Issuing[role] == nil {
			return fail(fmt.Errorf("ceremony: no issuing %s key recorded", role))
		}
	}
	if err := activateServiceKeys(ctx, h, st, r, a); err != nil {
		return fail(err)
	}
	return a, r.step(ctx, "finish", nil, nil)
}

// BackupOptions configures a backup ceremony.
type BackupOptions struct {
	Common
	Shares     []PresentedShare // M token shares (the backup needs the SO PIN)
	Custodians []Custodian      // holders of the backup KEK shares
	Threshold  int
	SharesDir  string
	OutDir     string // where the backup file is written
	Dev        bool
	// WithoutMasterKeys lets a CA whose card master keys are not
	// backup-wrappable (initialised before master-key backup) back up its
	// other keys: a CA restored from such a backup cannot serve the cards
	// already in stock. Without it, Backup refuses such a CA with
	// ErrMasterKeysNotWrappable.
	WithoutMasterKeys bool
}

// BackupFile is a CA key backup: each key wrapped with RFC 5649 under a KEK
// that exists only as custodian shares.
type BackupFile struct {
	Version  int           `json:"version"`
	Ceremony string        `json:"ceremony"`
	Created  time.Time     `json:"created"`
	Source   string        `json:"source_ceremony"` // init ceremony of the keys
	Keys     []BackupEntry `json:"keys"`
	// Links are the link certificates (public) so a restored CA can
	// publish them and their fingerprints.
	Links []BackupLink `json:"links,omitempty"`
	// MasterKeysAbsent: the card master keys were left out
	// (BackupOptions.WithoutMasterKeys). Version 1 files never hold them.
	MasterKeysAbsent bool `json:"master_keys_absent,omitempty"`
	// AuditFileKeys are the recorded public halves of file audit keys
	// (State.AuditFileKeys), so a restored CA verifies the checkpoints
	// they signed.
	AuditFileKeys []AuditFileKey `json:"audit_file_keys,omitempty"`
}

// BackupLink is one link certificate in a backup.
type BackupLink struct {
	Link        LinkRecord `json:"link"`
	Certificate []byte     `json:"certificate"` // DER
}

// BackupVersion 2 added card master keys ("aes" entries) and links.
const BackupVersion = 2

// BackupEntry is one wrapped key.
type BackupEntry struct {
	Key         KeyRecord `json:"key"`
	Kind        string    `json:"kind"` // "rsa", "hmac" or "aes" (card master keys)
	Wrapped     []byte    `json:"wrapped"`
	PublicKey   []byte    `json:"public_key,omitempty"`  // PKIX DER, rsa only
	Certificate []byte    `json:"certificate,omitempty"` // DER, CA keys only
}

// backedUpRoles are wrapped by backup: every CA key that is not retired
// (issuing and CRL-only: a restored CA must still sign CRLs), the
// person-hash key, the card issuer master keys and the service keys (a
// restored CA verifies its audit log and keeps its terminals' trust).
var backedUpRoles = []string{RoleSignatureCA, RoleAuthCA, RolePersonHash, RoleMasterENC, RoleMasterMAC, RoleMasterDEK, RoleAuditCheckpoint, RoleTLSCA}

func isMasterRole(role string) bool {
	return role == RoleMasterENC || role == RoleMasterMAC || role == RoleMasterDEK
}

// Backup is the M-of-N backup (TS Art. 27: key information split among
// several people): a random AES-256 KEK is imported into the token as a
// CKA_TRUSTED wrap-only key by the SO, the CA keys, the person-hash key and
// the card issuer master keys (all CKA_WRAP_WITH_TRUSTED) are wrapped under
// it, the KEK is destroyed in the token, and the KEK is split with Shamir
// among the custodians.
//
// A CA initialised before master keys were backed up has non-extractable
// master keys: Backup refuses it with ErrMasterKeysNotWrappable unless
// WithoutMasterKeys is set (see RekeyMasterKeys for the way forward).
func Backup(ctx context.Context, o BackupOptions) (string, error) {
	if err := o.fill(); err != nil {
		return "", err
	}
	if err := checkCustodians(o.DataDir, o.Custodians, o.Threshold, o.Dev, o.SharesDir); err != nil {
		return "", err
	}
	if o.OutDir == "" {
		return "", fmt.Errorf("%w: backup needs an output dir", ErrBadInput)
	}
	st, err := LoadState(o.DataDir)
	if err != nil {
		return "", err
	}
	r, err := o.newRun("backup", nil)
	if err != nil {
		return "", err
	}
	if !o.WithoutMasterKeys {
		for _, k := range st.Keys {
			if isMasterRole(k.Role) && k.KeyStatus() != StatusRetired && !k.BackupWrappable {
				err := fmt.Errorf("%w: re-key them first (ceremony-rekey-card-masters: cards made from the old master keys must then be replaced), "+
					"or back up without them (--without-card-master-keys: a restored ca cannot serve cards already in stock)", ErrMasterKeysNotWrappable)
				return "", r.step(ctx, "finish", nil, r.step(ctx, "check card master keys are wrappable", map[string]string{"label": k.Label}, err))
			}
		}
	}
	path, err := backup(ctx, &o, st, r)
	return path, r.step(ctx, "finish", nil, err)
}

func backup(ctx context.Context, o *BackupOptions, st *State, r *run) (_ string, retErr error) {
	h, ts, err := openWithShares(ctx, o.Common, st, r, o.Shares)
	if err != nil {
		return "", err
	}
	// The SO must create the trusted KEK with no other session open.
	if err := h.Close(); err != nil {
		return "", err
	}
	kek, err := randomBytes(o.Rand, 32)
	if err != nil {
		return "", err
	}
	defer clear(kek)
	kekLabel := "BACKUP-KEK-" + r.id
	cfg := tokenConfig(o.Common, st)
	err = hsm.ImportTrustedKEK(cfg, ts.so, kekLabel, kek)
	if err := r.step(ctx, "import trusted backup kek", nil, err); err != nil {
		return "", err
	}
	h, err = hsm.OpenWithPIN(cfg, ts.user)
	if err != nil {
		return "", err
	}
	defer h.Close()
	kekKey, err := h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindAES, Label: kekLabel})
	if err != nil {
		return "", err
	}
	defer func() {
		derr := h.Destroy(context.WithoutCancel(ctx), kekKey)
		retErr = errors.Join(retErr, r.step(ctx, "destroy backup kek in token", nil, derr))
	}()
	bf := BackupFile{Version: BackupVersion, Ceremony: r.id, Created: o.Now().UTC(), Source: st.Ceremony, AuditFileKeys: st.AuditFileKeys}
	var included []int
	for i, rec := range st.Keys {
		if !slices.Contains(backedUpRoles, rec.Role) || rec.KeyStatus() == StatusRetired {
			continue
		}
		if isMasterRole(rec.Role) && (!rec.BackupWrappable || o.WithoutMasterKeys) {
			bf.MasterKeysAbsent = true
			if err := r.step(ctx, "leave out "+rec.Role+" key", map[string]string{"label": rec.Label, "reason": "not backup-wrappable or left out on request"}, nil); err != nil {
				return "", err
			}
			continue
		}
		e := BackupEntry{Key: rec}
		var k hsm.Key
		var err error
		switch {
		case rec.Role == RolePersonHash:
			e.Kind = "hmac"
			k, err = h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindHMAC, Label: rec.Label, ID: rec.ID})
		case isMasterRole(rec.Role):
			e.Kind = "aes"
			k, err = h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindAES, Label: rec.Label, ID: rec.ID})
		default:
			e.Kind = "rsa"
			var kp hsm.RSAKeyPair
			kp, err = h.FindRSAKeyPair(ctx, rec.Label)
			if err == nil {
				k = kp.Private
				e.PublicKey, err = x509.MarshalPKIXPublicKey(kp.PublicKey)
			}
			if err == nil {
				var cert *x509.Certificate
				if cert, err = ReadCertificate(rec); err == nil {
					e.Certificate = cert.Raw
				}
			}
		}
		if err == nil {
			e.Wrapped, err = h.WrapKWP(ctx, kekKey, k)
		}
		what := "wrap " + rec.Role + " key"
		if rec.Gen() > 1 {
			what = fmt.Sprintf("wrap %s key generation %d", rec.Role, rec.Gen())
		}
		if err := r.step(ctx, what, map[string]string{"label": rec.Label}, err); err != nil {
			return "", err
		}
		bf.Keys = append(bf.Keys, e)
		included = append(included, i)
	}
	for _, l := range st.Links {
		cert, err := ReadLinkCertificate(l)
		if err != nil {
			return "", err
		}
		bf.Links = append(bf.Links, BackupLink{Link: l, Certificate: cert.Raw})
	}
	if err := os.MkdirAll(o.OutDir, 0o700); err != nil {
		return "", fmt.Errorf("ceremony: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(o.OutDir, "backup-"+r.id+".json"))
	if err != nil {
		return "", err
	}
	b, err := jsonIndent(bf)
	if err == nil {
		err = writeNew(path, b)
	}
	if err := r.step(ctx, "write backup file", map[string]string{"path": path}, err); err != nil {
		return "", err
	}
	shares, err := splitSecret(o.Rand, PurposeBackupKEK, r.id, kek, o.Custodians, o.Threshold)
	if err != nil {
		return "", err
	}
	paths, err := writeShareFiles(o.SharesDir, o.Custodians, shares)
	if err := r.step(ctx, "split backup kek among custodians", map[string]string{"custodians": fmt.Sprint(names(o.Custodians)), "shares": fmt.Sprint(paths), "threshold": fmt.Sprint(o.Threshold)}, err); err != nil {
		return "", err
	}
	st.Backups = append(st.Backups, BackupRecord{Path: path, Ceremony: r.id, Created: bf.Created})
	for _, i := range included {
		st.Keys[i].BackedUp = true
	}
	return path, r.step(ctx, "update key inventory", nil, saveState(o.DataDir, st))
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
