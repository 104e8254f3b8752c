package vcard

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults injects failures into a Link, set before Run or while it runs. Counting starts at the
// call that arms a fault: DropLinkAt(1) drops the link at the next command APDU. Control
// frames (power, reset, ATR) are not counted.
//
// Concurrency: safe for concurrent use.
type Faults struct {
	mu       sync.Mutex
	seen     int            // command APDUs received so far
	drops    map[int]bool   // absolute APDU number → drop the link there
	sws      map[int]uint16 // absolute APDU number → answer this status word instead
	garbage  map[int]bool   // absolute APDU number → answer random bytes instead
	truncate map[int]bool   // absolute APDU number → cut the answer short
	rng      *rand.Rand     // draws garbage and cut lengths; SetSeed makes it replayable
	delay    time.Duration
	chunk    int // > 0: answer response data in pieces of chunk bytes with 61xx
	removed  bool
	changed  chan struct{} // closed and replaced whenever removed changes
	onRemove func()
}

// NewFaults returns a fault set with no fault armed and the card inserted.
func NewFaults() *Faults {
	var seed [16]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux (crypto/rand documents it)
	return &Faults{
		drops: map[int]bool{}, sws: map[int]uint16{}, garbage: map[int]bool{}, truncate: map[int]bool{},
		rng:     rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		changed: make(chan struct{}),
	}
}

// SetSeed makes the random garbage and cut lengths a function of seed, so that a fault
// campaign replays the same bytes from the same seed.
func (f *Faults) SetSeed(seed uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rng = rand.New(rand.NewPCG(seed, 0x6d61646f67756368)) // "madoguch"
}

// GarbageAt makes the card answer the n-th command APDU from now (n ≥ 1) with 1 to 260
// random bytes instead of its response, as a corrupted link would. The card still processes
// the command: what it did is lost with the answer, the hard case for the terminal.
func (f *Faults) GarbageAt(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.garbage[f.seen+n] = true
}

// TruncateAt makes the card answer the n-th command APDU from now (n ≥ 1) with its response
// cut to a random shorter length of at least one byte: at least the status word's last byte
// is lost. The card still processes the command.
func (f *Faults) TruncateAt(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.truncate[f.seen+n] = true
}

// corrupt applies a garbage or truncate action to the response rsp the card produced.
func (f *Faults) corrupt(a faultAction, rsp []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case a.garbage:
		out := make([]byte, 1+f.rng.IntN(260))
		for i := range out {
			out[i] = byte(f.rng.Uint32())
		}
		return out
	case a.truncate && len(rsp) > 1:
		return rsp[:1+f.rng.IntN(len(rsp)-1)]
	}
	return rsp
}

// DropLinkAt makes the card drop the vpcd link when it receives the n-th command APDU from
// now (n ≥ 1), without answering: pcscd then reports a 0-byte response (PLATFORM.md).
func (f *Faults) DropLinkAt(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drops[f.seen+n] = true
}

// AnswerSWAt makes the card answer the n-th command APDU from now (n ≥ 1) with sw alone,
// without processing it.
func (f *Faults) AnswerSWAt(n int, sw uint16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sws[f.seen+n] = sw
}

// SetDelay makes the card wait d before answering each command APDU (0 = no delay).
func (f *Faults) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// SetResponseChunking makes the card answer response data longer than n bytes in pieces:
// the first n bytes with 61xx (xx = bytes still waiting, 00 for 256 or more), the rest on
// GET RESPONSE `00 C0 00 00 Le`, as T=0 cards do. n = 0 turns it off.
func (f *Faults) SetResponseChunking(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chunk = n
}

// Remove takes the card out of the reader: the link closes and stays closed until Insert.
func (f *Faults) Remove() {
	f.mu.Lock()
	if f.removed {
		f.mu.Unlock()
		return
	}
	f.removed = true
	close(f.changed)
	f.changed = make(chan struct{})
	hook := f.onRemove
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// Insert puts the card back: the link reconnects and pcscd powers the card on.
func (f *Faults) Insert() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.removed {
		return
	}
	f.removed = false
	close(f.changed)
	f.changed = make(chan struct{})
}

