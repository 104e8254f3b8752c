package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/ceremony"
	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/fleet"
	"madoguchi/ca-server/hsm"
	"madoguchi/ca-server/hsmissuance"
	"madoguchi/ca-server/ocsp"
	"madoguchi/ca-server/profile"
	"madoguchi/ca-server/status"
	"madoguchi/ca-server/store"
	"madoguchi/internal/atomicfile"
	"madoguchi/internal/wallclock"
)

// statusFlags are serve's flags for revocation and status.
type statusFlags struct {
	verifierListen string
	publicListen   string
	tickEvery      time.Duration
	crlInterval    time.Duration
	ocspPolicies   string
	// traffic is set by serve before startStatus: the listeners' guards,
	// connection caps and metrics (serve_traffic.go).
	traffic *serveTraffic
	// lease and holder are set by serve before startStatus: the job lease
	// under which one replica runs the schedule (serve_fleet.go).
	lease  *fleet.Lease
	holder string
}

// registerStatusFlags adds the status flags to serve's flag set.
func registerStatusFlags(fs *flag.FlagSet) *statusFlags {
	f := &statusFlags{}
	fs.StringVar(&f.verifierListen, "verifier-listen", "127.0.0.1:8444", "address of the mutual-TLS listener for registered verifiers (CRLs, OCSP; CPS §2.4); empty: off")
	fs.StringVar(&f.publicListen, "public-listen", "127.0.0.1:8445", "address of the public HTTPS listener (ARLs, CA certificates); empty: off")
	fs.DurationVar(&f.tickEvery, "status-every", time.Minute, "how often due change-driven revocations, expired holds, CRLs (every 24 h) and OCSP responses are checked")
	// CPS §4.9.7: every 24 h. Shorter only for drills and the soak
	// (issue 15: a CRL every minute under load); the validity (72 h) must
	// exceed it (status.New).
	fs.DurationVar(&f.crlInterval, "crl-interval", crl.DefaultIssueInterval, "how often a new CRL and ARL of every CA is published (CPS §4.9.7: 24 h; shorter for drills and soaks)")
	fs.StringVar(&f.ocspPolicies, "ocsp-policies", "", "JSON file of the OCSP responder certificate policy per CA (default: the embedded ca-server/ocsp/policies.json; CPS §1.2)")
	return f
}

// check refuses a CRL interval the CRL's validity does not cover (CPS
// §4.9.7: valid 72 h, issued every 24 h), before serve opens anything.
func (f *statusFlags) check() error {
	if f.crlInterval <= 0 || f.crlInterval >= crl.DefaultValidity {
		return fmt.Errorf("%w: --crl-interval must be above 0 and below the CRL validity %v (CPS §4.9.7: 24 h)", errUsage, crl.DefaultValidity)
	}
	return nil
}

// caDataDir is where the CRL archive lives.
func crlArchiveDir(dataDir string) string { return filepath.Join(dataDir, "crl-archive") }

// hsmPersons computes the person key in the HSM, exactly as issuance does.
type hsmPersons struct{ c hsmissuance.ApplicantChecker }

func (p hsmPersons) PersonHash(ctx context.Context, code string) ([]byte, error) {
	h, err := applicant.PersonKey(func(msg []byte) ([]byte, error) { return p.c.HSM.HMACSHA256(ctx, p.c.Key, msg) }, applicant.ResidentCode(code))
	if err != nil {
		return nil, err
	}
	return h[:], nil
}

// statusCA names a CA role for the revocation service.
var statusCARoles = []struct {
	role, name, profile string
	certType            store.CertType
}{
	{ceremony.RoleSignatureCA, "signature", "signature", store.CertSign},
	{ceremony.RoleAuthCA, "user-auth", "user-authentication", store.CertAuth},
}

