package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"madoguchi/app"
	"madoguchi/jpki/wire"
	"madoguchi/raclient"
)

// fakeCA stands in for ca-server behind raclient in the unit tests of the counter procedures
// and the outbox sender: it answers idempotently by request id as the real CA does, records
// every request, and fails on demand. The end-to-end tests (app/cli) use the real ca-server.
type fakeCA struct {
	mu        sync.Mutex
	now       func() time.Time
	changes   []wire.ResidentChangeRequest // every request received, in order
	changeOps []string                     // the operator header of each
	applied   map[string]wire.ResidentChangeResponse
	revokes   []wire.RevokeRequest
	revoked   map[string]wire.RevocationAck // by request id
	state     map[string]string             // serial → delivered / held / revoked
	releases  []wire.ReleaseHoldRequest

	// failures consumed by the next call of their kind
	failChange, failRevoke, failRelease []error
	// loseChangeAnswer: the next change takes effect but the answer is lost
	loseChangeAnswer bool
}

var _ app.CA = (*fakeCA)(nil)

func newFakeCA(now func() time.Time) *fakeCA {
	return &fakeCA{now: now, applied: map[string]wire.ResidentChangeResponse{}, revoked: map[string]wire.RevocationAck{}, state: map[string]string{}}
}

func caProblem(status int, code wire.Code) error {
	return &raclient.Error{Status: status, Code: code, Message: string(code)}
}

// revProblem is a revocation-service answer as raclient returns it: the kind wrapping the
// *raclient.Error.
func revProblem(kind error, status int, code wire.Code) error {
	return fmt.Errorf("%w: %w", kind, caProblem(status, code))
}

var errUnreachable = &raclient.Error{Code: wire.CodeUnavailable, Err: errors.New("dial tcp: connection refused")}

func pop(list *[]error) error {
	if len(*list) == 0 {
		return nil
	}
	err := (*list)[0]
	*list = (*list)[1:]
	return err
}

func (f *fakeCA) OpenChannel(context.Context, string) (wire.ChannelResponse, error) {
	return wire.ChannelResponse{}, errors.New("fake: no issuance here")
}
func (f *fakeCA) Prepare(context.Context, string, wire.PrepareRequest) (wire.PrepareResponse, error) {
	return wire.PrepareResponse{}, errors.New("fake: no issuance here")
}
func (f *fakeCA) Confirm(context.Context, string, string, wire.ConfirmRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, errors.New("fake: no issuance here")
}
func (f *fakeCA) Abort(context.Context, string, string, wire.AbortRequest) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, errors.New("fake: no issuance here")
}
func (f *fakeCA) Status(context.Context, string, string) (wire.IssuanceStatus, error) {
	return wire.IssuanceStatus{}, caProblem(404, wire.CodeNotFound)
}

func (f *fakeCA) ReportResidentChange(_ context.Context, op string, req wire.ResidentChangeRequest) (wire.ResidentChangeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, req)
	f.changeOps = append(f.changeOps, op)
	if err := pop(&f.failChange); err != nil {
		return wire.ResidentChangeResponse{}, err
	}
	if r, ok := f.applied[req.RequestID]; ok {
		r.Replayed = true
		return r, nil
	}
	r := wire.ResidentChangeResponse{ChangeID: int64(len(f.applied) + 1), Event: req.Event, Revoked: []string{}, Deferred: []string{}}
	switch req.Event {
	case "death":
		r.Revoked = []string{"sign", "auth"}
	case "move-out":
		r.Deferred = []string{"auth"}
	case "name-changed", "move-in":
		r.Revoked = []string{"sign"}
	}
	f.applied[req.RequestID] = r
	if f.loseChangeAnswer {
		f.loseChangeAnswer = false
		return wire.ResidentChangeResponse{}, errUnreachable
	}
	return r, nil
}

func (f *fakeCA) Revoke(_ context.Context, op, serial string, req wire.RevokeRequest) (wire.RevocationAck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes = append(f.revokes, req)
	if err := pop(&f.failRevoke); err != nil {
		return wire.RevocationAck{}, err
	}
	if a, ok := f.revoked[req.RequestID]; ok {
		return a, nil
	}
	if f.state[serial] == "revoked" {
		return wire.RevocationAck{}, revProblem(raclient.ErrAlreadyRevoked, 409, wire.CodeAlreadyRevoked)
	}
	reason := map[string]int{"stop-using": 5, "card-abolished": 5, "key-compromise": 1, "card-unusable": 1}[req.Kind]
	a := wire.RevocationAck{Serial: serial, CertType: req.CertType, Reason: reason, Kind: req.Kind, RevokedAt: f.now(), WrittenAcknowledgement: true,
		ReasonName: map[int]string{1: "keyCompromise", 5: "cessationOfOperation"}[reason]}
	f.revoked[req.RequestID] = a
	f.state[serial] = "revoked"
	return a, nil
}

func (f *fakeCA) ReleaseHold(_ context.Context, op, serial string, req wire.ReleaseHoldRequest) (wire.CertificateStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases = append(f.releases, req)
	if err := pop(&f.failRelease); err != nil {
		return wire.CertificateStatus{}, err
	}
	if f.state[serial] != "held" {
		return wire.CertificateStatus{}, revProblem(raclient.ErrNotOnHold, 409, wire.CodeNotOnHold)
	}
	f.state[serial] = "delivered"
	return wire.CertificateStatus{Serial: serial, CertType: req.CertType, State: "delivered"}, nil
}

func (f *fakeCA) sentEvents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.changes {
		out = append(out, c.ResidentCode+":"+c.Event)
	}
	return out
}
