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
// above the total, a tiny OCSP cache, a CRL interval the CRL's validity
// does not cover.
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
		// CRLs are valid 72 h (CPS §4.9.7): a CRL interval of 72 h or
		// more, or none, would let the CRL in force expire. On the code
		// before this check serve opened the store and activated the CA,
		// and only status.New refused (exit 1).
		{[]string{"--crl-interval", "72h"}, "--crl-interval"},
		{[]string{"--crl-interval", "0s"}, "--crl-interval"},
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
