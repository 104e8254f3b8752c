package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/miekg/pkcs11"

	"madoguchi/ca-server/internal/hsmfault"
	"madoguchi/internal/testenv"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// readyServe is an in-process `serve --dev` with an enrolled terminal and
// its metrics listener, for the readiness tests.
type readyServe struct {
	ct      *counterTerminal
	metrics string // http://127.0.0.1:PORT
}

// startReadyServe runs ceremony-init, card-batch (cards cards), a terminal
// token and serve with the store flags (none: SQLite in the data dir), and
// enrols a terminal.
func startReadyServe(t *testing.T, cards int, storeFlags ...string) *readyServe {
	t.Helper()
	testenv.SoftHSM(t)
	data, stock, tok := devCA(t, cards, storeFlags...)
	addrs, _ := serveWithLog(t, append([]string{"--data-dir", data, "--dev", "--listen", "127.0.0.1:0", "--verifier-listen", "127.0.0.1:0",
		"--public-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, storeFlags...)...)
	if addrs["metrics"] == "" {
		t.Fatal("serve printed no metrics address")
	}
	cert, pool := enrolTerminal(t, data, addrs["listening"], tok)
	// One attempt (counterAt): the test must see the 503, not a retry that hides it.
	return &readyServe{ct: counterAt(t, addrs["listening"], cert, pool, stock), metrics: "http://" + addrs["metrics"]}
}

// readyz asks /readyz once.
func (rs *readyServe) readyz(t *testing.T) (int, string) {
	t.Helper()
	return httpGet(t, rs.metrics+"/readyz")
}

// waitReady asks /readyz until it answers want (a generous deadline, not a
// timing requirement: the heal itself is what is tested).
func (rs *readyServe) waitReady(t *testing.T, want int) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, body := rs.readyz(t)
		if code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d, want %d:\n%s", code, want, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// opsSample is what the readiness tests read from /metrics.
type opsSample struct {
	ready     float64 // madoguchi_ready
	hsmErrors float64 // madoguchi_hsm_operation_errors_total, all ops
	faults    float64 // madoguchi_hsm_session_faults_total
}

// scrape reads /metrics and parses it with the Prometheus text parser;
// every series of opsSample must be present (the error counter only once
// an operation failed: zero before).
func (rs *readyServe) scrape(t *testing.T) opsSample {
	t.Helper()
	code, text := httpGet(t, rs.metrics+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	// one series of name, of type typ ("GAUGE", "COUNTER")
	one := func(name, typ string) {
		f := fams[name]
		if f == nil || len(f.Metric) != 1 || f.GetType().String() != typ {
			t.Fatalf("/metrics: %s missing or not one %s series: %v", name, typ, f)
		}
	}
	one("madoguchi_ready", "GAUGE")
	one("madoguchi_hsm_session_faults_total", "COUNTER")
	s := opsSample{
		ready:  fams["madoguchi_ready"].Metric[0].GetGauge().GetValue(),
		faults: fams["madoguchi_hsm_session_faults_total"].Metric[0].GetCounter().GetValue(),
	}
	if f := fams["madoguchi_hsm_operation_errors_total"]; f != nil {
		if f.GetType().String() != "COUNTER" {
			t.Fatalf("madoguchi_hsm_operation_errors_total is a %v", f.GetType())
		}
		for _, m := range f.Metric {
			s.hsmErrors += m.GetCounter().GetValue()
		}
	}
	return s
}

// prepareNow is counterTerminal.prepareNow of a signature certificate: the
// channel is opened before a fault so the prepare itself meets it.
func (rs *readyServe) prepareNow(t *testing.T, card int, resident, reqID string) func() error {
	t.Helper()
	prepare, _ := rs.ct.prepareNow(t, card, "sign", resident, reqID)
	return func() error { _, err := prepare(); return err }
}

// wantUnavailable: err is the API's 503 `unavailable`.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var re *raclient.Error
	if !errors.As(err, &re) || re.Status != http.StatusServiceUnavailable || re.Code != wire.CodeUnavailable {
		t.Fatalf("%s: %v, want 503 %s", what, err, wire.CodeUnavailable)
	}
}

// notOK: the /readyz body names check as failing (and not as "ok").
func notOK(body, check string) bool {
	return strings.Contains(body, check+": ") && !strings.Contains(body, check+": ok")
}

// Issue 14, "readiness flips false and back on HSM loss", through the real
// /readyz of a running serve: the token fails every call (the test-only
// hook at the PKCS#11 call boundary, internal/hsmfault) with
// CKR_DEVICE_ERROR, then with CKR_TOKEN_NOT_PRESENT, for as long as the
// fault lasts. Replacing the session and logging in again does not help
// while it lasts, so /readyz answers 503 naming the HSM (the database
// still ok), a prepare answers 503 `unavailable`, madoguchi_ready is 0 and
// the HSM error and session-fault counters grow. When the fault is lifted
// /readyz answers 200 again and the next issuance (prepare, card script,
// confirm) succeeds in the same process, without a restart.
func TestServeReadinessHSMLoss(t *testing.T) {
	rs := startReadyServe(t, 3)
	rs.ct.issue(t, 0, "sign", "31111111111", "hsm-0")
	if code, body := rs.readyz(t); code != http.StatusOK || !strings.Contains(body, "hsm: ok") || !strings.Contains(body, "database: ok") {
		t.Fatalf("/readyz before the fault: %d %s", code, body)
	}
	before := rs.scrape(t)
	if before.ready != 1 {
		t.Fatalf("madoguchi_ready = %v after a passing /readyz", before.ready)
	}

	for i, rv := range []uint{pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT} {
		resident := fmt.Sprintf("3222222222%d", i)
		prepare := rs.prepareNow(t, i+1, resident, fmt.Sprintf("hsm-lost-%d", i))
		restore := hsmfault.Set(func(op string, s pkcs11.SessionHandle) error { return pkcs11.Error(rv) })
		code, body := rs.readyz(t)
		if code != http.StatusServiceUnavailable || !notOK(body, "hsm") || !strings.Contains(body, "database: ok") {
			restore()
			t.Fatalf("/readyz with the token failing %#x: %d\n%s", rv, code, body)
		}
		perr := prepare()
		during := rs.scrape(t)
		restore()
		wantUnavailable(t, fmt.Sprintf("prepare with the token failing %#x", rv), perr)
		if during.ready != 0 {
			t.Errorf("%#x: madoguchi_ready = %v while /readyz answers 503", rv, during.ready)
		}
		if during.hsmErrors <= before.hsmErrors {
			t.Errorf("%#x: madoguchi_hsm_operation_errors_total %v, not above %v", rv, during.hsmErrors, before.hsmErrors)
		}
		if during.faults <= before.faults {
			t.Errorf("%#x: madoguchi_hsm_session_faults_total %v, not above %v", rv, during.faults, before.faults)
		}

		// The fault lifted: ready again, and the next issuance goes through
		// the same process.
		if body := rs.waitReady(t, http.StatusOK); !strings.Contains(body, "hsm: ok") {
			t.Fatalf("/readyz after the fault: %s", body)
		}
		rs.ct.issue(t, i+1, "sign", resident, fmt.Sprintf("hsm-back-%d", i))
		after := rs.scrape(t)
		if after.ready != 1 {
			t.Errorf("%#x: madoguchi_ready = %v after the HSM came back", rv, after.ready)
		}
		if after.hsmErrors < during.hsmErrors || after.faults < during.faults {
			t.Errorf("%#x: counters went down: %+v after %+v", rv, after, during)
		}
		before = after
	}
}

// Issue 14, "readiness flips false and back on database loss", through the
// real /readyz of a serve on PostgreSQL: the server is stopped (fast
// shutdown: every connection of serve's pool is cut) → /readyz 503 naming
// the database (the HSM still ok), madoguchi_ready 0, and an issuance
// request answers 503 `unavailable`; the server started again on the same
// port → /readyz 200, madoguchi_ready 1, and the next issuance succeeds in
// the same process, without a restart.
func TestServeReadinessPostgresLoss(t *testing.T) {
	pg := testenv.Postgres(t)
	rs := startReadyServe(t, 2, "--database", pg.DSN)
	t.Log("serve started")
	rs.ct.issue(t, 0, "sign", "41111111111", "pg-0")
	if code, body := rs.readyz(t); code != http.StatusOK || !strings.Contains(body, "database: ok") {
		t.Fatalf("/readyz before the outage: %d %s", code, body)
	}
	if s := rs.scrape(t); s.ready != 1 {
		t.Fatalf("madoguchi_ready = %v after a passing /readyz", s.ready)
	}

	t.Log("issued; stopping the database")
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Log("stopped")
	code, body := rs.readyz(t)
	if code != http.StatusServiceUnavailable || !notOK(body, "database") || !strings.Contains(body, "hsm: ok") {
		t.Fatalf("/readyz with the database stopped: %d\n%s", code, body)
	}
	if s := rs.scrape(t); s.ready != 0 {
		t.Errorf("madoguchi_ready = %v while /readyz answers 503", s.ready)
	}
	_, err := rs.ct.client.OpenChannel(context.Background(), "op-1")
	wantUnavailable(t, "open channel with the database stopped", err)

	t.Log("starting the database again")
	pg.Start(t)
	t.Log("started")
	if body := rs.waitReady(t, http.StatusOK); !strings.Contains(body, "database: ok") {
		t.Fatalf("/readyz after the database came back: %s", body)
	}
	t.Log("ready again")
	rs.ct.issue(t, 1, "sign", "42222222222", "pg-1")
	if s := rs.scrape(t); s.ready != 1 {
		t.Errorf("madoguchi_ready = %v after the database came back", s.ready)
	}
}
