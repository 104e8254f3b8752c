package ui

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// chanCardWatcher reports whatever the test sends; it fails when sent a nil-status sentinel.
type chanCardWatcher struct {
	events chan CardStatus
	fail   chan error
	mu     sync.Mutex
	starts int
}

var _ CardWatcher = (*chanCardWatcher)(nil)

func (w *chanCardWatcher) WatchCard(ctx context.Context, report func(CardStatus)) error {
	w.mu.Lock()
	w.starts++
	w.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-w.fail:
			return err
		case c := <-w.events:
			report(c)
		}
	}
}

func (w *chanCardWatcher) started() int { w.mu.Lock(); defer w.mu.Unlock(); return w.starts }

type chanCAWatcher struct{ events chan CAStatus }

func (w *chanCAWatcher) WatchCA(ctx context.Context, report func(CAStatus)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-w.events:
			report(c)
		}
	}
}

func TestStatusBarFollowsCardWatcher(t *testing.T) {
	s, _ := newTestShell(t, newFakeBackend(receptionClerk()), Screens(), false)
	st := s.status
	st.RetryAfter = time.Millisecond
	cw := &chanCardWatcher{events: make(chan CardStatus), fail: make(chan error)}
	caw := &chanCAWatcher{events: make(chan CAStatus)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	if got := s.bar.cardLabel.Text; got != "カードリーダーが接続されていません" {
		t.Errorf("initial card status = %q", got)
	}
	st.Watch(ctx, cw, caw)
	for _, step := range []struct {
		status CardStatus
		want   string
	}{
		{CardAbsent, "カードが挿入されていません"},
		{CardPresent, "カードが挿入されています"},
		{CardRemoved, "カードが取り外されました"},
		{CardPresent, "カードが挿入されています"},
	} {
		cw.events <- step.status
		waitFor(t, step.want, func() bool { return s.bar.cardLabel.Text == step.want })
		if st.Card() != step.status {
			t.Errorf("binding = %v, want %v", st.Card(), step.status)
		}
	}

	// The status bar persists across log-in: same widget, same state.
	loginAs(t, s, "R001")
	if s.Current() != HomeID || s.bar.cardLabel.Text != "カードが挿入されています" {
		t.Errorf("after log-in: screen %q, card status %q", s.Current(), s.bar.cardLabel.Text)
	}

	// A watcher failure (pcscd gone) shows "no reader", and the watcher is restarted.
	cw.fail <- errors.New("pcsc: service stopped")
	waitFor(t, "no reader after failure", func() bool { return s.bar.cardLabel.Text == tr("status.card.no_reader") })
	waitFor(t, "watcher restart", func() bool { return cw.started() >= 2 })
	cw.events <- CardAbsent
	waitFor(t, "absent after restart", func() bool { return s.bar.cardLabel.Text == tr("status.card.absent") })

	caw.events <- CAConnected
	waitFor(t, "CA connected", func() bool { return s.bar.caLabel.Text == "認証局: 接続中" })
	caw.events <- CAUnreachable
	waitFor(t, "CA unreachable", func() bool { return s.bar.caLabel.Text == "認証局: 接続できません" })
}

func TestStatusWithoutWatchers(t *testing.T) {
	s, _ := newTestShell(t, newFakeBackend(), Screens(), false)
	s.status.Watch(context.Background(), nil, nil)
	if s.bar.cardLabel.Text != tr("status.card.no_reader") || s.bar.caLabel.Text != tr("status.ca.not_configured") {
		t.Errorf("status = %q / %q", s.bar.cardLabel.Text, s.bar.caLabel.Text)
	}
}
