package traffic_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/traffic"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain /v1/issuances":    "plain /v1/issuances",
		"a\nb\r\x1b[31m":         `a\nb\r\x1b[31m`,
		"\u202eevil":             `\u202eevil`,
		"bad\xffutf8":            `bad\xffutf8`,
		`back\slash`:             `back\\slash`,
		"髙橋":                     "髙橋",
		strings.Repeat("x", 50):  strings.Repeat("x", 17) + "…",
		strings.Repeat("\n", 50): strings.Repeat(`\n`, 8) + "…",
		strings.Repeat("y", 20):  strings.Repeat("y", 20),
		strings.Repeat("髙", 10):  strings.Repeat("髙", 5) + "…",
	} {
		got := traffic.Clean(in, 20)
		if got != want || len(got) > 20 {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
		if strings.ContainsAny(got, "\n\r\x1b") {
			t.Errorf("Clean(%q) kept a control character", in)
		}
	}
}

func TestCheckMetricsAddr(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:9464": true, "[::1]:9464": true, "localhost:9464": true, "127.0.0.2:1": true,
		"0.0.0.0:9464": false, ":9464": false, "10.0.0.5:9464": false, "[::]:9464": false, "metrics.example:9464": false, "nonsense": false} {
		err := traffic.CheckMetricsAddr(addr, false)
		if (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
		if ok == false && addr != "nonsense" && !errors.Is(err, traffic.ErrMetricsNotLoopback) {
			t.Errorf("%s: %v, want ErrMetricsNotLoopback", addr, err)
		}
	}
	if err := traffic.CheckMetricsAddr("0.0.0.0:9464", true); err != nil {
		t.Errorf("allowed remote: %v", err)
	}
}

type recorder struct {
	mu   sync.Mutex
	recs []audit.Entry
	fail error
}

func (r *recorder) Record(_ context.Context, e audit.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.recs = append(r.recs, e)
	return nil
}

func req(ip string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = ip + ":40000"
	return r
}

// One summary per flush with counts by kind and the busiest addresses; a
// failed write keeps the counts for the next; nothing counted, no record.
func TestGuardSummaries(t *testing.T) {
	rec := &recorder{}
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	m, err := traffic.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	g := traffic.NewGuard(traffic.GuardConfig{Listener: "api", Audit: rec, Refusals: traffic.Rate{Per: 1, Burst: 3}, Metrics: m,
		Clock: func() time.Time { return now }})
	if err := g.Flush(context.Background()); err != nil || len(rec.recs) != 0 {
		t.Fatalf("empty flush: %v %d", err, len(rec.recs))
	}
	var limited int
	for i := range 5 {
		if g.Refuse(req("192.0.2.1"), "route_not_found") {
			limited++
		}
		g.Refuse(req(fmt.Sprintf("198.51.100.%d", i)), "client_certificate_required")
	}
	for i := range 10 {
		g.Refuse(req(fmt.Sprintf("203.0.113.%d", i)), "method_not_allowed")
	}
	if limited != 2 {
		t.Fatalf("%d limited, want 2 over a burst of 3", limited)
	}
	rec.fail = errors.New("store busy")
	if err := g.Flush(context.Background()); err == nil {
		t.Fatal("failed write not reported")
	}
	rec.fail = nil
	g.Refuse(req("192.0.2.1"), "route_not_found") // still limited: 3 of 3 used
	now = now.Add(time.Minute)
	if err := g.Flush(context.Background()); err != nil || len(rec.recs) != 1 {
		t.Fatalf("flush: %v, %d records", err, len(rec.recs))
	}
	e := rec.recs[0]
	for _, want := range []string{"21 requests from 2026-12-07T03:00:00Z to 2026-12-07T03:01:00Z", " method_not_allowed=10", " client_certificate_required=5",
		" route_not_found=3", " rate_limited=3", "sources: 192.0.2.1=6 ", " others="} {
		if !strings.Contains(e.Detail, want) {
			t.Errorf("detail lacks %q: %s", want, e.Detail)
		}
	}
	if e.Terminal != "-" || e.Operator != "-" || e.Action != traffic.SummaryAction || e.Target != "listener:api" || strings.Count(e.Detail, "=") != 4+6 {
		t.Errorf("summary %+v", e)
	}
	if err := g.Flush(context.Background()); err != nil || len(rec.recs) != 1 {
		t.Fatalf("second flush wrote %d records: %v", len(rec.recs), err)
	}
	mf, _ := reg.Gather()
	var refused float64
	for _, f := range mf {
		if f.GetName() == "madoguchi_http_requests_refused_total" {
			for _, mm := range f.GetMetric() {
				refused += mm.GetCounter().GetValue()
			}
		}
	}
	if refused != 21 {
		t.Errorf("refused counter %v, want 21", refused)
	}
}

// Per-client buckets: a client over its budget is refused; many fresh
// keys share one overflow bucket instead of growing memory.
func TestClientBuckets(t *testing.T) {
	now := time.Now()
	g := traffic.NewGuard(traffic.GuardConfig{Listener: "verifier", Audit: &recorder{}, Clients: traffic.Rate{Per: 0.001, Burst: 2},
		Clock: func() time.Time { return now }})
	if !g.AllowClient("a") || !g.AllowClient("a") || g.AllowClient("a") || !g.AllowClient("b") {
		t.Fatal("budget per client")
	}
	allowed := 0
	for i := range 20_000 {
		if g.AllowClient(fmt.Sprintf("k%d", i)) {
			allowed++
		}
	}
	// 9,998 fresh keys fit (10,000 minus a and b), each with its own
	// bucket; the rest share one bucket of burst 2
	if allowed != 9_998+2 {
		t.Fatalf("%d fresh keys allowed", allowed)
	}
	unlimited := traffic.NewGuard(traffic.GuardConfig{Listener: "x", Audit: &recorder{}})
	for range 1000 {
		if !unlimited.AllowClient("a") || unlimited.Refuse(req("192.0.2.9"), "route_not_found") {
			t.Fatal("a guard without limits limited")
		}
	}
}

// Connections over a cap are closed at accept and counted.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, _ := traffic.NewMetrics(reg)
	ln := traffic.Limit(inner, "api", traffic.ConnLimits{Total: 3, PerAddress: 2}, m)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	a1, a2 := <-accepted, <-accepted
	over := dial() // third from 127.0.0.1: over the per-address cap
	over.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Fatalf("connection over the cap: %v, want closed", err)
	}
	a1.Close()
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("a slot freed by Close was not reused")
	}
	a2.Close()
	out, _ := reg.Gather()
	found := false
	for _, f := range out {
		if f.GetName() == "madoguchi_http_connections_refused_total" {
			for _, mm := range f.GetMetric() {
				found = found || mm.GetCounter().GetValue() == 1
			}
		}
	}
	if !found {
		t.Fatal("refused connection not counted")
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }
