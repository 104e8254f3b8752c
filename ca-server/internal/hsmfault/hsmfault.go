// Package hsmfault is the test-only fault hook at the PKCS#11 call
// boundary of ca-server/hsm: a test installs a function that runs before
// each operation on its session and may fail it with a CKR code, as a
// token that rebooted, was pulled or hangs would.
//
// Why a package and not a build tag or a flag: the tests that need it are
// the hsm package's own and the serve-level readiness tests of the
// ca-server main package, which runs serve in-process; an `internal`
// package under ca-server/ is the narrowest place both can reach (Go
// refuses the import from outside ca-server/). Nothing reads a flag, an
// environment variable or a config key to set it: only Go code calling Set
// can, and TestFaultHookSetOnlyByTests (in this package) fails when a
// non-test file under ca-server/ calls Set. A build tag would have kept the
// hook out of the binary too, but the default `go test` run (.ci/run) would
// then skip the tests that prove readiness, and the tested code would not
// be the shipped code.
package hsmfault

import (
	"sync/atomic"

	"github.com/miekg/pkcs11"
)

// Func runs before the PKCS#11 operation op on session s; a non-nil error
// (a pkcs11.Error such as CKR_DEVICE_ERROR) is returned as the token's
// answer and the operation does not run.
type Func func(op string, s pkcs11.SessionHandle) error

var hook atomic.Pointer[Func]

// Hook is the installed function, nil when none (always in production).
// Atomic: tests install and lift it while serve's goroutines call the HSM.
func Hook() Func {
	if p := hook.Load(); p != nil {
		return *p
	}
	return nil
}

// Set installs f (nil: none) for every HSM in the process and returns a
// function that restores the previous hook. Tests only.
func Set(f Func) (restore func()) {
	var p *Func
	if f != nil {
		p = &f
	}
	old := hook.Swap(p)
	return func() { hook.Store(old) }
}
