package revocation_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"madoguchi/ca-server/revocation"
)

var jst = time.FixedZone("JST", 9*3600)

func TestEmbeddedRulesLoad(t *testing.T) {
	r := revocation.Default()
	if r.Version == "" {
		t.Fatal("no version")
	}
}

func TestReasonTable(t *testing.T) {
	r := revocation.Default()
	want := []struct {
		name, ja string
	}{
		{"unspecified", "交付前に破棄"}, {"keyCompromise", "危殆化"}, {"cACompromise", "CAの秘密鍵"},
		{"affiliationChanged", "記載内容に変更"}, {"superseded", "更新"}, {"cessationOfOperation", "必要性がなくなった"},
		{"certificateHold", "一時的に保留"},
	}
	for code, w := range want {
		ri, ok := r.Reason(revocation.Reason(code))
		if !ok || ri.Name != w.name || !strings.Contains(ri.Ja, w.ja) {
			t.Errorf("code %d: %+v", code, ri)
		}
	}
	for _, c := range []revocation.Reason{-1, 7, 8} {
		if _, ok := r.Reason(c); ok {
			t.Errorf("code %d accepted", c)
		}
	}
}

func TestRequestChannels(t *testing.T) {
	r := revocation.Default()
	tests := []struct {
		kind    string
		ch      revocation.Channel
		reason  revocation.Reason
		counter bool
		err     error
	}{
		{"stop-using", revocation.ChannelCounter, 5, false, nil},
		{"stop-using", revocation.ChannelOnlineSigned, 5, false, nil},
		{"stop-using", revocation.ChannelPhone, 0, false, revocation.ErrChannel},
		{"key-compromise", revocation.ChannelCounter, 1, true, nil},
		{"key-compromise", revocation.ChannelOnlineSigned, 0, false, revocation.ErrChannel}, // CPS §4.9.3.1(2)
		{"key-compromise", revocation.ChannelPhone, 0, false, revocation.ErrChannel},
		{"card-unusable", revocation.ChannelCounter, 1, true, nil},
		{"card-unusable", revocation.ChannelOnlineSigned, 0, false, revocation.ErrChannel},
		{"renewal", revocation.ChannelCounter, 4, true, nil},
		{"not-delivered", revocation.ChannelSystem, 0, false, nil},
		{"ca-compromise", revocation.ChannelSystem, 2, false, nil},
		{"ca-compromise", revocation.ChannelCounter, 0, false, revocation.ErrChannel},
		{"because", revocation.ChannelCounter, 0, false, revocation.ErrUnknownRequest},
	}
	for _, tt := range tests {
		q, err := r.Request(tt.kind, tt.ch)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s via %s: %v, want %v", tt.kind, tt.ch, err, tt.err)
			continue
		}
		if err == nil && (q.Reason != tt.reason || q.CounterOnly() != tt.counter) {
			t.Errorf("%s via %s: reason %d counter-only %v", tt.kind, tt.ch, q.Reason, q.CounterOnly())
		}
		if err != nil && !strings.HasPrefix(err.Error(), "revocation: ") {
			t.Errorf("error %q lacks prefix", err)
		}
	}
}

