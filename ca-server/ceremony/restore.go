package ceremony

import (
	"bufio"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"madoguchi/ca-server/cardkeys"
	"madoguchi/ca-server/hsm"
)

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// RestoreOptions configures a restore ceremony onto a new data dir.
type RestoreOptions struct {
	Common                      // DataDir: the new data dir (must hold no CA)
	BackupFile string           // backup file to restore
	KEKShares  []PresentedShare // M backup-KEK shares
	Custodians []Custodian      // custodians of the new token's PINs
	Threshold  int
	SharesDir  string
	TokenLabel string
	Dev        bool
}

// Restore recreates the CA keys from a backup on a new token (TS Art. 27:
// restoring needs the custodians to meet): M custodians present their KEK
// shares, the KEK is imported as a session key, each key is unwrapped into
// the new token and checked against its recorded public key and certificate,
// and the new token's PINs are split among the custodians. Generation dates
// carry over, so the 4-year usable period (TS Art. 8(3)) is not reset, and
// so do key statuses and link certificates (a CRL-only key keeps signing
// CRLs). The card issuer master keys come back too, so the restored CA
// opens secure channels with the cards already in stock; a backup made
// without them (version 1, or WithoutMasterKeys) restores a CA with none,
// which CardBatch and Active.CardKeys then refuse with ErrNoMasterKeys.
func Restore(ctx context.Context, o RestoreOptions) (*State, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	if err := checkCustodians(o.DataDir, o.Custodians, o.Threshold, o.Dev, o.SharesDir); err != nil {
		return nil, err
	}
	if o.BackupFile == "" {
		return nil, fmt.Errorf("%w: restore needs a backup file", ErrBadInput)
	}
	if _, err := LoadState(o.DataDir); !errors.Is(err, ErrNotInitialised) {
		return nil, ErrAlreadyInitialised
	}
	if o.TokenLabel == "" {
		o.TokenLabel = hsm.DefaultTokenLabel
	}
	r, err := o.newRun("restore", nil)
	if err != nil {
		return nil, err
	}
	st, err := restore(ctx, &o, r)
	return st, r.step(ctx, "finish", nil, err)
}

