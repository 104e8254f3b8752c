package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"madoguchi/ca-server/store"
	"madoguchi/internal/wallclock"
)

func init() {
	register(command{name: "verifier-add", summary: "register a verifier for CRLs and OCSP: issue its TLS client certificate, or register one by fingerprint", run: runVerifierAdd})
	register(command{name: "verifier-revoke", summary: "withdraw a verifier's registration", run: runVerifierRevoke})
}

// runVerifierAdd: CPS §1.3.4, §2.4; TS Arts. 33, 36: CRLs and OCSP only for
// registered verifiers.
func runVerifierAdd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verifier-add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	database := databaseFlag(fs)
	name := fs.String("name", "", "the verifier's name (unique)")
	certFile := fs.String("cert", "", "register this PEM client certificate by its SHA-256 instead of issuing one")
	outDir := fs.String("out-dir", "", "directory for the issued verifier.crt and verifier.key (0600)")
	duty := twoPersonDuty{action: "verifier.add"}
	duty.register(fs, "who registers")
	// Issuing (--out-dir) signs with the TLS CA key in the HSM: M
	// custodians present their token shares, as for serve (TS Art. 27, 45).
	var shares listFlag
	fs.Var(&shares, "share", "with --out-dir (the TLS CA key is in the HSM): "+shareHelp)
	dev := fs.Bool("dev", false, "with --out-dir: use the dev share of a dev CA: NOT FOR PRODUCTION")
	module := fs.String("module", "", "PKCS#11 module (default SoftHSM 2)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *name == "" || (*certFile == "") == (*outDir == "") {
		return fmt.Errorf("%w: --name and exactly one of --cert or --out-dir are required", errUsage)
	}
	if err := duty.check(*dataDir, *database); err != nil {
		return err
	}
	ctx := context.Background()
	l, err := openLocal(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer l.Close()
	if *outDir != "" && !l.ca.HasKey() {
		ca, closeHSM, err := activatedTLSCA(ctx, *dataDir, *module, *dev, shares, l.st, stderr, stderr)
		if err != nil {
			return err
		}
		defer closeHSM()
		l.ca = ca
	}
	v, err := addVerifier(ctx, l, *dataDir, *name, *certFile, *outDir)
	if err := duty.record(ctx, l, *name, err); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "verifier %q registered: certificate SHA-256 %s, valid until %s\n", v.Name, hex.EncodeToString(v.CertSHA256), v.NotAfter.Format(time.RFC3339))
	return nil
}

func addVerifier(ctx context.Context, l *local, dataDir, name, certFile, outDir string) (store.Verifier, error) {
	now := wallclock.Now()
	var der []byte
	issued := false
	if certFile != "" {
		b, err := os.ReadFile(certFile)
		if err != nil {
			return store.Verifier{}, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return store.Verifier{}, fmt.Errorf("ca-server: %s is not a PEM certificate", certFile)
		}
		der = blk.Bytes
	} else {
		// the TLS CA with its key: the file key, or the HSM key after
		// runVerifierAdd's activation
		ca := l.ca
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return store.Verifier{}, err
		}
		if der, err = ca.VerifierCertificate(name, key.Public()); err != nil {
			return store.Verifier{}, err
		}
		pk, _ := x509.MarshalPKCS8PrivateKey(key)
		if err := os.MkdirAll(outDir, 0o700); err != nil {
			return store.Verifier{}, err
		}
		if err := os.WriteFile(filepath.Join(outDir, "verifier.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
			return store.Verifier{}, err
		}
		if err := os.WriteFile(filepath.Join(outDir, "verifier.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return store.Verifier{}, err
		}
		issued = true
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return store.Verifier{}, fmt.Errorf("ca-server: verifier certificate: %w", err)
	}
	fp := sha256.Sum256(der)
	idb := make([]byte, 8)
	rand.Read(idb)
	v := store.Verifier{ID: "ver-" + hex.EncodeToString(idb), Name: name, CertSHA256: fp[:], CertSerial: cert.SerialNumber.Text(16),
		NotAfter: cert.NotAfter, IssuedHere: issued, RegisteredAt: now}
	return v, l.st.AddVerifier(ctx, v)
}

func runVerifierRevoke(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verifier-revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory")
	database := databaseFlag(fs)
	name := fs.String("name", "", "the verifier's name")
	duty := twoPersonDuty{action: "verifier.revoke"}
	duty.register(fs, "who withdraws")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *name == "" {
		return fmt.Errorf("%w: --name is required", errUsage)
	}
	if err := duty.check(*dataDir, *database); err != nil {
		return err
	}
	ctx := context.Background()
	l, err := openLocal(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer l.Close()
	v, err := l.st.RevokeVerifier(ctx, *name, wallclock.Now())
	if err := duty.record(ctx, l, *name, err); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "verifier %q withdrawn at %s\n", v.Name, v.RevokedAt.Format(time.RFC3339))
	return nil
}
