package issue

import "time"

// OnCommit sets the hook told of each committed transaction of o and the time it took
// (BenchmarkCounterIssuance's journal phase).
func OnCommit(o *Orchestrator, f func(took time.Duration)) { o.cfg.committed = f }

// SignatureLayout is the subjectAltName layout the read-back uses (jpki.StandardAttributes).
var SignatureLayout = signatureLayout

// CurrentPINRefusal exposes currentPINRefusal to the external tests.
var CurrentPINRefusal = currentPINRefusal
