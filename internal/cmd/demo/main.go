// Command demo runs the whole of Madoguchi on one machine for a demonstration: pcscd with the
// vpcd virtual readers, the fingerprint stack (private system D-Bus, polkit stand-in, fprintd
// with libfprint's virtual device), ca-server (SoftHSM token and SQLite store under the data
// directory), a virtual My Number card in the first virtual reader, and the terminal window —
// under Xvfb when DISPLAY is unset, with a screenshot saved every few seconds so a headless user
// can see it. scripts/demo.sh builds and runs it after scripts/setup.sh.
//
//	demo [--data-dir var/demo] [--repo .] [--ca-listen 127.0.0.1:8443]
//	     [--screenshots] [--screenshot-every 5s] [--no-build]
//
// Every step says in English what it does, and a step it skips says why; a part another
// engineer has not written yet is logged as "not available yet: ..." and the demo goes on
// without it, because the terminal window must come up regardless.
//
// Ctrl-C or SIGTERM stops everything in reverse start order and waits until each child is
// reaped; the children also carry a parent-death signal, so even a SIGKILL of the demo leaves
// no pcscd, fprintd or Xvfb behind. SIGUSR1 saves a screenshot now. Closing the terminal window
// ends the demo too.
//
// The demo holds the machine-wide pcscd lock (internal/services.LockPCSCD) while its pcscd
// runs, so tests wait for it and it waits for tests; it refuses to touch a pcscd that neither it
// nor the test harness started.
//
// For the terminal it exports DBUS_SYSTEM_BUS_ADDRESS (the private system bus with fprintd),
// MADOGUCHI_VIRTUAL_FINGER (the virtual fingerprint device's socket: writing "SCAN <print-id>"
// to it is one finger press) and, once the demo supervisor exists, MADOGUCHI_VIRTUAL_FINGER_PRINT
// (the print id enrolled for it).
//
// Concurrency: one demo per machine (the pcscd lock enforces it); Run blocks until the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	logger := log.New(os.Stderr, "demo: ", log.Ltime)
	cfg := Config{Log: logger}
	flag.StringVar(&cfg.DataDir, "data-dir", "var/demo", "directory for everything the demo creates (binaries, CA, card, terminal, logs, screenshot)")
	flag.StringVar(&cfg.Repo, "repo", ".", "root of the madoguchi module (where go.mod is) to build the binaries from")
	flag.StringVar(&cfg.CAListen, "ca-listen", "127.0.0.1:8443", "address ca-server listens on (loopback)")
	flag.StringVar(&cfg.Municipality, "municipality", "131016", "6-digit local government code the terminal is enrolled for (131016: Chiyoda, Tokyo)")
	flag.BoolVar(&cfg.Screenshots, "screenshots", false, "save screenshots also when DISPLAY is set (always on under the demo's own Xvfb)")
	flag.DurationVar(&cfg.ScreenshotEvery, "screenshot-every", 5*time.Second, "interval between screenshots")
	noBuild := flag.Bool("no-build", false, "use the binaries already in <data-dir>/bin instead of running go build")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	cfg.Build = !*noBuild

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shoot := make(chan os.Signal, 1)
	signal.Notify(shoot, syscall.SIGUSR1)
	cfg.ScreenshotNow = shoot

	err := Run(ctx, cfg)
	switch {
	case err == nil:
		logger.Printf("everything stopped; bye")
	case errors.Is(err, context.Canceled):
		logger.Printf("interrupted; everything stopped")
	default:
		logger.Printf("failed: %v", err)
		os.Exit(1)
	}
}
