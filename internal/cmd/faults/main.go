// Command faults runs the fault campaign of internal/campaign (issue 15):
//
//	go run ./internal/cmd/faults -n 1000 -seed S [-db sqlite|postgres] [-kinds k1,k2] [-from K]
//	                             [-revoke-share 0.1] [-pin-reset-share 0.1] [-draw v1|v2]
//	                             [-dir DIR] [-report docs/RELIABILITY.md]
//
// It sets up the whole chain once (SoftHSM, the CA's ceremony and `serve`, pcscd+vpcd, a
// terminal enrolled with its operators and residents), then runs N cases each with one fault
// drawn from the seed, checks the invariants after each, and prints the per-kind table. A
// violated invariant stops the run and prints the seed, case and fault; `-seed S -from K -n 1`
// replays that case. With -db sqlite,postgres both campaigns run side by side on one pcscd
// (reader 0 and reader 1).
//
// -draw v1 draws kinds and operations as the runs of 2026-12-07 did (the first kind list, no
// fsync-error; issue or revoke only, no PIN resets): the runs recorded with it in
// docs/RELIABILITY.md replay only so, e.g. `-draw v1 -seed 20261207 -db sqlite -from 906 -n 1`.
// The default, v2, has the fsync-error kind and the PIN-reset share.
//
// Run as root, the command re-executes itself under `unshare --mount --propagation private`
// so the disk-full fault's tmpfs mounts stay private to it and vanish with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"madoguchi/internal/campaign"
	"madoguchi/internal/testenv"
)

var stopTime time.Time

// privateEnv marks the re-executed process inside its own mount namespace.
const privateEnv = "MADOGUCHI_FAULTS_PRIVATE_MOUNTS"

func main() {
	n := flag.Int("n", 100, "number of cases")
	seed := flag.Uint64("seed", 1, "seed of the fault draws (the same seed and case number draw the same fault)")
	from := flag.Int("from", 0, "first case number (replay one case: -from K -n 1)")
	db := flag.String("db", "sqlite", "CA store: sqlite, postgres, or both as sqlite,postgres (two campaigns at once, one per vpcd reader); NAME:N gives that campaign N cases instead of -n, NAME:N@K starts it at case K instead of -from")
	kinds := flag.String("kinds", "", "comma-separated fault kinds (default all): "+kindNames())
	dir := flag.String("dir", "", "work directory (default a new directory under /tmp); kept after the run for its logs")
	report := flag.String("report", "", "append the run's section to this Markdown file (docs/RELIABILITY.md)")
	patience := flag.Duration("patience", 12*time.Second, "how long the operator waits for a hung command before killing it and recovering")
	revoke := flag.Float64("revoke-share", 0.1, "share of cases that revoke an earlier delivered resident's certificates")
	pinReset := flag.Float64("pin-reset-share", 0.1, "share of cases that reset a PIN of an earlier delivered resident's card (draw v2; 0 with -draw v1)")
	drawFlag := flag.String("draw", "v2", "how kinds and operations are drawn: v2 (the kinds listed, PIN resets), or v1 to replay the runs recorded before the fsync-error kind and PIN resets (docs/RELIABILITY.md)")
	auditEvery := flag.Int("audit-every", 1, "verify both audit chains after every this many cases (and at the end)")
	stopAt := flag.String("stop-at", "", "UTC time HH:MM after which no case starts (the end-of-run checks follow); the report says how many ran")
	flag.Parse()
	draw, err := campaign.ParseDrawVersion(*drawFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(2)
	}
	if draw == campaign.DrawV1 {
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "pin-reset-share" })
		if !set {
			*pinReset = 0 // v1 had no PIN resets; an explicit share is refused by the runner
		}
	}

	if os.Geteuid() == 0 && os.Getenv(privateEnv) == "" {
		if path, err := exec.LookPath("unshare"); err == nil {
			cmd := exec.Command(path, append([]string{"--mount", "--propagation", "private", "--", os.Args[0]}, os.Args[1:]...)...)
			cmd.Env = append(os.Environ(), privateEnv+"=1")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "faults: unshare:", err)
				os.Exit(1)
			}
			return
		}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "madoguchi-faults-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d
	}
	var ks []campaign.Kind
	for _, k := range strings.Split(*kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			ks = append(ks, campaign.Kind(k))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *stopAt != "" {
		hm, err := time.Parse("15:04", *stopAt)
		if err != nil {
			fmt.Fprintln(os.Stderr, "faults: -stop-at wants HH:MM (UTC)")
			os.Exit(2)
		}
		now := time.Now().UTC()
		at := time.Date(now.Year(), now.Month(), now.Day(), hm.Hour(), hm.Minute(), 0, 0, time.UTC)
		if at.Before(now) {
			at = at.Add(24 * time.Hour)
		}
		stopTime = at
	}
	opt := campaign.Options{StopAt: stopTime, Seed: *seed, From: *from, N: *n, Kinds: ks, Patience: *patience, RevokeShare: *revoke, PINResetShare: *pinReset, Draw: draw, AuditEvery: *auditEvery}
	os.Exit(run(ctx, *dir, strings.Split(*db, ","), opt, *report))
}

