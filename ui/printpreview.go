package ui

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"

	"madoguchi/app/printout/spool"
	"madoguchi/assets/translations"
)

// Pdftoppm renders a PDF's first page with poppler's pdftoppm (Debian package poppler-utils),
// run as a subprocess: the terminal has no PDF renderer of its own, and the preview must show
// the very file that is saved and printed, not a second rendering of the data.
//
// The PDF goes to pdftoppm on standard input. pdftoppm (poppler 22.12, Debian 12) writes no image
// to standard output ("-" as the output root gives zero bytes), so the page image goes to a
// private temporary directory (0700) that is removed before RenderFirstPage returns: no copy of
// the notice (which carries personal data) is left behind.
type Pdftoppm struct {
	Path string // the program; default "pdftoppm" on $PATH
	DPI  int    // default 60: an A4 page of about 500×700 pixels, enough for a preview
}

var _ PDFRenderer = Pdftoppm{}

// RenderFirstPage implements PDFRenderer.
func (r Pdftoppm) RenderFirstPage(ctx context.Context, pdf []byte) (image.Image, error) {
	path, dpi := r.Path, r.DPI
	if path == "" {
		path = "pdftoppm"
	}
	if dpi <= 0 {
		dpi = 60
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "madoguchi-preview-")
	if err != nil {
		return nil, fmt.Errorf("ui: pdftoppm: %w", err)
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "page")
	cmd := exec.CommandContext(ctx, path, "-png", "-r", fmt.Sprint(dpi), "-f", "1", "-l", "1", "-singlefile", "-", root)
	cmd.Stdin = bytes.NewReader(pdf)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ui: pdftoppm: %w: %s", err, bytes.TrimSpace(errOut.Bytes()))
	}
	out, err := os.ReadFile(root + ".png")
	if err != nil {
		return nil, fmt.Errorf("ui: pdftoppm output: %w", err)
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("ui: pdftoppm output: %w", err)
	}
	return img, nil
}

// DocumentPrinter is the counter's printer as the screens need it: it sends a saved PDF as one
// job named title and waits until the job has printed, returning the job's number. title must
// carry no personal data (print servers show job names to anyone who lists the queue): the
// screens use "notice case <id>" and "document case <id>". Implementations must be safe for
// concurrent use and honour ctx.
type DocumentPrinter interface {
	PrintFile(ctx context.Context, path, title string) (jobID int, err error)
}

// printerReady reports whether p can print: it is set and, when it can say so (a printer taken
// from settings the supervisor may clear), has a queue.
func printerReady(p DocumentPrinter) bool {
	if c, ok := p.(interface{ Configured() bool }); ok {
		return c.Configured()
	}
	return p != nil
}

// PDFSpooler submits a PDF to a print queue and waits for it (implemented by
// app/printout/spool.Client).
type PDFSpooler interface {
	Print(ctx context.Context, title string, pdf []byte) (jobID int, err error)
}

var _ PDFSpooler = (*spool.Client)(nil)

// SpoolPrinter prints the saved files through a CUPS queue (app/printout/spool). The printed
// bytes are the saved file's, so the paper is the very document that was previewed.
type SpoolPrinter struct{ Spool PDFSpooler }

var _ DocumentPrinter = SpoolPrinter{}

// PrintFile implements DocumentPrinter.
func (p SpoolPrinter) PrintFile(ctx context.Context, path, title string) (int, error) {
	pdf, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("ui: print %s: %w", filepath.Base(path), err)
	}
	return p.Spool.Print(ctx, title, pdf)
}

// printErrorText says in the UI language why printing failed and what to do, from the
// spooler's kind and detail code (the print context of the table); the English error goes to
// the log only.
func printErrorText(err error) string { return errorMessageIn(translations.Print, err) }

// printTimeout bounds one print from the button: the spooler waits until the job has printed.
const printTimeout = 2 * time.Minute

// printAndRecord prints the saved document at path (document: app.Document*, of case caseID)
// and records the print, or its failure, in the operator's history (sess, taken on the UI
// goroutine; nil when nobody is logged in). It blocks until the job has printed: call it off
// the UI goroutine. The job's name carries no personal data (see DocumentPrinter).
func printAndRecord(sess Session, print DocumentPrinter, path string, caseID int64, document string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), printTimeout)
	job, err := print.PrintFile(ctx, path, fmt.Sprintf("%s case %d", document, caseID))
	cancel()
	recordPrinted(sess, caseID, document, job, err)
	return job, err
}

// recordPrinted records a print, or its failure, in the history of sess's operator (nil:
// nobody is logged in); a failure to record goes to the log.
func recordPrinted(sess Session, caseID int64, document string, job int, printErr error) {
	if sess == nil {
		return
	}
	if rerr := sess.RecordPrinted(context.Background(), caseID, document, job, printErr); rerr != nil {
		log.Printf("ui: recording the print of %s (case %d): %v", document, caseID, rerr)
	}
}

// saveNotice writes pdf as dir/notice-<case>-<time>.pdf, readable by this user only (the notice
// carries the holder's name), never over an existing file.
func saveNotice(dir string, caseID int64, pdf []byte, now time.Time) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("ui: no directory for notices")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("ui: notice directory: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("notice-%d-%s.pdf", caseID, now.Format("20060102-150405.000")))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("ui: save notice: %w", err)
	}
	if _, err := f.Write(pdf); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("ui: save notice: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("ui: save notice: %w", err)
	}
	return path, nil
}

// previewImage shows a rendered page at a readable size inside the window.
func previewImage(img image.Image) fyne.CanvasObject {
	c := canvas.NewImageFromImage(img)
	c.FillMode = canvas.ImageFillContain
	c.SetMinSize(fyne.NewSize(360, 510))
	return c
}
