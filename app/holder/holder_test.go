package holder

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"madoguchi/jpki/wire"
)

// TestFailureToldFromTranslations: the holder's message comes from the terminal's translation
// files (the same table as the counter's screens and CLI), followed by the English error.
func TestFailureToldFromTranslations(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"revoke", "-ca-url", "https://ca.invalid"}, Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	if code != 1 || !strings.Contains(errOut.String(), "エラー: 暗証番号を読み取れません") || !strings.Contains(errOut.String(), "holder: no PIN on the input") {
		t.Fatalf("code %d, stderr %q", code, errOut.String())
	}
}

// TestCARefusalDetail: the CA's code picks the holder's message; an unknown one the general.
func TestCARefusalDetail(t *testing.T) {
	for code, want := range map[wire.Code]string{
		wire.CodeRequestStale: "request_stale", wire.CodeAlreadyRevoked: "already_revoked", "something_new": "holder.ca_refused",
	} {
		if got := (&Error{Code: code}).ErrorDetail(); got != want {
			t.Errorf("%s: detail %q, want %q", code, got, want)
		}
	}
}
