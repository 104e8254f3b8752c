package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"madoguchi/internal/services"
)

// CUPS is a private CUPS scheduler (cupsd) with one file queue; see services.CUPS.
type CUPS struct {
	// Server is the scheduler's unix socket: `lp -h <Server>`, CUPS_SERVER, or
	// spool.Options.Server.
	Server string
	// Queue is the file queue's name ("madoguchi-test"); OutDir is where its jobs land as
	// job-<id>.pdf (services.JobFile).
	Queue, OutDir string
	LogPath       string

	*services.CUPS
}

// TestQueue is the name of the file queue CUPSD adds.
const TestQueue = "madoguchi-test"

// CUPSD starts a private cupsd (temporary ServerRoot, unix socket in a short temporary
// directory, `cupsd -f` as a child of the test) with one raw file queue, TestQueue, whose jobs
// are written to files in OutDir (a t.TempDir()). It sets no environment variable: pass Server
// to clients. Several tests may run one each, in parallel. Stopped in t.Cleanup.
func CUPSD(t testing.TB) *CUPS {
	t.Helper()
	return CUPSDWith(t, CUPSDOptions{})
}

// CUPSDOptions configures CUPSDWith; the zero value is Debian's cupsd.
type CUPSDOptions struct {
	Binary string // default /usr/sbin/cupsd
}

// CUPSDWith is CUPSD with options.
func CUPSDWith(t testing.TB, opts CUPSDOptions) *CUPS {
	t.Helper()
	c, err := services.StartCUPSD(services.CUPSDOptions{
		Binary:  opts.Binary,
		Dir:     shortTempDir(t, "cups"), // the socket path must stay under 108 bytes
		Timeout: timeout(),
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cleanup(t, c.Service())
	out := filepath.Join(t.TempDir(), "printed")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatalf("testenv: cupsd: %v", err)
	}
	if err := c.AddFileQueue(TestQueue, out); err != nil {
		t.Fatalf("testenv: cupsd: %v", err)
	}
	return &CUPS{Server: c.Socket, Queue: TestQueue, OutDir: out, LogPath: c.LogPath, CUPS: c}
}

// JobFile is the file job id of the test queue is written to.
func (c *CUPS) JobFile(id int) string { return services.JobFile(c.OutDir, id) }
