// Package traffic bounds what a client the CA has not authenticated, or an
// authenticated one that asks too much, can cost the CA (issue 13, threat
// 4): it counts refused and unauthenticated requests per listener and
// writes one audit summary per listener per interval instead of one record
// per request, keeps per-client token buckets (golang.org/x/time/rate),
// caps connections per listener and per source address, and exposes the
// counters as Prometheus metrics.
//
// Why summaries: CPS §5.4 and TS Art. 20(2) ask for the history of
// operations and of who did them. A request the CA refused before knowing
// who sent it performed nothing and names nobody the CA can vouch for; one
// chained record per such request would let anyone on the network choose
// the content and the growth of the log (and, when the audit store is
// busy, make issuance fail closed). Counts by kind and the busiest source
// addresses keep the evidence of an attack without either.
//
// Every string a summary records is ours (error codes, listener names,
// addresses formatted by net/netip), and Clean escapes and bounds it anyway.
//
// Concurrency: a Guard, a Metrics and the listener Limit returns are safe
// for concurrent use.
package traffic

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"madoguchi/ca-server/audit"
	"madoguchi/internal/wallclock"
)

// Kind names one kind of counted request: an API error code
// ("route_not_found", "client_certificate_required", ...), KindRateLimited
// or KindServed.
type Kind = string

const (
	// KindRateLimited: refused with HTTP 429 because the client's bucket
	// was empty; counted instead of the kind the request would have had.
	KindRateLimited Kind = "rate_limited"
	// KindServed: answered, but to a client nobody authenticated (the
	// public listener).
	KindServed Kind = "served"
)

// SummaryAction is the audit action of a summary record.
const SummaryAction = "traffic.summary"

// Auditor records summaries (audit.Log).
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Clean returns s fit for one audit field: printable characters kept,
// everything else (newlines, escapes, bidi controls, invalid UTF-8) written
// as a Go escape (\n, \x1b, \u202e), a backslash doubled, and the result
// at most max bytes, cut between characters or escapes with "…" marking the
// cut.
func Clean(s string, max int) string {
	const ellipsis = "…"
	var b strings.Builder
	cut := -1 // length of b before the first piece that does not fit with the ellipsis
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && n == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\\':
			piece = `\\`
		case unicode.IsPrint(r):
			piece = s[i : i+n]
		default:
			q := strconv.QuoteRuneToASCII(r)
			piece = q[1 : len(q)-1]
		}
		i += n
		if cut < 0 && b.Len()+len(piece) > max-len(ellipsis) {
			cut = b.Len()
		}
		if b.Len()+len(piece) > max {
			return b.String()[:max0(cut)] + ellipsis
		}
		b.WriteString(piece)
	}
	return b.String()
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// ClientIP is the source address of r without its port, or "-".
func ClientIP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return "-"
	}
	return ap.Addr().Unmap().String()
}

// Rate is one token bucket setting: Per requests per second, Burst at once.
// Per <= 0 means no limit.
type Rate struct {
	Per   float64
	Burst int
}

func (r Rate) String() string { return fmt.Sprintf("%g/s burst %d", r.Per, r.Burst) }

