package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"madoguchi/ca-server/api"
	"madoguchi/ca-server/api/wire"
	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/issuance"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/tlsca"
)

func init() {
	register(command{name: "serve", summary: "serve the issuance API over mutual TLS", run: runServe})
}

// local is what every local sub-command opens in the data directory.
type local struct {
	st    *store.SQLite
	ca    *tlsca.CA
	audit *audit.Log
	// auditKey signs audit checkpoints. Stand-in until ca-server/hsm is
	// wired: an ECDSA key file (0600) in the data directory.
	auditKey crypto.Signer
}

func openLocal(ctx context.Context, dataDir string) (*local, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("%w: --data-dir is required", errUsage)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dataDir, "ca.db"))
	if err != nil {
		return nil, err
	}
	cert, signer, err := tlsca.LoadOrCreate(dataDir, time.Now())
	if err != nil {
		st.Close()
		return nil, err
	}
	ca, err := tlsca.New(cert, signer, st, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	ak, err := loadOrCreateECKey(filepath.Join(dataDir, "audit-checkpoint.key"))
	if err != nil {
		st.Close()
		return nil, err
	}
	alog, err := audit.Open(ctx, st, audit.Options{Signer: ak, KeyID: "audit-checkpoint-file"})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &local{st: st, ca: ca, audit: alog, auditKey: ak}, nil
}

func (l *local) Close() error {
	err := l.audit.Checkpoint(context.Background())
	return errors.Join(err, l.st.Close())
}

// loadOrCreateECKey reads a PKCS#8 PEM ECDSA key, creating it (0600) if absent.
func loadOrCreateECKey(path string) (*ecdsa.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("ca-server: %s is not PEM", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca-server: %s: %w", path, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("ca-server: %s is not an ECDSA key", path)
		}
		return ek, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		f.Close()
		return nil, err
	}
	return k, errors.Join(f.Sync(), f.Close())
}

// loadOrCreateSecret reads n random bytes from path, creating them (0600).
func loadOrCreateSecret(path string, n int) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		if len(b) != n {
			return nil, fmt.Errorf("ca-server: %s must hold %d bytes", path, n)
		}
		return b, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	return b, errors.Join(f.Sync(), f.Close())
}

// issuanceDeps returns the HSM key generator, card channel and certificate
// issuer. They land with ca-server/hsm, ca-server/cardkeys and
// ca-server/issuer; until the coordinator wires them here, serve runs with
// enrolment only and answers issuance calls with "unavailable".
var issuanceDeps = func(ctx context.Context, dataDir string, st *store.SQLite) (issuance.KeyGenerator, issuance.CardChannel, issuance.Issuer, error) {
	return nil, nil, nil, errors.New("HSM, card keys and issuer are not wired into serve yet")
}

// unavailableService answers every issuance call with CodeUnavailable.
type unavailableService struct{ why string }

var _ api.Service = unavailableService{}

func (u unavailableService) err() error {
	return wire.Errorf(wire.CodeUnavailable, "issuance unavailable: %s", u.why)
}
func (u unavailableService) OpenChannel(context.Context, issuance.Caller) (wire.ChannelResponse, error) {
	return wire.ChannelResponse{}, u.err()
}
func (u unavailableService) Prepare(context.Context, issuance.Caller, wire.PrepareRequest) (wire.PrepareResponse, error) {
	return wire.PrepareResponse{}, u.err()
}
func (u unavailableService) Confirm(context.Context, issuance.Caller, string, wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, u.err()
}
func (u unavailableService) Abort(context.Context, issuance.Caller, string, wire.AbortRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, u.err()
}
func (u unavailableService) Status(context.Context, issuance.Caller, string) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, u.err()
}

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory (store, TLS CA, keys)")
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on")
	hosts := fs.String("hosts", "", "comma-separated host names/addresses for the server certificate (default: the listen host)")
	deadline := fs.Duration("deadline", 10*time.Minute, "time a prepared issuance may wait for its confirmation before it is revoked (reason 0)")
	sweepEvery := fs.Duration("sweep-every", 30*time.Second, "how often overdue issuances are revoked")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	l, err := openLocal(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer l.Close()

	var svc api.Service
	keys, cards, iss, derr := issuanceDeps(ctx, *dataDir, l.st)
	if derr != nil {
		logger.Warn("serve: issuance disabled", "reason", derr)
		svc = unavailableService{why: "not configured"}
	} else {
		phKey, err := loadOrCreateSecret(filepath.Join(*dataDir, "person-hash.key"), 32)
		if err != nil {
			return err
		}
		s, err := issuance.New(issuance.Config{Store: l.st, Keys: keys, Cards: cards, Issuer: iss,
			Applicants: issuance.BasicApplicantChecker{Key: phKey}, Logger: logger, Deadline: *deadline})
		if err != nil {
			return err
		}
		// interrupted issuances of a previous run end revoked (reason 0)
		if n, err := s.Sweep(ctx); err != nil {
			return err
		} else if n > 0 {
			logger.Info("serve: revoked overdue issuances at start", "count", n)
		}
		tick := time.NewTicker(*sweepEvery)
		defer tick.Stop()
		go s.RunSweeper(ctx, tick.C, nil)
		svc = s
	}

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("%w: --listen %q: %v", errUsage, *listen, err)
	}
	names := []string{host}
	if *hosts != "" {
		names = strings.Split(*hosts, ",")
	}
	serverCert, err := l.ca.ServerCertificate(names)
	if err != nil {
		return err
	}
	srv, err := api.New(api.Config{Service: svc, Enroller: l.ca, Terminals: l.st, Audit: l.audit, ClientCAs: l.ca.Pool(), Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, TLSConfig: api.TLSConfig(serverCert), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10}
	fmt.Fprintf(stdout, "ca-server: listening on https://%s (TLS CA certificate %s)\n", ln.Addr(), filepath.Join(*dataDir, "tls-ca.crt"))
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}
