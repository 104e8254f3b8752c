package ui

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"testing"

	"madoguchi/app"
	"madoguchi/app/printout/spool"
	"madoguchi/internal/testenv"
)

// printTestPDF is a small valid PDF (the preview falls back to a message without a renderer).
var printTestPDF = []byte("%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n" +
	"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n")

// printingPreview shows a document preview, with reception clerk R001 logged in, whose print
// button goes to the real cupsd's file queue through SpoolPrinter, and waits until the document
// is saved.
func printingPreview(t *testing.T, cups *testenv.CUPS) (*documentPreview, *fakeBackend) {
	t.Helper()
	c, err := spool.New(spool.Options{Server: cups.Server, Queue: cups.Queue})
	if err != nil {
		t.Fatal(err)
	}
	b := newFakeBackend(receptionClerk())
	s, _ := newTestShell(t, b, procScreens(), true)
	loginAs(t, s, "R001")
	waitFor(t, "logged in", func() bool { return s.Session() != nil })
	out := TerminalWiring{NoticeDir: t.TempDir(), Print: SpoolPrinter{Spool: c}}
	p := newDocumentPreview(s, out, "test", 12, app.DocumentRevocationNotice, 0, printTestPDF)
	waitFor(t, "the document saved", func() bool { return p.print != nil && !p.print.Disabled() })
	return p, b
}

// prints returns the prints recorded in the operator's history so far.
func (b *fakeBackend) prints() []printRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.printed)
}

// TestPrintButtonPrintsThroughCUPS: the preview's print button sends the saved file to a real
// cupsd; the status names the job, and the queue's file is the document.
func TestPrintButtonPrintsThroughCUPS(t *testing.T) {
	cups := testenv.CUPSD(t)
	p, b := printingPreview(t, cups)
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
	if got := b.prints(); len(got) != 1 || got[0] != (printRecord{caseID: 12, document: app.DocumentRevocationNotice, job: 1}) {
		t.Errorf("prints recorded in the operator's history: %+v, want case 12's revocation notice as job 1", got)
	}
}

// TestPrintButtonSaysWhatToDo: a stopped queue and a server that is gone give the Japanese
// message for each, and the button stays usable for another try.
func TestPrintButtonSaysWhatToDo(t *testing.T) {
	cups := testenv.CUPSD(t)
	p, b := printingPreview(t, cups)
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
	got := b.prints()
	if len(got) != 2 || !errors.Is(got[0].err, spool.ErrQueueStopped) || !errors.Is(got[1].err, spool.ErrServerUnreachable) {
		t.Errorf("failed prints recorded: %+v, want the stopped queue and the unreachable server", got)
	}
}
