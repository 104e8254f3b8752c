package terminal

// The terminal's periodic jobs, started by Terminal.Run: the resident-change outbox, the
// audit witness, the daily audit backup and the clock check.

import (
	"context"
	"errors"
	"log"
	"time"

	"madoguchi/app"
	"madoguchi/app/apperr"
	"madoguchi/app/audit"
	"madoguchi/internal/timesync"
)

// residentChangeSender is the part of app.Terminal that delivers the resident-change outbox.
type residentChangeSender interface {
	SendResidentChanges(ctx context.Context) ([]app.ChangeDelivery, error)
}

// sendResidentChangesEvery delivers the CS application's recorded resident changes to the CA
// until ctx ends, so change-driven revocation (R02 II-3-1(2)) does not wait for a clerk to
// press "send". Each row keeps its own retry schedule in the outbox; this only wakes it up.
// Only counts are logged: the rows name residents.
func sendResidentChangesEvery(ctx context.Context, s residentChangeSender, every time.Duration) {
	sendResidentChangesOn(ctx, s, every, nil)
}

// sendResidentChangesOn is sendResidentChangesEvery that also sends at once when wake's
// channel closes (a CA link change: enrolment, a new CA URL), so a terminal started without a
// CA delivers its outbox as soon as it has one.
func sendResidentChangesOn(ctx context.Context, s residentChangeSender, every time.Duration, wake func() <-chan struct{}) {
	repeatOn(ctx, every, wake, func() {
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
	witnessAuditOn(ctx, w, every, nil)
}

// witnessAuditOn is witnessAuditEvery that also sends at once when wake's channel closes (a
// CA link change).
func witnessAuditOn(ctx context.Context, w auditWitnesser, every time.Duration, wake func() <-chan struct{}) {
	failing := false
	repeatOn(ctx, every, wake, func() {
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
		failing = err != nil && !errors.Is(err, app.ErrNoCA)
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
func repeatEvery(ctx context.Context, every time.Duration, f func()) { repeatOn(ctx, every, nil, f) }

// repeatOn is repeatEvery that also runs f when the channel wake returns closes (nil: ticks
// only). The channel is taken before f runs, so a change during f wakes the next round.
func repeatOn(ctx context.Context, every time.Duration, wake func() <-chan struct{}, f func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var woken <-chan struct{}
		if wake != nil {
			woken = wake()
		}
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-woken:
		}
	}
}
