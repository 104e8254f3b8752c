package apdu

import (
	"errors"
	"fmt"
)

// Status words used by Madoguchi's cards (ISO/IEC 7816-4 §5.6, GlobalPlatform Card Spec
// §11.1.3). docs/CARD-PROTOCOL.md lists which command answers which.
const (
	SWOK                     uint16 = 0x9000
	SWEndOfFile              uint16 = 0x6282 // end of file reached before Ne bytes
	SWVerifyFailed           uint16 = 0x63C0 // 63Cx: verification failed, x tries left
	SWMemoryFailure          uint16 = 0x6581 // memory failure (commit failed; nothing changed)
	SWWrongLength            uint16 = 0x6700
	SWSMNotSupported         uint16 = 0x6882 // secure messaging not supported
	SWIncompatibleFile       uint16 = 0x6981 // command incompatible with file structure
	SWSecurityNotSatisfied   uint16 = 0x6982 // security status not satisfied (PIN, SM, MAC)
	SWAuthMethodBlocked      uint16 = 0x6983 // authentication method (PIN) blocked
	SWReferenceDataNotUsable uint16 = 0x6984 // reference data not usable (PIN not set)
	SWConditionsNotSatisfied uint16 = 0x6985 // conditions of use not satisfied
	SWNoCurrentEF            uint16 = 0x6986 // command not allowed (no current EF)
	SWSMDataMissing          uint16 = 0x6987 // expected secure messaging data objects missing
	SWSMDataIncorrect        uint16 = 0x6988 // incorrect secure messaging data objects
	SWWrongData              uint16 = 0x6A80 // incorrect parameters in the data field
	SWFuncNotSupported       uint16 = 0x6A81
	SWFileNotFound           uint16 = 0x6A82 // file or application not found
	SWNotEnoughMemory        uint16 = 0x6A84
	SWIncorrectP1P2          uint16 = 0x6A86
	SWReferenceNotFound      uint16 = 0x6A88 // referenced data (key, key version) not found
	SWWrongP1P2              uint16 = 0x6B00 // wrong parameters (offset outside the EF)
	SWINSNotSupported        uint16 = 0x6D00
	SWCLANotSupported        uint16 = 0x6E00
	SWUnknown                uint16 = 0x6F00 // no precise diagnosis
)

var swMeanings = map[uint16]string{
	SWOK:                     "success",
	SWEndOfFile:              "end of file reached before reading ne bytes",
	SWMemoryFailure:          "memory failure",
	SWWrongLength:            "wrong length",
	SWSMNotSupported:         "secure messaging not supported",
	SWIncompatibleFile:       "command incompatible with file structure",
	SWSecurityNotSatisfied:   "security status not satisfied",
	SWAuthMethodBlocked:      "authentication method blocked",
	SWReferenceDataNotUsable: "reference data not usable",
	SWConditionsNotSatisfied: "conditions of use not satisfied",
	SWNoCurrentEF:            "command not allowed: no current ef",
	SWSMDataMissing:          "expected secure messaging data objects missing",
	SWSMDataIncorrect:        "incorrect secure messaging data objects",
	SWWrongData:              "incorrect parameters in the data field",
	SWFuncNotSupported:       "function not supported",
	SWFileNotFound:           "file or application not found",
	SWNotEnoughMemory:        "not enough memory space in the file",
	SWIncorrectP1P2:          "incorrect parameters p1-p2",
	SWReferenceNotFound:      "referenced data not found",
	SWWrongP1P2:              "wrong parameters p1-p2",
	SWINSNotSupported:        "instruction not supported",
	SWCLANotSupported:        "class not supported",
	SWUnknown:                "no precise diagnosis",
}

// Meaning returns a short English description of sw (lowercase, for error messages).
func Meaning(sw uint16) string {
	if m, ok := swMeanings[sw]; ok {
		return m
	}
	switch sw >> 8 {
	case 0x61:
		return fmt.Sprintf("%d response bytes still available", sw&0xFF)
	case 0x6C:
		return fmt.Sprintf("wrong le: %d bytes available", sw&0xFF)
	case 0x63:
		if sw&0xF0 == 0xC0 {
			return fmt.Sprintf("verification failed, %d tries left", sw&0x0F)
		}
		return "warning: non-volatile memory changed"
	case 0x62:
		return "warning: non-volatile memory unchanged"
	}
	return "unknown status"
}

// TriesLeft reports x for a status word 63Cx (verification failed or, with no data, the
// remaining tries of a PIN), and ok=false for any other status word.
func TriesLeft(sw uint16) (tries int, ok bool) {
	if sw&0xFFF0 != SWVerifyFailed {
		return 0, false
	}
	return int(sw & 0x0F), true
}

// StatusError is a status word other than 9000 returned by a card. Callers branch on it with
// errors.As, or with errors.Is(err, &StatusError{SW: x}) which compares the status word.
type StatusError struct {
	SW uint16
}

// Error implements error: "apdu: card returned 6982 (security status not satisfied)".
func (e *StatusError) Error() string {
	return fmt.Sprintf("apdu: card returned %04X (%s)", e.SW, Meaning(e.SW))
}

// Is reports whether target is a *StatusError with the same status word.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t != nil && t.SW == e.SW
}

// IsStatus reports whether err is or wraps a *StatusError with status word sw.
func IsStatus(err error, sw uint16) bool {
	var se *StatusError
	return errors.As(err, &se) && se.SW == sw
}