func TestHoldTransitions(t *testing.T) {
	r := revocation.Default()
	now := time.Date(2026, 4, 1, 10, 0, 0, 0, jst)
	valid := now.AddDate(2, 0, 0)
	tests := []struct {
		name     string
		from     revocation.Status
		action   revocation.StatusAction
		ch       revocation.Channel
		notAfter time.Time
		to       revocation.Status
		err      error
	}{
		{"hold by phone", revocation.StatusGood, revocation.Hold, revocation.ChannelPhone, valid, revocation.StatusHeld, nil},
		{"hold at counter is not the hold path", revocation.StatusGood, revocation.Hold, revocation.ChannelCounter, valid, revocation.StatusGood, revocation.ErrChannel},
		{"release at counter", revocation.StatusHeld, revocation.Release, revocation.ChannelCounter, valid, revocation.StatusGood, nil},
		{"release by phone refused", revocation.StatusHeld, revocation.Release, revocation.ChannelPhone, valid, revocation.StatusHeld, revocation.ErrChannel},
		{"release online refused", revocation.StatusHeld, revocation.Release, revocation.ChannelOnlineSigned, valid, revocation.StatusHeld, revocation.ErrChannel},
		{"release of a good cert", revocation.StatusGood, revocation.Release, revocation.ChannelCounter, valid, revocation.StatusGood, revocation.ErrTransition},
		{"hold twice", revocation.StatusHeld, revocation.Hold, revocation.ChannelPhone, valid, revocation.StatusHeld, revocation.ErrTransition},
		{"revoke held", revocation.StatusHeld, revocation.Revoke, revocation.ChannelCounter, valid, revocation.StatusRevoked, nil},
		{"revoke good", revocation.StatusGood, revocation.Revoke, revocation.ChannelSystem, valid, revocation.StatusRevoked, nil},
		{"release revoked", revocation.StatusRevoked, revocation.Release, revocation.ChannelCounter, valid, revocation.StatusRevoked, revocation.ErrFinal},
		{"hold revoked", revocation.StatusRevoked, revocation.Hold, revocation.ChannelPhone, valid, revocation.StatusRevoked, revocation.ErrFinal},
		{"hold after expiry", revocation.StatusGood, revocation.Hold, revocation.ChannelPhone, now, revocation.StatusGood, revocation.ErrExpired},
		{"release after expiry", revocation.StatusHeld, revocation.Release, revocation.ChannelCounter, now.Add(-time.Second), revocation.StatusHeld, revocation.ErrExpired},
	}
	for _, tt := range tests {
		got, err := r.Transition(tt.from, tt.action, tt.ch, now, tt.notAfter)
		if !errors.Is(err, tt.err) || got != tt.to {
			t.Errorf("%s: %s, %v; want %s, %v", tt.name, got, err, tt.to, tt.err)
		}
	}
}

