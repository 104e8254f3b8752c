package ceremony

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"madoguchi/ca-server/hsm"
)

// RolloverOptions configures a CA key rollover (CPS §5.6 key changeover).
type RolloverOptions struct {
	Common
	Shares []PresentedShare // M token shares
	Role   string           // RoleSignatureCA or RoleAuthCA
}

// Rollover is the CA key changeover (CPS §5.6, §7.1(3); TS Art. 8(3): a CA
// key signs certificates for at most 4 years) with M custodians: it
// generates a new CA key in the HSM (backup-wrappable like every CA key),
// a new self-signed certificate valid 10 years with the CA's subject name
// unchanged, and the two link certificates of RFC 4210 §4.4:
//
//   - OldWithNew: the old public key signed by the new key, with the old
//     certificate's validity, so a relying party that already trusts the
//     new CA certificate can check certificates the old key issued;
//   - NewWithOld: the new public key signed by the old key, valid from now
//     until the old certificate ends, so a relying party that still trusts
//     the old CA certificate can check certificates the new key issues.
//
// The new key becomes the issuing key; the old one becomes CRL-only: it
// signs CRLs and OCSP responses until its certificate's notAfter (no
// certificate it issued can outlive that) and never a certificate again;
// Retire destroys it afterwards. Fingerprints of the three new
// certificates are printed and recorded (G Art. 10(ii)). On any failure the
// new key and files are removed and the state is unchanged.
//
// Rollover belongs before the issuing key's 4 years end (Activate refuses
// a CA whose issuing key has expired), but it does not require it: it is
// the way out for a CA that missed the date.
func Rollover(ctx context.Context, o RolloverOptions) (*State, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	if o.Role != RoleSignatureCA && o.Role != RoleAuthCA {
		return nil, fmt.Errorf("%w: rollover of %q (want %s or %s)", ErrBadInput, o.Role, RoleSignatureCA, RoleAuthCA)
	}
	st, err := LoadState(o.DataDir)
	if err != nil {
		return nil, err
	}
	old, err := st.IssuingKey(o.Role)
	if err != nil {
		return nil, err
	}
	r, err := o.newRun("rollover", nil)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "key ceremony %s: rollover of the %s key (generation %d)\n", r.id, o.Role, old.Gen())
	if err := r.step(ctx, "start", map[string]string{"role": o.Role, "old_generation": fmt.Sprint(old.Gen()), "old_label": old.Label}, nil); err != nil {
		return nil, err
	}
	err = rollover(ctx, &o, st, old, r)
	if err != nil {
		return nil, r.step(ctx, "finish", nil, err)
	}
	return st, r.step(ctx, "finish", nil, nil)
}

// caKeyLabel names a CA key generation in the token: generation 1 keeps
// the label used before rollovers existed.
func caKeyLabel(role string, gen int) string {
	base := LabelSignatureCA
	if role == RoleAuthCA {
		base = LabelAuthCA
	}
	if gen <= 1 {
		return base
	}
	return fmt.Sprintf("%s-G%d", base, gen)
}

func linkCertPath(dataDir string, l LinkRecord) string {
	return filepath.Join(CeremonyDir(dataDir), fmt.Sprintf("%s-g%d-g%d-%s.crt.pem", l.Role, l.OldGeneration, l.NewGeneration, l.Kind))
}