// statusCAs builds the revocation service's CAs from the activated keys:
// the issuing key and every CRL-only key of each role, all signing through
// ceremony.CAKey.CRLSigner (which refuses to sign a certificate), and the
// role's link certificates (CPS §5.6: CRLs for both keys while
// certificates of the old key live).
func statusCAs(active *ceremony.Active, profiles *profile.Set) ([]status.CA, error) {
	var out []status.CA
	for _, r := range statusCARoles {
		// the profile's crlShards partitions the CRL exactly as the
		// issuer names each certificate's shard (RFC 5280 §5.2.5)
		p, err := profiles.Get(r.profile)
		if err != nil {
			return nil, err
		}
		k, err := active.IssuingKey(r.role)
		if err != nil {
			return nil, err
		}
		signer, err := k.CRLSigner()
		if err != nil {
			return nil, err
		}
		ca := status.CA{Name: r.name, CertType: r.certType, Certificate: k.Certificate, Signer: signer, Generation: k.Record.Gen(),
			CRLPartition: p.CRLPartition}
		for _, o := range active.CRLOnlyKeys(r.role) {
			older, err := o.CRLSigner()
			if err != nil {
				return nil, err
			}
			g := status.KeyGeneration{Generation: o.Record.Gen(), Certificate: o.Certificate, Signer: older}
			if o.Record.CRLSigningUntil != nil {
				g.Until = *o.Record.CRLSigningUntil
			}
			ca.Older = append(ca.Older, g)
		}
		for _, l := range active.State.Links {
			if l.Role != r.role {
				continue
			}
			c, err := readCertPEM(l.Certificate)
			if err != nil {
				return nil, err
			}
			ca.Links = append(ca.Links, c)
		}
		out = append(out, ca)
	}
	return out, nil
}

func readCertPEM(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca-server: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca-server: %s is not a PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca-server: %s: %w", path, err)
	}
	return c, nil
}

// newStatusService builds the revocation service over the local store and,
// when the CA is active (active non-nil), its HSM CRL signers; deps, when
// set, gives the person hash for resident changes; lease, when set, runs
// the schedule on one replica (serve). The CRL archive is the data
// directory's on SQLite (one machine) and the database's on PostgreSQL,
// so every replica serves the same newest CRL and ARL (issue 14).
// profiles are the certificate profiles (serve --profiles; nil: deps's, or
// the embedded ones): their crlShards partition the CRLs.
func newStatusService(l *local, dataDir string, active *ceremony.Active, deps *hsmissuance.Deps, logger *slog.Logger, onChange func(context.Context, store.CertType, string) error,
	lease *fleet.Lease, profiles *profile.Set) (*status.Service, error) {
	return newStatusServiceEvery(l, dataDir, active, deps, logger, onChange, lease, profiles, 0)
}

// newStatusServiceEvery is newStatusService publishing CRLs every
// crlInterval (0: crl.DefaultIssueInterval, CPS §4.9.7).
func newStatusServiceEvery(l *local, dataDir string, active *ceremony.Active, deps *hsmissuance.Deps, logger *slog.Logger, onChange func(context.Context, store.CertType, string) error,
	lease *fleet.Lease, profiles *profile.Set, crlInterval time.Duration) (*status.Service, error) {
	var arch crl.Archive
	if pg, ok := l.st.(*store.Postgres); ok {
		da := dbArchive{st: pg}
		if _, err := os.Stat(crlArchiveDir(dataDir)); err == nil { // CRLs archived here before
			if da.legacy, err = crl.NewFSArchive(crlArchiveDir(dataDir)); err != nil {
				return nil, err
			}
		}
		arch = da
	} else {
		fa, err := crl.NewFSArchive(crlArchiveDir(dataDir))
		if err != nil {
			return nil, err
		}
		arch = fa
	}
	var err error
	cfg := status.Config{Store: l.st, Audit: l.audit, Archive: arch, Logger: logger, OnChange: onChange, CRLInterval: crlInterval}
	if lease != nil {
		cfg.Fence = lease.Fenced
	}
	if deps != nil {
		cfg.Persons = hsmPersons{deps.Applicants}
	}
	if active != nil {
		if profiles == nil && deps != nil && deps.Issuer != nil {
			profiles = deps.Issuer.Profiles
		}
		if profiles == nil {
			if profiles, err = profile.Default(); err != nil {
				return nil, err
			}
		}
		if cfg.CAs, err = statusCAs(active, profiles); err != nil {
			return nil, err
		}
	}
	return status.New(cfg)
}

