package testenv

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"madoguchi/internal/services"
)

// TestCUPSDFileQueue proves the harness's cupsd with the cups-client tools alone: a document
// sent with `lp -h <socket>` arrives byte for byte as the job's file in OutDir, and the
// scheduler kept no copy in its spool.
func TestCUPSDFileQueue(t *testing.T) {
	start := time.Now()
	c := CUPSD(t)
	t.Logf("cupsd ready with queue %s in %v", c.Queue, time.Since(start))
	doc := []byte("%PDF-1.4\n% testenv\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
	path := t.TempDir() + "/doc.pdf"
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := services.RunTool("lp", "lp", []string{"-h", c.Server, "-d", c.Queue, "-t", "testenv", path}, []string{"LANG=C"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`request id is ` + regexp.QuoteMeta(c.Queue) + `-(\d+) `).FindSubmatch(out)
	if m == nil {
		t.Fatalf("lp printed no request id: %q", out)
	}
	id, _ := strconv.Atoi(string(m[1]))
	got := waitForFile(t, c.JobFile(id))
	if !bytes.Equal(got, doc) {
		t.Fatalf("job file holds %q, want the document %q", got, doc)
	}
	spooled, _ := os.ReadDir(c.Dir + "/spool")
	for _, e := range spooled {
		if len(e.Name()) > 0 && e.Name()[0] == 'd' { // d<job>-<n>: document files
			t.Errorf("the spool kept the document %s after printing", e.Name())
		}
	}
}

// TestCUPSDDisableEnable: DisableQueue and EnableQueue change the queue as lpstat reports it.
func TestCUPSDDisableEnable(t *testing.T) {
	c := CUPSD(t)
	if err := c.DisableQueue(c.Queue, "testenv pause"); err != nil {
		t.Fatal(err)
	}
	out, err := services.RunTool("lpstat", "lpstat", []string{"-h", c.Server, "-p", c.Queue}, []string{"LANG=C"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("disabled")) {
		t.Fatalf("lpstat does not call the queue disabled: %q", out)
	}
	if err := c.EnableQueue(c.Queue); err != nil {
		t.Fatal(err)
	}
	out, err = services.RunTool("lpstat", "lpstat", []string{"-h", c.Server, "-p", c.Queue}, []string{"LANG=C"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("enabled")) {
		t.Fatalf("lpstat does not call the queue enabled: %q", out)
	}
}

// waitForFile waits until path exists and returns its content; it fails the test after
// StartTimeout (a bound for a broken set-up, not a performance threshold).
func waitForFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(StartTimeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
