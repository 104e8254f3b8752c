package ui

import (
	"bytes"
	"os"
	"testing"

	"madoguchi/app/printout/spool"
	"madoguchi/internal/testenv"
)

// printTestPDF is a small valid PDF (the preview falls back to a message without a renderer).
var printTestPDF = []byte("%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n" +
	"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n")

// printingPreview shows a document preview whose print button goes to the real cupsd's file
// queue through SpoolPrinter, and waits until the document is saved.
func printingPreview(t *testing.T, cups *testenv.CUPS) *documentPreview {
	t.Helper()
	c, err := spool.New(spool.Options{Server: cups.Server, Queue: cups.Queue})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newTestShell(t, newFakeBackend(), nil, true)
	out := TerminalWiring{NoticeDir: t.TempDir(), Print: SpoolPrinter{Spool: c}}
	p := newDocumentPreview(s, out, "test", 12, 0, printTestPDF)
	waitFor(t, "the document saved", func() bool { return p.print != nil && !p.print.Disabled() })
	return p
}

// TestPrintButtonPrintsThroughCUPS: the preview's print button sends the saved file to a real
// cupsd; the status names the job, and the queue's file is the document.
func TestPrintButtonPrintsThroughCUPS(t *testing.T) {
	cups := testenv.CUPSD(t)
	p := printingPreview(t, cups)
	p.doPrint()
	want := tr("preview.printed", map[string]any{"Job": 1})
	waitFor(t, "printed", func() bool { return p.status.Text == want })
	got, err := os.ReadFile(cups.JobFile(1))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, printTestPDF) {
		t.Fatalf("the printed file differs from the saved document")
	}
	if p.print.Disabled() {
		t.Errorf("the print button stays disabled after printing")
	}
}

// TestPrintButtonSaysWhatToDo: a stopped queue and a server that is gone give the Japanese
// message for each, and the button stays usable for another try.
func TestPrintButtonSaysWhatToDo(t *testing.T) {
	cups := testenv.CUPSD(t)
	p := printingPreview(t, cups)
	if err := cups.DisableQueue(cups.Queue, ""); err != nil {
		t.Fatal(err)
	}
	p.doPrint()
	stopped := tr("preview.print_failed", map[string]any{"Reason": tr("print.error.stopped")})
	waitFor(t, "the stopped-printer message", func() bool { return p.status.Text == stopped })
	if p.print.Disabled() {
		t.Errorf("the print button is disabled after a failure")
	}
	if err := cups.Stop(); err != nil {
		t.Fatal(err)
	}
	p.doPrint()
	gone := tr("preview.print_failed", map[string]any{"Reason": tr("print.error.unreachable")})
	waitFor(t, "the unreachable-server message", func() bool { return p.status.Text == gone })
}
