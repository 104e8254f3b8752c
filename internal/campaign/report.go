package campaign

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Report is the per-kind table of a run.
type Report struct {
	Seed          uint64
	DB            string
	Started       time.Time
	Elapsed       time.Duration
	EndViolations int
	StoppedEarly  bool // the time limit came before the requested count
	Requested     int
	rows          map[Kind]*row
	ops           map[string]int
}

type row struct {
	injected, fired, delivered, revoked, notIssued, partial, lost, dup, violations int
	times                                                                          []time.Duration
}

// NewReport starts an empty report.
func NewReport(seed uint64, db string) *Report {
	return &Report{Seed: seed, DB: db, Started: time.Now().UTC(), rows: map[Kind]*row{}, ops: map[string]int{}}
}

// Add counts one case.
func (r *Report) Add(c CaseResult) {
	rw := r.rows[c.Fault.Kind]
	if rw == nil {
		rw = &row{}
		r.rows[c.Fault.Kind] = rw
	}
	r.ops[c.Op]++
	rw.injected++
	if c.Fired {
		rw.fired++
	}
	switch c.Outcome {
	case "delivered":
		rw.delivered++
	case "revoked":
		rw.revoked++
	case "not-issued":
		rw.notIssued++
	case "partial":
		rw.partial++
	}
	rw.lost += c.Lost
	rw.dup += c.Dup
	if len(c.Violations) > 0 {
		rw.violations++
	}
	rw.times = append(rw.times, c.Resolve)
}

// Cases is the number of cases counted.
func (r *Report) Cases() int {
	n := 0
	for _, rw := range r.rows {
		n += rw.injected
	}
	return n
}

// Totals returns lost, duplicated and violations over all kinds (end-of-run ones included).
func (r *Report) Totals() (lost, dup, violations int) {
	for _, rw := range r.rows {
		lost += rw.lost
		dup += rw.dup
		violations += rw.violations
	}
	return lost, dup, violations + r.EndViolations
}

func quantile(ts []time.Duration, q float64) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

// Table writes the Markdown table: one row per kind injected, then the total.
func (r *Report) Table(w io.Writer) {
	fmt.Fprintln(w, "| fault kind | injected | fired | recovered delivered | recovered revoked | nothing issued | lost | duplicated | invariant violations | median resolution | p99 resolution |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var all []time.Duration
	tot := row{}
	for _, k := range AllKinds {
		rw := r.rows[k]
		if rw == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", k, rw.injected, rw.fired, rw.delivered, rw.revoked, rw.notIssued+rw.partial,
			rw.lost, rw.dup, rw.violations, secs(quantile(rw.times, 0.5)), secs(quantile(rw.times, 0.99)))
		all = append(all, rw.times...)
		tot.injected += rw.injected
		tot.fired += rw.fired
		tot.delivered += rw.delivered
		tot.revoked += rw.revoked
		tot.notIssued += rw.notIssued + rw.partial
		tot.lost += rw.lost
		tot.dup += rw.dup
		tot.violations += rw.violations
	}
	fmt.Fprintf(w, "| **all** | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", tot.injected, tot.fired, tot.delivered, tot.revoked, tot.notIssued,
		tot.lost, tot.dup, tot.violations+r.EndViolations, secs(quantile(all, 0.5)), secs(quantile(all, 0.99)))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// Summary is the heading line of a run: date, seed, database, cases, operations, machine.
func (r *Report) Summary() string {
	host, _ := os.Hostname()
	ops := make([]string, 0, len(r.ops))
	for op, n := range r.ops {
		ops = append(ops, fmt.Sprintf("%d %s", n, op))
	}
	sort.Strings(ops)
	cases := fmt.Sprint(r.Cases())
	if r.StoppedEarly {
		cases = fmt.Sprintf("%d of the %d requested (stopped at the time limit)", r.Cases(), r.Requested)
	}
	return fmt.Sprintf("%s, seed %d, %s, %s cases (%s) in %v (%.1f cases/min); machine %s, %d CPUs, %s/%s, %s",
		r.Started.Format("2006-01-02 15:04 UTC"), r.Seed, r.DB, cases, strings.Join(ops, ", "), r.Elapsed.Round(time.Second),
		float64(r.Cases())/r.Elapsed.Minutes(), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
