package campaign

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"madoguchi/cardio/vcard"
	"madoguchi/internal/campaign/tcpfault"
)

// Kind is a fault kind: one row of the report.
type Kind string

// The fault kinds. Every case draws one (KindNone is the control row).
const (
	KindNone         Kind = "none"
	KindCardPull     Kind = "card-pull"     // the card taken out at a random moment, put back after the run
	KindCardDrop     Kind = "card-drop"     // the vpcd link dropped at the N-th APDU (card reinserted after 1 s)
	KindCardGarbage  Kind = "card-garbage"  // random bytes instead of the N-th response
	KindCardTruncate Kind = "card-truncate" // the N-th response cut short
	KindCardSW       Kind = "card-sw"       // a wrong status word for the N-th APDU
	KindCardSwap     Kind = "card-swap"     // another card put in the reader mid-case
	KindNetDrop      Kind = "net-drop"      // terminal⇄CA connection silent from byte k
	KindNetReset     Kind = "net-reset"     // RST at byte k
	KindNetStall     Kind = "net-stall"     // nothing flows for seconds at byte k
	KindNetDelay     Kind = "net-delay"     // a short delay at byte k
	KindKillTerminal Kind = "kill-terminal" // kill -9 of the terminal CLI, then `recover`
	KindKillServe    Kind = "kill-serve"    // kill -9 of serve, restarted
	KindHSMError     Kind = "hsm-error"     // the N-th PKCS#11 call fails (faultcampaign build)
	KindHSMStall     Kind = "hsm-stall"     // the N-th PKCS#11 call stalls
	KindDiskFull     Kind = "disk-full"     // the terminal's or the CA's data filesystem full
	KindFsyncError   Kind = "fsync-error"   // every fsync of the terminal's or the CA's process fails (EIO)
	KindClockJump    Kind = "clock-jump"    // the terminal's or the CA's clock jumped
	KindDBRestart    Kind = "db-restart"    // PostgreSQL stopped and started again (postgres runs)
	KindDBCut        Kind = "db-cut"        // serve's database connections reset mid-transaction
)

// AllKinds in report order; the kinds of the current draw (DrawV2).
var AllKinds = []Kind{KindNone, KindCardPull, KindCardDrop, KindCardGarbage, KindCardTruncate, KindCardSW, KindCardSwap,
	KindNetDrop, KindNetReset, KindNetStall, KindNetDelay, KindKillTerminal, KindKillServe,
	KindHSMError, KindHSMStall, KindDiskFull, KindFsyncError, KindClockJump, KindDBRestart, KindDBCut}

// KindsV1 is the kind list of the first draw (DrawV1), the runs of 2026-12-07 recorded in
// docs/RELIABILITY.md: a case's kind is kinds[r.IntN(len(kinds))], so a kind added to the
// list changes the kind of nearly every case. Replaying a recorded case needs this list as
// it was. Never change it.
var KindsV1 = []Kind{KindNone, KindCardPull, KindCardDrop, KindCardGarbage, KindCardTruncate, KindCardSW, KindCardSwap,
	KindNetDrop, KindNetReset, KindNetStall, KindNetDelay, KindKillTerminal, KindKillServe,
	KindHSMError, KindHSMStall, KindDiskFull, KindClockJump, KindDBRestart, KindDBCut}

// DrawVersion says how a run draws its cases' kinds and operations, so that a recorded run
// stays replayable when kinds or operations are added.
type DrawVersion int

const (
	// DrawV2 (the default): AllKinds, and the operations revoke and PIN reset by their
	// shares (no renewal: docs/RELIABILITY.md says why).
	DrawV2 DrawVersion = 0
	// DrawV1: KindsV1 and only issue or revoke, exactly as the runs of 2026-12-07 drew
	// them (-draw v1).
	DrawV1 DrawVersion = 1
)

// ParseDrawVersion reads -draw's value.
func ParseDrawVersion(s string) (DrawVersion, error) {
	switch s {
	case "v1":
		return DrawV1, nil
	case "", "v2":
		return DrawV2, nil
	}
	return 0, fmt.Errorf("campaign: unknown draw %q (v1 or v2)", s)
}

func (d DrawVersion) String() string {
	if d == DrawV1 {
		return "v1"
	}
	return "v2"
}

