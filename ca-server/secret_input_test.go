package main

import (
	"fmt"
	"os"
	"testing"
)

// No test ever waits at a terminal: a secret not given on a descriptor is
// refused ("no terminal to ask on").
func init() { ttyPath = "/nonexistent/madoguchi-test-tty" }

// secretFD hands secret to a command the way a custodian's own tool would:
// on a pipe, as "fd:N" (never argv, never the environment).
func secretFD(t *testing.T, secret string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(secret + "\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { r.Close() })
	return fmt.Sprintf("fd:%d", r.Fd())
}

func TestReadSecretSources(t *testing.T) {
	if s, err := readSecretSource(secretFD(t, "a b c\r"), "", false); err != nil || s != "a b c" {
		t.Fatalf("fd: %q %v", s, err)
	}
	for _, src := range []string{"file:/etc/hostname", "env:HOME", "argv-secret", "fd:x", secretFD(t, "")} {
		if _, err := readSecretSource(src, "", false); err == nil {
			t.Errorf("%s accepted outside --dev", src)
		}
	}
	if _, err := readSecretSource("tty", "p: ", false); err == nil {
		t.Error("no terminal, yet a secret")
	}
}
