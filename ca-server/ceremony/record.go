package ceremony

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Event is one recorded ceremony step: who, what, when and the result
// (TS Art. 20(2), 42(2); CPS §5.4). Details never hold secrets: no PIN,
// passphrase, share or key value.
type Event struct {
	Time     time.Time         `json:"time"`
	Ceremony string            `json:"ceremony"` // ceremony id
	Command  string            `json:"command"`  // init, backup, restore, activate, destroy, card-batch
	Step     string            `json:"step"`     // e.g. "generate signature ca key"
	Who      []string          `json:"who"`      // custodians present
	Result   string            `json:"result"`   // "ok" or the error text
	Detail   map[string]string `json:"detail,omitempty"`
}

// Recorder records ceremony steps. The audit engineer may route it into the
// CA audit log; FileRecord is the local default.
type Recorder interface {
	Record(ctx context.Context, e Event) error
}

// FileRecord is an append-only JSON-lines file where each line carries the
// SHA-256 of the previous line's hash and its own content, so removing,
// reordering or altering a line breaks the chain (VerifyRecord). Safe for
// concurrent use within one process; ceremonies are run one at a time.
type FileRecord struct {
	path string
	mu   sync.Mutex
}

var _ Recorder = (*FileRecord)(nil)

type recordLine struct {
	Seq   int    `json:"seq"`
	Prev  string `json:"prev"`
	Event Event  `json:"event"`
	Hash  string `json:"hash"`
}

func lineHash(seq int, prev string, e Event) (string, error) {
	body, err := json.Marshal(struct {
		Seq   int    `json:"seq"`
		Prev  string `json:"prev"`
		Event Event  `json:"event"`
	}{seq, prev, e})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:]), nil
}

// NewFileRecord returns the record kept at path (created on first Record).
func NewFileRecord(path string) *FileRecord { return &FileRecord{path: path} }

// Record appends e, chained to the last line.
func (r *FileRecord) Record(_ context.Context, e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	lines, err := readRecord(r.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	prev, seq := "", 1
	if n := len(lines); n > 0 {
		prev, seq = lines[n-1].Hash, lines[n-1].Seq+1
	}
	e.Time = e.Time.UTC()
	h, err := lineHash(seq, prev, e)
	if err != nil {
		return fmt.Errorf("ceremony: record: %w", err)
	}
	b, err := json.Marshal(recordLine{Seq: seq, Prev: prev, Event: e, Hash: h})
	if err != nil {
		return fmt.Errorf("ceremony: record: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("ceremony: record: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("ceremony: record: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("ceremony: record: %w", err)
	}
	return f.Close()
}

// Events returns the recorded events after verifying the chain.
func (r *FileRecord) Events() ([]Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lines, err := readRecord(r.path)
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(lines))
	for i, l := range lines {
		out[i] = l.Event
	}
	return out, nil
}

// ErrRecordBroken: the record's hash chain does not hold.
var ErrRecordBroken = errors.New("ceremony: record hash chain broken")

// readRecord reads and verifies the whole chain.
func readRecord(path string) ([]recordLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines []recordLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	prev := ""
	for n := 1; sc.Scan(); n++ {
		var l recordLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrRecordBroken, n, err)
		}
		want, err := lineHash(l.Seq, l.Prev, l.Event)
		if err != nil {
			return nil, err
		}
		if l.Seq != n || l.Prev != prev || l.Hash != want {
			return nil, fmt.Errorf("%w: at line %d", ErrRecordBroken, n)
		}
		prev = l.Hash
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ceremony: record: %w", err)
	}
	return lines, nil
}

// VerifyRecord checks the hash chain of the record at path.
func VerifyRecord(path string) error {
	_, err := readRecord(path)
	return err
}
