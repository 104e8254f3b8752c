package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Captured from wrk 4.1.0 (Debian) against the static server.
const wrkClean = `Running 3s test @ http://127.0.0.1:37963/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.58ms   11.44ms 139.60ms   97.69%
    Req/Sec    12.50k     3.76k   20.65k    71.67%
  Latency Distribution
     50%    1.52ms
     75%    2.76ms
     90%    5.16ms
     99%   69.60ms
  75469 requests in 3.10s, 120.53MB read
Requests/sec:  24375.80
Transfer/sec:     38.93MB
`

// wrk's error lines (format from wrk's src/wrk.c), microsecond and second
// units, and no newline at the end, as wrk prints Transfer/sec.
const wrkErrors = `Running 1s test @ http://127.0.0.1:18777/nothing
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us    7.36ms    1.02s   94.25%
    Req/Sec   704.40    321.16     1.29k    70.00%
  Latency Distribution
     50%  812.00us
     75%    4.77ms
     90%    8.06ms
     99%    1.01s
  708 requests in 1.01s, 359.53KB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 708
Requests/sec:    703.30
Transfer/sec:    357.14KB`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk(strings.NewReader(wrkClean))
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestsPerSec != 24375.80 || got.Requests != 75469 || got.Elapsed != 3100*time.Millisecond ||
		got.SocketErrors != 0 || got.Non2xx3xx != 0 {
		t.Errorf("clean: %+v", got)
	}
	wantP := map[int]time.Duration{50: 1520 * time.Microsecond, 75: 2760 * time.Microsecond, 90: 5160 * time.Microsecond, 99: 69600 * time.Microsecond}
	for p, d := range wantP {
		if got.Percentiles[p] != d {
			t.Errorf("clean: p%d = %v, want %v", p, got.Percentiles[p], d)
		}
	}
	if got.LatencyAvg != 3580*time.Microsecond || got.LatencyMax != 139600*time.Microsecond {
		t.Errorf("clean: avg %v max %v", got.LatencyAvg, got.LatencyMax)
	}

	got, err = parseWrk(strings.NewReader(wrkErrors))
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestsPerSec != 703.30 || got.SocketErrors != 6 || got.Non2xx3xx != 708 ||
		got.Percentiles[50] != 812*time.Microsecond || got.Percentiles[99] != 1010*time.Millisecond || got.LatencyMax != 1020*time.Millisecond {
		t.Errorf("errors: %+v", got)
	}
}

func TestParseWrkRejects(t *testing.T) {
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"no --latency", strings.Join(dropLines(wrkClean, "%    "), "\n")},
		{"no rate", strings.Replace(wrkClean, "Requests/sec:  24375.80\n", "", 1)},
		{"bad unit", strings.Replace(wrkClean, "69.60ms", "69.60xs", 1)},
		{"bad count", strings.Replace(wrkClean, "75469 requests", "7x469 requests", 1)},
		{"connection refused", "unable to connect to 127.0.0.1:1 Connection refused\n"},
	}
	for _, tt := range tests {
		if _, err := parseWrk(strings.NewReader(tt.text)); !errors.Is(err, ErrWrkOutput) {
			t.Errorf("%s: %v, want ErrWrkOutput", tt.name, err)
		}
	}
}

func dropLines(s, substr string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"0.00us": 0, "999.99us": 999990 * time.Nanosecond, "1.20ms": 1200 * time.Microsecond,
		"2.00s": 2 * time.Second, "1.50m": 90 * time.Second, "1.00h": time.Hour} {
		if got, err := parseWrkDuration(in); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ms", "-1.00ms", "1.00", "abcus"} {
		if _, err := parseWrkDuration(in); !errors.Is(err, ErrWrkOutput) {
			t.Errorf("%q: %v", in, err)
		}
	}
}
