// Package spool sends the counter's PDF documents to a CUPS print queue and follows each job
// until it has printed, reporting with a typed error what a clerk or administrator must do
// when it has not.
//
// # Protocol: IPP, not lp/lpstat
//
// The client speaks IPP/1.1 (RFC 8010/8011) to the CUPS scheduler itself, over the scheduler's
// unix socket or TCP, with four operations: Get-Printer-Attributes, Print-Job,
// Get-Job-Attributes and Cancel-Job. The lp and lpstat commands were the alternative; they were
// not chosen because lpstat lists an aborted or cancelled job exactly like a completed one
// (`lpstat -W completed` means "finished somehow"), shows no job state as a value at all, and
// both print translated prose that would have to be parsed. IPP answers with enums (job-state
// 9 = completed, 8 = aborted; printer-state 5 = stopped) and status codes (client-error-not-found
// = no such queue), so each error below comes from a value, not from wording. It also needs no
// cups-client package on the terminal and no child process per poll.
//
// # Server and queue
//
// Client.Server names the CUPS scheduler the way CUPS_SERVER and `lp -h` do: an absolute path
// is its unix socket (the local cupsd, "/run/cups/cups.sock" by default), anything else is
// "host" or "host:port" (port 631 by default). Over TCP the client speaks plain IPP (no TLS):
// documents carry personal data (DOMAIN §9), so a remote server must be on the counter's own
// network segment; the intended set-up is a local cupsd that forwards to the printer.
//
// # What a job leaves behind
//
// The job name (job-name) is written to CUPS' page log and shown to anyone who lists the queue,
// outside the records the service keeps and protects. DOMAIN §9 (R02 II-7, II-8; TS Art. 31):
// collect only what the service needs, and no certificate serial may become a general person
// identifier, so a title says what the document is and which counter case it belongs to, e.g.
// "notice case 12", and nothing else. Print enforces what it can: only ASCII letters, digits,
// space and "._-", at most 64 bytes (a name or address is Japanese text and cannot pass); a
// refused title is not repeated in the error, which may be logged.
// CUPS keeps the document file after printing unless the server sets `PreserveJobFiles No`;
// administrators must set it (the test and demo servers of internal/services do).
//
// # Errors
//
// Every error is an *Error whose Err is one of the sentinels (ErrNoSuchQueue, ErrQueueStopped,
// ErrServerUnreachable, ErrJobAborted, ErrRefused, ErrBadRequest) or the context's error when
// the wait ran out; test with errors.Is. A job that was created carries its JobID in the
// *Error. Print checks the queue before submitting, so a stopped or missing queue is reported
// with nothing queued (the clerk's retry after the administrator's fix then prints once). If the
// queue is stopped while our job waits, or the wait runs out before the job started, the job is
// cancelled, for the same reason; a job that is already printing is left alone.
//
// # Concurrency
//
// A *Client is immutable after New and safe for concurrent use.
package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"madoguchi/app/apperr"
)

// DefaultServer is the local CUPS scheduler's socket on Debian.
const DefaultServer = "/run/cups/cups.sock"

// DefaultMaxWait bounds Print's wait for the job when the context has no earlier deadline.
const DefaultMaxWait = 2 * time.Minute

// Sentinel errors, wrapped by *Error.
var (
	// ErrNoSuchQueue: the server has no queue of that name (a wrong setting).
	ErrNoSuchQueue = errors.New("no such queue")
	// ErrQueueStopped: the queue is stopped (paused, e.g. by cupsdisable, or by CUPS after a
	// printer fault) or rejects jobs (cupsreject). An administrator must resume it.
	ErrQueueStopped = errors.New("queue stopped")
	// ErrServerUnreachable: no CUPS scheduler answers at the server address.
	ErrServerUnreachable = errors.New("server unreachable")
	// ErrJobAborted: the job ended without printing (aborted by the printer or cancelled).
	ErrJobAborted = errors.New("job aborted")
	// ErrRefused: the server refused the request for another reason (permissions, format).
	ErrRefused = errors.New("refused by the server")
	// ErrBadRequest: the caller's input is unusable (title, document, queue name); nothing was
	// sent.
	ErrBadRequest = errors.New("bad request")
)

