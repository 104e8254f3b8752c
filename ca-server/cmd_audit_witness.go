package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"madoguchi/ca-server/audit"
)

// auditWitnesses are the copies of the audit chain outside the database
// that serve checks the log against before it signs anything (CPS §5.4;
// issue 13): the daily backups and the kept witness copies.
type auditWitnesses struct {
	backupDir  string // newest backup: --audit-backup-dir
	witnessDir string // kept copies of `audit witness`: --audit-witness-dir (optional)
}

// witnessAnchors verifies each witness under keys and returns what it
// holds of the log.
func witnessAnchors(ctx context.Context, keys []audit.Key, w auditWitnesses) ([]audit.Anchor, error) {
	var anchors []audit.Anchor
	if w.backupDir != "" {
		a, ok, err := audit.NewestBackupAnchor(ctx, w.backupDir, keys)
		if err != nil {
			return nil, fmt.Errorf("ca-server: the newest audit backup in %s (an outside witness) does not verify: %w", w.backupDir, err)
		}
		if ok {
			anchors = append(anchors, a)
		}
	}
	if w.witnessDir != "" {
		kept, err := audit.LoadKept(w.witnessDir, keys)
		if err != nil {
			return nil, fmt.Errorf("ca-server: the kept witness copies in %s do not verify: %w", w.witnessDir, err)
		}
		if len(kept) > 0 {
			k := kept[len(kept)-1]
			anchors = append(anchors, k.Anchor("witness copy "+k.Path))
		}
	}
	return anchors, nil
}

