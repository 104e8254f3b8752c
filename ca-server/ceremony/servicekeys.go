package ceremony

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"time"

	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/tlsca"
)

// Service key roles: keys in the token that are not CA keys but, like them,
// are usable only after M custodians activate the token.
const (
	// RoleAuditCheckpoint signs the audit log's checkpoints (CPS §5.4:
	// records protected against alteration; the checkpoint key is in the
	// HSM so nobody with only the data dir can re-sign a rewritten log).
	RoleAuditCheckpoint = "audit-checkpoint"
	// RoleTLSCA is the internal TLS CA key (policy ...3.130, CPS §1.2):
	// it signs the server certificate and terminal and verifier client
	// certificates (TS Art. 7(i): mutual authentication of terminal and CA).
	RoleTLSCA = "tls-ca"
)

// Labels of the service keys in the token.
const (
	LabelAuditCheckpoint = "AUDIT-CHECKPOINT"
	LabelTLSCA           = "TLS-CA"
)

// auditCertYears: the audit checkpoint key's certificate only carries its
// public key to verifiers; it outlives the log's retention (CPS §5.4: at
// least 1 year) many times over.
const auditCertYears = 10

// IsService tells a service key (audit checkpoint, TLS CA) from the others.
func (k KeyRecord) IsService() bool { return k.Role == RoleAuditCheckpoint || k.Role == RoleTLSCA }

// ServiceKey is one activated service key: its record, certificate and key
// pair in the open token. Safe for concurrent use (it holds only handles).
type ServiceKey struct {
	Record      KeyRecord
	Certificate *x509.Certificate
	KeyPair     hsm.RSAKeyPair
	h           *hsm.HSM
}

// Signer returns the key's crypto.Signer in the HSM.
func (k *ServiceKey) Signer() (*hsm.Signer, error) { return k.h.Signer(k.KeyPair) }

// ServiceKeyRecords returns the state's records of a service role, issuing
// and superseded, oldest first: `audit verify` accepts checkpoints signed
// by any of them.
func (s *State) ServiceKeyRecords(role string) []KeyRecord {
	var out []KeyRecord
	for _, k := range s.Keys {
		if k.Role == role {
			out = append(out, k)
		}
	}
	return out
}

// generateServiceKey makes one service key in the token with its
// certificate under the ceremony dir, and returns its record. Both keys are
// backed up with the CA keys (ExtractableForBackup): a restored CA must
// verify its audit log and keep the terminals' trust.
func generateServiceKey(ctx context.Context, c Common, h *hsm.HSM, r *run, role string) (KeyRecord, error) {
	label := map[string]string{RoleAuditCheckpoint: LabelAuditCheckpoint, RoleTLSCA: LabelTLSCA}[role]
	if label == "" {
		return KeyRecord{}, fmt.Errorf("%w: %q is not a service key role", ErrBadInput, role)
	}
	now := c.Now().UTC()
	kp, err := h.GenerateRSA(ctx, label, hsm.KeyOptions{Token: true, Extractable: hsm.ExtractableForBackup})
	if err := r.step(ctx, "generate "+role+" key", map[string]string{"label": label, "id": hex.EncodeToString(kp.Private.ID)}, err); err != nil {
		return KeyRecord{}, err
	}
	signer, err := h.Signer(kp)
	if err != nil {
		return KeyRecord{}, err
	}
	var cert *x509.Certificate
	if role == RoleTLSCA {
		cert, err = tlsca.SelfSign(c.Rand, signer, now)
	} else {
		cert, err = selfSignAuditKey(c.Rand, signer, now)
	}
	path := caCertPath(c.DataDir, role, 1)
	if err == nil && !kp.PublicKey.Equal(cert.PublicKey) {
		err = ErrKeyMismatch
	}
	if err == nil {
		err = writeNew(path, pemCert(cert.Raw))
	}
	var fp Fingerprints
	if err == nil {
		fp = FingerprintsOf(cert.Raw)
	}
	if err := r.step(ctx, "self-sign "+role+" certificate", map[string]string{"sha256": fp.SHA256}, err); err != nil {
		return KeyRecord{}, err
	}
	printCertificate(c.Log, role+" certificate", fp)
	return KeyRecord{Role: role, Label: label, ID: kp.Private.ID, Generated: now, Certificate: path, Generation: 1,
		Status: StatusIssuing, Fingerprints: &fp, BackupWrappable: true}, nil
}

// selfSignAuditKey makes the certificate that publishes the audit
// checkpoint key: an end-entity certificate (digitalSignature only), so it
// can never act as a CA.
func selfSignAuditKey(rnd io.Reader, signer *hsm.Signer, now time.Time) (*x509.Certificate, error) {
	serial, err := randomBytes(rnd, 16)
	if err != nil {
		return nil, err
	}
	serial[0] &= 0x7f
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		Subject:               pkix.Name{CommonName: "Madoguchi audit checkpoint key", Organization: []string{"Madoguchi"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(auditCertYears, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("ceremony: self-sign audit checkpoint key: %w", err)
	}
	return x509.ParseCertificate(der)
}

// loadServiceKey finds a service key in the token and checks it against its
// certificate (refuse to run on a mismatch, as for CA keys).
func loadServiceKey(ctx context.Context, h *hsm.HSM, rec KeyRecord) (*ServiceKey, error) {
	kp, err := h.FindRSAKeyPair(ctx, rec.Label)
	if err != nil {
		return nil, err
	}
	cert, err := ReadCertificate(rec)
	if err != nil {
		return nil, err
	}
	if !kp.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: %s key %q", ErrKeyMismatch, rec.Role, rec.Label)
	}
	// Self-signed by the key itself (the audit certificate is no CA, so
	// CheckSignatureFrom would refuse it as a parent).
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("%w: %s certificate: %v", ErrKeyMismatch, rec.Role, err)
	}
	return &ServiceKey{Record: rec, Certificate: cert, KeyPair: kp, h: h}, nil
}

