package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"madoguchi/ca-server/api/wire"
	"madoguchi/cardio"
	"madoguchi/cardio/vcard"
	"madoguchi/internal/testenv"
	"madoguchi/raclient"
)

// serveChildEnv makes the test binary run `ca-server` itself (os.Args[1:])
// and exit, before the testing package parses flags: a `serve` replica as a
// separate process that the test can kill, without building the binary.
const serveChildEnv = "MADOGUCHI_CA_SERVER_CHILD"

func init() {
	if os.Getenv(serveChildEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
}

// serveChild is one `ca-server serve` replica in a child process.
type serveChild struct {
	cmd    *exec.Cmd
	base   string // https://host:port of the terminal API
	stderr *syncBuffer
	done   chan struct{}
}

// startServeChild starts `ca-server serve args…` as a child of the test
// binary and waits until it listens; it is stopped (SIGTERM) at cleanup.
func startServeChild(t testing.TB, args ...string) *serveChild {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--verifier-listen", "--public-listen", "--metrics-listen"} {
		args = append(args, f, "127.0.0.1:0")
	}
	cmd := exec.Command(self, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), serveChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &serveChild{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("serve child %d stderr (tail):\n%s", cmd.Process.Pid, tail(c.stderr.String(), 3000))
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on https://"); ok {
				select {
				case addr <- strings.Fields(rest)[0]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		c.base = "https://" + a
	case <-c.done:
		t.Fatalf("serve child exited before listening:\n%s", c.stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve child did not listen:\n%s", c.stderr.String())
	}
	return c
}

// stop ends the replica (SIGTERM, SIGKILL to its group after 20 s) and
// waits for it; stopping a stopped replica does nothing.
func (c *serveChild) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// issueOutcome is what the terminal saw of one issuance.
type issueOutcome struct {
	reqID     string
	issuance  string // empty when no prepare answered
	delivered bool   // the confirmation answered "delivered"
	aborted   bool   // the terminal aborted it (confirmation impossible)
	err       error
}

// TestServeFailoverIssuesThrough (issue 14, database failover): two
// `serve` replicas (child processes) on the multi-host URL of a PostgreSQL
// primary with a synchronous streaming standby; a terminal issues
// continuously over real mutual TLS, alternating replicas and retrying a
// failed step with the same request id on the other replica, as a counter
// terminal would; the primary is killed (SIGKILL) and the standby promoted
// mid-run. Afterwards every issuance is delivered or revoked with reason 0
// and never both, every issuance the terminal saw delivered is delivered,
// none is lost or half-done, issuing went on after the promotion, and
// `audit verify` is clean on the new primary.
func TestServeFailoverIssuesThrough(t *testing.T) {
	testenv.SoftHSM(t)
	pair := testenv.PostgresWithStandby(t)
	data := t.TempDir()
	const cards = 14
	runCmd(t, "ceremony-init", "--data", data, "--dev")
	batch := filepath.Join(t.TempDir(), "batch.txt")
	runCmd(t, "card-batch", "--data", data, "--dev", "--count", fmt.Sprint(cards), "--out", batch)
	tok := strings.TrimSpace(runCmd(t, "terminal-token", "--data-dir", data, "--municipality", "131016", "--database", pair.DSN))

	common := []string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--database", pair.DSN,
		"--deadline", "20s", "--sweep-every", "1s"}
	replicas := []*serveChild{startServeChild(t, common...), startServeChild(t, common...)}

	ctx := context.Background()
	pool := x509.NewCertPool()
	pool.AddCert(readPEMCert(t, filepath.Join(data, "tls-ca.crt")))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enr, err := raclient.Enroll(ctx, raclient.EnrollConfig{BaseURL: replicas[0].base, RootCAs: pool, Token: tok, Key: key, Operator: "installer"})
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	tc, _ := raclient.TLSCertificate(enr, key)
	var clients []*raclient.Client
	for _, r := range replicas {
		c, err := raclient.New(raclient.Config{BaseURL: r.base, Certificate: tc, RootCAs: pool, MaxAttempts: 1, Timeout: 45 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		clients = append(clients, c)
	}
	bf, err := os.Open(batch)
	if err != nil {
		t.Fatal(err)
	}
	stock, err := vcard.ParseKeyBatch(bf)
	bf.Close()
	if err != nil || len(stock) != cards {
		t.Fatalf("batch: %v (%d cards)", err, len(stock))
	}

	// retry runs step on alternating replicas until it succeeds, for at
	// most a minute: the terminal's own retry with the same request id.
	var turn int
	retry := func(what string, step func(c *raclient.Client) error) error {
		deadline := time.Now().Add(time.Minute)
		for {
			turn++
			err := step(clients[turn%len(clients)])
			if err == nil || time.Now().After(deadline) {
				return err
			}
			if code := wire.CodeOf(err); code != "" && code != wire.CodeUnavailable && code != wire.CodeInternal {
				return err // a refusal, not a fault
			}
			t.Logf("%s: %v; retrying", what, err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	issue := func(card int, typ string) issueOutcome {
		reqID := fmt.Sprintf("r-%d-%s", card, typ)
		out := issueOutcome{reqID: reqID}
		vc, err := vcard.New(vcard.Config{Serial: stock[card].Serial, Keys: stock[card].Keys})
		if err != nil {
			t.Fatal(err)
		}
		cd := cardio.New(vcard.Insert(vc))
		var ch wire.ChannelResponse
		if out.err = retry(reqID+" channel", func(c *raclient.Client) (err error) { ch, err = c.OpenChannel(ctx, "op-1"); return }); out.err != nil {
			return out
		}
		iu, err := cd.InitializeUpdate(ctx, ch.HostChallenge)
		if err != nil {
			t.Fatal(err)
		}
		app := wire.Applicant{ResidentCode: fmt.Sprintf("9%010d", card), Name: "窓口 太郎", BirthDate: "1980-04-01", Sex: "1",
			Address: "東京都千代田区霞が関二丁目1番2号", CardExpiry: "2034-04-01"}
		var prep wire.PrepareResponse
		if out.err = retry(reqID+" prepare", func(c *raclient.Client) (err error) {
			prep, err = c.Prepare(ctx, "op-1", wire.PrepareRequest{RequestID: reqID, ChannelID: ch.ChannelID,
				CardSerial: hex.EncodeToString(stock[card].Serial), InitUpdateResponse: iu, CertType: typ, Applicant: app})
			return
		}); out.err != nil {
			return out
		}
		out.issuance = prep.IssuanceID
		responses, err := cd.RunScript(ctx, prep.Script)
		if err != nil {
			t.Fatal(err)
		}
		var st wire.IssuanceStatus
		out.err = retry(reqID+" confirm", func(c *raclient.Client) (err error) {
			st, err = c.Confirm(ctx, "op-1", prep.IssuanceID, wire.ConfirmRequest{RequestID: "c-" + reqID, CardResponses: responses})
			return
		})
		out.delivered = out.err == nil && st.State == "delivered"
		if !out.delivered {
			if _, err := clients[0].Abort(ctx, "op-1", prep.IssuanceID, wire.AbortRequest{RequestID: "a-" + reqID}); err == nil {
				out.aborted = true
			}
		}
		return out
	}

	var outcomes []issueOutcome
	killed := make(chan struct{})
	promoted := 0
	for card := 0; card < cards; card++ {
		for _, typ := range []string{"sign", "auth"} {
			outcomes = append(outcomes, issue(card, typ))
			if len(outcomes) == 6 {
				// mid-run: the primary dies, the standby is promoted while
				// the next issuances are under way
				go func() {
					defer close(killed)
					pair.Primary.Kill()
					time.Sleep(time.Second)
					if err := pair.Standby.Promote(); err != nil {
						t.Error(err)
					}
				}()
			}
		}
		select {
		case <-killed:
			promoted++
		default:
		}
	}
	<-killed
	if promoted < 3 {
		t.Fatalf("only %d cards issued after the promotion", promoted)
	}

	// The new primary is the truth; wait for the sweeper (deadline 20 s) to
	// settle anything left half-done.
	conn, err := pgx.Connect(ctx, pair.Standby.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(45 * time.Second); ; {
		var open int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM issuances WHERE state IN ('issuing', 'prepared')`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d issuances still issuing or prepared after the deadline and sweeps", open)
		}
		time.Sleep(time.Second)
	}
	type row struct {
		id, state string
		reason    int
	}
	byReq := map[string]row{}
	rows, err := conn.Query(ctx, `SELECT request_id, id, state, coalesce(revocation_reason, -1) FROM issuances`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var req string
		var r row
		if err := rows.Scan(&req, &r.id, &r.state, &r.reason); err != nil {
			t.Fatal(err)
		}
		if _, dup := byReq[req]; dup {
			t.Fatalf("request %s issued twice", req)
		}
		byReq[req] = r
	}
	rows.Close()
	var deliveredN, revokedN int
	for _, o := range outcomes {
		r, ok := byReq[o.reqID]
		switch {
		case o.delivered && (!ok || r.state != "delivered" || r.id != o.issuance):
			t.Errorf("%s: the terminal saw %s delivered, the database has %+v (present %v)", o.reqID, o.issuance, r, ok)
		case !o.delivered && ok && !(r.state == "revoked" && r.reason == 0):
			t.Errorf("%s: not delivered to the card (%v), the database has %s reason %d, want revoked reason 0", o.reqID, o.err, r.state, r.reason)
		case o.issuance != "" && !ok:
			t.Errorf("%s: prepared as %s but lost from the database", o.reqID, o.issuance)
		}
		if o.delivered {
			deliveredN++
		} else if ok {
			revokedN++
		}
	}
	if len(byReq) > len(outcomes) {
		t.Errorf("%d issuances in the database, the terminal made %d", len(byReq), len(outcomes))
	}
	if deliveredN < len(outcomes)/2 {
		t.Errorf("only %d of %d issuances delivered", deliveredN, len(outcomes))
	}
	t.Logf("%d issuances: %d delivered, %d revoked with reason 0, %d refused before beginning", len(outcomes), deliveredN, revokedN, len(outcomes)-deliveredN-revokedN)
	for _, r := range replicas {
		select {
		case <-r.done:
			t.Errorf("replica exited during the failover:\n%s", tail(r.stderr.String(), 3000))
		default:
		}
	}
	out := runCmd(t, "audit", "verify", "--data-dir", data, "--database", pair.Standby.DSN)
	t.Logf("audit verify: %s", strings.TrimSpace(out))
}
