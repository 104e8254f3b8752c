package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"

	"madoguchi/internal/services"
)

// DemoQueue is the name of the demo's print queue (a file queue of its private cupsd).
const DemoQueue = "madoguchi-demo"

// shortSafeDir: a directory cupsd.conf and a unix socket path can take as it is.
var shortSafeDir = regexp.MustCompile(`^/[A-Za-z0-9/._+-]{1,80}$`)

// startPrinter starts a private cupsd under the data directory (cups/; a short directory under
// /tmp when the path is too long for its socket) with a raw file queue whose jobs land as
// printed/job-<id>.pdf, so the terminal's print button really prints through CUPS.
func (d *demo) startPrinter(ctx context.Context) error {
	dir := filepath.Join(d.data, "cups")
	if !shortSafeDir.MatchString(dir) {
		tmp, err := os.MkdirTemp("/tmp", "madoguchi-demo-cups-")
		if err != nil {
			return err
		}
		d.log.Printf("  %s is too long (or unusual) for cupsd's socket: using %s for the print server", dir, tmp)
		dir = tmp
		d.add(part{name: "the print server directory", stop: func() error { return os.RemoveAll(tmp) }})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	printed := filepath.Join(d.data, "printed")
	if err := os.MkdirAll(printed, 0o700); err != nil {
		return err
	}
	d.log.Printf("  starting a private cupsd in %s (its own ServerRoot and unix socket; no system service)", dir)
	c, err := services.StartCUPSD(services.CUPSDOptions{Dir: dir, LogPath: d.freshLog("cupsd")})
	if err != nil {
		return err
	}
	d.add(part{name: "cupsd", svc: c.Service(), stop: c.Stop, optional: true})
	if err := c.AddFileQueue(DemoQueue, printed); err != nil {
		return err
	}
	d.cupsServer = c.Socket
	d.log.Printf("  cupsd is up; queue %q prints to files: every printed document lands in %s as job-<n>.pdf", DemoQueue, printed)
	return nil
}
