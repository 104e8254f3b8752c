package ui

import (
	"madoguchi/assets/translations"
)

// The one path from a domain error to the words the clerk reads (issue 16): app gives every
// refusal an apperr kind, and where needed a detail code, at its edge; the one table of
// assets/translations maps kind + detail (in a screen's context) to a translation key; tr
// translates it. The English error text itself is for logs, never shown. Screens add nothing
// but the few errors of ui's own adapters (no card in the reader, the applicant's PIN refused
// by the card).

// errorKey is the translation key of err's message in the General context.
func errorKey(err error) string { return translations.ErrorKey(translations.General, err) }

// errorMessage returns the translated message for err.
func errorMessage(err error) string { return errorMessageIn(translations.General, err) }

// errorMessageIn returns the translated message for err shown in ctx: the table's sentence for
// its kind and detail, then its notes.
func errorMessageIn(ctx translations.Context, err error) string {
	return translations.Render(translations.ErrorPhrases(ctx, err), trArgs)
}

// trArgs is tr for translations.Render.
func trArgs(key string, args map[string]any) string {
	if args == nil {
		return tr(key)
	}
	return tr(key, args)
}
