// Package translations holds the words of the terminal: the translation files (ja.json,
// en.json, flat go-i18n JSON that Fyne's lang package also reads), loaded once, and the one
// table from an error's apperr kind (+ detail code) to a translation key (table.go). The
// screens (ui, through Fyne's lang) and the CLI (app/cli) print from these files with these
// keys; no other package holds a sentence for a person.
//
// Concurrency: every function is safe for concurrent use; the files are parsed once.
package translations

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"text/template"
)

//go:embed *.json
var files embed.FS

// Languages are the languages the terminal ships translations for; the first is the default.
// Japanese is the default because the terminal serves Japanese municipal counters.
var Languages = []string{"ja", "en"}

// JSON returns the translation file of lang as embedded ("ja" → ja.json).
func JSON(lang string) ([]byte, error) {
	return files.ReadFile(lang + ".json")
}

var (
	loadOnce   sync.Once
	catalogues map[string]map[string]string
	loadErr    error
)

// Catalogue returns the translations of lang, key → text with go-i18n template placeholders
// ({{.Name}}); nil for a language the terminal does not ship. The map is shared: do not modify.
func Catalogue(lang string) map[string]string {
	loadOnce.Do(func() {
		catalogues = map[string]map[string]string{}
		for _, l := range Languages {
			data, err := JSON(l)
			if err == nil {
				m := map[string]string{}
				if err = json.Unmarshal(data, &m); err == nil {
					catalogues[l] = m
					continue
				}
			}
			loadErr = fmt.Errorf("translations: %s.json: %w", l, err)
		}
	})
	if loadErr != nil {
		panic(loadErr) // embedded at build time: TestFilesParse keeps them valid
	}
	return catalogues[lang]
}

// Text returns the translation of key in lang filled from args, the key itself when lang has
// no such key (as Fyne's lang.L does), and the unfilled text when a placeholder cannot be
// filled.
func Text(lang, key string, args map[string]any) string {
	s, ok := Catalogue(lang)[key]
	if !ok {
		return key
	}
	if len(args) == 0 || !strings.Contains(s, "{{") {
		return s
	}
	t, err := template.New(key).Option("missingkey=zero").Parse(s)
	if err != nil {
		return s
	}
	var b bytes.Buffer
	if err := t.Execute(&b, args); err != nil {
		return s
	}
	return b.String()
}
