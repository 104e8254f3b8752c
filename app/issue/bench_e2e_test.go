package issue_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/app"
	"madoguchi/app/auth"
	"madoguchi/app/internal/e2e"
	"madoguchi/app/issue"
	"madoguchi/app/operator"
	"madoguchi/app/workflow"
	"madoguchi/assets/translations"
	"madoguchi/cardio"
	"madoguchi/cardio/perso"
	"madoguchi/cardio/scp"
	"madoguchi/cardio/vcard/vcardtest"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
)

// BenchmarkCounterIssuance is the counter machine's time for one issuance of both certificates
// (issue 17 "Counter benchmark"; docs/BENCHMARKS.md): app.Session.Issue from "issue" until the
// card is read back, verified and both issuances confirmed at the CA, through the real stack:
// pcscd + vpcd with a new blank card of the CA's stock for every issuance, a real `ca-server
// serve` child process on SoftHSM over mutual TLS with its key pool warm (--key-pool 4, full
// before every timed issuance: the benchmark waits until the server process is idle), and the
// terminal's own SQLite database (synchronous=FULL). The applicant's typing is excluded: the
// PIN screen is a stand-in that answers at once. Every issuance is for a new resident (a
// generated register) on a new card, as at a real counter.
//
// Untimed per iteration: the CS file, the case up to the explanations, plugging the card in.
//
// Reported next to it, measured in the same iterations (same machine state):
//   - base-prepare-ms: the raw CA part, two channel opens + INITIALIZE UPDATE + two prepares with
//     pooled keys over mutual TLS for another resident on another blank card (then aborted,
//     untimed; the pool is refilled before the issuance);
//   - base-perso-ms: one personalisation exchange through pcscd + vpcd with a software CA
//     (cardio/scp + perso, as BenchmarkPersonalisationRealStack): INITIALIZE UPDATE, one script
//     with two keys and four certificates, the responses checked, two PINs set, serial check,
//     signature PIN, four certificates read back and compared;
//   - per-phase medians of the issuance (ms): CA calls (channel, prepare, confirm), card calls
//     (serial, initupdate, script, pin, readback), "journal" = the orchestration's committed
//     transactions in terminal.db (journal rows, audit records, case approval and completion;
//     one fsync each), and "terminal" = the rest (case load, certificate checks, the PIN rules,
//     the applicant stand-in, and waiting for a CPU between the calls on a loaded machine).
//
// At least 30 issuances for the figures: go test -run '^$' -bench CounterIssuance -benchtime 30x
// ./app/issue (smoke check: -benchtime 1x). CPU profile: add -cpuprofile cpu.out (this test
// binary only: the terminal side; the CA is a child process).
func BenchmarkCounterIssuance(b *testing.B) {
	ctx := context.Background()
	n := b.N
	b.StopTimer() // only the issuances are timed (ns/op is their mean)
	// Card stock: one card per issuance and one per prepare baseline.
	ca := e2e.StartCAWith(b, e2e.Options{Cards: 2 * n, ServeArgs: []string{"--key-pool", "4"}})
	pc := testenv.PCSCD(b)
	term, rc := benchCounter(b, ca, 2*n)

	var total, prep, perso []time.Duration
	var apdus, caCalls int
	phases := map[string][]time.Duration{}
	for i := 0; i < n; i++ {
		// Baseline 1: two raw prepares over mTLS with pooled keys (another resident, another card).
		waitIdle(b, ca.Pid)
		prep = append(prep, rawPrepares(b, ca, pc, benchCode(2*i+1), 2*i+1))
		// Baseline 2: one personalisation exchange through pcscd + vpcd (reader 1).
		perso = append(perso, rawPersonalisation(b, pc, byte(i)))

		caseID := newCase(b, rc, benchCode(2*i), workflow.SignatureCert, workflow.UserAuthCert)
		_, unplug := vcardtestPlugIn(b, ca, pc, 2*i)
		pcard, release := e2e.ConnectCard(b, pc.Readers[0])
		tca := &timedCA{CA: ca.Client, ph: phaseTimer{}}
		ct := &countingTransport{Transport: pcard}
		tcard := &timedCard{Card: cardio.New(ct), ph: tca.ph}
		oi, err := issue.New(ctx, issue.Config{DB: term.DB(), CA: tca, CACertificates: ca.CACerts})
		if err != nil {
			b.Fatal(err)
		}
		issue.OnCommit(oi, func(took time.Duration) { tca.ph["journal"] += took })
		waitIdle(b, ca.Pid) // key pool full again, audit checkpoints done
		b.StartTimer()
		began := time.Now()
		_, err = rc.IssueWith(ctx, oi, app.IssueRequest{CaseID: caseID, Card: tcard, CardExpiry: time.Now().AddDate(10, 0, 0), PINs: applicantPINs})
		d := time.Since(began)
		b.StopTimer()
		if err != nil {
			b.Fatalf("issuance %d: %v (%s)", i, err, translations.ErrorText("ja", err))
		}
		total = append(total, d)
		apdus += ct.n
		caCalls += tca.calls
		var accounted time.Duration
		for k, v := range tca.ph {
			phases[k] = append(phases[k], v)
			accounted += v
		}
		phases["terminal"] = append(phases["terminal"], d-accounted)
		release()
		unplug()
		vcardtest.WaitPresent(b, pc.Readers[0], false)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(quantile(total, 0.5)), "p50-ms")
	b.ReportMetric(ms(quantile(total, 0.95)), "p95-ms")
	b.ReportMetric(ms(quantile(prep, 0.5)), "base-prepare-p50-ms")
	b.ReportMetric(ms(quantile(prep, 0.95)), "base-prepare-p95-ms")
	b.ReportMetric(ms(quantile(perso, 0.5)), "base-perso-p50-ms")
	b.ReportMetric(ms(quantile(perso, 0.95)), "base-perso-p95-ms")
	b.ReportMetric(float64(apdus)/float64(n), "apdus/op")
	b.ReportMetric(float64(caCalls)/float64(n), "ca-calls/op")
	keys := make([]string, 0, len(phases))
	for k := range phases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var line strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&line, " %s=%.1fms", k, ms(quantile(phases[k], 0.5)))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("%d issuances: p50 %.1f ms, p95 %.1f ms; baselines p50/p95: two prepares %.1f/%.1f ms, personalisation %.1f/%.1f ms; phase medians:%s; loadavg %s",
		n, ms(quantile(total, 0.5)), ms(quantile(total, 0.95)), ms(quantile(prep, 0.5)), ms(quantile(prep, 0.95)),
		ms(quantile(perso, 0.5)), ms(quantile(perso, 0.95)), line.String(), strings.TrimSpace(string(load)))
}

