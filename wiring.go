package main

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/cardio/pcsc"
	"madoguchi/internal/services"
	"madoguchi/internal/timesync"
	"madoguchi/ui"
)

// pcscCardWatcher adapts cardio/pcsc's presence watcher to the status bar (ui.CardWatcher).
// An empty reader name means the first reader pcscd lists, looked up on every (re)start so a
// reader plugged in later is found.
type pcscCardWatcher struct {
	reader string
	// link, when set, supplies the reader chosen in the settings (it overrides reader) and
	// restarts the watch when the choice changes.
	link *caLink
}

var _ ui.CardWatcher = pcscCardWatcher{}

// WatchCard implements ui.CardWatcher. It returns the pcsc error when pcscd or the reader is
// missing; the status bar then shows "no reader" and restarts it.
func (p pcscCardWatcher) WatchCard(ctx context.Context, report func(ui.CardStatus)) (err error) {
	reader := p.reader
	var changed <-chan struct{}
	if p.link != nil {
		changed = p.link.Changed()
		if r := p.link.Reader(); r != "" {
			reader = r
		}
	}
	if changed != nil {
		// A new reader choice ends this watch; the status bar restarts it with the new one.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-changed:
				cancel()
			case <-ctx.Done():
			}
		}()
		defer func() {
			select {
			case <-changed:
				err = errReaderChanged // not context.Canceled: the status bar must restart the watch
			default:
			}
		}()
	}
	if reader == "" {
		c, err := pcsc.Open()
		if err != nil {
			return err
		}
		readers, err := c.Readers()
		c.Close()
		if err != nil {
			return err
		}
		reader = readers[0]
	}
	w, err := pcsc.NewWatcher(reader)
	if err != nil {
		return err
	}
	defer w.Close()
	seen := false
	for {
		events, err := w.Next(ctx)
		if err != nil {
			return err
		}
		for _, ev := range events {
			switch {
			case ev.Present:
				report(ui.CardPresent)
			case seen:
				report(ui.CardRemoved)
			default:
				report(ui.CardAbsent)
			}
			seen = true
		}
	}
}

// errReaderChanged ends a card watch when the supervisor chose another reader.
var errReaderChanged = errors.New("terminal: card reader changed in the settings")

// The demo's virtual fingerprint device (see the package comment); both set by internal/cmd/demo.
const (
	virtualFingerEnv      = "MADOGUCHI_VIRTUAL_FINGER"
	virtualFingerPrintEnv = "MADOGUCHI_VIRTUAL_FINGER_PRINT"
)

// demoFinger returns the demo's "press the virtual finger" action, or nil on a real terminal.
func demoFinger() func() error {
	socket, print := os.Getenv(virtualFingerEnv), os.Getenv(virtualFingerPrintEnv)
	if socket == "" || print == "" {
		return nil
	}
	log.Printf("demo: the fingerprint step offers a virtual finger (%s on %s)", print, socket)
	return func() error { return services.ScanVirtualFinger(socket, print, 0) }
}

// residentChangeSender is the part of app.Terminal that delivers the resident-change outbox.
type residentChangeSender interface {
	SendResidentChanges(ctx context.Context) ([]app.ChangeDelivery, error)
}

// sendResidentChangesEvery delivers the CS application's recorded resident changes to the CA
// until ctx ends, so change-driven revocation (R02 II-3-1(2)) does not wait for a clerk to
// press "send". Each row keeps its own retry schedule in the outbox; this only wakes it up.
// Only counts are logged: the rows name residents.
func sendResidentChangesEvery(ctx context.Context, s residentChangeSender, every time.Duration) {
	repeatEvery(ctx, every, func() {
		ds, err := s.SendResidentChanges(ctx)
		if err != nil && ctx.Err() == nil && !errors.Is(err, app.ErrNoCA) { // no CA yet: it waits for one
			log.Printf("resident changes: delivery to the CA failed: %v", err)
		}
		count := map[app.ChangeOutcome]int{}
		for _, d := range ds {
			count[d.Outcome]++
		}
		if count[app.ChangeDelivered]+count[app.ChangeFailed] > 0 {
			log.Printf("resident changes: %d delivered to the CA, %d failed (retried later), %d waiting",
				count[app.ChangeDelivered], count[app.ChangeFailed], count[app.ChangeWaiting])
		}
	})
}