func restore(ctx context.Context, o *RestoreOptions, r *run) (*State, error) {
	b, err := os.ReadFile(o.BackupFile)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	var bf BackupFile
	if err := json.Unmarshal(b, &bf); err != nil || bf.Version < 1 || bf.Version > BackupVersion {
		return nil, fmt.Errorf("%w: %s is not a backup file", ErrBadInput, o.BackupFile)
	}
	kek, who, hdr, err := combineShares(PurposeBackupKEK, o.KEKShares)
	if who != nil {
		r.setWho(who)
	}
	if err == nil && hdr.Ceremony != bf.Ceremony {
		err = fmt.Errorf("%w: kek shares are from backup %s, the file from %s", ErrBadShare, hdr.Ceremony, bf.Ceremony)
	}
	if err := r.step(ctx, "custodians present backup kek shares", map[string]string{"backup": bf.Ceremony}, err); err != nil {
		return nil, err
	}
	defer clear(kek)

	secret, err := newTokenSecret(o.Rand)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	ts, _ := parseTokenSecret(secret)
	cfg, err := provision(o.Common, o.TokenLabel, ts)
	if err := r.step(ctx, "initialise new token", map[string]string{"token": o.TokenLabel}, err); err != nil {
		return nil, err
	}
	h, err := hsm.OpenWithPIN(cfg, ts.user)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	kekKey, err := h.ImportAES(ctx, "RESTORE-KEK", kek, hsm.KeyOptions{Usage: hsm.UseUnwrap})
	if err != nil {
		return nil, err
	}
	defer h.Destroy(context.WithoutCancel(ctx), kekKey)

	st := &State{Version: StateVersion, Ceremony: r.id, TokenLabel: o.TokenLabel, Custodians: names(o.Custodians), Threshold: o.Threshold, Dev: o.Dev}
	now := o.Now().UTC()
	for _, e := range bf.Keys {
		rec := e.Key
		rec.Restored = &now
		rec.BackedUp = true
		opts := hsm.KeyOptions{Token: true, ID: rec.ID, Extractable: hsm.ExtractableForBackup}
		var err error
		switch e.Kind {
		case "rsa":
			var kp hsm.RSAKeyPair
			kp, err = h.UnwrapRSAKWP(ctx, kekKey, e.Wrapped, rec.Label, opts)
			if err == nil {
				err = checkRestoredRSA(kp.PublicKey, e)
			}
			if err == nil {
				rec.Certificate = caCertPath(o.DataDir, rec.Role, rec.Gen())
				err = writeNew(rec.Certificate, pemCert(e.Certificate))
			}
			if err == nil && rec.Fingerprints != nil && *rec.Fingerprints != FingerprintsOf(e.Certificate) {
				err = fmt.Errorf("%w: backup certificate of %s differs from its recorded fingerprint", ErrKeyMismatch, rec.Label)
			}
		case "hmac":
			_, err = h.UnwrapSecretKWP(ctx, kekKey, e.Wrapped, hsm.KindHMAC, rec.Label, opts)
		case "aes":
			if !isMasterRole(rec.Role) {
				err = fmt.Errorf("%w: aes backup entry for role %q", ErrBadInput, rec.Role)
				break
			}
			opts.Usage = hsm.UseDerive
			_, err = h.UnwrapSecretKWP(ctx, kekKey, e.Wrapped, hsm.KindAES, rec.Label, opts)
		default:
			err = fmt.Errorf("%w: backup entry of kind %q", ErrBadInput, e.Kind)
		}
		what := "restore " + rec.Role + " key"
		if rec.Gen() > 1 {
			what = fmt.Sprintf("restore %s key generation %d", rec.Role, rec.Gen())
		}
		if err := r.step(ctx, what, map[string]string{"label": rec.Label, "generated": rec.Generated.Format("2006-01-02"), "status": rec.Status}, err); err != nil {
			return nil, err
		}
		st.Keys = append(st.Keys, rec)
	}
	for _, bl := range bf.Links {
		l := bl.Link
		l.Certificate = linkCertPath(o.DataDir, l)
		err := writeNew(l.Certificate, pemCert(bl.Certificate))
		if err == nil && FingerprintsOf(bl.Certificate) != l.Fingerprints {
			err = fmt.Errorf("%w: link certificate differs from its recorded fingerprint", ErrKeyMismatch)
		}
		if err := r.step(ctx, "restore "+l.Kind+" link certificate", map[string]string{"role": l.Role, "sha256": l.Fingerprints.SHA256}, err); err != nil {
			return nil, err
		}
		st.Links = append(st.Links, l)
	}
	st.AuditFileKeys = bf.AuditFileKeys
	if err := checkMasterKeys(st); err != nil {
		fmt.Fprintf(o.Log, "  WARNING: %v\n", err)
		if err := r.step(ctx, "card master keys absent from backup", map[string]string{"backup_version": fmt.Sprint(bf.Version)}, nil); err != nil {
			return nil, err
		}
	}
	shares, err := splitSecret(o.Rand, PurposeToken, r.id, secret, o.Custodians, o.Threshold)
	if err != nil {
		return nil, err
	}
	paths, err := writeShareFiles(o.SharesDir, o.Custodians, shares)
	if err := r.step(ctx, "split new token pins among custodians", map[string]string{"shares": fmt.Sprint(paths)}, err); err != nil {
		return nil, err
	}
	return st, r.step(ctx, "write key inventory", nil, saveState(o.DataDir, st))
}

func checkRestoredRSA(pub *rsa.PublicKey, e BackupEntry) error {
	want, err := x509.ParsePKIXPublicKey(e.PublicKey)
	if err != nil {
		return fmt.Errorf("ceremony: backup public key: %w", err)
	}
	if !pub.Equal(want) {
		return fmt.Errorf("%w: unwrapped key differs from the recorded public key", ErrKeyMismatch)
	}
	cert, err := x509.ParseCertificate(e.Certificate)
	if err != nil {
		return fmt.Errorf("ceremony: backup certificate: %w", err)
	}
	if !pub.Equal(cert.PublicKey) {
		return ErrKeyMismatch
	}
	return nil
}

// DestroyOptions configures key destruction.
type DestroyOptions struct {
	Common
	Shares []PresentedShare // M token shares
}

// Destroy destroys every copy of the CA's keys at once, with M custodians
// (TS Art. 27, 45): every key object in the token and every backup file
// listed in the key inventory. The inventory is kept, marked destroyed, so
// the record of what existed survives.
func Destroy(ctx context.Context, o DestroyOptions) error {
	if err := o.fill(); err != nil {
		return err
	}
	st, err := LoadState(o.DataDir)
	if err != nil {
		return err
	}
	r, err := o.newRun("destroy", nil)
	if err != nil {
		return err
	}
	return r.step(ctx, "finish", nil, destroy(ctx, &o, st, r))
}