// quantile is the nearest-rank quantile q of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// benchCode is the record code of generated resident i (not in the fixtures).
func benchCode(i int) string { return fmt.Sprintf("95%09d", i) }

// benchCounter opens a terminal and returns operator rc1 (Reception, CS; password log-in, so
// no fingerprint service is needed) with residents benchCode(0..n-1) in the register.
func benchCounter(b *testing.B, ca *e2e.CA, n int) (*app.Terminal, *app.Session) {
	b.Helper()
	ctx := context.Background()
	term, err := app.Open(ctx, app.Config{DBPath: filepath.Join(b.TempDir(), "terminal.db"), Fingerprint: auth.NewFake(), Argon2: cheapArgon,
		CA: ca.Client, CACertificates: ca.CACerts})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { term.Close() })
	const pw = "bench-password-1"
	if err := term.Bootstrap(ctx, app.BootstrapRequest{ID: "sup", Name: "管理 太郎", Password: pw, ExemptReason: "benchmark"}); err != nil {
		b.Fatal(err)
	}
	sup, err := term.LoginPassword(ctx, "sup", pw)
	if err != nil {
		b.Fatal(err)
	}
	for _, step := range []error{
		sup.CreateOperator(ctx, "rc1", "受付 花子"),
		sup.Grant(ctx, "rc1", operator.Reception),
		sup.Grant(ctx, "rc1", operator.CS),
		sup.GrantPasswordExemption(ctx, "rc1", "benchmark", pw),
	} {
		if step != nil {
			b.Fatal(step)
		}
	}
	sup.Logout(ctx)
	rc, err := term.LoginPassword(ctx, "rc1", pw)
	if err != nil {
		b.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("record_code,name,name_kana,former_surname,alias_name,alias_kana,birth_date,sex,address,status,fuhyo_address,honseki,foreign_resident\n")
	born := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		fmt.Fprintf(&csv, "%s,試験 太郎,シケン タロウ,,,,%s,M,東京都架空区試験町三丁目%d番%d号,resident,,,0\n",
			benchCode(i), born.AddDate(0, 0, 37*i).Format("2006-01-02"), i/50+1, i%50+1)
	}
	if _, err := rc.ImportResidents(ctx, strings.NewReader(csv.String())); err != nil {
		b.Fatal(err)
	}
	return term, rc
}