// auditBackupMaker is the part of app.Terminal that makes the daily backup of the audit chain.
type auditBackupMaker interface {
	BackupAuditIfDue(ctx context.Context) (audit.BackupResult, bool, error)
}

// backupAuditEvery makes today's audit backup (CPS §5.4: backed up daily) when none exists yet,
// checking every so often until ctx ends, so a terminal left running makes one backup a day
// whether or not a CA is configured.
func backupAuditEvery(ctx context.Context, b auditBackupMaker, every time.Duration) {
	repeatEvery(ctx, every, func() {
		res, made, err := b.BackupAuditIfDue(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Printf("audit backup failed: %v", err)
		case made:
			log.Printf("audit backup: %s (%d records, verified)", res.Path, res.Records)
		}
	})
}

// auditWitnesser is the part of app.Terminal that has the CA witness its audit chain head.
type auditWitnesser interface {
	WitnessAudit(ctx context.Context, operator string) (app.WitnessResult, error)
}

// witnessAuditEvery sends the audit chain head to the CA every so often until ctx ends
// (issue 13 threat 2: at least every 10 minutes; log-outs send it too), so whoever rewrites
// terminal.db cannot rewrite what the CA witnessed. An unreachable CA only delays it to the
// next tick; a head the CA refuses (the file was rewritten or replaced) is logged loudly and
// recorded in the audit trail by app.
func witnessAuditEvery(ctx context.Context, w auditWitnesser, every time.Duration) {
	failing := false
	repeatEvery(ctx, every, func() {
		_, err := w.WitnessAudit(ctx, "-")
		switch {
		case ctx.Err() != nil, errors.Is(err, app.ErrNoCA): // no CA yet: it waits for one
		case errors.Is(err, apperr.AuditBroken):
			log.Printf("AUDIT WITNESS: the CA refused this terminal's audit chain head: terminal.db was rewritten or replaced: %v", err)
		case err != nil && !failing:
			log.Printf("audit witness: the CA did not witness the audit chain head (sent again every %v): %v", every, err)
		case err == nil && failing:
			log.Printf("audit witness: the CA witnesses the audit chain head again")
		}
		failing = err != nil
	})
}

// clockChecker is the part of app.Terminal that checks the clock's synchronisation.
type clockChecker interface {
	CheckClock(ctx context.Context, read app.ClockReader) (timesync.Status, error)
}

// checkClockEvery checks every so often whether the machine clock is synchronised to a time
// source (CPS §6.8: the audit trail's timestamps must come from a trusted source); the terminal
// records the changes in the audit trail, and the log says so when the state changes.
func checkClockEvery(ctx context.Context, c clockChecker, read app.ClockReader, every time.Duration) {
	logged, synced := false, false
	repeatEvery(ctx, every, func() {
		s, err := c.CheckClock(ctx, read)
		now := err == nil && s.Synchronised
		switch {
		case ctx.Err() != nil || logged && now == synced:
		case err != nil:
			log.Printf("clock: cannot tell whether the clock is synchronised (%v): audit timestamps are not vouched for", err)
		case !now:
			log.Printf("clock: not synchronised to a time source (maximum error %v): start chrony or systemd-timesyncd; audit timestamps are not vouched for", s.MaxError)
		default:
			log.Printf("clock: synchronised (maximum error %v)", s.MaxError)
		}
		logged, synced = true, now
	})
}

// repeatEvery runs f at once and then on every tick until ctx ends.
func repeatEvery(ctx context.Context, every time.Duration, f func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