func rollover(ctx context.Context, o *RolloverOptions, st *State, old KeyRecord, r *run) (retErr error) {
	h, _, err := openWithShares(ctx, o.Common, st, r, o.Shares)
	if err != nil {
		return err
	}
	defer h.Close()
	oldKey, err := loadCAKey(ctx, h, old)
	if err := r.step(ctx, "check old "+o.Role+" key against its certificate", map[string]string{"label": old.Label}, err); err != nil {
		return err
	}
	gen := 1
	for _, k := range st.Keys {
		if k.Role == o.Role {
			gen = max(gen, k.Gen()+1)
		}
	}
	label := caKeyLabel(o.Role, gen)
	if stale, err := h.FindKeys(ctx, hsm.KeyQuery{Kind: hsm.KindRSAPrivate, Label: label}); err != nil || len(stale) > 0 {
		if err == nil {
			err = fmt.Errorf("ceremony: the token already holds a key labelled %q that the inventory does not list", label)
		}
		return err
	}
	now := o.Now().UTC()
	var written []string
	kp, err := h.GenerateRSA(ctx, label, hsm.KeyOptions{Token: true, Extractable: hsm.ExtractableForBackup})
	if err := r.step(ctx, "generate "+o.Role+" key", map[string]string{"label": label, "generation": fmt.Sprint(gen), "id": hex.EncodeToString(kp.Private.ID)}, err); err != nil {
		return err
	}
	defer func() {
		if retErr == nil {
			return
		}
		// Undo: an unrecorded key or certificate must not linger.
		dctx := context.WithoutCancel(ctx)
		derr := errors.Join(h.Destroy(dctx, kp.Private), h.Destroy(dctx, kp.Public))
		for _, p := range written {
			derr = errors.Join(derr, os.Remove(p))
		}
		retErr = errors.Join(retErr, r.step(dctx, "undo: destroy the new key and remove its certificates", nil, derr))
	}()
	// TS Art. 5(iii) spirit: a CA key is never the same as an earlier one.
	for _, k := range st.Keys {
		if k.Role != o.Role || k.Certificate == "" {
			continue
		}
		if c, err := ReadCertificate(k); err == nil && kp.PublicKey.Equal(c.PublicKey) {
			return fmt.Errorf("ceremony: the new key equals generation %d's", k.Gen())
		}
	}
	newPath := caCertPath(o.DataDir, o.Role, gen)
	newCert, err := selfSign(o.Common, h, kp, oldKey.Certificate.Subject, oldKey.Certificate.RawSubject, newPath, now)
	if err == nil {
		written = append(written, newPath)
	}
	var newFP Fingerprints
	if err == nil {
		newFP = FingerprintsOf(newCert.Raw)
	}
	if err := r.step(ctx, "self-sign "+o.Role+" certificate", map[string]string{"subject": oldKey.Certificate.Subject.String(),
		"generation": fmt.Sprint(gen), "sha256": newFP.SHA256, "sha1": newFP.SHA1, "valid_years": "10"}, err); err != nil {
		return err
	}
	newKey := &CAKey{Certificate: newCert, KeyPair: kp, h: h}

	var links []LinkRecord
	for _, l := range []struct {
		kind           string
		subject, under *CAKey // subject's public key, signed by under
		notBefore      time.Time
		notAfter       time.Time
	}{
		{LinkOldWithNew, oldKey, newKey, oldKey.Certificate.NotBefore, oldKey.Certificate.NotAfter},
		{LinkNewWithOld, newKey, oldKey, newCert.NotBefore, oldKey.Certificate.NotAfter},
	} {
		rec := LinkRecord{Role: o.Role, Kind: l.kind, OldGeneration: old.Gen(), NewGeneration: gen, Generated: now}
		rec.Certificate = linkCertPath(o.DataDir, rec)
		der, err := linkCertificate(o.Common, l.subject, l.under, l.notBefore, l.notAfter)
		if err == nil {
			err = writeNew(rec.Certificate, pemCert(der))
		}
		if err == nil {
			written = append(written, rec.Certificate)
			rec.Fingerprints = FingerprintsOf(der)
		}
		if err := r.step(ctx, "issue "+l.kind+" link certificate", map[string]string{"sha256": rec.Fingerprints.SHA256, "sha1": rec.Fingerprints.SHA1}, err); err != nil {
			return err
		}
		links = append(links, rec)
	}

	// Commit: the old key becomes CRL-only, the new one issuing.
	next := *st
	next.Version = StateVersion
	next.Keys = append([]KeyRecord(nil), st.Keys...)
	for i := range next.Keys {
		if next.Keys[i].Role == o.Role && next.Keys[i].KeyStatus() == StatusIssuing {
			k := &next.Keys[i]
			until := oldKey.Certificate.NotAfter.UTC()
			k.Generation, k.Status, k.Superseded, k.CRLSigningUntil = k.Gen(), StatusCRLOnly, &now, &until
			if k.Fingerprints == nil {
				fp := FingerprintsOf(oldKey.Certificate.Raw)
				k.Fingerprints = &fp
			}
		}
	}
	next.Keys = append(next.Keys, KeyRecord{Role: o.Role, Label: label, ID: kp.Private.ID, Generated: now, Certificate: newPath,
		Generation: gen, Status: StatusIssuing, Fingerprints: &newFP, BackupWrappable: true})
	next.Links = append(append([]LinkRecord(nil), st.Links...), links...)
	if err := r.step(ctx, "update key inventory", map[string]string{"issuing": label, "crl_only": old.Label,
		"crl_signing_until": oldKey.Certificate.NotAfter.UTC().Format(time.RFC3339)}, saveState(o.DataDir, &next)); err != nil {
		return err
	}
	*st = next
	printCertificate(o.Log, fmt.Sprintf("%s certificate (generation %d, issuing)", o.Role, gen), newFP)
	for _, l := range links {
		printCertificate(o.Log, fmt.Sprintf("%s link certificate %d↔%d (%s)", o.Role, l.OldGeneration, l.NewGeneration, l.Kind), l.Fingerprints)
	}
	fmt.Fprintf(o.Log, "  generation %d is now CRL-only until %s; the new key issues until %s\n", old.Gen(),
		oldKey.Certificate.NotAfter.UTC().Format(time.DateOnly), UsableUntil(now).Format(time.DateOnly))
	if len(st.Backups) > 0 {
		fmt.Fprintln(o.Log, "  the new key is in no backup yet: run ceremony-backup")
	}
	return nil
}

