package hsmspec

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{"", "error", "error@0", "error@x", "error@1=CKR_NO_SUCH", "error@1=CKR_OK",
		"stall@1", "stall@1=-1s", "stall@1=soon", "boom@1", "error@1:op=teleport", "error@1:kind=sign", "error@1,"} {
		if f, err := Parse(bad); err == nil || f != nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestErrorAtN(t *testing.T) {
	f, err := Parse("error@3")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		err := f("probe", 1)
		if (i == 3) != (err != nil) {
			t.Fatalf("op %d: %v", i, err)
		}
		if i == 3 && !errors.Is(err, pkcs11.Error(pkcs11.CKR_DEVICE_ERROR)) {
			t.Fatalf("op 3: %v, want CKR_DEVICE_ERROR (the default)", err)
		}
	}
}

func TestNamedCodeAndOpFilter(t *testing.T) {
	f, err := Parse("error@2=CKR_TOKEN_NOT_PRESENT:op=sign-rsa-pkcs1, error@1=0x32:op=hmac")
	if err != nil {
		t.Fatal(err)
	}
	var got []error
	for _, op := range []string{"probe", "sign rsa pkcs1", "probe", "hmac", "sign rsa pkcs1", "sign rsa pkcs1", "hmac"} {
		got = append(got, f(op, 1))
	}
	for i, want := range []error{nil, nil, nil, pkcs11.Error(0x32), pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT), nil, nil} {
		if got[i] != want {
			t.Errorf("op %d: %v, want %v", i, got[i], want)
		}
	}
}

func TestStallRunsTheOperationAfterwards(t *testing.T) {
	f, err := Parse("stall@1=20ms")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := f("probe", 1); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 20*time.Millisecond { // a lower bound only: never flaky
		t.Fatal("stall did not stall")
	}
}

// TestOpsAreHSMs: Ops lists exactly the operation names ca-server/hsm passes to h.do and
// h.sign, so a campaign's op= filter can name every operation and only real ones.
func TestOpsAreHSMs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "hsm", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("hsm sources: %v", err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, path := range files {
		if filepath.Ext(path) != ".go" || len(path) > 8 && path[len(path)-8:] == "_test.go" {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "do" && sel.Sel.Name != "sign") {
				return true
			}
			if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				names = append(names, s)
			}
			return true
		})
	}
	slices.Sort(names)
	names = slices.Compact(names)
	ops := slices.Sorted(slices.Values(Ops))
	if !slices.Equal(names, ops) {
		t.Fatalf("hsm passes %q\nOps lists  %q", names, ops)
	}
}