// vcardtestPlugIn plugs stock card i (state in a new directory) into reader 0.
func vcardtestPlugIn(b *testing.B, ca *e2e.CA, pc *testenv.PCSC, i int) (*cardio.Card, func()) {
	b.Helper()
	_, stop := vcardtest.PlugIn(b, ca.StockCard(b, i, b.TempDir()), pc.Ports[0], pc.Readers[0])
	return nil, stop
}

// rawPrepares is the CA baseline: for stock card i in reader 0 and resident code, two channel
// opens, INITIALIZE UPDATEs and prepares (user-auth, signature) over mutual TLS, timed; then
// both are aborted (untimed).
func rawPrepares(b *testing.B, ca *e2e.CA, pc *testenv.PCSC, code string, i int) time.Duration {
	b.Helper()
	ctx := context.Background()
	_, unplug := vcardtestPlugIn(b, ca, pc, i)
	defer func() { unplug(); vcardtest.WaitPresent(b, pc.Readers[0], false) }()
	pcard, release := e2e.ConnectCard(b, pc.Readers[0])
	defer release()
	card := cardio.New(pcard)
	serial, err := card.CardSerial(ctx)
	if err != nil {
		b.Fatal(err)
	}
	serialHex := strings.ToUpper(fmt.Sprintf("%X", serial))
	n, _ := strconv.Atoi(code[2:])
	applicant := wire.Applicant{ResidentCode: code, Name: "試験 次郎", NameKana: "シケン ジロウ", Sex: "1",
		BirthDate: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 41*n).Format("2006-01-02"),
		Address:   fmt.Sprintf("東京都架空区基準町%d番", n+1), CardExpiry: time.Now().AddDate(10, 0, 0).Format("2006-01-02")}
	var ids []string
	began := time.Now()
	for _, typ := range []string{"auth", "sign"} {
		ch, err := ca.Client.OpenChannel(ctx, "rc1")
		if err != nil {
			b.Fatal(err)
		}
		iu, err := card.InitializeUpdate(ctx, ch.HostChallenge)
		if err != nil {
			b.Fatal(err)
		}
		id, err := newID()
		if err != nil {
			b.Fatal(err)
		}
		resp, err := ca.Client.Prepare(ctx, "rc1", wire.PrepareRequest{RequestID: id, ChannelID: ch.ChannelID, CardSerial: serialHex,
			InitUpdateResponse: iu, CertType: typ, Applicant: applicant})
		if err != nil {
			b.Fatalf("baseline prepare %s: %v", typ, err)
		}
		ids = append(ids, resp.IssuanceID)
	}
	d := time.Since(began)
	for _, id := range ids {
		if _, err := ca.Client.Abort(ctx, "rc1", id, wire.AbortRequest{RequestID: id + ".a", Reason: "benchmark baseline"}); err != nil {
			b.Fatalf("baseline abort: %v", err)
		}
	}
	return d
}