// kinds is the draw's default kind list.
func (d DrawVersion) kinds() []Kind {
	if d == DrawV1 {
		return KindsV1
	}
	return AllKinds
}

// cardKind reports whether k needs a card in the operation.
func (k Kind) card() bool {
	switch k {
	case KindCardPull, KindCardDrop, KindCardGarbage, KindCardTruncate, KindCardSW, KindCardSwap:
		return true
	}
	return false
}

// Fault is one drawn fault with its parameters.
type Fault struct {
	Kind Kind
	// When: the moment after the operation's start (pull, swap, kills, clock jump, db faults).
	When time.Duration
	// APDU: the N-th command APDU (card-drop, garbage, truncate, sw); SW the status word.
	APDU int
	SW   uint16
	// Net is the proxy fault (net-*).
	Net tcpfault.Fault
	// HSM is MADOGUCHI_HSM_FAULT's value (hsm-*).
	HSM string
	// OnCA: the CA side (clock, disk, fsync) rather than the terminal's.
	OnCA bool
	Skew time.Duration
	// Leave is how many bytes the filled filesystem keeps free.
	Leave int64
	// CardSeed seeds the virtual card's garbage bytes and cut lengths (exact replay).
	CardSeed uint64
}

func (f Fault) String() string {
	switch f.Kind {
	case KindNone:
		return "none"
	case KindCardPull, KindCardSwap, KindKillTerminal, KindKillServe, KindDBRestart, KindDBCut:
		return fmt.Sprintf("%s at %v", f.Kind, f.When.Round(time.Millisecond))
	case KindCardDrop, KindCardGarbage, KindCardTruncate:
		return fmt.Sprintf("%s @APDU %d", f.Kind, f.APDU)
	case KindCardSW:
		return fmt.Sprintf("%s @APDU %d = %04X", f.Kind, f.APDU, f.SW)
	case KindNetDrop, KindNetReset, KindNetStall, KindNetDelay:
		return fmt.Sprintf("%s (%s)", f.Kind, f.Net)
	case KindHSMError, KindHSMStall:
		return fmt.Sprintf("%s (MADOGUCHI_HSM_FAULT=%s)", f.Kind, f.HSM)
	case KindDiskFull:
		return fmt.Sprintf("%s (%s, %d bytes left)", f.Kind, side(f.OnCA), f.Leave)
	case KindClockJump:
		return fmt.Sprintf("%s (%s %+v at %v)", f.Kind, side(f.OnCA), f.Skew, f.When.Round(time.Millisecond))
	case KindFsyncError:
		return fmt.Sprintf("%s (%s at %v)", f.Kind, side(f.OnCA), f.When.Round(time.Millisecond))
	}
	return string(f.Kind)
}

func side(ca bool) string {
	if ca {
		return "CA"
	}
	return "terminal"
}

// vcardSpec is the card fault as vcard.Faults.Apply text ("" for none).
func (f Fault) vcardSpec() string {
	switch f.Kind {
	case KindCardDrop:
		return fmt.Sprintf("drop@%d", f.APDU)
	case KindCardGarbage:
		return fmt.Sprintf("garbage@%d", f.APDU)
	case KindCardTruncate:
		return fmt.Sprintf("truncate@%d", f.APDU)
	case KindCardSW:
		return fmt.Sprintf("sw@%d=%04X", f.APDU, f.SW)
	}
	return ""
}

// wrongSWs are status words a real card answers when something is off: wrong length, file
// not found, security status not satisfied, memory failure, no precise diagnosis, wrong
// parameters, conditions of use not satisfied.
var wrongSWs = []uint16{0x6700, 0x6A82, 0x6982, 0x6581, 0x6F00, 0x6A86, 0x6985}

// hsmOps are PKCS#11 operation names of the hsm layer's fault hook (a wrong name only means
// the fault never fires, which the report shows as recovered delivered).
var hsmOps = []string{"generate-rsa", "sign-rsa-pkcs1", "wrap-kwp", "cmac", "hmac", "find-keys", "derive-aes-ecb", "read-public-key"}

