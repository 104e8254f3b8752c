package app

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestAuditActionsListed: every action code written in the sources of app and app/issue (a
// literal of one of the action families, or a case event, recorded as "case.<event>") is in
// AuditActions, so the audit view has a name for it; and the list names nothing else.
func TestAuditActionsListed(t *testing.T) {
	code := regexp.MustCompile(`"((?:audit|card|case|certificate|clock|document|holder|issuance|login|logout|operator|resident|terminal)(?:\.[a-z_]+)?)"`)
	caseEvent := regexp.MustCompile(`caseEvent\(ctx, [a-zA-Z]+, "([a-z_]+)"`)
	fileName := regexp.MustCompile(`\.(db|json|pem|txt|pdf|lock|crt|key|sock)$`)
	found := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		// Only the terminal's own domain: app/cli and app/printout write no audit records.
		if dir := filepath.Dir(path); dir != "." && dir != "issue" {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range code.FindAllStringSubmatch(string(src), -1) {
			if strings.Contains(m[1], ".") && !fileName.MatchString(m[1]) || m[1] == "logout" {
				found[m[1]] = true
			}
		}
		for _, m := range caseEvent.FindAllStringSubmatch(string(src), -1) {
			found["case."+m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 30 {
		t.Fatalf("found only %d action codes in the sources: the scan is broken", len(found))
	}
	var missing []string
	for c := range found {
		if !slices.Contains(AuditActions, c) {
			missing = append(missing, c)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("action codes written but not in AuditActions: %v", missing)
	}
	for _, c := range AuditActions {
		if !found[c] {
			t.Errorf("AuditActions lists %q, which no source writes", c)
		}
	}
}
