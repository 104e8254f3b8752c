package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus"

	"madoguchi/ca-server/crl"
	"madoguchi/ca-server/hsm"
)

// newLogger is serve's structured log on stderr: text for a console, JSON
// (one object per line, log/slog) for a collector. Nothing that reaches it
// carries personal data or secrets: requests are logged by action, terminal
// and request id; PINs and shares are never in a value handed to a logger
// (the HSM's kept PIN prints "[redacted]", hsm/heal.go).
func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q (want text or json)", errUsage, format)
}

// applyConfigFile sets, after the command line was parsed, every flag of fs
// named in the config file that the command line did not set: flags win. The file is TOML (github.com/BurntSushi/toml,
// already in the module graph through the Fyne toolchain, a strict parser
// with line numbers in its errors): one `name = value` per flag, the flag
// name without dashes; strings quoted, numbers and booleans bare, durations
// as strings ("5m"), a repeated flag (share) as an array. An unknown key, a
// table, or a value the flag refuses is a usage error: a typo must not
// silently leave a default in force.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		return fmt.Errorf("%w: --config %s: %v", errUsage, path, err)
	}
	_ = md
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return fmt.Errorf("%w: --config %s: unknown setting %q", errUsage, path, k)
		}
		if set[k] {
			continue // the command line wins
		}
		var vals []any
		switch v := raw[k].(type) {
		case []any:
			vals = v
		case map[string]any:
			return fmt.Errorf("%w: --config %s: %q is a table, want a value", errUsage, path, k)
		default:
			vals = []any{v}
		}
		for _, v := range vals {
			var s string
			switch v := v.(type) {
			case string:
				s = v
			case int64:
				s = strconv.FormatInt(v, 10)
			case float64:
				s = strconv.FormatFloat(v, 'g', -1, 64)
			case bool:
				s = strconv.FormatBool(v)
			default:
				return fmt.Errorf("%w: --config %s: %q has a value of type %T", errUsage, path, k, v)
			}
			if err := fs.Set(k, s); err != nil {
				return fmt.Errorf("%w: --config %s: %s: %v", errUsage, path, k, err)
			}
		}
	}
	return nil
}

// opsMetrics are serve's operational series on the one registry of
// serve_traffic.go (the same /metrics):
//
//	madoguchi_requests_total{family,op,code}            family: issuance, revocation, ocsp
//	madoguchi_request_duration_seconds{family,op}        histogram
//	madoguchi_hsm_operation_duration_seconds{op}         histogram, including the wait for a session
//	madoguchi_hsm_operation_errors_total{op}
//	madoguchi_hsm_session_faults_total                   sessions replaced after a fault
//	madoguchi_key_pool_ready                             pre-generated user keys ready (--key-pool)
//	madoguchi_lease_holder{job}                          1 while this replica holds the job's lease
//	madoguchi_crl_newest_age_seconds{series}             now − thisUpdate of the newest CRL/ARL
//	madoguchi_audit_uncheckpointed_records               audit records after the newest checkpoint
//	madoguchi_ready                                      1 when /readyz answers 200
type opsMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	hsmTime  *prometheus.HistogramVec
	hsmErrs  *prometheus.CounterVec
	ready    prometheus.Gauge
	logger   *slog.Logger

	mu     sync.Mutex
	checks []readyCheck
}

// readyCheck is one condition of /readyz.
type readyCheck struct {
	name  string
	check func(context.Context) error
}

func newOpsMetrics(reg *prometheus.Registry, logger *slog.Logger) (*opsMetrics, error) {
	m := &opsMetrics{reg: reg, logger: logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "madoguchi_requests_total",
			Help: "Issuance, revocation and OCSP requests served, by family, operation and HTTP status."}, []string{"family", "op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "madoguchi_request_duration_seconds",
			Help: "Time to answer issuance, revocation and OCSP requests.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"family", "op"}),
		hsmTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "madoguchi_hsm_operation_duration_seconds",
			Help: "PKCS#11 operations, including the wait for a pool session.", Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 30}}, []string{"op"}),
		hsmErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "madoguchi_hsm_operation_errors_total",
			Help: "PKCS#11 operations that failed (after the one retry where it is safe)."}, []string{"op"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "madoguchi_ready", Help: "1 when the last /readyz check passed."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.hsmTime, m.hsmErrs, m.ready} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("serve: metrics: %w", err)
		}
	}
	return m, nil
}

// scheduledJobs are the jobs serve runs on a schedule, all under the one job
// lease (fleet.Lease, jobsLease): only its holder runs them.
var scheduledJobs = []string{"sweeper", "crl-publication", "change-checks", "audit-checkpoint", "audit-backup", "ocsp-responder-rotation"}

// leaseHolder exports madoguchi_lease_holder{job}: 1 while held() says this
// replica holds the job lease, else 0 (a replica that is not activated
// never competes: held is nil).
func (m *opsMetrics) leaseHolder(held func() bool) {
	for _, job := range scheduledJobs {
		m.gaugeFunc(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "madoguchi_lease_holder",
			Help: "1 while this replica holds the lease of a scheduled job, else 0.", ConstLabels: prometheus.Labels{"job": job}},
			func() float64 {
				if held != nil && held() {
					return 1
				}
				return 0
			}))
	}
}

// observeHSM is the hsm.Observer of the activated token.
func (m *opsMetrics) observeHSM(op string, took time.Duration, err error) {
	m.hsmTime.WithLabelValues(op).Observe(took.Seconds())
	if err != nil {
		m.hsmErrs.WithLabelValues(op).Inc()
	}
}