func kindNames() string {
	s := make([]string, len(campaign.AllKinds))
	for i, k := range campaign.AllKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

func run(ctx context.Context, dir string, dbs []string, opt campaign.Options, reportPath string) (code int) {
	h := campaign.NewHarness(dir, os.Stderr)
	defer h.Close()
	defer func() {
		if p := recover(); p != nil {
			if f, ok := p.(*campaign.Fatal); ok {
				fmt.Fprintln(os.Stderr, "faults: set-up failed:", f.Msg)
				code = 1
				return
			}
			panic(p)
		}
	}()
	fmt.Fprintf(os.Stderr, "faults: work directory %s\n", dir)
	pc := testenv.PCSCD(h)
	var wg sync.WaitGroup
	codes := make([]int, len(dbs))
	var outMu sync.Mutex
	for i, spec := range dbs {
		spec, from, hasFrom := strings.Cut(spec, "@")
		db, count, hasCount := strings.Cut(spec, ":")
		o := opt
		if hasFrom {
			k, err := strconv.Atoi(from)
			if err != nil || k < 0 {
				fmt.Fprintf(os.Stderr, "faults: -db %s: want NAME[:N][@FROM]\n", spec)
				return 2
			}
			o.From = k
		}
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n <= 0 {
				fmt.Fprintf(os.Stderr, "faults: -db %s: want NAME:N\n", spec)
				return 2
			}
			o.N = n
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					fmt.Fprintf(os.Stderr, "faults [%s]: %v\n", db, p)
					codes[i] = 1
				}
			}()
			logw := prefixWriter{w: os.Stdout, mu: &outMu, prefix: "[" + db + "] "}
			began := time.Now()
			s := campaign.NewStack(h, pc, campaign.Config{Dir: filepath.Join(dir, db), DB: db, Cards: 2*o.N + 20,
				Residents: o.From + o.N, Reader: i, Log: logw, Tmpfs: os.Getenv(privateEnv) != ""})
			fmt.Fprintf(logw, "set-up done in %v\n", time.Since(began).Round(time.Second))
			o.Log = logw
			r, err := campaign.NewRunner(s, o)
			if err != nil {
				fmt.Fprintln(logw, err)
				codes[i] = 1
				return
			}
			err = r.Run(ctx)
			outMu.Lock()
			fmt.Fprintf(os.Stdout, "\n### %s\n\n%s\n\n", db, r.Report.Summary())
			r.Report.Table(os.Stdout)
			outMu.Unlock()
			if reportPath != "" {
				if werr := appendReport(reportPath, r.Report, err); werr != nil {
					fmt.Fprintln(logw, "report:", werr)
				}
			}
			if err != nil {
				fmt.Fprintln(logw, "RUN STOPPED:", err)
				codes[i] = 1
			}
		}()
	}
	wg.Wait()
	for _, c := range codes {
		if c != 0 {
			return c
		}
	}
	return 0
}

func appendReport(path string, r *campaign.Report, runErr error) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "\n#### Run of %s\n\n%s\n\n", r.Started.Format("2006-01-02 15:04 UTC"), r.Summary())
	r.Table(f)
	if runErr != nil {
		fmt.Fprintf(f, "\nThe run stopped: %v\n", runErr)
	}
	return nil
}

type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			io.WriteString(p.w, p.prefix+line)
		}
	}
	return len(b), nil
}
