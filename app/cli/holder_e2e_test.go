package cli

import (
	"regexp"
	"strings"
	"testing"
)

// TestCLIHolderRecordsAgainstRealCA: R02 II-8 on the real stack (SoftHSM-backed ca-server child
// process, pcscd+vpcd, a virtual card from the CA's stock): both certificates are issued, the
// user-authentication one is revoked at the holder's request, and on a new identity-checked
// case the holder's record lists both issuances and the revocation with the CA's reason.
func TestCLIHolderRecordsAgainstRealCA(t *testing.T) {
	c := startCounter(t)
	cfg := c.cfg
	const rc = rcStdin
	must := c.must
	_, serials := c.issue("signature:SAKURA73\nsignature:SAKURA73\nuser-auth:4826\nuser-auth:4826\n")
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "revocation", "-code", "90000000088")
	must(rc, false, "-user", "rc1", "case", "identity", "2", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "2")
	must(rc, true, "-user", "rc1", "revoke", "-case", "2", "-cert", "user_auth:"+serials["user_auth"], "-written", "失効申請書 No.1")

	// The holder asks to see their records: a new case, identity checked and approved first.
	must(rc, false, "-user", "rc1", "case", "open", "-kind", "certificate_copy", "-code", "90000000088")
	if r := run(t, cfg, rc, "-user", "rc1", "holder-records", "-case", "3"); r.code != 1 {
		t.Fatalf("holder-records before the identity check: exit %d\n%s", r.code, r.errOut)
	}
	must(rc, false, "-user", "rc1", "case", "identity", "3", "-document", "my_number_card")
	must(rc, false, "-user", "rc1", "case", "approve", "3")
	out := must(rc, false, "-user", "rc1", "holder-records", "-case", "3").out
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "3 records at this terminal") {
		t.Fatalf("holder-records:\n%s", out)
	}
	for _, want := range []*regexp.Regexp{ // issued in the order the orchestration chose
		regexp.MustCompile(`(?m)^.*issued\s+signature\s+` + serials["signature"] + `\s+1 new_issuance$`),
		regexp.MustCompile(`(?m)^.*issued\s+user_auth\s+` + serials["user_auth"] + `\s+1 new_issuance$`),
	} {
		if !want.MatchString(strings.Join(lines[2:4], "\n")) {
			t.Errorf("no line matches %v:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`revoked\s+user_auth\s+` + serials["user_auth"] + `\s+5\s+2 revocation`).MatchString(lines[4]) {
		t.Errorf("revocation line %q", lines[4])
	}
	if strings.Contains(out, "rc1") {
		t.Error("the holder's record names a staff member")
	}
}