func newID() (string, error) {
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", r), nil
}

// rawPersonalisation is the card baseline: one personalisation exchange through pcscd + vpcd
// on a new blank card in reader 1, with the software CA of vcardtest (keys and certificates made
// once per test binary).
func rawPersonalisation(b *testing.B, pc *testenv.PCSC, serialByte byte) time.Duration {
	b.Helper()
	ctx := context.Background()
	authKey, signKey := vcardtest.Keys()
	persoPKI.once.Do(func() {
		persoPKI.authCert = vcardtest.Certificate(b, authKey, "user-auth")
		persoPKI.signCert = vcardtest.Certificate(b, signKey, "signature")
		persoPKI.caCert = vcardtest.Certificate(b, signKey, "test CA")
	})
	_, unplug := vcardtest.PlugIn(b, vcardtest.Blank(b, filepath.Join(b.TempDir(), "card.json"), serialByte), pc.Ports[1], pc.Readers[1])
	defer func() { unplug(); vcardtest.WaitPresent(b, pc.Readers[1], false) }()
	pcard, release := e2e.ConnectCard(b, pc.Readers[1])
	defer release()
	api := cardio.New(pcard)
	issuer := vcardtest.Issuer
	began := time.Now()
	err := func() error {
		hc, err := scp.NewHostChallenge(rand.Reader)
		if err != nil {
			return err
		}
		iu, err := api.InitializeUpdate(ctx, hc)
		if err != nil {
			return err
		}
		serial := bytes.Clone(iu[:scp.SerialLen])
		sess, err := scp.NewHostSession(ctx, issuer, hc, iu)
		if err != nil {
			return err
		}
		script, err := perso.BuildIssuanceScript(ctx, sess,
			perso.ImportKey{FID: perso.FIDUserAuthKey, Key: perso.SoftwareKey{Issuer: issuer, Key: authKey}},
			perso.ImportKey{FID: perso.FIDSignatureKey, Key: perso.SoftwareKey{Issuer: issuer, Key: signKey}},
			perso.WriteFile{FID: perso.FIDUserAuthCert, Content: persoPKI.authCert},
			perso.WriteFile{FID: perso.FIDSignatureCert, Content: persoPKI.signCert},
			perso.WriteFile{FID: perso.FIDUserAuthCACert, Content: persoPKI.caCert},
			perso.WriteFile{FID: perso.FIDSignatureCACert, Content: persoPKI.caCert},
		)
		if err != nil {
			return err
		}
		responses, err := api.RunScript(ctx, script.APDUs())
		if err != nil {
			return err
		}
		if _, err := perso.VerifyResponses(sess, script.WithoutAPDUs(), responses); err != nil {
			return err
		}
		if err := api.SetPIN(ctx, cardio.UserAuth, []byte(e2eAuthPIN)); err != nil {
			return err
		}
		if err := api.SetPIN(ctx, cardio.Signature, []byte(e2eSignPIN)); err != nil {
			return err
		}
		if err := api.CheckSerial(ctx, serial); err != nil {
			return err
		}
		if err := api.VerifyPIN(ctx, cardio.Signature, []byte(e2eSignPIN)); err != nil {
			return err
		}
		certs, err := api.ReadCertificates(ctx)
		if err != nil {
			return err
		}
		if !bytes.Equal(certs.UserAuth, persoPKI.authCert) || !bytes.Equal(certs.Signature, persoPKI.signCert) || len(certs.Missing) != 0 {
			return fmt.Errorf("read-back differs")
		}
		return nil
	}()
	d := time.Since(began)
	if err != nil {
		b.Fatalf("baseline personalisation: %v", err)
	}
	return d
}

