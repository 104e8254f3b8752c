package traffic

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the traffic counters, on a registry of the caller's (serve
// has its own, not the global default one). A nil *Metrics counts nothing.
type Metrics struct {
	refusedRequests *prometheus.CounterVec
	refusedConns    *prometheus.CounterVec
	openConns       *prometheus.GaugeVec
	summaries       *prometheus.CounterVec
}

// NewMetrics registers the traffic series on reg:
//
//	madoguchi_http_requests_refused_total{listener,kind}
//	madoguchi_http_connections_refused_total{listener,reason}   reason: total, per_address
//	madoguchi_http_connections_open{listener}
//	madoguchi_audit_traffic_summaries_total{listener,result}     result: written, failed
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		refusedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "madoguchi_http_requests_refused_total",
			Help: "Requests refused before or instead of being served, by listener and kind (error code or rate_limited)."}, []string{"listener", "kind"}),
		refusedConns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "madoguchi_http_connections_refused_total",
			Help: "Connections closed at accept because a connection cap was reached."}, []string{"listener", "reason"}),
		openConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "madoguchi_http_connections_open",
			Help: "Connections open on a listener."}, []string{"listener"}),
		summaries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "madoguchi_audit_traffic_summaries_total",
			Help: "Audit summary records of refused and unauthenticated traffic, written or failed."}, []string{"listener", "result"}),
	}
	for _, c := range []prometheus.Collector{m.refusedRequests, m.refusedConns, m.openConns, m.summaries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("traffic: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) refused(listener string, kind Kind) {
	if m != nil {
		m.refusedRequests.WithLabelValues(listener, kind).Inc()
	}
}

func (m *Metrics) connRefused(listener, reason string) {
	if m != nil {
		m.refusedConns.WithLabelValues(listener, reason).Inc()
	}
}

func (m *Metrics) connOpen(listener string, d float64) {
	if m != nil {
		m.openConns.WithLabelValues(listener).Add(d)
	}
}

func (m *Metrics) summary(listener string, ok bool) {
	if m != nil {
		r := "written"
		if !ok {
			r = "failed"
		}
		m.summaries.WithLabelValues(listener, r).Inc()
	}
}

// ErrMetricsNotLoopback refuses a metrics address that is not a loopback
// address unless explicitly allowed.
var ErrMetricsNotLoopback = errors.New("traffic: metrics address is not a loopback address")

// CheckMetricsAddr accepts host:port whose host is a loopback IP address
// (127.0.0.0/8, ::1) or "localhost"; any other host, or an empty one (all
// interfaces), only with allowRemote. The metrics name listeners and
// counts of refusals, which tell an attacker what is being noticed.
func CheckMetricsAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("traffic: metrics address %q: %w", addr, err)
	}
	if allowRemote || host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrMetricsNotLoopback, addr)
}

// MetricsHandler serves reg's metrics in the Prometheus text format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}