// linkCertificate certifies subject's public key under the other key of a
// rollover. The subject name and subject key identifier are the subject's
// own certificate's and the authority key identifier the signer's, so
// chains built through it match by key identifier (the two generations
// share one subject name).
func linkCertificate(c Common, subject, under *CAKey, notBefore, notAfter time.Time) ([]byte, error) {
	serial, err := randomBytes(c.Rand, 16)
	if err != nil {
		return nil, err
	}
	serial[0] &= 0x7f
	sc := subject.Certificate
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		RawSubject:            sc.RawSubject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          sc.SubjectKeyId,
		// crypto/x509 leaves the authority key identifier out when issuer
		// and subject names are equal (it takes that for self-signed); a
		// link certificate needs it, or chain builders take it for a root.
		AuthorityKeyId:     under.Certificate.SubjectKeyId,
		SignatureAlgorithm: x509.SHA256WithRSA, // TS Art. 2
	}
	signer, err := under.h.Signer(under.KeyPair)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(c.Rand, tmpl, under.Certificate, subject.KeyPair.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("ceremony: link certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ceremony: link certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(under.Certificate); err != nil {
		return nil, fmt.Errorf("%w: link certificate: %v", ErrKeyMismatch, err)
	}
	return der, nil
}

// RetireOptions configures the retirement of a superseded CA key.
type RetireOptions struct {
	Common
	Shares     []PresentedShare // M token shares
	Role       string           // RoleSignatureCA or RoleAuthCA
	Generation int              // the CRL-only generation to retire
	// IssuedValidUntil, when set, is the latest notAfter of any unexpired
	// certificate the key issued (from the CA store). Retiring before the
	// key's CRLSigningUntil is allowed only when it has passed.
	IssuedValidUntil time.Time
}