// hsmErrors are CKR names the hook can return.
var hsmErrors = []string{"CKR_DEVICE_ERROR", "CKR_SESSION_HANDLE_INVALID", "CKR_GENERAL_ERROR", "CKR_DEVICE_REMOVED", "CKR_USER_NOT_LOGGED_IN", "CKR_FUNCTION_FAILED"}

// Draw draws case k's fault from the run's seed: the same (seed, k) gives the same fault, so
// `-seed S -from K -n 1` replays one case. kinds are the kinds in play; typical is how long an
// operation takes (the moment of a timed fault falls inside it).
func Draw(seed uint64, k int, kinds []Kind, typical time.Duration, deadline time.Duration) Fault {
	r := rand.New(rand.NewPCG(seed, uint64(k)))
	f := Fault{Kind: kinds[r.IntN(len(kinds))]}
	f.When = time.Duration(r.Int64N(int64(typical)))
	switch f.Kind {
	case KindCardDrop, KindCardGarbage, KindCardTruncate:
		f.APDU = 1 + r.IntN(70)
		if f.Kind != KindCardDrop {
			f.CardSeed = r.Uint64()
		}
	case KindCardSW:
		f.APDU = 1 + r.IntN(70)
		f.SW = wrongSWs[r.IntN(len(wrongSWs))]
	case KindNetDrop, KindNetReset, KindNetStall, KindNetDelay:
		f.Net.Dir = tcpfault.Dir(r.IntN(2))
		// Bytes one issuance moves (TLS records of the four requests; measured): about 10 kB
		// up, 25 kB down.
		if f.Net.Dir == tcpfault.Up {
			f.Net.AtByte = r.Int64N(8000)
		} else {
			f.Net.AtByte = r.Int64N(20000)
		}
		switch f.Kind {
		case KindNetDrop:
			f.Net.Action = tcpfault.Drop
		case KindNetReset:
			f.Net.Action = tcpfault.Reset
		case KindNetStall:
			f.Net.Action = tcpfault.Stall
			f.Net.Dur = time.Duration(2+r.IntN(12)) * time.Second
		case KindNetDelay:
			f.Net.Action = tcpfault.Delay
			f.Net.Dur = time.Duration(50+r.IntN(1500)) * time.Millisecond
		}
	case KindHSMError:
		f.HSM = fmt.Sprintf("error@%d=%s:op=%s", 1+r.IntN(3), hsmErrors[r.IntN(len(hsmErrors))], hsmOps[r.IntN(len(hsmOps))])
	case KindHSMStall:
		f.HSM = fmt.Sprintf("stall@%d=%dms:op=%s", 1+r.IntN(3), 500+r.IntN(8000), hsmOps[r.IntN(len(hsmOps))])
	case KindDiskFull:
		f.OnCA = r.IntN(2) == 0
		f.Leave = r.Int64N(96 << 10)
	case KindFsyncError:
		f.OnCA = r.IntN(2) == 0
	case KindClockJump:
		f.OnCA = r.IntN(2) == 0
		skews := []time.Duration{-2 * time.Hour, -90 * time.Second, -10 * time.Second, 10 * time.Second, 90 * time.Second, 2 * time.Hour, deadline + 5*time.Second}
		f.Skew = skews[r.IntN(len(skews))]
	}
	return f
}

// usableKinds drops the kinds this build cannot inject: a card fault vcard.Faults does not
// know (the hooks branch adds garbage and truncate), the PostgreSQL kinds on SQLite, and the
// fsync fault where no seccomp filter for this architecture exists.
func usableKinds(want []Kind, db string, have func(Kind) bool) (use, dropped []Kind) {
	for _, k := range want {
		ok := true
		switch k {
		case KindCardGarbage, KindCardTruncate:
			ok = vcard.NewFaults().Apply(Fault{Kind: k, APDU: 1}.vcardSpec()) == nil
		case KindDBRestart, KindDBCut:
			ok = db == "postgres"
		case KindFsyncError:
			// internal/faults/fsyncfail has seccomp filters for these two (a default-build
			// package may not import it: internal/faults/buildcheck).
			ok = runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64"
		}
		if ok && have != nil {
			ok = have(k)
		}
		if ok {
			use = append(use, k)
		} else {
			dropped = append(dropped, k)
		}
	}
	return use, dropped
}