// startStatus wires revocation and status into serve: the terminal
// endpoints on srv, the schedule (change-driven revocations, expired holds,
// CRLs every 24 h, OCSP refresh), the verifier listener (mutual TLS: CRLs
// and OCSP) and the public listener (ARLs, CA certificates). active and
// deps are nil when the CA is not active: the local hold still works; CRLs,
// OCSP, change reports and the counter's revoke and release (which need the
// HSM person key to check the holder's resident-record code) wait for
// activation. stop shuts everything down;
// call it before the store and the HSM close.
func startStatus(ctx context.Context, f *statusFlags, l *local, srv *api.Server, active *ceremony.Active, deps *hsmissuance.Deps, dataDir string,
	serverCert tls.Certificate, logger *slog.Logger, stdout io.Writer) (stop func(), err error) {
	policies, err := ocsp.DefaultResponderPolicies()
	if f.ocspPolicies != "" {
		policies, err = ocsp.LoadResponderPolicies(f.ocspPolicies)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: --ocsp-policies: %v", errUsage, err)
	}
	responders := map[store.CertType]*ocsp.Responder{}
	// TS Art. 36: every status change is re-signed at once; the map is
	// filled before any request or schedule tick can change a status.
	svc, err := newStatusServiceEvery(l, dataDir, active, deps, logger, func(ctx context.Context, t store.CertType, serial string) error {
		r := responders[t]
		n, ok := new(big.Int).SetString(serial, 16)
		if r == nil || !ok {
			return nil
		}
		return r.Update(ctx, n)
	}, f.lease, nil, f.crlInterval)
	if err != nil {
		return nil, err
	}
	var cas []api.StatusCA
	for _, ca := range svc.CAs() {
		shards := ca.CRLShardSeries()
		sc := api.StatusCA{Name: ca.Name, CRLSeries: shards[0], CRLShards: shards, ARLSeries: ca.ARLSeries(), Certificate: ca.Certificate}
		policy, err := policies.For(ca.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: --ocsp-policies: %v", errUsage, err)
		}
		r, err := hsmResponder(ctx, active, dataDir, ca, svc, policy, wallclock.Now(), f.traffic.f.ocspCacheBytes, l.st, f.holder)
		if err != nil {
			return nil, err
		}
		f.traffic.ocspMetrics(ca.Name, r)
		f.traffic.crlAge(svc, append(shards, sc.ARLSeries)...)
		responders[ca.CertType], sc.OCSP = r, r
		cas = append(cas, sc)
	}
	srv.MountRevocation(svc)
	sctx, cancel := context.WithCancel(ctx)
	var servers []*http.Server
	done := make(chan struct{})
	tick := time.NewTicker(f.tickEvery)
	refreshDone := make(chan struct{})
	go func() {
		defer close(done)
		// on the replica holding the job lease (Config.Fence)
		svc.RunSchedule(sctx, tick.C, nil)
	}()
	go func() {
		defer close(refreshDone)
		// RFC 5019 §6: responses are pre-signed and refreshed before they
		// expire, off the request path; every replica its own cache.
		t := time.NewTicker(f.tickEvery)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			for ct, r := range responders {
				if _, err := r.RefreshDue(sctx); err != nil {
					logger.Error("serve: OCSP refresh", "cert_type", ct, "err", err)
				}
			}
			// the lease holder keeps status_changes to a day
			if f.lease != nil {
				if fctx, ok := f.lease.Fenced(sctx); ok {
					if _, err := l.st.PruneStatusChanges(fctx, wallclock.Now().Add(-statusChangesKept)); err != nil {
						logger.Error("serve: prune status changes", "err", err)
					}
				}
			}
		}
	}()
	// TS Art. 36: a status change made anywhere (another replica, a local
	// `ca-server hold`, the sweeper, a compromise drill) is re-signed here
	// within one poll (fleet.Follow; issue 14).
	followDone, followReady := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(followDone)
		err := fleet.Follow(sctx, fleet.FollowConfig{Store: l.st, Logger: logger, Apply: func(ctx context.Context, c store.StatusChange) error {
			r := responders[c.CertType]
			n, ok := new(big.Int).SetString(c.Serial, 16)
			if r == nil || !ok {
				return nil
			}
			return r.Refresh(ctx, n)
		}}, followReady)
		if err != nil {
			logger.Error("serve: status changes", "err", err)
		}
	}()
	select {
	case <-followReady:
	case <-followDone:
	}
	firstDone := make(chan struct{})
	go func() { // first publication at once, by the lease holder
		defer close(firstDone)
		pctx := sctx
		if f.lease != nil {
			var ok bool
			if pctx, ok = f.lease.Fenced(sctx); !ok {
				return
			}
		}
		if _, err := svc.PublishDue(pctx); err != nil {
			logger.Error("serve: CRL publication", "err", err)
		}
	}()
	stop = func() {
		tick.Stop()
		cancel()
		<-done
		<-refreshDone
		<-followDone
		<-firstDone // it signs in the HSM and audits: before either closes
		for _, hs := range servers {
			c, cc := context.WithTimeout(context.Background(), 5*time.Second)
			hs.Shutdown(c)
			cc()
		}
	}
	listen := func(addr string, h http.Handler, tc *tls.Config, name, what string) error {
		if addr == "" {
			return nil
		}
		ln, err := f.traffic.listen(addr, name)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: h, TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 120 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10}
		servers = append(servers, hs)
		go hs.ServeTLS(ln, "", "")
		fmt.Fprintf(stdout, "ca-server: %s on https://%s\n", what, ln.Addr())
		return nil
	}
	scfg := api.StatusConfig{Verifiers: l.st, CRLs: svc, CAs: cas, Audit: l.audit, Logger: logger}
	scfg.Traffic = f.traffic.guard("verifier", f.traffic.f.verifier)
	// The newest signed audit checkpoint and its chain, for outside
	// witnesses (`ca-server audit witness`; issue 13).
	if active != nil {
		certs, err := auditCertificates(dataDir)
		if err != nil {
			stop()
			return nil, err
		}
		scfg.AuditCheckpoints = audit.CheckpointHandler(l.st, certs)
	}
	vh, err := api.NewVerifierHandler(scfg)
	if err == nil {
		err = listen(f.verifierListen, f.traffic.ops.instrument(vh), api.VerifierTLSConfig(serverCert), "verifier", "verifier status (mutual TLS)")
	}
	if err == nil {
		var ph http.Handler
		scfg.Traffic = f.traffic.guard("public", f.traffic.f.public)
		if scfg.Holders, scfg.Acks, err = holderRevocation(svc, active); err != nil {
			stop()
			return nil, err
		}
		if ph, err = api.NewPublicHandler(scfg); err == nil {
			err = listen(f.publicListen, ph, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert}}, "public", "public ARL and CA certificates")
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// ocspResponderLabel names the responder key of a CA key generation in the
// token; ocspResponderCertPath is its certificate file.
func ocspResponderLabel(ca string, gen int) string {
	return fmt.Sprintf("ocsp-responder-%s-g%d", ca, gen)
}
func ocspResponderCertPath(dataDir, ca string, gen int) string {
	return filepath.Join(dataDir, "ocsp", fmt.Sprintf("%s-g%d-responder.crt.pem", ca, gen))
}

