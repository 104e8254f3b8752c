package api_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"madoguchi/ca-server/audit"
	"madoguchi/ca-server/store"
	"madoguchi/ca-server/traffic"
	"madoguchi/jpki/wire"
)

// TestFloodOfBadRequestsWritesSummariesOnly is threat 4 of issue 13
// (unauthenticated traffic).
//
// Attack: 10,000 malformed and unauthenticated requests against the real
// TLS listener — paths with newlines and terminal escapes, a forged
// Madoguchi-Operator-Id, no client certificate or a foreign one, wrong
// methods, garbage enrolments — while a terminal issues certificates. On
// the code before this change the attack succeeded: every request became
// one hash-chained audit record with the attacker's path and operator id
// (the log grew by 10,000 records, the forged operator appeared as the
// operator of records, and recorded targets held newlines).
func TestFloodOfBadRequestsWritesSummariesOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cert, enr := e.enrol(e.ca)
	honest := e.client(cert)
	foreign := selfSigned(t)
	startSeq := e.lastAudit().Seq

	const forged = "supervisor-forged"
	type bad struct {
		cert         *tls.Certificate
		method, path string
		body         string
	}
	bads := []bad{
		{nil, "GET", "/v1/%0Aadmin%0D%0Aaction=issuance.confirm", ""},
		{nil, "POST", "/v1/issuances/x%0Aforged%1b[31m/confirm", "{}"},
		{nil, "POST", "/v1/issuances", `{"request_id":"r"}`},
		{&foreign, "POST", "/v1/issuances", `{"request_id":"r"}`},
		{&foreign, "GET", "/v1/issuances/%E2%80%AEevil", ""},
		{nil, "DELETE", "/v1/issuances/abc", ""},
		{nil, "PUT", "/v1/channels", "{}"},
		{nil, "POST", "/v1/enroll", `{"token":"nope","csr":"AAAA"}`},
		{nil, "POST", "/v1/enroll", `{"token":`},
		{nil, "GET", "/" + strings.Repeat("%0A", 500), ""},
	}
	clients := map[*tls.Certificate]*http.Client{nil: e.rawClient(nil), &foreign: e.rawClient(&foreign)}

	const total, workers = 10_000, 8
	var sent, limited atomic.Int64
	var codes sync.Map
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				b := bads[i%len(bads)]
				var body io.Reader
				if b.body != "" {
					body = strings.NewReader(b.body)
				}
				req, err := http.NewRequest(b.method, e.url+b.path, body)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(wire.OperatorHeader, forged)
				resp, err := clients[b.cert].Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
				if resp.StatusCode == http.StatusTooManyRequests {
					limited.Add(1)
				}
				codes.Store(resp.StatusCode, true)
			}
		}()
	}
	// issuances meanwhile, each one audited per request
	const issuances = 5
	for i := range issuances {
		req := prepareReq(t, honest, fmt.Sprintf("flood-%d", i), fmt.Sprintf("4444444444%d", i))
		prep, err := honest.Prepare(ctx, "op-1", req)
		if err != nil {
			t.Fatalf("issuance %d during the flood: %v", i, err)
		}
		st, err := honest.Confirm(ctx, "op-1", prep.IssuanceID, e.confirmReq(prep.IssuanceID, fmt.Sprintf("conf-%d", i)))
		if err != nil || st.State != "delivered" {
			t.Fatalf("confirm %d during the flood: %+v %v", i, st, err)
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	flushTraffic(t, e)

	recs, err := e.st.AuditRecords(ctx, startSeq, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	var summaries, honestRecs int
	for _, r := range recs {
		for _, s := range []string{r.Terminal, r.Operator, r.Action, r.Target, r.Result, r.Detail} {
			if strings.ContainsAny(s, "\n\r\x1b") || strings.ContainsRune(s, '\u202e') {
				t.Fatalf("record %d holds a control character: %q", r.Seq, s)
			}
		}
		if r.Operator == forged || strings.Contains(r.Operator, forged) {
			t.Fatalf("record %d shows the forged operator: %+v", r.Seq, r)
		}
		switch {
		case r.Terminal == enr.TerminalID && r.Operator == "op-1":
			honestRecs++
		case isSummary(r):
			summaries++
		default:
			t.Fatalf("record %d is neither the terminal's nor a summary: %+v", r.Seq, r)
		}
	}
	// per issuance: open channel, prepare, confirm
	if honestRecs != 3*issuances || summaries != 1 {
		t.Fatalf("%d new records: %d of the terminal, %d summaries; want %d and 1", len(recs), honestRecs, summaries, 3*issuances)
	}
	if limited.Load() == 0 {
		t.Fatalf("no request of %d refused with 429", sent.Load())
	}
	byOp, err := e.st.AuditRecordsByOperator(ctx, forged, 0, 10)
	if err != nil || len(byOp) != 0 {
		t.Fatalf("history of the forged operator: %d records, %v", len(byOp), err)
	}
	if _, err := audit.Verify(ctx, e.st, e.auditK.Public()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	t.Logf("%d requests, %d answered 429, %d new audit records", sent.Load(), limited.Load(), len(recs))
}

func flushTraffic(t *testing.T, e *env) {
	t.Helper()
	if err := e.srv.Traffic().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func isSummary(r store.AuditRecord) bool {
	return r.Action == traffic.SummaryAction && r.Terminal == "-" && r.Operator == "-" && r.Target == "listener:api"
}
