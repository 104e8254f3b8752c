package ui

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"madoguchi/app"
	"madoguchi/assets/translations"
)

func loadCatalogue(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := translations.JSON(strings.TrimSuffix(name, ".json"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// TestTranslationsComplete checks that every key the screens translate exists in Japanese and
// English, so no clerk ever sees a raw key.
func TestTranslationsComplete(t *testing.T) {
	ja, en := loadCatalogue(t, "ja.json"), loadCatalogue(t, "en.json")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	literal := regexp.MustCompile(`(?:tr|fail)\("([a-z_.0-9]+)"|Title: +"([a-z_.0-9]+)"|"((?:pin|error|status|login|home|shell)\.[a-z_.0-9]+)"`)
	used := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			for _, k := range m[1:] {
				if k != "" {
					used[k] = true
				}
			}
		}
	}
	if len(used) < 40 {
		t.Fatalf("found only %d keys in the sources: the scan is broken", len(used))
	}
	var missing []string
	for k := range used {
		if _, ok := ja[k]; !ok {
			missing = append(missing, "ja:"+k)
		}
		if _, ok := en[k]; !ok {
			missing = append(missing, "en:"+k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("missing translations: %v", missing)
	}
	for k := range en {
		if _, ok := ja[k]; !ok {
			t.Errorf("key %q in en.json but not in ja.json", k)
		}
	}
}

func TestUseLanguage(t *testing.T) {
	t.Cleanup(func() { UseLanguage("ja") })
	if err := UseLanguage("fr"); err == nil {
		t.Error("unsupported language accepted")
	}
	if err := UseLanguage("en"); err != nil {
		t.Fatal(err)
	}
	if got := tr("login.fingerprint.prompt"); got != "Place your finger on the sensor" {
		t.Errorf("en prompt = %q", got)
	}
	if err := UseLanguage("ja"); err != nil {
		t.Fatal(err)
	}
	if got := tr("login.fingerprint.prompt"); got != "指をセンサーに置いてください" {
		t.Errorf("ja prompt = %q", got)
	}
}

// TestAuditActionsNamed: the audit view (操作履歴) names every action the terminal records in
// Japanese and English, so an auditor reading one operator's history never sees a raw code.
func TestAuditActionsNamed(t *testing.T) {
	ja, en := loadCatalogue(t, "ja.json"), loadCatalogue(t, "en.json")
	for _, code := range app.AuditActions {
		for name, cat := range map[string]map[string]any{"ja": ja, "en": en} {
			if _, ok := cat["action."+code]; !ok {
				t.Errorf("%s.json has no name for audit action %q (key action.%s)", name, code, code)
			}
		}
	}
}