// watchHSM feeds h's operations and faults to the metrics and makes
// readiness depend on it.
func (m *opsMetrics) watchHSM(h *hsm.HSM) {
	h.SetObserver(m.observeHSM)
	m.gaugeFunc(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "madoguchi_hsm_session_faults_total",
		Help: "HSM sessions replaced after a session, device, token or login fault."}, func() float64 { return float64(h.Faults()) }))
	m.addCheck("hsm", h.Check)
}

// gaugeFunc registers a function collector, logging (not failing) a clash.
func (m *opsMetrics) gaugeFunc(c prometheus.Collector) {
	if err := m.reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		m.logger.Error("serve: metrics", "err", err)
	}
}

// gaugeFromStore registers a gauge read from f with a bounded query time.
func (m *opsMetrics) gaugeFromStore(name, help string, labels prometheus.Labels, f func(context.Context) (float64, error)) {
	m.gaugeFunc(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		v, err := f(ctx)
		if err != nil {
			return -1 // unknown; the readiness check says why
		}
		return v
	}))
}

func (m *opsMetrics) addCheck(name string, f func(context.Context) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checks = append(m.checks, readyCheck{name, f})
}

// readiness runs every check; the result lists each with "ok" or its error.
func (m *opsMetrics) readiness(ctx context.Context) (bool, []string) {
	m.mu.Lock()
	checks := slices.Clone(m.checks)
	m.mu.Unlock()
	ok := len(checks) > 0
	lines := []string{}
	if len(checks) == 0 {
		lines = append(lines, "not activated: no checks registered")
	}
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.check(cctx)
		cancel()
		if err != nil {
			ok = false
			lines = append(lines, c.name+": "+err.Error())
		} else {
			lines = append(lines, c.name+": ok")
		}
	}
	if ok {
		m.ready.Set(1)
	} else {
		m.ready.Set(0)
	}
	return ok, lines
}

// handler adds /livez and /readyz to the metrics handler. They live on the
// metrics listener, loopback by default, because they say what is broken
// (the database is read-only, the HSM lost its session) and cost an HSM
// and a database round trip: a load balancer or systemd watchdog on the
// host asks them, the counters' network never can. /livez answers 200
// while the process can answer at all (restart it otherwise); /readyz
// answers 200 only when this replica can issue: the HSM activated and
// usable, the database reachable and writable, its schema current (take
// it out of the pool otherwise; it heals by itself).
func (m *opsMetrics) handler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, lines := m.readiness(r.Context())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, strings.Join(lines, "\n")+"\n")
	})
	return mux
}

// route names the family and operation of a request path for the
// metrics; "" for paths not counted (enrolment, audit heads, CA files).
func route(method, path string) (family, op string) {
	switch {
	case path == "/v1/channels":
		return "issuance", "channel"
	case path == "/v1/issuances" && method == http.MethodPost:
		return "issuance", "prepare"
	case strings.HasPrefix(path, "/v1/issuances/"):
		switch {
		case strings.HasSuffix(path, "/confirm"):
			return "issuance", "confirm"
		case strings.HasSuffix(path, "/abort"):
			return "issuance", "abort"
		}
		return "issuance", "status"
	case strings.HasPrefix(path, "/v1/card-maintenance"):
		return "issuance", "card-maintenance"
	case strings.HasPrefix(path, "/v1/certificates/"):
		switch {
		case strings.HasSuffix(path, "/revoke"):
			return "revocation", "revoke"
		case strings.HasSuffix(path, "/release-hold"):
			return "revocation", "release-hold"
		}
	case path == "/v1/resident-changes":
		return "revocation", "resident-change"
	case strings.HasPrefix(path, "/ocsp/"):
		return "ocsp", strings.TrimPrefix(path, "/ocsp/")
	}
	return "", ""
}

// instrument counts and times the requests of h by route.
func (m *opsMetrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		family, op := route(r.Method, r.URL.Path)
		if family == "" {
			h.ServeHTTP(w, r)
			return
		}
		if family == "ocsp" && !slices.Contains([]string{"signature", "user-auth"}, op) {
			op = "other" // bounded label values
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		m.duration.WithLabelValues(family, op).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(family, op, strconv.Itoa(sw.code)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// storeReadiness is what the store offers /readyz and the metrics.
type storeReadiness interface {
	Ready(ctx context.Context) error
	UncheckpointedAuditRecords(ctx context.Context) (int64, error)
}

// watchStore makes readiness depend on the store and exposes its audit
// backlog.
func (m *opsMetrics) watchStore(st any) {
	sr, ok := st.(storeReadiness)
	if !ok {
		return
	}
	m.addCheck("database", sr.Ready)
	m.gaugeFromStore("madoguchi_audit_uncheckpointed_records", "Audit records after the newest signed checkpoint (-1: unknown).", nil,
		func(ctx context.Context) (float64, error) {
			n, err := sr.UncheckpointedAuditRecords(ctx)
			return float64(n), err
		})
}

// crlSource is what the CRL age gauge reads: the newest CRL of a series.
type crlSource interface {
	CurrentCRL(series string) (io.ReadCloser, crl.Meta, error)
}

// crlAge exposes, per series, the age of the newest CRL or ARL every
// replica serves (a stalled publication shows as a growing age long before
// nextUpdate passes).
func (t *serveTraffic) crlAge(src crlSource, series ...string) {
	for _, s := range series {
		t.ops.gaugeFromStore("madoguchi_crl_newest_age_seconds", "Seconds since thisUpdate of the newest CRL/ARL of a series (-1: none yet).", prometheus.Labels{"series": s},
			func(context.Context) (float64, error) {
				rc, meta, err := src.CurrentCRL(s)
				if err != nil {
					return 0, err
				}
				rc.Close()
				return time.Since(meta.ThisUpdate).Seconds(), nil
			})
	}
}
