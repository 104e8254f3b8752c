package ui

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
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

// LPPrinter prints with CUPS' lp when the terminal has it; ok is false when lp is not installed
// (the notice is then saved only).
func LPPrinter() (print func(ctx context.Context, path string) error, ok bool) {
	lp, err := exec.LookPath("lp")
	if err != nil {
		return nil, false
	}
	return func(ctx context.Context, path string) error {
		out, err := exec.CommandContext(ctx, lp, "--", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ui: lp: %w: %s", err, bytes.TrimSpace(out))
		}
		return nil
	}, true
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