func TestEvaluateChanges(t *testing.T) {
	r := revocation.Default()
	p := []byte("person-hash-1")
	at := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, jst) }
	ev := func(kind string, t time.Time) revocation.Event {
		return revocation.Event{PersonHash: p, Kind: kind, At: t}
	}
	type dec struct {
		cert   revocation.CertType
		action revocation.Action
		reason revocation.Reason
		at     time.Time
	}
	revoke := func(c revocation.CertType, reason revocation.Reason, t time.Time) dec {
		return dec{c, revocation.ActionRevoke, reason, t}
	}
	moveOut := at(2026, 4, 1, 9)
	due := at(2026, 5, 2, 0) // 30 days not counting 1 April end with 1 May (Civil Code Arts. 140, 141)
	tests := []struct {
		name   string
		events []revocation.Event
		now    time.Time
		want   []dec
	}{
		{"name change revokes the signature certificate only", []revocation.Event{ev("name-changed", moveOut)}, due,
			[]dec{revoke(revocation.CertSign, revocation.AffiliationChanged, moveOut)}},
		{"address change", []revocation.Event{ev("address-changed", moveOut)}, due,
			[]dec{revoke(revocation.CertSign, 3, moveOut)}},
		{"sex change", []revocation.Event{ev("sex-changed", moveOut)}, due, []dec{revoke(revocation.CertSign, 3, moveOut)}},
		{"birth date correction", []revocation.Event{ev("birth-date-changed", moveOut)}, due, []dec{revoke(revocation.CertSign, 3, moveOut)}},
		{"death revokes both", []revocation.Event{ev("death", moveOut)}, due,
			[]dec{revoke(revocation.CertSign, revocation.CessationOfOperation, moveOut), revoke(revocation.CertAuth, revocation.CessationOfOperation, moveOut)}},
		{"record deleted revokes both", []revocation.Event{ev("record-deleted", moveOut)}, due,
			[]dec{revoke(revocation.CertSign, 5, moveOut), revoke(revocation.CertAuth, 5, moveOut)}},
		{"emigrant continues on the koseki-fuhyo path", []revocation.Event{ev("emigration", moveOut)}, due,
			[]dec{{revocation.CertSign, revocation.ActionContinue, 0, moveOut}, {revocation.CertAuth, revocation.ActionContinue, 0, moveOut}}},
		{"move-out pending before the deadline", []revocation.Event{ev("move-out", moveOut)}, due.Add(-time.Second), nil},
		{"move-out without move-in: auth revoked at the deadline", []revocation.Event{ev("move-out", moveOut)}, due,
			[]dec{revoke(revocation.CertAuth, revocation.CessationOfOperation, due)}},
		{"move-in on the 30th day keeps auth, revokes sign", []revocation.Event{ev("move-out", moveOut), ev("move-in", at(2026, 5, 1, 23))}, due.AddDate(0, 1, 0),
			[]dec{revoke(revocation.CertSign, 3, at(2026, 5, 1, 23))}},
		{"move-in after the deadline is too late", []revocation.Event{ev("move-in", due), ev("move-out", moveOut)}, due.AddDate(0, 1, 0),
			[]dec{revoke(revocation.CertAuth, 5, due), revoke(revocation.CertSign, 3, due)}},
		{"events after now are not applied", []revocation.Event{ev("death", due.Add(time.Hour))}, due, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Evaluate(tt.events, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d decisions %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Cert != w.cert || g.Action != w.action || g.Reason != w.reason || !g.At.Equal(w.at) || string(g.PersonHash) != string(p) || g.Basis == "" {
					t.Errorf("decision %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestNextCheck(t *testing.T) {
	r := revocation.Default()
	p := []byte("p")
	out := time.Date(2026, 4, 1, 9, 0, 0, 0, jst)
	evs := []revocation.Event{{PersonHash: p, Kind: "move-out", At: out}}
	next, ok := r.NextCheck(evs, out)
	if !ok || !next.Equal(time.Date(2026, 5, 2, 0, 0, 0, 0, jst)) {
		t.Fatalf("next %v %v", next, ok)
	}
	evs = append(evs, revocation.Event{PersonHash: p, Kind: "move-in", At: out.AddDate(0, 0, 3)})
	if _, ok := r.NextCheck(evs, out); ok {
		t.Fatal("cancelled move-out still scheduled")
	}
}

func TestEvaluateRejects(t *testing.T) {
	r := revocation.Default()
	now := time.Now()
	if _, err := r.Evaluate([]revocation.Event{{PersonHash: []byte("a"), Kind: "married-abroad", At: now}}, now); !errors.Is(err, revocation.ErrUnknownEvent) {
		t.Fatalf("unknown event: %v", err)
	}
	mixed := []revocation.Event{{PersonHash: []byte("a"), Kind: "death", At: now}, {PersonHash: []byte("b"), Kind: "death", At: now}}
	if _, err := r.Evaluate(mixed, now); !errors.Is(err, revocation.ErrUnknownEvent) {
		t.Fatalf("two persons: %v", err)
	}
}

// A change of law is a change of data: an override table that (say)
// restores the old emigration rule changes the decision, and invalid tables
// are refused.
func TestLoadOverrideAndRejects(t *testing.T) {
	base, err := os.ReadFile("rules.json")
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(base),
		`{"event": "emigration", "cert": "sign", "action": "continue", "path": "koseki-fuhyo",`,
		`{"event": "emigration", "cert": "sign", "action": "revoke", "reason": 3,`, 1)
	r, err := revocation.Load([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ds, err := r.Evaluate([]revocation.Event{{PersonHash: []byte("a"), Kind: "emigration", At: now}}, now)
	if err != nil || len(ds) != 2 || ds[0].Action != revocation.ActionRevoke || ds[0].Cert != revocation.CertSign {
		t.Fatalf("%+v %v", ds, err)
	}
	for name, bad := range map[string]string{
		"unknown field":         strings.Replace(string(base), `"version"`, `"versoin"`, 1),
		"reason 7":              strings.Replace(string(base), `"reason": 5, "channels": ["counter", "online-signed"]`, `"reason": 7, "channels": ["counter"]`, 1),
		"unknown channel":       strings.Replace(string(base), `"set_channels": ["phone"]`, `"set_channels": ["fax"]`, 1),
		"revoked can be undone": strings.Replace(string(base), `{"from": "held", "action": "release", "to": "good"}`, `{"from": "revoked", "action": "release", "to": "good"}`, 1),
		"revoke-after no days":  strings.Replace(string(base), `"days": 30`, `"days": 0`, 1),
		"not json":              "{",
	} {
		if _, err := revocation.Load([]byte(bad)); !errors.Is(err, revocation.ErrRules) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
