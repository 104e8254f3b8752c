package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve refuses traffic flags that would undo the bounds before it opens
// anything: metrics on a non-loopback address without
// --metrics-allow-remote, malformed budgets, a per-address connection cap
// above the total, a tiny OCSP cache.
func TestServeTrafficFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-listen", "0.0.0.0:9464"}, "not a loopback address"},
		{[]string{"--metrics-listen", ":9464"}, "not a loopback address"},
		{[]string{"--metrics-listen", "192.0.2.7:9464"}, "--metrics-allow-remote"},
		{[]string{"--limit-terminal", "10"}, "PER_SECOND,BURST"},
		{[]string{"--limit-refusals", "0,5"}, "PER_SECOND,BURST"},
		{[]string{"--max-conns", "10", "--max-conns-per-address", "20"}, "--max-conns-per-address"},
		{[]string{"--ocsp-cache-bytes", "1000"}, "--ocsp-cache-bytes"},
	} {
		data := t.TempDir()
		code, out := runExit(append([]string{"serve", "--data-dir", data}, c.args...)...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("serve %v: exit %d, want 2 with %q:\n%s", c.args, code, c.want, out)
		}
		if _, err := os.Stat(filepath.Join(data, "ca.db")); err == nil {
			t.Errorf("serve %v opened the store before refusing", c.args)
		}
	}
}
