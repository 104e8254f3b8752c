package calink

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"madoguchi/app/printout"
	"madoguchi/app/printout/spool"
	"madoguchi/assets/fonts/printfonts"
	"madoguchi/internal/testenv"
)

// TestPrinterSettingsWithCUPS: against a real private cupsd, the settings keep a queue only
// when the scheduler has it, each print goes to the queue in the settings at that moment, the
// test page lands in the queue as a PDF, the choice survives a restart, and --printer wins over
// the stored queue.
func TestPrinterSettingsWithCUPS(t *testing.T) {
	cups := testenv.CUPSD(t)
	ctx := context.Background()
	dataDir := t.TempDir()
	l, err := Open(dataDir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	l.TestPageFonts = func() (*printout.Printer, error) {
		return printout.New(printout.Fonts{Regular: printfonts.Regular(), Bold: printfonts.Bold()})
	}
	if l.Configured() {
		t.Fatal("a fresh terminal has a printer")
	}
	doc := filepath.Join(t.TempDir(), "notice.pdf")
	if err := os.WriteFile(doc, []byte("%PDF-1.4\n% a notice\n%%EOF\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PrintFile(ctx, doc, "issuance_notice case 1"); !errors.Is(err, errNoPrinter) {
		t.Errorf("printing with no printer: %v", err)
	}

	for _, c := range []struct {
		queue, server string
		want          error
	}{
		{"no-such-queue", cups.Server, spool.ErrNoSuchQueue},
		{cups.Queue, filepath.Join(t.TempDir(), "no.sock"), spool.ErrServerUnreachable},
		{"bad queue", cups.Server, spool.ErrBadRequest},
		{"", cups.Server, spool.ErrBadRequest},
	} {
		if err := l.SetPrinter(ctx, c.queue, c.server); !errors.Is(err, c.want) {
			t.Errorf("SetPrinter(%q, %q) = %v, want %v", c.queue, c.server, err, c.want)
		}
		if l.Configured() {
			t.Fatalf("SetPrinter(%q, %q) kept a printer that does not work", c.queue, c.server)
		}
	}

	if err := l.SetPrinter(ctx, cups.Queue, cups.Server); err != nil {
		t.Fatal(err)
	}
	job, err := l.PrintFile(ctx, doc, "issuance_notice case 1")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(cups.JobFile(job)); !bytes.HasPrefix(got, []byte("%PDF-1.4\n% a notice")) {
		t.Errorf("job %d printed %q", job, got)
	}
	job, err = l.PrintTestPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(cups.JobFile(job)); !bytes.HasPrefix(got, []byte("%PDF-")) || len(got) < 10000 {
		t.Errorf("test page job %d: %d bytes", job, len(got))
	}

	// The choice is kept; --printer and --cups-server at the next start win.
	l2, err := Open(dataDir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if c := l2.Current(); c.Printer != cups.Queue || c.CUPSServer != cups.Server {
		t.Errorf("after a restart: printer %q on %q", c.Printer, c.CUPSServer)
	}
	l3, err := Open(dataDir, Settings{Printer: "other-queue", CUPSServer: "print.example.lg.jp:631"})
	if err != nil {
		t.Fatal(err)
	}
	if c := l3.Current(); c.Printer != "other-queue" || c.CUPSServer != "print.example.lg.jp:631" {
		t.Errorf("flags did not win: printer %q on %q", c.Printer, c.CUPSServer)
	}
	if _, err := Open(dataDir, Settings{Printer: "bad queue"}); !errors.Is(err, spool.ErrBadRequest) {
		t.Errorf("a malformed --printer at start: %v", err)
	}
	if _, err := Open(t.TempDir(), Settings{CUPSServer: cups.Server}); err == nil {
		t.Error("--cups-server without any printer accepted")
	}

	// Turning printing off: documents are saved only.
	if err := l.SetPrinter(ctx, "", ""); err != nil || l.Configured() {
		t.Errorf("clearing the printer: %v, configured %v", err, l.Configured())
	}
}