// activateServiceKeys loads the state's service keys into a (nil when the
// state has none: a CA initialised before they existed).
func activateServiceKeys(ctx context.Context, h *hsm.HSM, st *State, r *run, a *Active) error {
	for _, rec := range st.Keys {
		if !rec.IsService() || rec.KeyStatus() != StatusIssuing {
			continue
		}
		k, err := loadServiceKey(ctx, h, rec)
		if err := r.step(ctx, "check "+rec.Role+" key", nil, err); err != nil {
			return err
		}
		switch rec.Role {
		case RoleAuditCheckpoint:
			a.AuditCheckpoint = k
		case RoleTLSCA:
			a.TLSCA = k
		}
	}
	return nil
}

// AddAuditKey gives a CA initialised before the audit checkpoint key
// existed its key: it generates the key in the activated token (M custodians
// are present: Activate succeeded), records the step in the ceremony
// record and the key in the inventory, and sets a.AuditCheckpoint. It
// returns the existing key when there is one. `serve` calls it after
// activation; checkpoints signed earlier with the data dir's file key keep
// verifying (see ca-server/audit). There is no such path for the TLS CA
// key: a new TLS CA would orphan every enrolled terminal, so a CA
// initialised before keeps its file key.
func AddAuditKey(ctx context.Context, c Common, a *Active) (*ServiceKey, error) {
	if a.AuditCheckpoint != nil {
		return a.AuditCheckpoint, nil
	}
	if err := c.fill(); err != nil {
		return nil, err
	}
	r, err := c.newRun("add-audit-key", a.Who)
	if err != nil {
		return nil, err
	}
	k, err := addAuditKey(ctx, c, a, r)
	return k, r.step(ctx, "finish", nil, err)
}

func addAuditKey(ctx context.Context, c Common, a *Active, r *run) (*ServiceKey, error) {
	if stale, err := a.HSM.FindKeys(ctx, hsm.KeyQuery{Kind: hsm.KindRSAPrivate, Label: LabelAuditCheckpoint}); err != nil || len(stale) > 0 {
		if err == nil {
			err = fmt.Errorf("ceremony: the token already holds a key labelled %q that the inventory does not list", LabelAuditCheckpoint)
		}
		return nil, err
	}
	rec, err := generateServiceKey(ctx, c, a.HSM, r, RoleAuditCheckpoint)
	if err != nil {
		return nil, err
	}
	next := *a.State
	next.Keys = append(append([]KeyRecord(nil), a.State.Keys...), rec)
	if err := r.step(ctx, "update key inventory", nil, saveState(c.DataDir, &next)); err != nil {
		return nil, err
	}
	*a.State = next
	k, err := loadServiceKey(ctx, a.HSM, rec)
	if err != nil {
		return nil, err
	}
	a.AuditCheckpoint = k
	return k, nil
}

// RecordAuditFileKey records the public half of a data dir's file audit
// checkpoint key in the inventory, as a step of the activated ceremony (M
// custodians present), so the checkpoints it signed keep verifying once
// the file is gone. `serve` calls it once, when it migrates a data dir
// whose file key no HSM key has yet succeeded. Recording the same key again
// is a no-op.
func RecordAuditFileKey(ctx context.Context, c Common, a *Active, keyID string, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%w: file audit key: %v", ErrBadInput, err)
	}
	sum := sha256.Sum256(der)
	fp := hex.EncodeToString(sum[:])
	for _, k := range a.State.AuditFileKeys {
		if k.SHA256 == fp {
			return nil
		}
	}
	if err := c.fill(); err != nil {
		return err
	}
	r, err := c.newRun("record-audit-file-key", a.Who)
	if err != nil {
		return err
	}
	next := *a.State
	next.AuditFileKeys = append(append([]AuditFileKey(nil), a.State.AuditFileKeys...), AuditFileKey{KeyID: keyID,
		PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), SHA256: fp, Recorded: c.Now().UTC()})
	err = r.step(ctx, "record file audit checkpoint key", map[string]string{"key_id": keyID, "sha256": fp}, saveState(c.DataDir, &next))
	if err == nil {
		*a.State = next
	}
	return r.step(ctx, "finish", nil, err)
}

// Public parses a recorded file key's public half.
func (k AuditFileKey) Public() (crypto.PublicKey, error) {
	blk, _ := pem.Decode([]byte(k.PublicKey))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("ceremony: recorded file audit key %q is not a PEM public key", k.KeyID)
	}
	return x509.ParsePKIXPublicKey(blk.Bytes)
}