// checkAuditAgainstWitnesses verifies the whole log under keys and against
// every witness; the error lists what differs (seq, which witness).
func checkAuditAgainstWitnesses(ctx context.Context, st audit.Reader, keys []audit.Key, w auditWitnesses) error {
	anchors, err := witnessAnchors(ctx, keys, w)
	if err != nil {
		return err
	}
	rep, err := audit.VerifyWith(ctx, st, audit.VerifyOptions{Keys: keys, Anchors: anchors})
	if err == nil {
		return nil
	}
	var b strings.Builder
	for i, p := range rep.Problems {
		if i == 20 {
			fmt.Fprintf(&b, "\n  … and %d more", len(rep.Problems)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %s", p)
	}
	names := make([]string, len(anchors))
	for i, a := range anchors {
		names[i] = fmt.Sprintf("%s (checkpoint %d, record %d)", a.Source, a.Checkpoint, a.Seq)
	}
	return fmt.Errorf("ca-server: refusing to start: the audit log does not match its outside witnesses [%s]; nothing was signed:%s\n%w",
		strings.Join(names, "; "), b.String(), err)
}

// runAuditWitness: "audit witness --url URL --keep DIR": an auditor's (or
// verifier's) copy of the CA's published audit checkpoints, outside the
// CA's database and data dir (issue 13, threat 1). It trusts only the
// audit checkpoint key it is given: --audit-cert (a copy of the ceremony's
// certificate) or --audit-cert-sha256 (its fingerprint, as printed at the
// ceremony; the certificate then comes with the answer and must match).
func runAuditWitness(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit witness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "the CA's public listener, e.g. https://ca.example:8445 (GET /v1/audit/checkpoint)")
	keep := fs.String("keep", "", "directory of the kept copies (checkpoints-N.json; never replaced)")
	var certFiles, fingerprints listFlag
	fs.Var(&certFiles, "audit-cert", "PEM file of a trusted audit checkpoint key certificate (from the key ceremony); repeatable")
	fs.Var(&fingerprints, "audit-cert-sha256", "hex SHA-256 fingerprint of a trusted audit checkpoint key certificate, as published at the ceremony; repeatable")
	tlsCA := fs.String("tls-ca", "", "PEM file of the CA's TLS CA certificate (tls-ca.crt); default: the system roots")
	timeout := fs.Duration("timeout", 30*time.Second, "HTTP timeout of each request")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *base == "" || *keep == "" || fs.NArg() != 0 || (len(certFiles) == 0 && len(fingerprints) == 0) {
		return fmt.Errorf("%w: audit witness --url URL --keep DIR (--audit-cert FILE | --audit-cert-sha256 HEX)", errUsage)
	}
	var trusted []*x509.Certificate
	for _, f := range certFiles {
		c, err := readCertPEM(f)
		if err != nil {
			return fmt.Errorf("%w: --audit-cert %s: %v", errUsage, f, err)
		}
		trusted = append(trusted, c)
	}
	wantFP := map[string]bool{}
	for _, f := range fingerprints {
		f = strings.ToLower(strings.ReplaceAll(f, ":", ""))
		if b, err := hex.DecodeString(f); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("%w: --audit-cert-sha256 %q: 64 hex digits", errUsage, f)
		}
		wantFP[f] = true
	}
	client := &http.Client{Timeout: *timeout}
	if *tlsCA != "" {
		b, err := os.ReadFile(*tlsCA)
		if err != nil {
			return fmt.Errorf("%w: --tls-ca: %v", errUsage, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("%w: --tls-ca %s holds no PEM certificate", errUsage, *tlsCA)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	endpoint, err := url.Parse(strings.TrimSuffix(*base, "/") + "/v1/audit/checkpoint")
	if err != nil || (endpoint.Scheme != "https" && endpoint.Scheme != "http") {
		return fmt.Errorf("%w: --url %q", errUsage, *base)
	}
	ctx := context.Background()
	fetch := func(since int64) (audit.Published, error) {
		u := *endpoint
		if since > 0 {
			u.RawQuery = "since=" + strconv.FormatInt(since, 10)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return audit.Published{}, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return audit.Published{}, fmt.Errorf("ca-server: audit witness: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return audit.Published{}, fmt.Errorf("ca-server: audit witness: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return audit.Published{}, fmt.Errorf("ca-server: audit witness: %s: %s %s", u.String(), resp.Status, strings.TrimSpace(string(body)))
		}
		var p audit.Published
		if err := json.Unmarshal(body, &p); err != nil || p.Format != audit.PublishedFormat || len(p.Checkpoints) == 0 {
			return audit.Published{}, fmt.Errorf("ca-server: audit witness: %s: not a published checkpoint answer", u.String())
		}
		return p, nil
	}
	keysOf := func(extra [][]byte) ([]audit.Key, error) {
		var keys []audit.Key
		add := func(c *x509.Certificate) error {
			id, err := audit.KeyIDOf(c.PublicKey)
			if err == nil {
				keys = append(keys, audit.Key{ID: id, Public: c.PublicKey})
			}
			return err
		}
		for _, c := range trusted {
			if err := add(c); err != nil {
				return nil, err
			}
		}
		for _, der := range extra {
			sum := sha256.Sum256(der)
			if !wantFP[hex.EncodeToString(sum[:])] {
				continue // the server's word alone is not trust
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, err
			}
			if err := add(c); err != nil {
				return nil, err
			}
		}
		return keys, nil
	}

	first, err := fetch(0)
	if err != nil {
		return err
	}
	keys, err := keysOf(first.Certificates)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("ca-server: audit witness: no certificate served matches --audit-cert-sha256, and no --audit-cert given")
	}
	kept, err := audit.LoadKept(*keep, keys)
	if err != nil {
		return fmt.Errorf("ca-server: audit witness: FORK OR TAMPERING in the kept copies: %w", err)
	}
	var tip *audit.PublishedCheckpoint
	tipSource := ""
	if len(kept) > 0 {
		k := kept[len(kept)-1]
		t := k.Tip()
		tip, tipSource = &t, k.Path
	}
	got := first
	if tip != nil {
		if got, err = fetch(tip.Number); err != nil {
			return err
		}
	}
	for {
		if err := audit.Extends(tip, tipSource, got, keys); err != nil {
			if errors.Is(err, audit.ErrFork) {
				return fmt.Errorf("ca-server: audit witness: FORK: %w", err)
			}
			return fmt.Errorf("ca-server: audit witness: %w", err)
		}
		newest := got.Checkpoints[len(got.Checkpoints)-1]
		if tip != nil && newest.Number == tip.Number {
			fmt.Fprintf(stdout, "checkpoint %d (record %d, %s) unchanged; kept in %s\n", newest.Number, newest.Seq, newest.At.Format(time.RFC3339), tipSource)
			return nil
		}
		path, err := audit.Keep(*keep, got)
		if err != nil {
			return fmt.Errorf("ca-server: audit witness: %w", err)
		}
		fmt.Fprintf(stdout, "kept checkpoint %d (record %d, %s) in %s\n", newest.Number, newest.Seq, newest.At.Format(time.RFC3339), path)
		if !got.More {
			return nil
		}
		tip, tipSource = &newest, path
		if got, err = fetch(newest.Number); err != nil {
			return err
		}
	}
}
