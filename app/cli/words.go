package cli

import (
	"madoguchi/app/apperr"
	"madoguchi/assets/translations"
)

// lang is the language of what the CLI tells its operator: Japanese, from the same translation
// files and keys as the screens (assets/translations, the one table from an error's kind and
// detail to a key); an error is followed by its English text for the log.
const lang = "ja"

// say returns the translation of key filled from args.
func say(key string, args map[string]any) string { return translations.Text(lang, key, args) }

// errorText is the operator's message for err.
func errorText(err error) string { return translations.ErrorText(lang, err) }

// messageText is the operator's message for an outcome told in codes.
func messageText(m apperr.Message) string { return translations.MessageText(lang, m) }