// Error is every error of this package.
type Error struct {
	Queue  string // the queue name
	JobID  int    // the CUPS job id, 0 if no job was created
	Detail string // what the server said or what was wrong, in English
	Err    error  // one of the sentinels, or the context's error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("spool: ")
	if e.Queue != "" {
		fmt.Fprintf(&b, "queue %q: ", e.Queue)
	}
	if e.JobID != 0 {
		fmt.Fprintf(&b, "job %d: ", e.JobID)
	}
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorKind implements apperr.Kinded: every failure to print is apperr.PrintFailed, so the
// terminal words it from its one table (assets/translations) with the detail code below.
func (e *Error) ErrorKind() apperr.Kind { return apperr.PrintFailed }

// ErrorDetail implements apperr.Detailed: which sentinel, as a code ("queue_stopped").
func (e *Error) ErrorDetail() string {
	for _, d := range []struct {
		err  error
		code string
	}{
		{ErrQueueStopped, "queue_stopped"}, {ErrNoSuchQueue, "no_such_queue"}, {ErrServerUnreachable, "server_unreachable"},
		{ErrJobAborted, "job_aborted"}, {ErrRefused, "refused"}, {ErrBadRequest, "bad_request"},
		{context.DeadlineExceeded, "timeout"}, {context.Canceled, "cancelled"},
	} {
		if errors.Is(e.Err, d.err) {
			return d.code
		}
	}
	return ""
}

// Client prints to one queue of one CUPS server.
type Client struct {
	server    string // as configured (for messages)
	queue     string
	user      string
	baseURL   string // http://host:port or http://localhost for a socket
	uriPrefix string // ipp://host:port/printers/
	http      *http.Client
	poll      time.Duration
	maxWait   time.Duration
	requestID atomic.Uint32
}

// Options configures New. The zero value is the local server and the defaults below.
type Options struct {
	// Server is the CUPS scheduler: an absolute unix socket path, or "host[:port]".
	// Empty: $CUPS_SERVER, else DefaultServer.
	Server string
	// Queue is the print queue's name (required).
	Queue string
	// User is requesting-user-name; empty: the process's user name. Over the unix socket CUPS
	// takes the user from the socket's peer credentials anyway.
	User string
	// Poll is the longest pause between two status queries while waiting; 0: 500 ms.
	Poll time.Duration
	// MaxWait bounds Print's wait when the context has no earlier deadline; 0: DefaultMaxWait.
	MaxWait time.Duration
}

// New checks the options and returns a client. It does not contact the server.
func New(o Options) (*Client, error) {
	if err := checkQueueName(o.Queue); err != nil {
		return nil, err
	}
	server := o.Server
	if server == "" {
		server = os.Getenv("CUPS_SERVER")
	}
	if server == "" {
		server = DefaultServer
	}
	c := &Client{server: server, queue: o.Queue, user: o.User, poll: o.Poll, maxWait: o.MaxWait}
	if c.user == "" {
		c.user = "madoguchi"
		if u, err := user.Current(); err == nil && u.Username != "" {
			c.user = u.Username
		}
	}
	if c.poll <= 0 {
		c.poll = 500 * time.Millisecond
	}
	if c.maxWait <= 0 {
		c.maxWait = DefaultMaxWait
	}
	tr := &http.Transport{MaxIdleConns: 2, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	if strings.HasPrefix(server, "/") {
		socket := server
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
		c.baseURL = "http://localhost"
		c.uriPrefix = "ipp://localhost/printers/"
	} else {
		hostport := server
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			hostport = net.JoinHostPort(strings.Trim(server, "[]"), "631")
		}
		host, port, err := net.SplitHostPort(hostport)
		if err != nil || host == "" || strings.ContainsAny(host, "/?#@ ") {
			return nil, &Error{Queue: o.Queue, Err: ErrBadRequest, Detail: fmt.Sprintf("server %q is neither a socket path nor host[:port]", server)}
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, &Error{Queue: o.Queue, Err: ErrBadRequest, Detail: fmt.Sprintf("server %q has a bad port", server)}
		}
		c.baseURL = "http://" + hostport
		c.uriPrefix = "ipp://" + hostport + "/printers/"
	}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// Server returns the server address in use; Queue the queue name.
func (c *Client) Server() string { return c.server }

// Queue returns the queue name.
func (c *Client) Queue() string { return c.queue }

// checkQueueName applies CUPS' rules for printer names (at most 127 bytes; no space, control
// character, '/', '#', '\\', '?', quote), so a bad setting is reported as such.
func checkQueueName(q string) error {
	if q == "" || len(q) > 127 || strings.ContainsAny(q, " /#\\?'\"") {
		return &Error{Queue: q, Err: ErrBadRequest, Detail: "not a CUPS queue name"}
	}
	for _, r := range q {
		if r < 0x21 || r == 0x7F {
			return &Error{Queue: q, Err: ErrBadRequest, Detail: "not a CUPS queue name"}
		}
	}
	return nil
}

// checkTitle allows only titles that cannot carry a name or address (see the package doc).
func checkTitle(title string) error {
	if title == "" || len(title) > 64 {
		return errors.New("title must be 1 to 64 characters")
	}
	for _, r := range title {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" ._-", r)
		if !ok {
			// The title is not quoted back: it may be the very personal data refused here.
			return errors.New("title may hold only ASCII letters, digits, space and ._- (no personal data in job names)")
		}
	}
	return nil
}

// QueueStatus is the queue's state as the server reports it.
type QueueStatus struct {
	Stopped   bool     // printer-state is stopped (paused)
	Accepting bool     // printer-is-accepting-jobs
	Message   string   // printer-state-message, e.g. the reason given to cupsdisable -r
	Reasons   []string // printer-state-reasons, e.g. ["paused"]
}

// Status queries the queue's state. Errors: ErrNoSuchQueue, ErrServerUnreachable, ErrRefused.
func (c *Client) Status(ctx context.Context) (QueueStatus, error) {
	r, err := c.call(ctx, opGetPrinterAttributes, 0, []ippAttr{
		str(tagKeyword, "requested-attributes", "printer-state", "printer-is-accepting-jobs",
			"printer-state-message", "printer-state-reasons"),
	}, nil)
	if err != nil {
		return QueueStatus{}, err
	}
	g := r.group(tagPrinter)
	state, ok := g.int("printer-state")
	if !ok {
		return QueueStatus{}, &Error{Queue: c.queue, Err: ErrRefused, Detail: "no printer-state in the answer"}
	}
	accepting, ok := g.bool("printer-is-accepting-jobs")
	if !ok {
		accepting = true
	}
	return QueueStatus{Stopped: state == printerStopped, Accepting: accepting,
		Message: g.text("printer-state-message"), Reasons: g.texts("printer-state-reasons")}, nil
}

// Print checks the queue, submits pdf as one job named title, and waits until the job has
// printed. It returns the job id whenever a job was created, also with an error. title must
// carry no personal data (checked: see the package doc); pdf must be a PDF file ("%PDF-").
// The wait ends at ctx's deadline or after MaxWait, whichever is first.
func (c *Client) Print(ctx context.Context, title string, pdf []byte) (jobID int, err error) {
	if err := checkTitle(title); err != nil {
		return 0, &Error{Queue: c.queue, Err: ErrBadRequest, Detail: err.Error()}
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		return 0, &Error{Queue: c.queue, Err: ErrBadRequest, Detail: "the document is not a PDF file"}
	}
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	if err := st.refusal(c.queue); err != nil {
		return 0, err
	}
	jobID, err = c.Submit(ctx, title, pdf)
	if err != nil {
		return 0, err
	}
	return jobID, c.Wait(ctx, jobID)
}

// refusal is the error for a queue that would not print now, or nil.
func (s QueueStatus) refusal(queue string) error {
	detail := detailOf(s.Message, s.Reasons)
	switch {
	case s.Stopped:
		return &Error{Queue: queue, Err: ErrQueueStopped, Detail: strings.TrimSpace("stopped " + detail)}
	case !s.Accepting:
		return &Error{Queue: queue, Err: ErrQueueStopped, Detail: strings.TrimSpace("not accepting jobs " + detail)}
	}
	return nil
}

// Submit sends pdf as a new job named title without waiting and returns its id. Print checks
// title and pdf; Submit sends what it is given.
func (c *Client) Submit(ctx context.Context, title string, pdf []byte) (int, error) {
	r, err := c.call(ctx, opPrintJob, 0, []ippAttr{
		str(tagName, "job-name", title),
		str(tagMIMEType, "document-format", "application/pdf"),
	}, pdf)
	if err != nil {
		return 0, err
	}
	id, ok := r.group(tagJob).int("job-id")
	if !ok || id <= 0 {
		return 0, &Error{Queue: c.queue, Err: ErrRefused, Detail: "no job-id in the answer"}
	}
	return id, nil
}

// Wait follows job id until it is completed (nil), ended otherwise (ErrJobAborted), or cannot
// go on: ErrQueueStopped when the queue is stopped while the job waits (the job is then
// cancelled) or the printer stopped during it (left to the administrator), the context's error
// when the wait runs out (a job not yet started is cancelled). Waits at most MaxWait.
func (c *Client) Wait(ctx context.Context, id int) error {
	ctx, cancel := context.WithTimeout(ctx, c.maxWait)
	defer cancel()
	delay := 20 * time.Millisecond
	last := 0 // the last state seen; 0: none yet (then the job is not cancelled on giving up)
	for {
		state, reasons, msg, err := c.jobState(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return c.giveUp(id, last, ctx.Err())
			}
			return err
		}
		last = state
		switch state {
		case jobCompleted:
			return nil
		case jobCanceled, jobAborted:
			return &Error{Queue: c.queue, JobID: id, Err: ErrJobAborted,
				Detail: strings.TrimSpace(jobStateName(state) + " " + detailOf(msg, reasons))}
		case jobProcessingStopped:
			return &Error{Queue: c.queue, JobID: id, Err: ErrQueueStopped,
				Detail: strings.TrimSpace("stopped while printing " + detailOf(msg, reasons))}
		case jobPending, jobPendingHeld:
			st, err := c.Status(ctx)
			if err == nil {
				if refusal := st.refusal(c.queue); refusal != nil && st.Stopped {
					c.cancelJob(id)
					e := refusal.(*Error)
					e.JobID = id
					e.Detail = strings.TrimSpace(e.Detail + " (the job was cancelled)")
					return e
				}
			} else if ctx.Err() == nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return c.giveUp(id, state, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, c.poll)
	}
}

// giveUp ends a wait that ran out: a job that has not started is cancelled so that it does not
// print unexpectedly later.
func (c *Client) giveUp(id, state int, cause error) error {
	detail := "still " + jobStateName(state)
	if state == 0 {
		detail = "state unknown"
	}
	if state == jobPending || state == jobPendingHeld {
		c.cancelJob(id)
		detail += " (the job was cancelled)"
	}
	return &Error{Queue: c.queue, JobID: id, Err: cause, Detail: detail}
}

func detailOf(msg string, reasons []string) string {
	if msg != "" {
		return "(" + msg + ")"
	}
	if len(reasons) > 0 && !(len(reasons) == 1 && reasons[0] == "none") {
		return "(" + strings.Join(reasons, ", ") + ")"
	}
	return ""
}

// jobState asks for the job's state, its reasons and the printer's message for it.
func (c *Client) jobState(ctx context.Context, id int) (state int, reasons []string, msg string, err error) {
	r, err := c.call(ctx, opGetJobAttributes, id, []ippAttr{
		str(tagKeyword, "requested-attributes", "job-state", "job-state-reasons", "job-printer-state-message"),
	}, nil)
	if err != nil {
		return 0, nil, "", err
	}
	g := r.group(tagJob)
	state, ok := g.int("job-state")
	if !ok {
		return 0, nil, "", &Error{Queue: c.queue, JobID: id, Err: ErrRefused, Detail: "no job-state in the answer"}
	}
	return state, g.texts("job-state-reasons"), g.text("job-printer-state-message"), nil
}

// cancelJob cancels a job, best effort, with its own short deadline (the caller's may be over).
func (c *Client) cancelJob(id int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.call(ctx, opCancelJob, id, nil, nil)
}

// call sends one IPP request about the queue (and job id, if not 0) and decodes the answer,
// mapping transport failures and IPP status codes to the package's errors.
func (c *Client) call(ctx context.Context, op uint16, jobID int, extra []ippAttr, document []byte) (*ippResponse, error) {
	attrs := []ippAttr{
		str(tagCharset, "attributes-charset", "utf-8"),
		str(tagLanguage, "attributes-natural-language", "en"),
		str(tagURI, "printer-uri", c.uriPrefix+url.PathEscape(c.queue)),
	}
	if jobID != 0 {
		attrs = append(attrs, integer("job-id", int32(jobID)))
	}
	attrs = append(attrs, str(tagName, "requesting-user-name", c.user))
	attrs = append(attrs, extra...)
	id := c.requestID.Add(1)
	head, err := encodeRequest(op, id, attrs)
	if err != nil {
		return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrBadRequest, Detail: err.Error()}
	}
	body := head
	if document != nil {
		body = append(append(make([]byte, 0, len(head)+len(document)), head...), document...)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/printers/"+url.PathEscape(c.queue), bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrBadRequest, Detail: err.Error()}
	}
	req.Header.Set("Content-Type", "application/ipp")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Queue: c.queue, JobID: jobID, Err: ctx.Err()}
		}
		return nil, c.transportError(jobID, err)
	}
	defer resp.Body.Close()
	raw, err := readLimited(resp.Body, 1<<20)
	if err != nil {
		return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrServerUnreachable, Detail: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrRefused, Detail: "http " + resp.Status}
	}
	r, err := decodeResponse(raw)
	if err != nil {
		return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrRefused, Detail: err.Error()}
	}
	if r.requestID != id {
		return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrRefused, Detail: fmt.Sprintf("answer to request %d, not %d", r.requestID, id)}
	}
	if r.status <= statusOKMax {
		return r, nil
	}
	detail := fmt.Sprintf("ipp status 0x%04x", r.status)
	if m := r.statusMessage(); m != "" {
		detail += " " + m
	}
	switch r.status {
	case statusNotFound:
		if jobID != 0 && op != opPrintJob {
			return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrJobAborted, Detail: "the server no longer knows the job: " + detail}
		}
		return nil, &Error{Queue: c.queue, Err: ErrNoSuchQueue, Detail: detail}
	case statusNotAccepting:
		return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrQueueStopped, Detail: detail}
	}
	return nil, &Error{Queue: c.queue, JobID: jobID, Err: ErrRefused, Detail: detail}
}

// transportError classifies a failed HTTP exchange: nothing listening, no such socket, host
// not found, or a broken connection all mean the server cannot be reached.
func (c *Client) transportError(jobID int, err error) error {
	detail := err.Error()
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		detail = "nothing answers at " + c.server
	case errors.As(err, &dnsErr):
		detail = "host not found: " + dnsErr.Name
	case errors.As(err, &opErr):
	}
	return &Error{Queue: c.queue, JobID: jobID, Err: ErrServerUnreachable, Detail: detail}
}
