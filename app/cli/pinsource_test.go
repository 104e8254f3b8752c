package cli

import (
	"bufio"
	"strings"
	"testing"

	"madoguchi/app/pinrule"
)

// TestMalformedPINLineNeverEchoed: a PIN line written the wrong way round ("PIN:kind") or
// without its kind is refused with a message that does not repeat the line, because the
// CLI's stderr ends up in terminals and logs (DOMAIN §2, §9: PINs are never logged).
func TestMalformedPINLineNeverEchoed(t *testing.T) {
	for _, line := range []string{"SAKURA73:signature\n", "SAKURA73\n", "4826:user-auth\n", "SAKURA73:\n"} {
		r := &runner{pins: bufio.NewReader(strings.NewReader(line))}
		_, err := r.readPIN(pinrule.Signature)
		if err == nil {
			t.Fatalf("line %q accepted", line)
		}
		secret, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		if strings.Contains(err.Error(), secret) {
			t.Errorf("refusal of a malformed PIN line repeats the PIN: %v", err)
		}
	}
}
