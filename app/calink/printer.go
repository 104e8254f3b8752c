package calink

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"madoguchi/app/apperr"
	"madoguchi/app/printout"
	"madoguchi/app/printout/spool"
)

// The counter's printer is a setting of the terminal like the CA URL: the supervisor chooses
// the CUPS queue (and its scheduler) on the settings screen, it is kept in settings.json, and
// --printer / --cups-server on the command line win over the stored values. Each print uses the
// queue in the settings at that moment, so a change takes effect at the next print.

// errNoPrinter: printing was asked for while no queue is set.
var errNoPrinter = apperr.New(apperr.InvalidInput, "terminal: no printer is set (settings screen or --printer)")

// printerFlags applies --printer and --cups-server to the settings next. Only the form is
// checked, not the scheduler: the terminal starts while the print server is down.
func printerFlags(next *Settings, flags Settings) error {
	if flags.Printer == "" && flags.CUPSServer == "" {
		return nil
	}
	if flags.Printer != "" {
		next.Printer, next.CUPSServer = flags.Printer, flags.CUPSServer
	} else if next.Printer == "" {
		return errors.New("--cups-server without --printer, and no printer in the settings")
	} else {
		next.CUPSServer = flags.CUPSServer
	}
	_, err := spool.New(spool.Options{Queue: next.Printer, Server: next.CUPSServer})
	return err
}

// spoolClient is the client of the queue in the settings now, or nil when none is set.
func (l *Link) spoolClient() (*spool.Client, error) {
	l.mu.Lock()
	queue, server := l.settings.Printer, l.settings.CUPSServer
	l.mu.Unlock()
	if queue == "" {
		return nil, nil
	}
	return spool.New(spool.Options{Queue: queue, Server: server})
}

// SetPrinter chooses the CUPS queue of the counter's documents and its scheduler: a queue is kept only when its scheduler answers
// and has it (a stopped queue is kept: it is the right queue, and printing says it is stopped);
// queue "" turns printing off. The errors are spool's, for the screen to explain.
func (l *Link) SetPrinter(ctx context.Context, queue, server string) error {
	queue, server = strings.TrimSpace(queue), strings.TrimSpace(server)
	if queue == "" && server != "" {
		return &spool.Error{Err: spool.ErrBadRequest, Detail: "a CUPS server without a queue"}
	}
	if queue != "" {
		c, err := spool.New(spool.Options{Queue: queue, Server: server})
		if err != nil {
			return err
		}
		if _, err := c.Status(ctx); err != nil {
			return err
		}
	}
	if err := l.change(func(st *Settings) { st.Printer, st.CUPSServer = queue, server }, false); err != nil {
		return err
	}
	LogPrinter(l.Current())
	return nil
}

// Configured reports whether a queue is set (ui: without one, documents are saved only).
func (l *Link) Configured() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settings.Printer != ""
}

// PrintFile prints the saved PDF at path through the queue in the settings now. The printed
// bytes are the saved file's, so the paper is the very document that was previewed.
func (l *Link) PrintFile(ctx context.Context, path, title string) (int, error) {
	c, err := l.spoolClient()
	if err != nil || c == nil {
		return 0, errors.Join(errNoPrinter, err)
	}
	pdf, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("terminal: print %s: %w", filepath.Base(path), err)
	}
	return c.Print(ctx, title, pdf)
}

// PrintTestPage prints a page naming the queue and the terminal, with
// every character class of the documents, so the supervisor sees the fonts print whole.
func (l *Link) PrintTestPage(ctx context.Context) (int, error) {
	c, err := l.spoolClient()
	if err != nil || c == nil {
		return 0, errors.Join(errNoPrinter, err)
	}
	if l.TestPageFonts == nil {
		return 0, errors.New("terminal: no fonts for the test page")
	}
	p, err := l.TestPageFonts()
	if err != nil {
		return 0, err
	}
	terminal := l.dir
	if tc := l.Current().Certificate; tc != nil {
		terminal = tc.TerminalID
	}
	pdf, err := p.TestPage(printout.TestPage{Queue: c.Queue(), Terminal: terminal, Date: time.Now()})
	if err != nil {
		return 0, err
	}
	return c.Print(ctx, "madoguchi test page", pdf)
}

// LogPrinter says in the log where documents go.
func LogPrinter(c Config) {
	if c.Printer == "" {
		log.Printf("no printer set: documents are saved as PDF, not printed")
		return
	}
	server := c.CUPSServer
	if server == "" {
		server = "the default CUPS server"
	}
	log.Printf("documents print to CUPS queue %q on %s", c.Printer, server)
}
