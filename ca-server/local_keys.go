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
	"madoguchi/ca-server/fleet"
	"madoguchi/ca-server/tlsca"
	"madoguchi/internal/wallclock"
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
//     (ceremony.AddAuditKey), records the public half of the old file key
//     in the ceremony state (ceremony.RecordAuditFileKey, a step of the
//     activated ceremony) so checkpoints signed earlier keep verifying,
//     signs a checkpoint with the HSM key and deletes the file key.
//
// Verification keys come from the ceremony state only (auditVerifyKeys):
// the audit checkpoint keys' certificates and the recorded file keys. A
// loose file in the writable data dir is never trusted: a planted
// audit-checkpoint-file.pub.pem (what older versions wrote after the
// migration, and read back) is ignored, so checkpoints signed by its key
// are "unknown-key" until serve records a file key, which it does once,
// with custodians present, after the log verified against every outside
// witness and only when the file cannot add trust the ceremony's keys do
// not already give (fileKeyToRecord): audit-checkpoint.key while no
// ceremony key has signed a checkpoint (it is still the data dir's own
// signing key); the .pub.pem of a data dir migrated by an older version
// only when a ceremony-key checkpoint follows every checkpoint it signed.

const (
	legacyAuditKeyFile = "audit-checkpoint.key"          // ECDSA file key of older data dirs
	legacyAuditPubFile = "audit-checkpoint-file.pub.pem" // what older versions kept after migration: never read
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
		cert, signer, err := tlsca.LoadOrCreate(dataDir, wallclock.Now())
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
// audit checkpoints, from the ceremony state only: the audit checkpoint
// keys' certificates (issuing and earlier) and the file keys recorded
// when the data dir was migrated.
func auditVerifyKeys(dataDir string) ([]audit.Key, error) {
	var keys []audit.Key
	st, err := ceremony.LoadState(dataDir)
	if err != nil && !errors.Is(err, ceremony.ErrNotInitialised) && !errors.Is(err, ceremony.ErrDestroyed) {
		return nil, err
	}
	if st == nil {
		return nil, nil
	}
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
	for _, fk := range st.AuditFileKeys {
		pub, err := fk.Public()
		if err != nil {
			return nil, err
		}
		keys = append(keys, audit.Key{ID: fk.KeyID, Public: pub})
	}
	return keys, nil
}

// auditCertificates returns the DER of the audit checkpoint keys'
// certificates in the ceremony state, which the public listener serves
// with the checkpoints (a witness trusts one by its published fingerprint).
func auditCertificates(dataDir string) ([][]byte, error) {
	st, err := ceremony.LoadState(dataDir)
	if err != nil && !errors.Is(err, ceremony.ErrDestroyed) {
		return nil, err
	}
	var out [][]byte
	for _, rec := range st.ServiceKeyRecords(ceremony.RoleAuditCheckpoint) {
		cert, err := ceremony.ReadCertificate(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, cert.Raw)
	}
	return out, nil
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

// fileKeyToRecord returns the public half of the data dir's file audit key
// when serve may record it in the ceremony state (see the top of this
// file), and whether it came from the private key file (to delete after
// the HSM key signed):
//
//   - audit-checkpoint.key (a data dir not yet migrated): while no
//     checkpoint in the log was signed by a key of the ceremony state;
//   - audit-checkpoint-file.pub.pem (migrated by an older version, which
//     kept only this file): when the state records no file key yet, the
//     log holds checkpoints of that key, and a checkpoint of a ceremony
//     key follows every one of them: that checkpoint already covers every
//     record they cover, so recording the key adds no trust the HSM
//     checkpoints do not give (a planted file in a log whose ceremony
//     checkpoints were deleted is never recorded).
//
// Otherwise nil; a key file present then is ignored and reported through
// onError.
func fileKeyToRecord(ctx context.Context, st audit.Reader, dataDir string, keys []audit.Key, onError func(error)) (crypto.PublicKey, bool, error) {
	k, err := readLegacyAuditKey(dataDir)
	if err != nil {
		return nil, false, err
	}
	pubPEM, err := os.ReadFile(filepath.Join(dataDir, legacyAuditPubFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if k == nil && pubPEM == nil {
		return nil, false, nil
	}
	cps, err := st.AuditCheckpoints(ctx)
	if err != nil {
		return nil, false, err
	}
	known := map[string]bool{}
	for _, key := range keys {
		known[key.ID] = true
	}
	if known[legacyAuditKeyID] {
		return nil, false, nil // recorded already
	}
	ignore := func(file, why string) (crypto.PublicKey, bool, error) {
		if onError != nil {
			onError(fmt.Errorf("ca-server: %s ignored: %s; verification keys come from the ceremony record", file, why))
		}
		return nil, false, nil
	}
	if k != nil {
		for _, c := range cps {
			if known[c.KeyID] {
				return ignore(legacyAuditKeyFile, "the audit log holds checkpoints of the ceremony's keys, so a file key is no longer this data dir's key")
			}
		}
		return k.Public(), true, nil
	}
	lastFile, firstCeremonyAfter := -1, false
	for i, c := range cps {
		switch {
		case c.KeyID == legacyAuditKeyID:
			lastFile, firstCeremonyAfter = i, false
		case known[c.KeyID] && lastFile >= 0:
			firstCeremonyAfter = true
		}
	}
	if lastFile < 0 || !firstCeremonyAfter {
		return ignore(legacyAuditPubFile, "no checkpoint of a ceremony key follows the checkpoints of that key")
	}
	blk, _ := pem.Decode(pubPEM)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return ignore(legacyAuditPubFile, "not a PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return ignore(legacyAuditPubFile, err.Error())
	}
	return pub, false, nil
}

// startHSMAudit replaces l's unsigned audit log by one signing checkpoints
// with the activated CA's audit checkpoint key (generated now for a CA
// initialised before the key existed) and signs a checkpoint every
// interval until the returned stop is called (before the HSM closes).
//
// Before it signs anything it verifies the whole log against what outside
// witnesses hold (the newest daily backup, kept witness copies:
// cmd_audit_witness.go) and refuses to start on a mismatch, saying what
// differs: a log rewritten while the server was down must never get a
// genuine signature.
func startHSMAudit(ctx context.Context, l *local, c ceremony.Common, active *ceremony.Active, dataDir string, w auditWitnesses,
	interval time.Duration, lease *fleet.Lease, onError func(error)) (stop func(), err error) {
	keys, err := auditVerifyKeys(dataDir)
	if err != nil {
		return nil, err
	}
	filePub, fromPrivate, err := fileKeyToRecord(ctx, l.st, dataDir, keys, onError)
	if err != nil {
		return nil, err
	}
	if filePub != nil {
		keys = append(keys, audit.Key{ID: legacyAuditKeyID, Public: filePub})
	}
	if err := checkAuditAgainstWitnesses(ctx, l.st, keys, w); err != nil {
		return nil, err
	}
	ak, err := ceremony.AddAuditKey(ctx, c, active)
	if err != nil {
		return nil, err
	}
	if filePub != nil {
		if err := ceremony.RecordAuditFileKey(ctx, c, active, legacyAuditKeyID, filePub); err != nil {
			return nil, err
		}
	}
	s, err := ak.Signer()
	if err != nil {
		return nil, err
	}
	opts := audit.Options{Signer: s}
	if lease != nil { // issue 14: one replica signs checkpoints, under its fencing token
		opts.Fence = lease.Fenced
	}
	alog, err := audit.Open(ctx, l.st, opts)
	if err != nil {
		return nil, err
	}
	if err := alog.Checkpoint(ctx); err != nil {
		return nil, err
	}
	if fromPrivate {
		// Recorded in the ceremony state and succeeded by the HSM key:
		// nobody may sign with it again.
		if err := os.Remove(filepath.Join(dataDir, legacyAuditKeyFile)); err != nil {
			return nil, err
		}
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
