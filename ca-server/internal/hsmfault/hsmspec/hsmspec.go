// Package hsmspec turns the fault campaign's HSM fault specification into an hsmfault.Func:
//
//	error@N[=CKR_NAME][:op=OPNAME]    fail the N-th PKCS#11 operation with CKR_NAME
//	                                  (default CKR_DEVICE_ERROR; a hex code such as 0x30 also works)
//	stall@N=DURATION[:op=OPNAME]      hold the N-th operation for DURATION (a Go duration), then run it
//
// Several faults may be given separated by commas. Operations are counted from the moment the
// hook is installed (process start in the campaign build), each fault counting only the
// operations named OPNAME when given. An operation is one attempt at the call boundary of
// ca-server/hsm: the retry after a healed session fault is counted again. The names hsm passes
// (Ops) are its operations' names; '-' and '_' may stand for the spaces in them
// (op=sign-rsa-pkcs1).
//
// A stall longer than the HSM's call deadline is abandoned by hsm (ErrDeadline, the session
// retired): the hung-token case. Only the faultcampaign build of ca-server
// (ca-server/faultcampaign.go) uses this package; no production build links it.
package hsmspec

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// Ops are the operation names ca-server/hsm passes to the fault hook (TestOpsAreHSMs keeps the
// list true).
var Ops = []string{
	"probe", "find keys", "generate rsa", "generate aes", "generate hmac", "import aes",
	"derive aes ecb", "destroy", "read public key", "read secret value",
	"cmac", "hmac", "sign rsa pkcs1", "sign rsa pss", "wrap kwp", "unwrap rsa", "unwrap secret",
}

// fault is one parsed fault.
type fault struct {
	stall bool
	n     int           // the n-th matching operation (1-based)
	rv    uint          // error: the CKR code returned
	d     time.Duration // stall: how long
	op    string        // "" = every operation
	seen  int           // matching operations so far
}

// Parse returns the hook function for spec. Bad input returns an error and no hook.
func Parse(spec string) (func(op string, s pkcs11.SessionHandle) error, error) {
	var faults []*fault
	for _, one := range strings.Split(spec, ",") {
		f, err := parseOne(strings.TrimSpace(one))
		if err != nil {
			return nil, err
		}
		faults = append(faults, f)
	}
	var mu sync.Mutex
	return func(op string, _ pkcs11.SessionHandle) error {
		mu.Lock()
		var fire *fault
		for _, f := range faults {
			if f.op != "" && f.op != op {
				continue
			}
			f.seen++
			if f.seen == f.n && fire == nil {
				fire = f
			}
		}
		mu.Unlock()
		switch {
		case fire == nil:
			return nil
		case fire.stall:
			time.Sleep(fire.d)
			return nil
		}
		return pkcs11.Error(fire.rv)
	}, nil
}

func parseOne(spec string) (*fault, error) {
	bad := func(why string) (*fault, error) {
		return nil, fmt.Errorf("hsm fault %q: %s (want error@N[=CKR_NAME][:op=OPNAME] or stall@N=DURATION[:op=OPNAME])", spec, why)
	}
	body, opPart, hasOp := strings.Cut(spec, ":")
	f := &fault{}
	if hasOp {
		name, ok := strings.CutPrefix(opPart, "op=")
		name = strings.NewReplacer("-", " ", "_", " ").Replace(name)
		if !ok || !known(name) {
			return bad(fmt.Sprintf("unknown operation (known: %s)", strings.Join(Ops, ", ")))
		}
		f.op = name
	}
	kind, rest, ok := strings.Cut(body, "@")
	if !ok {
		return bad("no @N")
	}
	num, arg, hasArg := strings.Cut(rest, "=")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return bad("N must be a whole number ≥ 1")
	}
	f.n = n
	switch kind {
	case "error":
		f.rv = pkcs11.CKR_DEVICE_ERROR
		if hasArg {
			rv, ok := ckrCode(arg)
			if !ok || rv == pkcs11.CKR_OK {
				return bad("unknown CKR name")
			}
			f.rv = rv
		}
	case "stall":
		d, err := time.ParseDuration(arg)
		if !hasArg || err != nil || d <= 0 {
			return bad("stall needs =DURATION > 0")
		}
		f.stall, f.d = true, d
	default:
		return bad("unknown kind")
	}
	return f, nil
}

func known(op string) bool {
	for _, o := range Ops {
		if o == op {
			return true
		}
	}
	return false
}

// ckrCode reads a CKR name (CKR_DEVICE_ERROR) or a hex code (0x30). miekg/pkcs11 keeps its
// name table unexported; its Error text ("pkcs11: 0x30: CKR_DEVICE_ERROR") carries the names.
func ckrCode(s string) (uint, bool) {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		v, err := strconv.ParseUint(h, 16, 32)
		return uint(v), err == nil
	}
	for _, r := range [][2]uint{{0, 0x400}, {pkcs11.CKR_VENDOR_DEFINED, pkcs11.CKR_VENDOR_DEFINED + 1}} {
		for rv := r[0]; rv < r[1]; rv++ {
			if strings.HasSuffix(pkcs11.Error(rv).Error(), ": "+s) {
				return rv, true
			}
		}
	}
	return 0, false
}