var persoPKI struct {
	once                       sync.Once
	authCert, signCert, caCert []byte
}

// waitIdle waits until process pid has used (almost) no CPU for 150 ms: the CA's key pool is
// full and its background work done, so the timed issuance starts with the pool warm.
func waitIdle(b *testing.B, pid int) {
	b.Helper()
	ticks := func() int64 {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatal(err)
		}
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		return u + s
	}
	deadline := time.Now().Add(2 * time.Minute)
	quiet := 0
	last := ticks()
	for quiet < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		now := ticks()
		if now-last <= 1 { // ≤ 10 ms of CPU in 50 ms
			quiet++
		} else {
			quiet = 0
		}
		last = now
	}
}

// phaseTimer sums the time of the calls of one issuance by phase.
type phaseTimer map[string]time.Duration

func (p phaseTimer) since(phase string, t time.Time) { p[phase] += time.Since(t) }

// timedCA times the orchestrator's CA calls; methods it does not override pass through.
type timedCA struct {
	issue.CA
	ph    phaseTimer
	calls int
}

func (c *timedCA) OpenChannel(ctx context.Context, op string) (wire.ChannelResponse, error) {
	c.calls++
	defer c.ph.since("ca-channel", time.Now())
	return c.CA.OpenChannel(ctx, op)
}

func (c *timedCA) Prepare(ctx context.Context, op string, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	c.calls++
	defer c.ph.since("ca-prepare", time.Now())
	return c.CA.Prepare(ctx, op, req)
}

func (c *timedCA) Confirm(ctx context.Context, op, id string, req wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	c.calls++
	defer c.ph.since("ca-confirm", time.Now())
	return c.CA.Confirm(ctx, op, id, req)
}

// timedCard times the orchestrator's card calls; methods it does not override pass through.
type timedCard struct {
	issue.Card
	ph phaseTimer
}

func (c *timedCard) CardSerial(ctx context.Context) ([]byte, error) {
	defer c.ph.since("card-serial", time.Now())
	return c.Card.CardSerial(ctx)
}

func (c *timedCard) CheckSerial(ctx context.Context, want []byte) error {
	defer c.ph.since("card-serial", time.Now())
	return c.Card.CheckSerial(ctx, want)
}

func (c *timedCard) InitializeUpdate(ctx context.Context, hc []byte) ([]byte, error) {
	defer c.ph.since("card-initupdate", time.Now())
	return c.Card.InitializeUpdate(ctx, hc)
}

func (c *timedCard) RunScript(ctx context.Context, apdus [][]byte) ([][]byte, error) {
	defer c.ph.since("card-script", time.Now())
	return c.Card.RunScript(ctx, apdus)
}

func (c *timedCard) PINTriesLeft(ctx context.Context, w cardio.Which) (int, error) {
	defer c.ph.since("card-pin", time.Now())
	return c.Card.PINTriesLeft(ctx, w)
}

func (c *timedCard) SetPIN(ctx context.Context, w cardio.Which, pin []byte) error {
	defer c.ph.since("card-pin", time.Now())
	return c.Card.SetPIN(ctx, w, pin)
}

func (c *timedCard) VerifyPIN(ctx context.Context, w cardio.Which, pin []byte) error {
	defer c.ph.since("card-readback", time.Now())
	return c.Card.VerifyPIN(ctx, w, pin)
}

func (c *timedCard) ReadCertificate(ctx context.Context, fid uint16) ([]byte, error) {
	defer c.ph.since("card-readback", time.Now())
	return c.Card.ReadCertificate(ctx, fid)
}

// countingTransport counts the APDUs of one issuance.
type countingTransport struct {
	cardio.Transport
	n int
}

func (c *countingTransport) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	c.n++
	return c.Transport.Transmit(ctx, cmd)
}