func destroy(ctx context.Context, o *DestroyOptions, st *State, r *run) error {
	h, _, err := openWithShares(ctx, o.Common, st, r, o.Shares)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	for _, rec := range st.Keys {
		if rec.KeyStatus() == StatusRetired {
			continue // destroyed by ceremony-retire
		}
		var kinds []hsm.KeyKind
		switch rec.Role {
		case RoleSignatureCA, RoleAuthCA, RoleAuditCheckpoint, RoleTLSCA:
			kinds = []hsm.KeyKind{hsm.KindRSAPrivate, hsm.KindRSAPublic}
		case RolePersonHash:
			kinds = []hsm.KeyKind{hsm.KindHMAC}
		default:
			kinds = []hsm.KeyKind{hsm.KindAES}
		}
		n := 0
		var err error
		for _, kind := range kinds {
			keys, ferr := h.FindKeys(ctx, hsm.KeyQuery{Kind: kind, Label: rec.Label})
			err = errors.Join(err, ferr)
			for _, k := range keys {
				err = errors.Join(err, h.Destroy(ctx, k))
				n++
			}
		}
		errs = append(errs, r.step(ctx, "destroy "+rec.Role+" key", map[string]string{"label": rec.Label, "objects": fmt.Sprint(n)}, err))
	}
	for i, b := range st.Backups {
		if b.Removed {
			continue
		}
		err := os.Remove(b.Path)
		if errors.Is(err, os.ErrNotExist) {
			err = nil // already gone: the goal holds
		}
		if err == nil {
			st.Backups[i].Removed = true
		}
		errs = append(errs, r.step(ctx, "remove backup file", map[string]string{"path": b.Path}, err))
	}
	if err := errors.Join(errs...); err != nil {
		_ = saveState(o.DataDir, st)
		return err
	}
	now := o.Now().UTC()
	st.Destroyed = &now
	return r.step(ctx, "mark key inventory destroyed", nil, saveState(o.DataDir, st))
}

// CardBatchOptions configures a card-key batch for the card manufacturer.
type CardBatchOptions struct {
	Common
	Shares []PresentedShare // M token shares
	Count  int
	Out    string // batch file, created new (mode 0600)
}

// MaxCardBatch bounds one batch (one manufacturing lot).
const MaxCardBatch = 100000

// CardBatch derives the static keys of Count new cards from the master keys
// in the HSM and writes the batch file for the card manufacturer, one card a
// line: "serial-hex enc-hex mac-hex dek-hex" (read by `vcard stock`).
// Serials are 16 random bytes. The derived copies exist in clear only for
// this local export and are destroyed in the HSM right after being read;
// the file itself is the secret the manufacturer receives.
func CardBatch(ctx context.Context, o CardBatchOptions) error {
	if err := o.fill(); err != nil {
		return err
	}
	if o.Count < 1 || o.Count > MaxCardBatch {
		return fmt.Errorf("%w: card count %d (1..%d)", ErrBadInput, o.Count, MaxCardBatch)
	}
	if o.Out == "" {
		return fmt.Errorf("%w: no batch output file", ErrBadInput)
	}
	st, err := LoadState(o.DataDir)
	if err != nil {
		return err
	}
	if err := checkMasterKeys(st); err != nil {
		return err
	}
	r, err := o.newRun("card-batch", nil)
	if err != nil {
		return err
	}
	return r.step(ctx, "finish", nil, cardBatch(ctx, &o, st, r))
}

func cardBatch(ctx context.Context, o *CardBatchOptions, st *State, r *run) (retErr error) {
	h, _, err := openWithShares(ctx, o.Common, st, r, o.Shares)
	if err != nil {
		return err
	}
	defer h.Close()
	is, err := cardkeys.New(ctx, h)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(o.Out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	defer func() {
		if cerr := f.Close(); retErr == nil {
			retErr = cerr
		}
		if retErr != nil {
			os.Remove(o.Out) // no half batch
		}
	}()
	sum := sha256.New()
	w := bufio.NewWriter(f)
	var first, last string
	for i := 0; i < o.Count; i++ {
		serial, err := randomBytes(o.Rand, 16)
		if err != nil {
			return err
		}
		keys, err := is.ExportCardKeys(ctx, serial)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%x %x %x %x\n", serial, keys.ENC, keys.MAC, keys.DEK)
		clear(keys.ENC)
		clear(keys.MAC)
		clear(keys.DEK)
		w.WriteString(line)
		sum.Write([]byte(line))
		if i == 0 {
			first = hex.EncodeToString(serial)
		}
		last = hex.EncodeToString(serial)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("ceremony: %w", err)
	}
	return r.step(ctx, "write card key batch", map[string]string{"path": o.Out, "count": fmt.Sprint(o.Count),
		"first_serial": first, "last_serial": last, "sha256": hex.EncodeToString(sum.Sum(nil))}, nil)
}
