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
	"slices"
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
	Shards    int     `json:"shards,omitempty"`
	MaxShard  int64   `json:"max_shard_bytes,omitempty"`
}

func main() {
	n := flag.Int("n", 1_000_000, "number of revoked entries")
	child := flag.String("child", "", "internal: streaming or stdlib")
	dir := flag.String("dir", "", "internal: working directory with ca.pem and ca.key")
	modes := flag.String("modes", "streaming,stdlib", "comma-separated modes: streaming, stdlib (at 10,000,000 entries run without it: it would need ~10 GB), parse (x509.ParseRevocationList of the streamed CRL, as a relying party reads it), sharded (-shards partitioned CRLs, crl.Partition)")
	shards := flag.Int("shards", 64, "number of CRL shards of the sharded mode")
	flag.Parse()
	var err error
	if *child != "" {
		err = runChild(*child, *dir, *n, *shards)
	} else {
		err = runParent(*n, *shards, strings.Split(*modes, ","))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crlbench:", err)
		os.Exit(1)
	}
}

func runParent(n, shards int, modes []string) error {
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
		cmd := exec.Command(self, "-child", mode, "-dir", dir, "-n", fmt.Sprint(n), "-shards", fmt.Sprint(shards))
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
	fmt.Printf("%-10s %10s %10s %14s %12s %10s\n", "mode", "build s", "create s", "peak RSS MiB", "VmHWM MiB", "MB")
	for _, r := range reps {
		fmt.Printf("%-10s %10.3f %10.3f %14.1f %12.1f %10.1f", r.Mode, r.BuildSec, r.CreateSec,
			float64(r.MaxRSSKiB)/1024, float64(r.VmHWMKiB)/1024, float64(r.Bytes)/1e6)
		if r.Shards > 0 {
			fmt.Printf("  (%d shards, largest %.2f MB)", r.Shards, float64(r.MaxShard)/1e6)
		}
		fmt.Println()
	}
	if slices.ContainsFunc(reps, func(r report) bool { return r.Mode == "sharded" }) {
		v := exec.Command("openssl", "crl", "-inform", "DER", "-in", filepath.Join(dir, "shard-0.crl"), "-noout", "-CAfile", filepath.Join(dir, "ca.pem"))
		if out, err := v.CombinedOutput(); err != nil || !strings.Contains(string(out), "verify OK") {
			return fmt.Errorf("openssl rejected shard 0: %v %s", err, out)
		}
		fmt.Println("openssl: shard 0 verify OK")
	}
	if len(reps) < 2 || reps[1].Mode != "stdlib" {
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

func runChild(mode, dir string, n, shards int) error {
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
	case "parse":
		der, err := os.ReadFile(filepath.Join(dir, "streaming.crl"))
		if err != nil {
			return err
		}
		start := time.Now()
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return err
		}
		r.CreateSec = time.Since(start).Seconds()
		r.Bytes = int64(len(der))
		if len(rl.RevokedCertificateEntries) != n {
			return fmt.Errorf("parsed %d entries, want %d", len(rl.RevokedCertificateEntries), n)
		}
	case "sharded":
		p := crl.Partition{Shards: shards, URL: "http://crl.jpki.test/auth/{shard}.crl"}
		r.Entries = 0
		start := time.Now()
		for i := range shards {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("shard-%d.crl", i)))
			if err != nil {
				return err
			}
			res, err := crl.Write(context.Background(), f, crl.Params{Issuer: cert, Signer: key, Number: big.NewInt(1), ThisUpdate: thisUpdate,
				IssuingDistributionPoint: p.IDP(i)}, spreadShard(p, n, i))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("shard %d: %w", i, err)
			}
			r.Entries += res.Entries
			r.Bytes += res.Bytes
			r.MaxShard = max(r.MaxShard, res.Bytes)
		}
		r.CreateSec = time.Since(start).Seconds()
		r.Shards = shards
		if r.Entries != n {
			return fmt.Errorf("shards hold %d entries, want %d", r.Entries, n)
		}
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

// spreadShard streams the entries of shard i of n entries spread evenly
// over the CA's serial space [2^126, 2^127) (issuance.newSerial), as a
// store's range query on the shard would: entry k has serial
// 2^126 + k·⌊2^126/n⌋ + noise below the step. It fails (through a
// mismatching count) if an entry falls outside the shard's range.
func spreadShard(p crl.Partition, n, i int) crl.Entries {
	lo, hi := p.Range(i)
	step := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 126), big.NewInt(int64(n)))
	base := new(big.Int).Lsh(big.NewInt(1), 126)
	// first index whose serial is ≥ lo
	first := 0
	if lo != nil {
		first = int(new(big.Int).Div(new(big.Int).Sub(lo, base), step).Int64())
	}
	return func(yield func(crl.Entry) bool) error {
		var buf [16]byte
		var v big.Int
		for k := max(first-1, 0); k < n; k++ {
			e := crlgen.Entry(1, k, &buf) // reason, time and low noise
			v.Mul(step, big.NewInt(int64(k)))
			v.Add(&v, base)
			v.FillBytes(buf[:])
			if lo != nil && v.Cmp(lo) < 0 {
				continue
			}
			if hi != nil && v.Cmp(hi) >= 0 {
				return nil
			}
			e.Serial = buf[:]
			if !yield(e) {
				return nil
			}
		}
		return nil
	}
}
