package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// The baseline is fair only if it serves what the responder serves: real
// loopback servers, every path checked (signature, serial, status), then the
// same body and headers from both; unknown paths are refused by the static
// server and the store is not asked again once responses are pre-signed.
func TestStaticServerReplaysResponderBytes(t *testing.T) {
	ctx := context.Background()
	f, err := newFixture(ctx, fixtureConfig{Certs: 400, RevokedFrac: 0.25, URLs: 60, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if f.reqRevoked == 0 || f.reqRevoked == len(f.paths) || f.held == 0 {
		t.Fatalf("want a mix of statuses among the requested serials: %d of %d revoked, %d held overall", f.reqRevoked, len(f.paths), f.held)
	}
	ocspSrv, err := startServer(f.responder)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ocspSrv.close)
	client := &http.Client{}
	t.Cleanup(client.CloseIdleConnections)
	lookups := f.table.lookups.Load()
	static, err := f.verifyAndCapture(ctx, client, ocspSrv.url)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.table.lookups.Load() - lookups; n != 0 {
		t.Errorf("store asked %d times after pre-signing", n)
	}
	staticSrv, err := startServer(static)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(staticSrv.close)
	if err := sameBytes(ctx, client, f.paths, ocspSrv.url, staticSrv.url); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(ctx, client, staticSrv.url+"/not-a-request"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("static server, unknown path: %v", err)
	}
}

func TestWrkScriptListsEveryPath(t *testing.T) {
	paths := []string{"/MEMwQTA%2FMD0wOzAJBgUrDgMCGgUA", "/abc+def="}
	s := wrkScript(paths)
	for _, p := range paths {
		if !strings.Contains(s, `"`+p+`",`) {
			t.Errorf("script lacks %q:\n%s", p, s)
		}
	}
	w := wrkRun{Bin: "wrk", Threads: 2, Conns: 50, Duration: 10e9, Script: "/tmp/x/ocsp-get.lua"}
	if got, want := w.commandLine("http://127.0.0.1:1/"), "wrk -t2 -c50 -d10s --latency -s ocsp-get.lua http://127.0.0.1:1/"; got != want {
		t.Errorf("command line %q, want %q", got, want)
	}
}

func TestOptionsCheck(t *testing.T) {
	ok := options{threads: 2, conns: 50, duration: 10e9, rounds: 1}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*options){
		"unbounded duration":       func(o *options) { o.duration = 61e9 },
		"fractional seconds":       func(o *options) { o.duration = 1500e6 },
		"fewer conns than threads": func(o *options) { o.conns = 1 },
		"no rounds":                func(o *options) { o.rounds = 0 },
	} {
		o := ok
		mutate(&o)
		if err := o.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
