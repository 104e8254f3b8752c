package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/tlsca"
)

// Where the TLS CA key and the audit checkpoint key live.
//
// A data dir initialised by ceremony-init holds both keys in the HSM
// (ceremony.RoleTLSCA, ceremony.RoleAuditCheckpoint): local commands run
// without custodians get the TLS CA without its key (tlsca.NewPublic) and an
// audit log that appends chained records without checkpoints
// (audit.OpenUnsigned); `serve` signs with both keys after M custodians
// activate the token (TS Art. 27, 45), and so does `verifier-add --out-dir`
// given --share M times.
//
// Data dirs made before the keys moved into the HSM:
//   - TLS CA: the file key (tls-ca.key) stays in use, as does a data dir
//     without a ceremony; replacing it would orphan every enrolled terminal.
//     A data dir holding both an HSM TLS CA and a file key is refused.
//   - audit: `serve` generates the HSM audit key at its first activation
//     (ceremony.AddAuditKey), signs a checkpoint with it, then keeps only the
//     public half of the old file key (audit-checkpoint-file.pub.pem) so
//     checkpoints signed earlier keep verifying and nobody can sign new
//     ones with it.

const (
	legacyAuditKeyFile = "audit-checkpoint.key"          // ECDSA file key of older data dirs
	legacyAuditPubFile = "audit-checkpoint-file.pub.pem" // its public half after migration
	legacyAuditKeyID   = "audit-checkpoint-file"         // KeyID its checkpoints carry
)

// openTLSCA returns the data dir's TLS CA: public only when its key is in
// the HSM, with the file key otherwise (see above).
func openTLSCA(dataDir string, st tlsca.Store) (*tlsca.CA, error) {
	rec, ok, err := hsmTLSCARecord(dataDir)
	if err != nil {
		return nil, err
	}
	if !ok {
		cert, signer, err := tlsca.LoadOrCreate(dataDir, time.Now())
		if err != nil {
			return nil, err
		}
		return tlsca.New(cert, signer, st, nil)
	}
	if tlsca.HasFileKey(dataDir) {
		return nil, fmt.Errorf("ca-server: %s holds a file TLS CA key (tls-ca.key, made before ceremony-init) besides the TLS CA key in the HSM; "+
			"terminals enrolled under the file CA must enrol again: move tls-ca.key and tls-ca.crt out of the data dir", dataDir)
	}
	cert, err := ceremony.ReadCertificate(rec)
	if err != nil {
		return nil, err
	}
	// The certificate is public: terminals and verifiers get it from here.
	if err := tlsca.WriteCertificate(dataDir, cert); err != nil {
		return nil, err
	}
	return tlsca.NewPublic(cert, st, nil)
}

// hsmTLSCARecord returns the issuing TLS CA key of the data dir's ceremony
// state, if there is one.
func hsmTLSCARecord(dataDir string) (ceremony.KeyRecord, bool, error) {
	st, err := ceremony.LoadState(dataDir)
	switch {
	case errors.Is(err, ceremony.ErrNotInitialised):
		return ceremony.KeyRecord{}, false, nil
	case err != nil && !errors.Is(err, ceremony.ErrDestroyed):
		return ceremony.KeyRecord{}, false, err
	}
	for _, k := range st.ServiceKeyRecords(ceremony.RoleTLSCA) {
		if k.KeyStatus() == ceremony.StatusIssuing {
			return k, true, nil
		}
	}
	return ceremony.KeyRecord{}, false, nil
}

// signingTLSCA returns the TLS CA with its HSM key from an activated CA, or
// nil when the TLS CA key is not in the HSM (a data dir made before: the
// public CA from openTLSCA already signs with the file key).
func signingTLSCA(active *ceremony.Active, st tlsca.Store) (*tlsca.CA, error) {
	if active == nil || active.TLSCA == nil {
		return nil, nil
	}
	s, err := active.TLSCA.Signer()
	if err != nil {
		return nil, err
	}
	return tlsca.New(active.TLSCA.Certificate, s, st, nil)
}

// auditVerifyKeys lists every key that may have signed the data dir's
// audit checkpoints, from public material only: the audit checkpoint keys
// of the ceremony state (their certificates) and the file key of a data
// dir made before the key moved into the HSM.
func auditVerifyKeys(dataDir string) ([]audit.Key, error) {
	var keys []audit.Key
	st, err := ceremony.LoadState(dataDir)
	if err != nil && !errors.Is(err, ceremony.ErrNotInitialised) && !errors.Is(err, ceremony.ErrDestroyed) {
		return nil, err
	}
	if st != nil {
		for _, rec := range st.ServiceKeyRecords(ceremony.RoleAuditCheckpoint) {
			cert, err := ceremony.ReadCertificate(rec)
			if err != nil {
				return nil, err
			}
			id, err := audit.KeyIDOf(cert.PublicKey)
			if err != nil {
				return nil, err
			}
			keys = append(keys, audit.Key{ID: id, Public: cert.PublicKey})
		}
	}
	if pub, err := legacyAuditPublicKey(dataDir); err != nil {
		return nil, err
	} else if pub != nil {
		keys = append(keys, audit.Key{ID: legacyAuditKeyID, Public: pub})
	}
	return keys, nil
}