// Removed reports whether the card is out of the reader, and a channel closed at the next change.
func (f *Faults) Removed() (bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removed, f.changed
}

// faultAction is what the link does with one command APDU.
type faultAction struct {
	drop  bool
	sw    uint16
	hasSW bool
	// garbage and truncate corrupt the card's answer after it processed the command.
	garbage, truncate bool
	delay             time.Duration
	chunk             int
}

// next counts one command APDU and returns the faults armed for it.
func (f *Faults) next() faultAction {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen++
	a := faultAction{delay: f.delay, chunk: f.chunk}
	if f.drops[f.seen] {
		delete(f.drops, f.seen)
		a.drop = true
	}
	if sw, ok := f.sws[f.seen]; ok {
		delete(f.sws, f.seen)
		a.sw, a.hasSW = sw, true
	}
	if f.garbage[f.seen] {
		delete(f.garbage, f.seen)
		a.garbage = true
	}
	if f.truncate[f.seen] {
		delete(f.truncate, f.seen)
		a.truncate = true
	}
	return a
}

// Apply arms one fault written as text, as given on the command line:
//
//	drop@N        drop the link at the N-th command APDU
//	sw@N=XXXX     answer the N-th command APDU with status word XXXX (hex)
//	garbage@N     answer the N-th command APDU with 1..260 random bytes instead of its response
//	truncate@N    answer the N-th command APDU with its response cut short (≥ 1 byte lost)
//	seed=S        draw garbage and cut lengths from seed S (uint64), for an exact replay
//	delay=D       answer every command APDU after D (a Go duration, e.g. 200ms)
//	chunk=N       answer response data in pieces of N bytes with 61xx and GET RESPONSE
//	removed       start with the card out of the reader
func (f *Faults) Apply(spec string) error {
	switch {
	case spec == "removed":
		f.Remove()
		return nil
	case strings.HasPrefix(spec, "seed="):
		seed, err := strconv.ParseUint(spec[len("seed="):], 10, 64)
		if err != nil {
			return fmt.Errorf("vcard: fault %q: want seed=S with S an unsigned decimal", spec)
		}
		f.SetSeed(seed)
		return nil
	case strings.HasPrefix(spec, "drop@"), strings.HasPrefix(spec, "garbage@"), strings.HasPrefix(spec, "truncate@"):
		kind, num, _ := strings.Cut(spec, "@")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			return fmt.Errorf("vcard: fault %q: want %s@N with N ≥ 1", spec, kind)
		}
		map[string]func(int){"drop": f.DropLinkAt, "garbage": f.GarbageAt, "truncate": f.TruncateAt}[kind](n)
		return nil
	case strings.HasPrefix(spec, "sw@"):
		num, sw, ok := strings.Cut(spec[len("sw@"):], "=")
		n, err1 := strconv.Atoi(num)
		v, err2 := strconv.ParseUint(sw, 16, 16)
		if !ok || err1 != nil || err2 != nil || n < 1 || len(sw) != 4 {
			return fmt.Errorf("vcard: fault %q: want sw@N=XXXX", spec)
		}
		f.AnswerSWAt(n, uint16(v))
		return nil
	case strings.HasPrefix(spec, "chunk="):
		n, err := strconv.Atoi(spec[len("chunk="):])
		if err != nil || n < 1 || n > 256 {
			return fmt.Errorf("vcard: fault %q: want chunk=N with 1 ≤ N ≤ 256", spec)
		}
		f.SetResponseChunking(n)
		return nil
	case strings.HasPrefix(spec, "delay="):
		d, err := time.ParseDuration(spec[len("delay="):])
		if err != nil || d < 0 {
			return fmt.Errorf("vcard: fault %q: want delay=DURATION", spec)
		}
		f.SetDelay(d)
		return nil
	}
	return fmt.Errorf("vcard: unknown fault %q (want drop@N, sw@N=XXXX, garbage@N, truncate@N, seed=S, delay=D, chunk=N or removed)", spec)
}
