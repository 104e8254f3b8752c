// Package e2e starts the real parts of the terminal's end-to-end tests: a `ca-server serve`
// child process on a SoftHSM token with this terminal enrolled over mutual TLS, card stock
// from the CA's card-key batch, and PC/SC connections to cards in pcscd+vpcd readers
// (internal/testenv). Shared by app/issue and app/cli; tests only.
//
// Concurrency: StartCA builds the ca-server binary once per test binary; each call starts its
// own server with its own data directory and stops it in t.Cleanup.
package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"madoguchi/app/workflow"
	"madoguchi/cardio/pcsc"
	"madoguchi/cardio/vcard"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
	"madoguchi/raclient"
)

var caBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// Cleanup removes the ca-server binary built by StartCA; call it from TestMain after m.Run.
func Cleanup() {
	if caBinary.path != "" {
		os.RemoveAll(filepath.Dir(caBinary.path))
	}
}

// buildCAServer builds the real ca-server command once per test binary.
func buildCAServer(t testing.TB) string {
	t.Helper()
	caBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "madoguchi-ca-server-")
		if err != nil {
			caBinary.err = err
			return
		}
		caBinary.path = filepath.Join(dir, "ca-server")
		cmd := exec.Command("go", "build", "-o", caBinary.path, "madoguchi/ca-server")
		caBinary.out, caBinary.err = cmd.CombinedOutput()
	})
	if caBinary.err != nil {
		t.Fatalf("go build ca-server: %v\n%s", caBinary.err, caBinary.out)
	}
	return caBinary.path
}

// CA is a running `ca-server serve` (child process) on a SoftHSM token, with this
// terminal enrolled over mutual TLS.
type CA struct {
	Bin, Data string
	Base      string
	Public    string // https URL of the public listener (ARL, CA certificates, holder revocation)
	Verifier  string // https URL of the verifier listener (CRLs and OCSP over mutual TLS)
	Client    *raclient.Client
	Stock     []vcard.StockEntry
	CACerts   map[workflow.CertType][]byte
	// what a child process needs to talk to the CA as this terminal
	CertPEM, KeyPEM, RootPEM []byte
	// Pid is the serve child process (benchmarks wait for it to be idle: key pool full).
	Pid int
}

// Options adjusts StartCAWith.
type Options struct {
	Cards     int      // card stock in the CA's card-key batch (default 2)
	ServeArgs []string // extra `serve` flags, e.g. --key-pool 4
}

func CACmd(t testing.TB, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ca-server %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func StartCA(t testing.TB) *CA {
	t.Helper()
	return StartCAWith(t, Options{})
}

// StartCAWith is StartCA with more card stock or extra serve flags.
func StartCAWith(t testing.TB, opts Options) *CA {
	t.Helper()
	if opts.Cards <= 0 {
		opts.Cards = 2
	}
	testenv.SoftHSM(t) // SOFTHSM2_CONF private to this test, inherited by the child
	ca := &CA{Bin: buildCAServer(t), Data: t.TempDir()}
	CACmd(t, ca.Bin, "ceremony-init", "--data", ca.Data, "--dev")
	batch := filepath.Join(t.TempDir(), "batch.txt")
	CACmd(t, ca.Bin, "card-batch", "--data", ca.Data, "--dev", "--count", strconv.Itoa(opts.Cards), "--out", batch)
	token := strings.TrimSpace(CACmd(t, ca.Bin, "terminal-token", "--data-dir", ca.Data, "--municipality", "131016"))

	cmd := exec.Command(ca.Bin, append([]string{"serve", "--data-dir", ca.Data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0", "--public-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--deadline", "10m"}, opts.ServeArgs...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ca.Pid = cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	addr, public, verifier := make(chan string, 1), make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on https://"); ok {
				addr <- strings.Fields(rest)[0]
			}
			if _, rest, ok := strings.Cut(sc.Text(), "public ARL and CA certificates on https://"); ok {
				public <- strings.Fields(rest)[0]
			}
			if _, rest, ok := strings.Cut(sc.Text(), "verifier status (mutual TLS) on https://"); ok {
				verifier <- strings.Fields(rest)[0]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		ca.Base = "https://" + a
	case <-time.After(2 * time.Minute):
		t.Fatalf("ca-server serve did not listen:\n%s", stderr.String())
	}
	select {
	case a := <-public:
		ca.Public = "https://" + a
	case <-time.After(time.Minute):
		t.Fatalf("ca-server serve did not open its public listener:\n%s", stderr.String())
	}
	select {
	case a := <-verifier:
		ca.Verifier = "https://" + a
	case <-time.After(time.Minute):
		t.Fatalf("ca-server serve did not open its verifier listener:\n%s", stderr.String())
	}

	ctx := context.Background()
	ca.RootPEM, err = os.ReadFile(filepath.Join(ca.Data, "tls-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.RootPEM) {
		t.Fatal("tls-ca.crt holds no certificate")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: ca.Base, RootCAs: pool, Token: token, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatalf("enrol terminal: %v", err)
	}
	tc, err := raclient.TLSCertificate(enr, key)
	if err != nil {
		t.Fatal(err)
	}
	ca.Client, err = raclient.New(raclient.Config{BaseURL: ca.Base, Certificate: tc, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ca.Client.Close)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	ca.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	ca.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: enr.Certificate})

	f, err := os.Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ca.Stock, err = vcard.ParseKeyBatch(f); err != nil || len(ca.Stock) != opts.Cards {
		t.Fatalf("card batch: %v (%d cards)", err, len(ca.Stock))
	}
	ca.CACerts = map[workflow.CertType][]byte{}
	for typ, name := range map[workflow.CertType]string{workflow.SignatureCert: "signature-ca", workflow.UserAuthCert: "user-auth-ca"} {
		b, err := os.ReadFile(filepath.Join(ca.Data, "ceremony", name+".crt.pem"))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s is not PEM", name)
		}
		ca.CACerts[typ] = blk.Bytes
	}
	return ca
}

type LockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StockCard makes the virtual card of batch entry i (blank card stock from the CA's
// card-key batch) with its state in dir.
func (ca *CA) StockCard(t testing.TB, i int, dir string) *vcard.Card {
	t.Helper()
	c, err := vcard.New(vcard.Config{Serial: ca.Stock[i].Serial, Keys: ca.Stock[i].Keys, StatePath: filepath.Join(dir, "card.json")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// PlugInStockCard makes the virtual card of batch entry i (StockCard, state in a new
// t.TempDir) and plugs it into pc's reader i through vpcd port i until the test ends; the link
// is for fault injection.
func (ca *CA) PlugInStockCard(t testing.TB, pc *testenv.PCSC, i int) *vcard.Link {
	t.Helper()
	link, _ := vcardtest.PlugIn(t, ca.StockCard(t, i, t.TempDir()), pc.Ports[i], pc.Readers[i])
	return link
}

// ConnectCard opens the PC/SC connection the terminal uses for the card in reader.
func ConnectCard(t testing.TB, reader string) (*pcsc.Card, func()) {
	t.Helper()
	cl, err := pcsc.Open()
	if err != nil {
		t.Fatal(err)
	}
	card, err := cl.Connect(reader, pcsc.Exclusive)
	if err != nil {
		cl.Close()
		t.Fatal(err)
	}
	var once sync.Once
	closeFn := func() {
		once.Do(func() {
			card.Close(true)
			cl.Close()
		})
	}
	t.Cleanup(closeFn)
	return card, closeFn
}