// hsmResponder returns the OCSP responder of the CA's issuing key: its
// responder key is an RSA key in the HSM (never extractable) with a
// delegated responder certificate valid 5 years (CPS §6.3.2.1). The keys in
// use are recorded in the database (ocsp_responders), so every replica on
// the shared token signs with the same key and none destroys a key another
// uses (issue 14): a replica uses the newest recorded responder whose
// certificate is valid and whose key is in the token; when there is none
// (first start, expired certificate) one replica, under the lease
// responderLease and its fencing token, makes a new key and certificate —
// or records the key a data directory from before kept with its
// certificate file — while the others wait for it.
func hsmResponder(ctx context.Context, active *ceremony.Active, dataDir string, ca status.CA, svc *status.Service, policy asn1.ObjectIdentifier, now time.Time,
	cacheBytes int64, st fleetStore, holder string) (*ocsp.Responder, error) {
	role := ""
	for _, r := range statusCARoles {
		if r.name == ca.Name {
			role = r.role
		}
	}
	caKey, err := active.IssuingKey(role)
	if err != nil {
		return nil, err
	}
	gen := caKey.Record.Gen()
	h := active.HSM
	var cert *x509.Certificate
	var kp hsm.RSAKeyPair
	for wait := time.Now().Add(2 * time.Minute); ; {
		var ok bool
		if cert, kp, ok, err = recordedResponder(ctx, h, st, ca, gen, now); err != nil || ok {
			break
		}
		lease, lerr := st.AcquireLease(ctx, responderLease(ca.Name, gen), holder, time.Minute, wallclock.Now())
		if errors.Is(lerr, store.ErrLeaseHeld) {
			if time.Now().After(wait) {
				return nil, fmt.Errorf("serve: %s OCSP responder: another replica holds %s and has recorded no responder key: %w", ca.Name, responderLease(ca.Name, gen), lerr)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		if lerr != nil {
			return nil, lerr
		}
		err = makeResponder(store.WithFence(ctx, lease), h, st, caKey, ca, gen, dataDir, policy, now)
		if rerr := st.ReleaseLease(ctx, lease); err == nil {
			err = rerr
		}
		if err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	signer, err := h.Signer(kp)
	if err != nil {
		return nil, err
	}
	return ocsp.New(ocsp.Config{Issuer: ca.Certificate, ResponderCert: cert, Signer: signer, Source: svc.OCSPSource(ca.CertType), MaxCacheBytes: cacheBytes})
}

// recordedResponder finds the newest recorded responder of the CA
// generation usable now.
func recordedResponder(ctx context.Context, h *hsm.HSM, st fleetStore, ca status.CA, gen int, now time.Time) (*x509.Certificate, hsm.RSAKeyPair, bool, error) {
	rs, err := st.OCSPResponders(ctx, ca.Name, gen)
	if err != nil {
		return nil, hsm.RSAKeyPair{}, false, err
	}
	for _, r := range rs {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil || c.CheckSignatureFrom(ca.Certificate) != nil || now.Before(c.NotBefore) || !now.Before(c.NotAfter) {
			continue
		}
		kp, err := h.FindRSAKeyPair(ctx, r.Label)
		if errors.Is(err, hsm.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, hsm.RSAKeyPair{}, false, err
		}
		if kp.PublicKey.Equal(c.PublicKey) {
			return c, kp, true, nil
		}
	}
	return nil, hsm.RSAKeyPair{}, false, nil
}

// makeResponder, run by the holder of the responder lease (ctx carries its
// fencing token), records a usable responder: the data directory's key of
// before with its certificate file if both are valid, or a new key. It
// destroys only keys whose certificates have expired, which no replica
// signs with.
func makeResponder(ctx context.Context, h *hsm.HSM, st fleetStore, caKey *ceremony.CAKey, ca status.CA, gen int, dataDir string, policy asn1.ObjectIdentifier, now time.Time) error {
	if _, _, ok, err := recordedResponder(ctx, h, st, ca, gen, now); err != nil || ok {
		return err // another holder finished meanwhile
	}
	destroy := func(label string) error {
		for _, kind := range []hsm.KeyKind{hsm.KindRSAPrivate, hsm.KindRSAPublic} {
			keys, err := h.FindKeys(ctx, hsm.KeyQuery{Kind: kind, Label: label})
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := h.Destroy(ctx, k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	rs, err := st.OCSPResponders(ctx, ca.Name, gen)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if !now.Before(r.NotAfter) {
			if err := destroy(r.Label); err != nil {
				return err
			}
		}
	}
	legacy := ocspResponderLabel(ca.Name, gen)
	if kp, err := h.FindRSAKeyPair(ctx, legacy); err == nil {
		if c, cerr := readCertPEM(ocspResponderCertPath(dataDir, ca.Name, gen)); cerr == nil && c.CheckSignatureFrom(ca.Certificate) == nil && kp.PublicKey.Equal(c.PublicKey) &&
			!now.Before(c.NotBefore) && now.Before(c.NotAfter) {
			return st.AddOCSPResponder(ctx, store.OCSPResponder{Label: legacy, CA: ca.Name, Generation: gen, Certificate: c.Raw, NotAfter: c.NotAfter, CreatedAt: now})
		}
		recorded := false
		for _, r := range rs {
			recorded = recorded || r.Label == legacy
		}
		if !recorded { // a key of before whose certificate is gone or expired
			if err := destroy(legacy); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, hsm.ErrKeyNotFound) {
		return err
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	label := legacy + "-" + hex.EncodeToString(suffix[:])
	kp, err := h.GenerateRSA(ctx, label, hsm.KeyOptions{Token: true, Extractable: hsm.NotExtractable})
	if err != nil {
		return err
	}
	issuer, err := caKey.IssuanceSigner(now)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return err
	}
	serial.SetBit(serial, 126, 1)
	der, err := ocsp.IssueResponderCertificate(ocsp.ResponderCertRequest{Issuer: ca.Certificate, IssuerSigner: issuer, PublicKey: kp.PublicKey,
		Subject: pkix.Name{CommonName: "OCSP responder of " + ca.Certificate.Subject.CommonName}, Serial: serial, NotBefore: now.Add(-time.Minute), Policy: policy})
	if err != nil {
		return fmt.Errorf("serve: %s OCSP responder certificate: %w", ca.Name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	if err := st.AddOCSPResponder(ctx, store.OCSPResponder{Label: label, CA: ca.Name, Generation: gen, Certificate: der, NotAfter: c.NotAfter, CreatedAt: now}); err != nil {
		destroy(label) // fenced out: another replica records its own
		return err
	}
	// a copy for the operator; the database is what replicas read (WriteAll:
	// a fresh data directory has no ocsp/ yet, and serve stopped on it)
	return atomicfile.WriteAll(ocspResponderCertPath(dataDir, ca.Name, gen), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
