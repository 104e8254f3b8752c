package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"madoguchi/ca-server/ocsp"
	"madoguchi/ca-server/traffic"
)

// rateFlag is a traffic.Rate written PER_SECOND,BURST (e.g. "10,100").
type rateFlag struct{ r *traffic.Rate }

func (f rateFlag) String() string {
	if f.r == nil {
		return ""
	}
	return strconv.FormatFloat(f.r.Per, 'g', -1, 64) + "," + strconv.Itoa(f.r.Burst)
}

func (f rateFlag) Set(s string) error {
	per, burst, ok := strings.Cut(s, ",")
	p, err1 := strconv.ParseFloat(per, 64)
	b, err2 := strconv.Atoi(burst)
	if !ok || err1 != nil || err2 != nil || p <= 0 || b < 1 || p > 1e6 || b > 1e6 {
		return fmt.Errorf("want PER_SECOND,BURST with both > 0, e.g. 10,100")
	}
	*f.r = traffic.Rate{Per: p, Burst: b}
	return nil
}

// trafficFlags are serve's flags bounding what clients can cost (issue 13
// threat 4). The defaults, and why:
//
//   - refusals per source address 1/s, burst 60: an honest client is
//     refused rarely (an expired certificate, a mistyped enrolment token)
//     and a burst of 60 covers a terminal retrying for a minute; beyond,
//     429.
//   - requests per authenticated terminal 10/s, burst 100: an issuance or
//     a card maintenance is 3–4 requests over a minute; the burst covers a
//     terminal catching up after an outage.
//   - requests per registered verifier 100/s, burst 200: OCSP answers come
//     from the cache, but each request is one audit record (CPS §5.5.1.2:
//     OCSP inquiry history), so the budget bounds a verifier's share of
//     the audit store.
//   - requests per source address on the public listener 5/s, burst 50:
//     the ARL and the CA certificates change at most daily.
//   - 512 connections per listener, 128 from one address: a municipality's
//     counters behind one NAT address hold a few keep-alive connections
//     each; 512 TLS connections are a few tens of MiB at most.
//   - one summary per listener per minute (the interval).
type trafficFlags struct {
	refusals, terminal, verifier, public traffic.Rate
	conns                                traffic.ConnLimits
	summaryEvery                         time.Duration
	ocspCacheBytes                       int64
	metricsListen                        string
	metricsAllowRemote                   bool
}

func registerTrafficFlags(fs *flag.FlagSet) *trafficFlags {
	f := &trafficFlags{
		refusals: traffic.Rate{Per: 1, Burst: 60}, terminal: traffic.Rate{Per: 10, Burst: 100},
		verifier: traffic.Rate{Per: 100, Burst: 200}, public: traffic.Rate{Per: 5, Burst: 50},
	}
	fs.Var(rateFlag{&f.refusals}, "limit-refusals", "PER_SECOND,BURST: requests refused before authentication (bad route, method, certificate, enrolment) per source address, on every listener; beyond, 429")
	fs.Var(rateFlag{&f.terminal}, "limit-terminal", "PER_SECOND,BURST: requests per authenticated terminal; beyond, 429")
	fs.Var(rateFlag{&f.verifier}, "limit-verifier", "PER_SECOND,BURST: requests per registered verifier (CRLs, OCSP); beyond, 429 (OCSP: tryLater)")
	fs.Var(rateFlag{&f.public}, "limit-public", "PER_SECOND,BURST: requests per source address on the public listener; beyond, 429")
	fs.IntVar(&f.conns.Total, "max-conns", 512, "connections open at once per listener; more are closed at accept")
	fs.IntVar(&f.conns.PerAddress, "max-conns-per-address", 128, "connections open at once from one source address per listener")
	fs.DurationVar(&f.summaryEvery, "traffic-summary-every", time.Minute, "how often each listener writes its audit summary of refused and unauthenticated requests (when there were any)")
	fs.Int64Var(&f.ocspCacheBytes, "ocsp-cache-bytes", ocsp.DefaultMaxCacheBytes, "bound of each OCSP responder's cache of signed answers, in bytes")
	fs.StringVar(&f.metricsListen, "metrics-listen", "127.0.0.1:9464", "address of the plain-HTTP Prometheus /metrics listener; a loopback address unless --metrics-allow-remote; empty: off")
	fs.BoolVar(&f.metricsAllowRemote, "metrics-allow-remote", false, "allow a --metrics-listen address that is not loopback (the metrics are unauthenticated)")
	return f
}

