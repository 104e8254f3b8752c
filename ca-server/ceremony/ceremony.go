package ceremony

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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

	"madoguchi/ca-server/hsm"
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
		c.Now = time.Now
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
	SharesDir  string      // where the custodians' share files are written
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

func checkCustodians(cs []Custodian, threshold int, dev bool) error {
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
// self-signed certificates, the card issuer master keys and the person-hash
// key, records each key's generation date, and splits the token's PINs
// among the custodians. It refuses a data dir that already holds a CA.
func Init(ctx context.Context, o InitOptions) (*State, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	if err := checkCustodians(o.Custodians, o.Threshold, o.Dev); err != nil {
		return nil, err
	}
	if o.SharesDir == "" {
		return nil, fmt.Errorf("%w: no shares dir", ErrBadInput)
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

	st := &State{Version: 1, Ceremony: r.id, TokenLabel: o.TokenLabel, Custodians: names(o.Custodians), Threshold: o.Threshold, Dev: o.Dev}
	for _, ca := range []struct{ role, label, cn string }{
		{RoleSignatureCA, LabelSignatureCA, o.Names.Signature},
		{RoleAuthCA, LabelAuthCA, o.Names.UserAuth},
	} {
		now := o.Now().UTC()
		kp, err := h.GenerateRSA(ctx, ca.label, hsm.KeyOptions{Token: true, Extractable: hsm.ExtractableForBackup})
		if err := r.step(ctx, "generate "+ca.role+" key", map[string]string{"label": ca.label, "id": hex.EncodeToString(kp.Private.ID)}, err); err != nil {
			return nil, err
		}
		certPath, fp, err := selfSign(ctx, o.Common, h, kp, ca.cn, ca.role, now)
		if err := r.step(ctx, "self-sign "+ca.role+" certificate", map[string]string{"subject": ca.cn, "sha256": fp, "valid_years": "10"}, err); err != nil {
			return nil, err
		}
		st.Keys = append(st.Keys, KeyRecord{Role: ca.role, Label: ca.label, ID: kp.Private.ID, Generated: now, Certificate: certPath})
		fmt.Fprintf(o.Log, "  %s certificate SHA-256 %s (usable until %s)\n", ca.role, fp, UsableUntil(now).Format(time.DateOnly))
	}
	for _, mk := range []struct{ role, label string }{
		{RoleMasterENC, "MK-ENC"}, {RoleMasterMAC, "MK-MAC"}, {RoleMasterDEK, "MK-DEK"},
	} {
		now := o.Now().UTC()
		k, err := h.GenerateAES(ctx, mk.label, hsm.KeyOptions{Token: true, Usage: hsm.UseDerive})
		if err := r.step(ctx, "generate "+mk.role+" key", map[string]string{"label": mk.label, "id": hex.EncodeToString(k.ID)}, err); err != nil {
			return nil, err
		}
		st.Keys = append(st.Keys, KeyRecord{Role: mk.role, Label: mk.label, ID: k.ID, Generated: now})
	}
	now := o.Now().UTC()
	k, err := h.GenerateHMAC(ctx, LabelPersonHash, hsm.KeyOptions{Token: true, Extractable: hsm.ExtractableForBackup})
	if err := r.step(ctx, "generate "+RolePersonHash+" key", map[string]string{"label": LabelPersonHash, "id": hex.EncodeToString(k.ID)}, err); err != nil {
		return nil, err
	}
	st.Keys = append(st.Keys, KeyRecord{Role: RolePersonHash, Label: LabelPersonHash, ID: k.ID, Generated: now})

	shares, err := splitSecret(o.Rand, PurposeToken, r.id, secret, o.Custodians, o.Threshold)
	if err != nil {
		return nil, err
	}
	paths, err := writeShareFiles(o.SharesDir, shares)
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
	}
}

// selfSign issues the CA's self-signed certificate, valid 10 years
// (CPS §6.3.2.1), and writes it as PEM under the ceremony dir.
func selfSign(ctx context.Context, c Common, h *hsm.HSM, kp hsm.RSAKeyPair, cn, role string, now time.Time) (path, sha256hex string, err error) {
	serial, err := randomBytes(c.Rand, 16)
	if err != nil {
		return "", "", err
	}
	serial[0] &= 0x7f
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		Subject:               pkix.Name{CommonName: cn, Country: []string{"JP"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    x509.SHA256WithRSA, // TS Art. 2
	}
	signer, err := h.Signer(kp)
	if err != nil {
		return "", "", err
	}
	der, err := x509.CreateCertificate(c.Rand, tmpl, tmpl, kp.PublicKey, signer)
	if err != nil {
		return "", "", fmt.Errorf("ceremony: self-sign: %w", err)
	}
	if err := checkCertMatches(der, kp); err != nil {
		return "", "", err
	}
	path = filepath.Join(CeremonyDir(c.DataDir), role+".crt.pem")
	if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return "", "", err
	}
	fp := sha256.Sum256(der)
	return path, hex.EncodeToString(fp[:]), nil
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
func ReadCertificate(k KeyRecord) (*x509.Certificate, error) {
	b, err := os.ReadFile(k.Certificate)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ceremony: %s is not a pem certificate", k.Certificate)
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
type Active struct {
	HSM         *hsm.HSM
	State       *State
	SignatureCA hsm.RSAKeyPair
	AuthCA      hsm.RSAKeyPair
	Who         []string
}

// Activate is CA key activation by M custodians (TS Art. 27, 45): the token
// user PIN exists only as custodian shares, so the CA keys become usable by
// a process only when M custodians present their shares to it. It opens the
// token, checks each CA key against its certificate (refusing a mismatch)
// and against its usable period, and returns the open token. `ca-server
// serve` calls it at start with the shares presented on its console;
// `ca-server ceremony-activate` runs the same checks and closes again.
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
	a := &Active{HSM: h, State: st, Who: r.who}
	for _, ca := range []struct {
		role string
		dst  *hsm.RSAKeyPair
	}{{RoleSignatureCA, &a.SignatureCA}, {RoleAuthCA, &a.AuthCA}} {
		err := func() error {
			rec, err := st.Key(ca.role)
			if err != nil {
				return err
			}
			kp, err := h.FindRSAKeyPair(ctx, rec.Label)
			if err != nil {
				return err
			}
			cert, err := ReadCertificate(rec)
			if err != nil {
				return err
			}
			if err := checkCertMatches(cert.Raw, kp); err != nil {
				return err
			}
			*ca.dst = kp
			return rec.CheckUsable(o.Now())
		}()
		if err := r.step(ctx, "check "+ca.role+" key", nil, err); err != nil {
			h.Close()
			return nil, r.step(ctx, "finish", nil, err)
		}
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
}

// BackupFile is a CA key backup: each key wrapped with RFC 5649 under a KEK
// that exists only as custodian shares.
type BackupFile struct {
	Version  int           `json:"version"`
	Ceremony string        `json:"ceremony"`
	Created  time.Time     `json:"created"`
	Source   string        `json:"source_ceremony"` // init ceremony of the keys
	Keys     []BackupEntry `json:"keys"`
}

// BackupEntry is one wrapped key.
type BackupEntry struct {
	Key         KeyRecord `json:"key"`
	Kind        string    `json:"kind"` // "rsa" or "hmac"
	Wrapped     []byte    `json:"wrapped"`
	PublicKey   []byte    `json:"public_key,omitempty"`  // PKIX DER, rsa only
	Certificate []byte    `json:"certificate,omitempty"` // DER, CA keys only
}

// backedUpRoles are wrapped by backup: the CA keys and the person-hash key.
// Card issuer master keys are not extractable and not backed up.
var backedUpRoles = []string{RoleSignatureCA, RoleAuthCA, RolePersonHash}

// Backup is the M-of-N backup (TS Art. 27: key information split among
// several people): a random AES-256 KEK is imported into the token as a
// CKA_TRUSTED wrap-only key by the SO, the CA keys and person-hash key
// (CKA_WRAP_WITH_TRUSTED) are wrapped under it, the KEK is destroyed in the
// token, and the KEK is split with Shamir among the custodians.
func Backup(ctx context.Context, o BackupOptions) (string, error) {
	if err := o.fill(); err != nil {
		return "", err
	}
	if err := checkCustodians(o.Custodians, o.Threshold, o.Dev); err != nil {
		return "", err
	}
	if o.OutDir == "" || o.SharesDir == "" {
		return "", fmt.Errorf("%w: backup needs an output dir and a shares dir", ErrBadInput)
	}
	st, err := LoadState(o.DataDir)
	if err != nil {
		return "", err
	}
	r, err := o.newRun("backup", nil)
	if err != nil {
		return "", err
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
	bf := BackupFile{Version: 1, Ceremony: r.id, Created: o.Now().UTC(), Source: st.Ceremony}
	for _, role := range backedUpRoles {
		rec, err := st.Key(role)
		if err != nil {
			return "", err
		}
		e := BackupEntry{Key: rec}
		var k hsm.Key
		if role == RolePersonHash {
			e.Kind = "hmac"
			k, err = h.FindKey(ctx, hsm.KeyQuery{Kind: hsm.KindHMAC, Label: rec.Label, ID: rec.ID})
		} else {
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
		if err := r.step(ctx, "wrap "+role+" key", map[string]string{"label": rec.Label}, err); err != nil {
			return "", err
		}
		bf.Keys = append(bf.Keys, e)
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
	paths, err := writeShareFiles(o.SharesDir, shares)
	if err := r.step(ctx, "split backup kek among custodians", map[string]string{"custodians": fmt.Sprint(names(o.Custodians)), "shares": fmt.Sprint(paths), "threshold": fmt.Sprint(o.Threshold)}, err); err != nil {
		return "", err
	}
	st.Backups = append(st.Backups, BackupRecord{Path: path, Ceremony: r.id, Created: bf.Created})
	for i := range st.Keys {
		if slices.Contains(backedUpRoles, st.Keys[i].Role) {
			st.Keys[i].BackedUp = true
		}
	}
	return path, r.step(ctx, "update key inventory", nil, saveState(o.DataDir, st))
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
