package auth

import "context"

// ScanEvent is one step the reader reports while waiting for a finger.
type ScanEvent int

// Scan events shown to the operator.
const (
	ScanWaiting ScanEvent = iota // place your finger
	ScanRetry                    // the press was unusable: press again
)

// EnrollProgress reports enrolment progress ("指を置いてください (3/5)").
type EnrollProgress struct {
	Stage int  // stages passed so far
	Total int  // stages needed (fprintd's num-enroll-stages)
	Retry bool // the last press was unusable and did not count
}

// Fingerprint verifies and enrols operators' fingers. user is the operator id (fprintd uses it
// only as a storage key; operators need not be Unix accounts).
//
// Errors are *apperr.Error of kind FingerprintNoMatch, FingerprintNotEnrolled,
// FingerprintUnavailable (no device, daemon failure) or Cancelled (ctx done: no finger in time).
// Implementations are safe for concurrent use; the device serialises claims.
type Fingerprint interface {
	// Verify waits for one finger and returns nil on a match with any of user's enrolled fingers.
	Verify(ctx context.Context, user string, progress func(ScanEvent)) error
	// Enroll replaces user's enrolled prints with finger, reporting each stage to progress.
	Enroll(ctx context.Context, user, finger string, progress func(EnrollProgress)) error
}

// DefaultFinger is the finger enrolled when the supervisor does not choose one.
const DefaultFinger = "right-index-finger"

// FingerNames are fprintd's finger names.
var FingerNames = []string{
	"left-thumb", "left-index-finger", "left-middle-finger", "left-ring-finger", "left-little-finger",
	"right-thumb", "right-index-finger", "right-middle-finger", "right-ring-finger", "right-little-finger",
}

// ValidFinger reports whether name is one of FingerNames.
func ValidFinger(name string) bool {
	for _, f := range FingerNames {
		if f == name {
			return true
		}
	}
	return false
}
