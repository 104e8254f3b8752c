package ui

import (
	"fmt"
	"os"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"

	"madoguchi/assets/translations"
)

// Languages the terminal ships translations for; the first is the default. Japanese is the
// default because the terminal serves Japanese municipal counters.
var Languages = translations.Languages

// language is the language UseLanguage selected.
var language = Languages[0]

// UseLanguage selects the language of every string the screens show ("ja" or "en") and loads the
// embedded translations. Call it once, before building any screen.
//
// Fyne's lang package has no setter: it reads the locale from the environment (LANGUAGE, unless
// LC_ALL / LC_MESSAGES / LANG say "C"). UseLanguage therefore sets LANGUAGE, and LC_MESSAGES (or
// LC_ALL when that is set), for this process, so the choice does not depend on the clerk's
// desktop settings. Those variables only choose message catalogues.
func UseLanguage(code string) error {
	supported := false
	for _, l := range Languages {
		supported = supported || l == code
	}
	if !supported {
		return fmt.Errorf("ui: unsupported language %q (want one of %v)", code, Languages)
	}
	os.Setenv("LANGUAGE", code)
	if os.Getenv("LC_ALL") != "" {
		os.Setenv("LC_ALL", code)
	} else {
		os.Setenv("LC_MESSAGES", code)
	}
	// The same files and keys the CLI prints from (assets/translations).
	for _, l := range Languages {
		data, err := translations.JSON(l)
		if err == nil {
			err = lang.AddTranslationsForLocale(data, fyne.Locale(l))
		}
		if err != nil {
			return fmt.Errorf("ui: load translations: %w", err)
		}
	}
	language = code
	return nil
}

// tr returns the translation of key in the selected language, filled from data (a map or a
// struct, go-i18n template syntax {{.Name}}). Every key is in assets/translations/ja.json and
// en.json (TestTranslationsComplete and translations.TestEveryKeyInBothLanguages check it).
func tr(key string, data ...any) string { return lang.L(key, data...) }