// Retire destroys a superseded (CRL-only) CA key with M custodians once no
// certificate it issued can still be valid, since their CRLs need it: now
// must be at or after the key's CRLSigningUntil, or after IssuedValidUntil
// (ErrStillSigningCRLs otherwise). Every copy goes at once (TS Art. 27,
// 45): its entry is removed from every backup file listed in the
// inventory (rewritten in place; a listed file that cannot be found stops
// the ceremony before anything is destroyed), then the key objects in the
// token. The record stays in the inventory, status retired, with its
// certificate and fingerprints.
func Retire(ctx context.Context, o RetireOptions) error {
	if err := o.fill(); err != nil {
		return err
	}
	st, err := LoadState(o.DataDir)
	if err != nil {
		return err
	}
	idx := -1
	for i, k := range st.Keys {
		if k.Role == o.Role && k.IsCA() && k.Gen() == o.Generation {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("%w: no %s key of generation %d", ErrBadInput, o.Role, o.Generation)
	}
	rec := st.Keys[idx]
	if rec.KeyStatus() != StatusCRLOnly {
		return fmt.Errorf("%w: %s key generation %d is %s: only a crl-only key is retired", ErrBadInput, o.Role, o.Generation, rec.KeyStatus())
	}
	now := o.Now()
	if rec.CRLSigningUntil != nil && now.Before(*rec.CRLSigningUntil) && (o.IssuedValidUntil.IsZero() || now.Before(o.IssuedValidUntil)) {
		return fmt.Errorf("%w: %s generation %d until %s", ErrStillSigningCRLs, o.Role, o.Generation, rec.CRLSigningUntil.Format(time.DateOnly))
	}
	r, err := o.newRun("retire", nil)
	if err != nil {
		return err
	}
	return r.step(ctx, "finish", nil, retire(ctx, &o, st, idx, r))
}

func retire(ctx context.Context, o *RetireOptions, st *State, idx int, r *run) error {
	rec := st.Keys[idx]
	h, _, err := openWithShares(ctx, o.Common, st, r, o.Shares)
	if err != nil {
		return err
	}
	defer h.Close()
	// Every listed backup must be at hand before anything is destroyed.
	var files []*BackupFile
	for _, b := range st.Backups {
		if b.Removed {
			files = append(files, nil)
			continue
		}
		bf, err := readBackupFile(b.Path)
		if err != nil {
			err = fmt.Errorf("%w (TS Art. 27: every copy is destroyed at once; bring every listed backup)", err)
		}
		if err := r.step(ctx, "read backup file", map[string]string{"path": b.Path}, err); err != nil {
			return err
		}
		files = append(files, bf)
	}
	for i, bf := range files {
		if bf == nil {
			continue
		}
		kept := bf.Keys[:0]
		n := 0
		for _, e := range bf.Keys {
			if e.Key.Role == rec.Role && string(e.Key.ID) == string(rec.ID) {
				n++
				continue
			}
			kept = append(kept, e)
		}
		bf.Keys = kept
		var err error
		if n > 0 {
			err = rewriteBackupFile(st.Backups[i].Path, bf)
		}
		if err := r.step(ctx, "remove key from backup file", map[string]string{"path": st.Backups[i].Path, "entries": fmt.Sprint(n)}, err); err != nil {
			return err
		}
	}
	n := 0
	var derr error
	for _, kind := range []hsm.KeyKind{hsm.KindRSAPrivate, hsm.KindRSAPublic} {
		keys, err := h.FindKeys(ctx, hsm.KeyQuery{Kind: kind, Label: rec.Label, ID: rec.ID})
		derr = errors.Join(derr, err)
		for _, k := range keys {
			derr = errors.Join(derr, h.Destroy(ctx, k))
			n++
		}
	}
	if err := r.step(ctx, "destroy "+rec.Role+" key", map[string]string{"label": rec.Label, "generation": fmt.Sprint(rec.Gen()), "objects": fmt.Sprint(n)}, derr); err != nil {
		return err
	}
	now := o.Now().UTC()
	st.Keys[idx].Status, st.Keys[idx].Retired = StatusRetired, &now
	return r.step(ctx, "update key inventory", map[string]string{"retired": rec.Label}, saveState(o.DataDir, st))
}

func readBackupFile(path string) (*BackupFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ceremony: backup: %w", err)
	}
	var bf BackupFile
	if err := json.Unmarshal(b, &bf); err != nil || bf.Version < 1 || bf.Version > BackupVersion {
		return nil, fmt.Errorf("%w: %s is not a backup file", ErrBadInput, path)
	}
	return &bf, nil
}

// rewriteBackupFile replaces a backup file atomically (mode 0600).
func rewriteBackupFile(path string, bf *BackupFile) error {
	b, err := jsonIndent(bf)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := writeNew(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ceremony: %w", err)
	}
	return nil
}