// legacyAuditPublicKey reads the public half of an old file audit key
// (the migrated .pub.pem, or the key file itself before migration); nil if
// the data dir never had one.
func legacyAuditPublicKey(dataDir string) (any, error) {
	if b, err := os.ReadFile(filepath.Join(dataDir, legacyAuditPubFile)); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("ca-server: %s is not a PEM public key", legacyAuditPubFile)
		}
		return x509.ParsePKIXPublicKey(blk.Bytes)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, err := readLegacyAuditKey(dataDir)
	if err != nil || k == nil {
		return nil, err
	}
	return k.Public(), nil
}

func readLegacyAuditKey(dataDir string) (crypto.Signer, error) {
	path := filepath.Join(dataDir, legacyAuditKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("ca-server: %s is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca-server: %s: %w", path, err)
	}
	pk, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca-server: %s holds no signing key", path)
	}
	return pk, nil
}

// retireLegacyAuditKey keeps only the public half of an old file audit key.
// Call it after the HSM key signed a checkpoint covering the whole log.
func retireLegacyAuditKey(dataDir string) (bool, error) {
	k, err := readLegacyAuditKey(dataDir)
	if err != nil || k == nil {
		return false, err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return false, err
	}
	pubPath := filepath.Join(dataDir, legacyAuditPubFile)
	if err := os.WriteFile(pubPath+".tmp", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return false, err
	}
	if err := os.Rename(pubPath+".tmp", pubPath); err != nil {
		return false, err
	}
	return true, os.Remove(filepath.Join(dataDir, legacyAuditKeyFile))
}

// startHSMAudit replaces l's unsigned audit log by one signing checkpoints
// with the activated CA's audit checkpoint key (generated now for a CA
// initialised before the key existed), signs a checkpoint covering the
// records local commands appended, retires an old file key, and signs a
// checkpoint every interval until the returned stop is called (before the
// HSM closes).
func startHSMAudit(ctx context.Context, l *local, c ceremony.Common, active *ceremony.Active, dataDir string, interval time.Duration, onError func(error)) (stop func(), err error) {
	ak, err := ceremony.AddAuditKey(ctx, c, active)
	if err != nil {
		return nil, err
	}
	s, err := ak.Signer()
	if err != nil {
		return nil, err
	}
	alog, err := audit.Open(ctx, l.st, audit.Options{Signer: s})
	if err != nil {
		return nil, err
	}
	if err := alog.Checkpoint(ctx); err != nil {
		return nil, err
	}
	if _, err := retireLegacyAuditKey(dataDir); err != nil {
		return nil, err
	}
	l.audit = alog
	tick := time.NewTicker(interval)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); alog.RunCheckpoints(cctx, tick.C, onError) }()
	return func() {
		cancel()
		<-done
		tick.Stop()
		if err := alog.Checkpoint(context.Background()); err != nil && onError != nil {
			onError(err)
		}
	}, nil
}

// activatedTLSCA activates the CA with custodian token shares, as serve
// does (TS Art. 27, 45), and returns the TLS CA with its HSM key; closeHSM
// deactivates. A dev CA (ceremony-init --dev) uses its on-disk dev share
// when no share is given.
func activatedTLSCA(ctx context.Context, dataDir, module string, dev bool, shares []string, st tlsca.Store, stdout, stderr io.Writer) (ca *tlsca.CA, closeHSM func() error, err error) {
	state, err := ceremony.LoadState(dataDir)
	if err != nil {
		return nil, nil, err
	}
	cf := ceremonyFlags{dataDir: dataDir, module: module, dev: dev || state.Dev}
	c, err := cf.common(stdout, stderr)
	if err != nil {
		return nil, nil, err
	}
	ps, err := presentedShares(shares, &cf, ceremony.PurposeToken)
	if err != nil {
		return nil, nil, err
	}
	active, err := ceremony.Activate(ctx, ceremony.ActivateOptions{Common: c, Shares: ps})
	if err != nil {
		return nil, nil, err
	}
	ca, err = signingTLSCA(active, st)
	if err == nil && ca == nil {
		err = fmt.Errorf("ca-server: the ceremony state of %s lists no TLS CA key", dataDir)
	}
	if err != nil {
		return nil, nil, errors.Join(err, active.HSM.Close())
	}
	return ca, active.HSM.Close, nil
}