func (f *trafficFlags) check() error {
	if f.conns.Total < 1 || f.conns.PerAddress < 1 || f.conns.PerAddress > f.conns.Total || f.summaryEvery < time.Second || f.ocspCacheBytes < 64<<10 {
		return fmt.Errorf("%w: --max-conns ≥ 1, 1 ≤ --max-conns-per-address ≤ --max-conns, --traffic-summary-every ≥ 1s, --ocsp-cache-bytes ≥ 65536", errUsage)
	}
	if f.metricsListen != "" {
		if err := traffic.CheckMetricsAddr(f.metricsListen, f.metricsAllowRemote); err != nil {
			return fmt.Errorf("%w: --metrics-listen: %v (use --metrics-allow-remote to allow it)", errUsage, err)
		}
	}
	return nil
}

// serveTraffic is the traffic side of a running serve: the metrics
// registry and listener, and the guards' summary flushers.
type serveTraffic struct {
	f       *trafficFlags
	reg     *prometheus.Registry
	metrics *traffic.Metrics
	ops     *opsMetrics // serve_ops.go: requests, HSM, readiness
	audit   traffic.Auditor
	logger  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	srv    *http.Server
}

// startTraffic starts the metrics listener. stop ends the flushers (each
// writes its last summary) and the metrics listener: call it after the
// HTTP servers stop and before the audit log and the store close.
func startTraffic(ctx context.Context, f *trafficFlags, audit traffic.Auditor, logger *slog.Logger, stdout io.Writer) (*serveTraffic, error) {
	t := &serveTraffic{f: f, reg: prometheus.NewRegistry(), audit: audit, logger: logger}
	var err error
	if t.metrics, err = traffic.NewMetrics(t.reg); err != nil {
		return nil, err
	}
	if t.ops, err = newOpsMetrics(t.reg, logger); err != nil {
		return nil, err
	}
	// The runtime and the process: go_goroutines, go_memstats_*,
	// process_resident_memory_bytes, process_open_fds. A leak shows in
	// them first (issue 15, the soak samples them).
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := t.reg.Register(c); err != nil {
			return nil, err
		}
	}
	t.ctx, t.cancel = context.WithCancel(ctx)
	if f.metricsListen != "" {
		ln, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			t.cancel()
			return nil, err
		}
		t.srv = &http.Server{Handler: t.ops.handler(traffic.MetricsHandler(t.reg)), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 8 << 10}
		go t.srv.Serve(traffic.Limit(ln, "metrics", traffic.ConnLimits{Total: 16}, t.metrics))
		fmt.Fprintf(stdout, "ca-server: metrics on http://%s/metrics (health: /livez, /readyz)\n", ln.Addr())
	}
	return t, nil
}

// guard returns the running guard of a listener, with clients as the
// per-client budget.
func (t *serveTraffic) guard(listener string, clients traffic.Rate) *traffic.Guard {
	g := traffic.NewGuard(traffic.GuardConfig{Listener: listener, Audit: t.audit, Refusals: t.f.refusals, Clients: clients,
		Metrics: t.metrics, Logger: t.logger})
	t.wg.Add(1)
	go func() { defer t.wg.Done(); g.Run(t.ctx, t.f.summaryEvery) }()
	return g
}

// listen opens addr with the connection caps.
func (t *serveTraffic) listen(addr, listener string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return traffic.Limit(ln, listener, t.f.conns, t.metrics), nil
}

// ocspMetrics exposes a responder's own accounting.
func (t *serveTraffic) ocspMetrics(ca string, r *ocsp.Responder) {
	labels := prometheus.Labels{"ca": ca}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "madoguchi_ocsp_cache_bytes", Help: "Bytes of signed OCSP answers cached (bounded by --ocsp-cache-bytes).", ConstLabels: labels},
			func() float64 { return float64(r.Stats().Bytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "madoguchi_ocsp_signatures_total", Help: "OCSP answers signed with the responder key.", ConstLabels: labels},
			func() float64 { return float64(r.Stats().Signatures) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "madoguchi_ocsp_cache_evictions_total", Help: "OCSP answers evicted to keep the cache within its bound.", ConstLabels: labels},
			func() float64 { return float64(r.Stats().Evictions) }),
	} {
		if err := t.reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			t.logger.Error("serve: OCSP metrics", "ca", ca, "err", err)
		}
	}
}

func (t *serveTraffic) stop() {
	t.cancel()
	t.wg.Wait()
	if t.srv != nil {
		c, cc := context.WithTimeout(context.Background(), 5*time.Second)
		t.srv.Shutdown(c)
		cc()
	}
}
