package vcard

// Status words the card answers (ISO/IEC 7816-4 §5.6).
const (
	swOK                   = 0x9000
	swEndOfFile            = 0x6282
	swMemoryFailure        = 0x6581
	swWrongLength          = 0x6700
	swIncompatibleFile     = 0x6981
	swSecurityNotSatisfied = 0x6982
	swPINBlocked           = 0x6983
	swReferenceNotUsable   = 0x6984
	swConditionsNotMet     = 0x6985
	swNoCurrentEF          = 0x6986
	swWrongData            = 0x6A80
	swFileNotFound         = 0x6A82
	swWrongP1P2            = 0x6A86
	swReferenceNotFound    = 0x6A88
	swWrongOffset          = 0x6B00
	swINSNotSupported      = 0x6D00
	swCLANotSupported      = 0x6E00
	swNoPreciseDiagnosis   = 0x6F00
)

// command is one parsed command APDU (ISO/IEC 7816-4 §5.1), short or extended.
type command struct {
	cla, ins, p1, p2 byte
	data             []byte
	ne               int // maximum response length expected; 0 = no response data
}

// parseCommand splits a command APDU into its fields, accepting the four cases in their short
// and extended forms. It reports false for a malformed APDU (the card answers 6700).
func parseCommand(b []byte) (command, bool) {
	if len(b) < 4 {
		return command{}, false
	}
	c := command{cla: b[0], ins: b[1], p1: b[2], p2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, true
	case len(body) == 1: // case 2 short
		c.ne = int(body[0])
		if c.ne == 0 {
			c.ne = 256
		}
		return c, true
	case body[0] != 0: // case 3 or 4 short
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
			c.data = body[1:]
			return c, true
		case 2 + lc:
			c.data = body[1 : 1+lc]
			c.ne = int(body[1+lc])
			if c.ne == 0 {
				c.ne = 256
			}
			return c, true
		}
		return command{}, false
	case len(body) == 3: // case 2 extended
		c.ne = int(body[1])<<8 | int(body[2])
		if c.ne == 0 {
			c.ne = 65536
		}
		return c, true
	case len(body) > 3: // case 3 or 4 extended
		lc := int(body[1])<<8 | int(body[2])
		if lc == 0 {
			return command{}, false
		}
		switch len(body) {
		case 3 + lc:
			c.data = body[3:]
			return c, true
		case 5 + lc:
			c.data = body[3 : 3+lc]
			c.ne = int(body[3+lc])<<8 | int(body[4+lc])
			if c.ne == 0 {
				c.ne = 65536
			}
			return c, true
		}
	}
	return command{}, false
}

// status returns a response APDU that is only the status word sw.
func status(sw uint16) []byte { return []byte{byte(sw >> 8), byte(sw)} }

// withStatus returns data followed by the status word sw, in a new slice.
func withStatus(data []byte, sw uint16) []byte {
	out := make([]byte, len(data), len(data)+2)
	copy(out, data)
	return append(out, byte(sw>>8), byte(sw))
}