// buckets is a bounded set of token buckets by client key. When it holds
// maxClients keys and none has been idle long enough to drop, new keys
// share one overflow bucket: memory stays bounded, and a flood of fresh
// keys limits only itself and other unknown keys.
type buckets struct {
	rate     Rate
	mu       sync.Mutex
	m        map[string]*bucket
	overflow *rate.Limiter
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

const maxClients = 10_000

func newBuckets(r Rate) *buckets {
	b := &buckets{rate: r, m: map[string]*bucket{}}
	if r.Per > 0 {
		b.overflow = rate.NewLimiter(rate.Limit(r.Per), max(r.Burst, 1))
	}
	return b
}

func (b *buckets) allow(key string, now time.Time) bool {
	if b.rate.Per <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[key]
	if e == nil {
		if len(b.m) >= maxClients {
			// a bucket idle for the time it takes to refill is full again:
			// dropping it forgets nothing
			idle := time.Duration(float64(max(b.rate.Burst, 1))/b.rate.Per*float64(time.Second)) + time.Second
			for k, o := range b.m {
				if now.Sub(o.last) > idle {
					delete(b.m, k)
				}
			}
		}
		if len(b.m) >= maxClients {
			return b.overflow.AllowN(now, 1)
		}
		e = &bucket{lim: rate.NewLimiter(rate.Limit(b.rate.Per), max(b.rate.Burst, 1))}
		b.m[key] = e
	}
	e.last = now
	return e.lim.AllowN(now, 1)
}

// GuardConfig configures a Guard.
type GuardConfig struct {
	Listener string // "api", "verifier", "public": the summary's target and the metrics label
	Audit    Auditor
	// Refusals is the budget of refused requests per source address; over
	// it, a request that would be refused is answered 429 instead.
	Refusals Rate
	// Clients is the budget per client key (authenticated terminal or
	// verifier; source address on the public listener).
	Clients Rate
	Metrics *Metrics // nil: none
	Clock   func() time.Time
	Logger  *slog.Logger
}

// Guard counts one listener's unauthenticated and refused traffic and
// holds its client buckets.
type Guard struct {
	cfg      GuardConfig
	refusals *buckets
	clients  *buckets

	mu      sync.Mutex
	since   time.Time
	kinds   map[Kind]int64
	sources map[string]int64
	other   int64 // requests from sources beyond maxSources
}

// maxSources bounds the distinct source addresses a window remembers; the
// rest are counted together.
const maxSources = 1024

// topSources is how many addresses a summary names.
const topSources = 5

// NewGuard returns a Guard.
func NewGuard(cfg GuardConfig) *Guard {
	if cfg.Clock == nil {
		cfg.Clock = wallclock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Guard{cfg: cfg, refusals: newBuckets(cfg.Refusals), clients: newBuckets(cfg.Clients)}
	g.reset()
	return g
}

func (g *Guard) reset() {
	g.since = g.cfg.Clock()
	g.kinds = map[Kind]int64{}
	g.sources = map[string]int64{}
	g.other = 0
}

// Refuse counts a request refused with kind before its sender was
// authenticated (or an authenticated one over its budget) and reports
// whether the source has used up its budget of refusals: the caller then
// answers 429 instead (counted as KindRateLimited).
func (g *Guard) Refuse(r *http.Request, kind Kind) (limited bool) {
	ip := ClientIP(r)
	if !g.refusals.allow(ip, g.cfg.Clock()) {
		kind, limited = KindRateLimited, true
	}
	g.count(ip, kind)
	g.cfg.Metrics.refused(g.cfg.Listener, kind)
	return limited
}

// Count counts a request of a client nobody authenticated, answered
// (KindServed) or refused with kind, without taking from any budget (the
// public listener, whose requests are budgeted by AllowClient up front).
func (g *Guard) Count(r *http.Request, kind Kind) {
	g.count(ClientIP(r), kind)
	if kind != KindServed {
		g.cfg.Metrics.refused(g.cfg.Listener, kind)
	}
}

// AllowClient takes one token from key's bucket; false means the caller
// answers 429 and counts it with Refuse(r, KindRateLimited).
func (g *Guard) AllowClient(key string) bool { return g.clients.allow(key, g.cfg.Clock()) }

func (g *Guard) count(ip string, kind Kind) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.kinds[kind]++
	if _, ok := g.sources[ip]; ok || len(g.sources) < maxSources {
		g.sources[ip]++
	} else {
		g.other++
	}
}

// Flush writes the summary of the requests counted since the last flush,
// if there were any, as one audit record: Terminal and Operator "-" (no
// actor: nobody was authenticated), Action SummaryAction, Target
// "listener:NAME", Result "counted", Detail the window, counts by kind and
// the busiest source addresses. When the audit write fails the counts are
// kept for the next flush.
func (g *Guard) Flush(ctx context.Context) error {
	g.mu.Lock()
	since, kinds, sources, other := g.since, g.kinds, g.sources, g.other
	g.reset()
	until := g.since
	g.mu.Unlock()
	var total int64
	for _, n := range kinds {
		total += n
	}
	if total == 0 {
		return nil
	}
	e := audit.Entry{Terminal: "-", Operator: "-", Action: SummaryAction, Target: Clean("listener:"+g.cfg.Listener, 64), Result: "counted",
		Detail: Clean(summaryDetail(since, until, total, kinds, sources, other), 1024)}
	if err := g.cfg.Audit.Record(context.WithoutCancel(ctx), e); err != nil {
		g.mu.Lock()
		g.since = since
		for k, n := range kinds {
			g.kinds[k] += n
		}
		for ip, n := range sources {
			if _, ok := g.sources[ip]; ok || len(g.sources) < maxSources {
				g.sources[ip] += n
			} else {
				g.other += n
			}
		}
		g.other += other
		g.mu.Unlock()
		g.cfg.Metrics.summary(g.cfg.Listener, false)
		return fmt.Errorf("traffic: %s summary: %w", g.cfg.Listener, err)
	}
	g.cfg.Metrics.summary(g.cfg.Listener, true)
	return nil
}

type count struct {
	k string
	n int64
}

func sorted(m map[string]int64) []count {
	out := make([]count, 0, len(m))
	for k, n := range m {
		out = append(out, count{k, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n > out[j].n || out[i].n == out[j].n && out[i].k < out[j].k })
	return out
}

func summaryDetail(since, until time.Time, total int64, kinds, sources map[string]int64, other int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests from %s to %s; kinds:", total, since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	for _, c := range sorted(kinds) {
		fmt.Fprintf(&b, " %s=%d", c.k, c.n)
	}
	b.WriteString("; sources:")
	srcs := sorted(sources)
	for i, c := range srcs {
		if i == topSources {
			break
		}
		fmt.Fprintf(&b, " %s=%d", c.k, c.n)
	}
	if rest := len(srcs) - topSources; rest > 0 || other > 0 {
		var n int64 = other
		for _, c := range srcs[min(topSources, len(srcs)):] {
			n += c.n
		}
		fmt.Fprintf(&b, " others=%d", n)
	}
	return b.String()
}

// Run flushes every interval until ctx ends, and once more then; errors go
// to the logger (a failed summary is retried with the next one).
func (g *Guard) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := g.Flush(context.WithoutCancel(ctx)); err != nil {
				g.cfg.Logger.Error("traffic: summary", "err", err)
			}
			return
		case <-t.C:
			if err := g.Flush(ctx); err != nil {
				g.cfg.Logger.Error("traffic: summary", "err", err)
			}
		}
	}
}

// Limited counts a request of an authenticated client refused with 429
// because its own bucket was empty (AllowClient false). It does not take
// from the source address's budget of refusals.
func (g *Guard) Limited(r *http.Request) {
	g.count(ClientIP(r), KindRateLimited)
	g.cfg.Metrics.refused(g.cfg.Listener, KindRateLimited)
}
