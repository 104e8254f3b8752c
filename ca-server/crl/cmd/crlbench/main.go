// Command crlbench measures time and peak resident memory of the streaming
// CRL writer against crypto/x509.CreateRevocationList, each in its own child
// process, on the same generated entries and the same RSA-2048 key, and
// checks the streaming output with openssl.
//
//	go run ./ca-server/crl/cmd/crlbench -n 1000000
//
// The parent generates a test CA (key in a 0600 temporary file, removed at
// exit), runs `crlbench -child streaming|stdlib`, and reads each child's peak
// RSS from its rusage (ru_maxrss) and its own /proc/self/status VmHWM.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/crl/internal/crlgen"
)

var thisUpdate = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

type report struct {
	Mode      string  `json:"mode"`
	Entries   int     `json:"entries"`
	BuildSec  float64 `json:"build_seconds"` // building the in-memory slice (stdlib only)
	CreateSec float64 `json:"create_seconds"`
	Bytes     int64   `json:"bytes"`
	VmHWMKiB  int64   `json:"vmhwm_kib"`
	MaxRSSKiB int64   `json:"maxrss_kib"` // filled by the parent
}

func main() {
	n := flag.Int("n", 1_000_000, "number of revoked entries")
	child := flag.String("child", "", "internal: streaming or stdlib")
	dir := flag.String("dir", "", "internal: working directory with ca.pem and ca.key")
	modes := flag.String("modes", "streaming,stdlib", "comma-separated writers to run; at 10,000,000 entries run streaming only (the stdlib would need ~10 GB)")
	flag.Parse()
	var err error
	if *child != "" {
		err = runChild(*child, *dir, *n)
	} else {
		err = runParent(*n, strings.Split(*modes, ","))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crlbench:", err)
		os.Exit(1)
	}
}

func runParent(n int, modes []string) error {
	dir, err := os.MkdirTemp("", "crlbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := makeCA(dir); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var reps []report
	if len(modes) == 0 || modes[0] != "streaming" {
		return errors.New("-modes must start with streaming")
	}
	for _, mode := range modes {
		cmd := exec.Command(self, "-child", mode, "-dir", dir, "-n", fmt.Sprint(n))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("%s child: %w", mode, err)
		}
		var r report
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("%s child output %q: %w", mode, out, err)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSSKiB = ru.Maxrss // KiB on Linux
		}
		reps = append(reps, r)
	}
	verify := exec.Command("openssl", "crl", "-inform", "DER", "-in", filepath.Join(dir, "streaming.crl"),
		"-noout", "-CAfile", filepath.Join(dir, "ca.pem"))
	vout, verr := verify.CombinedOutput()
	if verr != nil || !strings.Contains(string(vout), "verify OK") {
		return fmt.Errorf("openssl rejected the streaming CRL: %v %s", verr, vout)
	}
	fmt.Printf("%d entries, %.1f MB CRL; openssl: %s", n, float64(reps[0].Bytes)/1e6, vout)
	fmt.Printf("%-10s %10s %10s %14s %12s\n", "mode", "build s", "create s", "peak RSS MiB", "VmHWM MiB")
	for _, r := range reps {
		fmt.Printf("%-10s %10.3f %10.3f %14.1f %12.1f\n", r.Mode, r.BuildSec, r.CreateSec,
			float64(r.MaxRSSKiB)/1024, float64(r.VmHWMKiB)/1024)
	}
	if len(reps) < 2 {
		return nil
	}
	s, d := reps[0], reps[1]
	fmt.Printf("stdlib/streaming: time %.1f× (create only), %.1f× (with build); peak RSS %.1f×\n",
		d.CreateSec/s.CreateSec, (d.BuildSec+d.CreateSec)/s.CreateSec, float64(d.MaxRSSKiB)/float64(s.MaxRSSKiB))
	return nil
}

func makeCA(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	ski := sha1.Sum(spki)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"JP"}, Organization: []string{"JPKI"}, CommonName: "crlbench CA"},
		NotBefore: thisUpdate.AddDate(-1, 0, 0), NotAfter: thisUpdate.AddDate(9, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func loadCA(dir string) (*x509.Certificate, *rsa.PrivateKey, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM block", name)
		}
		return blk.Bytes, nil
	}
	cd, err := read("ca.pem")
	if err != nil {
		return nil, nil, err
	}
	kd, err := read("ca.key")
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(cd)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kd)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("ca.key is not RSA")
	}
	return cert, key, nil
}

func runChild(mode, dir string, n int) error {
	cert, key, err := loadCA(dir)
	if err != nil {
		return err
	}
	r := report{Mode: mode, Entries: n}
	switch mode {
	case "streaming":
		f, err := os.Create(filepath.Join(dir, "streaming.crl"))
		if err != nil {
			return err
		}
		start := time.Now()
		res, err := crl.Write(context.Background(), f, crl.Params{Issuer: cert, Signer: key, Number: big.NewInt(1), ThisUpdate: thisUpdate},
			crlgen.Source(n, 1))
		if err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		r.CreateSec = time.Since(start).Seconds()
		r.Bytes = res.Bytes
	case "stdlib":
		start := time.Now()
		entries := crlgen.Stdlib(n, 1)
		r.BuildSec = time.Since(start).Seconds()
		start = time.Now()
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: thisUpdate,
			NextUpdate: thisUpdate.Add(crl.DefaultValidity), RevokedCertificateEntries: entries}, cert, key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "stdlib.crl"), der, 0o644); err != nil {
			return err
		}
		r.CreateSec = time.Since(start).Seconds()
		r.Bytes = int64(len(der))
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	hwm, err := vmHWM()
	if err != nil {
		return err
	}
	r.VmHWMKiB = hwm
	return json.NewEncoder(os.Stdout).Encode(r)
}

// vmHWM reads the process's peak resident set from /proc/self/status.
func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmHWM(f)
}

func parseVmHWM(r io.Reader) (int64, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				return 0, err
			}
			return kib, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
