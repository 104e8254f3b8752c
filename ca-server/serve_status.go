package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/applicant"
	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/hsmissuance"
	"madoguchi/ca-server/ocsp"
	"madoguchi/ca-server/status"
	"madoguchi/ca-server/store"
)

// statusFlags are serve's flags for revocation and status.
type statusFlags struct {
	verifierListen string
	publicListen   string
	tickEvery      time.Duration
	ocspPolicy     string
}

// registerStatusFlags adds the status flags to serve's flag set.
func registerStatusFlags(fs *flag.FlagSet) *statusFlags {
	f := &statusFlags{}
	fs.StringVar(&f.verifierListen, "verifier-listen", "127.0.0.1:8444", "address of the mutual-TLS listener for registered verifiers (CRLs, OCSP; CPS §2.4); empty: off")
	fs.StringVar(&f.publicListen, "public-listen", "127.0.0.1:8445", "address of the public HTTPS listener (ARLs, CA certificates); empty: off")
	fs.DurationVar(&f.tickEvery, "status-every", time.Minute, "how often due change-driven revocations and CRLs (every 24 h) are checked")
	fs.StringVar(&f.ocspPolicy, "ocsp-policy", "1.2.392.200149.8.5.1.3.330", "certificate policy of the OCSP responder certificates (CPS §1.2)")
	return f
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

// newStatusService builds the revocation service over the local store and,
// when the CA is active, its HSM signers.
func newStatusService(l *local, dataDir string, deps *hsmissuance.Deps, logger *slog.Logger, onChange func(context.Context, store.CertType, string) error) (*status.Service, error) {
	arch, err := crl.NewFSArchive(crlArchiveDir(dataDir))
	if err != nil {
		return nil, err
	}
	cfg := status.Config{Store: l.st, Audit: l.audit, Archive: arch, Logger: logger, OnChange: onChange}
	if deps != nil {
		cfg.Persons = hsmPersons{deps.Applicants}
		cfg.CAs = []status.CA{
			{Name: "signature", CertType: store.CertSign, Certificate: deps.Issuer.Signature.Certificate, Signer: deps.Issuer.Signature.Signer},
			{Name: "user-auth", CertType: store.CertAuth, Certificate: deps.Issuer.UserAuth.Certificate, Signer: deps.Issuer.UserAuth.Signer},
		}
	}
	return status.New(cfg)
}

// startStatus wires revocation and status into serve: the terminal
// endpoints on srv, the schedule (change-driven revocations, CRLs every
// 24 h), the verifier listener (mutual TLS: CRLs and OCSP) and the public
// listener (ARLs, CA certificates). deps is nil when the CA is not active:
// revocation still works; CRLs, OCSP and change reports wait for
// activation. stop shuts everything down; call it before the store closes.
func startStatus(ctx context.Context, f *statusFlags, l *local, srv *api.Server, deps *hsmissuance.Deps, dataDir string, serverCert tls.Certificate,
	logger *slog.Logger, stdout io.Writer) (stop func(), err error) {
	responders := map[store.CertType]*ocsp.Responder{}
	svc, err := newStatusService(l, dataDir, deps, logger, func(ctx context.Context, t store.CertType, serial string) error {
		r := responders[t]
		n, ok := new(big.Int).SetString(serial, 16)
		if r == nil || !ok {
			return nil
		}
		return r.Update(ctx, n)
	})
	if err != nil {
		return nil, err
	}
	srv.MountRevocation(svc)
	policy, err := parseOID(f.ocspPolicy)
	if err != nil {
		return nil, fmt.Errorf("%w: --ocsp-policy: %v", errUsage, err)
	}
	var cas []api.StatusCA
	for _, ca := range svc.CAs() {
		sc := api.StatusCA{Name: ca.Name, CRLSeries: ca.CRLSeries(), ARLSeries: ca.ARLSeries(), Certificate: ca.Certificate}
		if ca.Signer != nil {
			r, err := newResponder(ca, svc, policy)
			if err != nil {
				return nil, err
			}
			responders[ca.CertType], sc.OCSP = r, r
		}
		cas = append(cas, sc)
	}
	sctx, cancel := context.WithCancel(ctx)
	var servers []*http.Server
	done := make(chan struct{})
	tick := time.NewTicker(f.tickEvery)
	go func() {
		defer close(done)
		svc.RunSchedule(sctx, tick.C, nil)
	}()
	go func() { // first publication at once
		if _, err := svc.PublishDue(sctx); err != nil {
			logger.Error("serve: CRL publication", "err", err)
		}
	}()
	stop = func() {
		tick.Stop()
		cancel()
		<-done
		for _, hs := range servers {
			c, cc := context.WithTimeout(context.Background(), 5*time.Second)
			hs.Shutdown(c)
			cc()
		}
	}
	listen := func(addr string, h http.Handler, tc *tls.Config, what string) error {
		if addr == "" {
			return nil
		}
		ln, err := net.Listen("tcp", addr)
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
	vh, err := api.NewVerifierHandler(scfg)
	if err == nil {
		err = listen(f.verifierListen, vh, api.VerifierTLSConfig(serverCert), "verifier status (mutual TLS)")
	}
	if err == nil {
		var ph http.Handler
		if ph, err = api.NewPublicHandler(scfg); err == nil {
			err = listen(f.publicListen, ph, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert}}, "public ARL and CA certificates")
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// newResponder issues a fresh delegated OCSP responder certificate under
// the CA key for a responder key made in memory at start (CPS §6.3.2.1).
func newResponder(ca status.CA, svc *status.Service, policy asn1.ObjectIdentifier) (*ocsp.Responder, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	serial.SetBit(serial, 126, 1)
	now := time.Now()
	der, err := ocsp.IssueResponderCertificate(ocsp.ResponderCertRequest{Issuer: ca.Certificate, IssuerSigner: ca.Signer, PublicKey: key.Public(),
		Subject: pkix.Name{CommonName: "OCSP responder of " + ca.Certificate.Subject.CommonName}, Serial: serial, NotBefore: now.Add(-time.Minute), Policy: policy})
	if errors.Is(err, ocsp.ErrOutlivesCA) {
		return nil, fmt.Errorf("serve: %s: %w", ca.Name, err)
	}
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return ocsp.New(ocsp.Config{Issuer: ca.Certificate, ResponderCert: cert, Signer: key, Source: svc.OCSPSource(ca.CertType)})
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var o asn1.ObjectIdentifier
	var n int
	for i, j := 0, 0; i <= len(s); i++ {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			n = n*10 + int(s[i]-'0')
			continue
		}
		if (i < len(s) && s[i] != '.') || i == j {
			return nil, fmt.Errorf("bad OID %q", s)
		}
		o, n, j = append(o, n), 0, i+1
	}
	if len(o) < 2 {
		return nil, fmt.Errorf("bad OID %q", s)
	}
	return o, nil
}
