package spool_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"madoguchi/app/printout"
	"madoguchi/app/printout/spool"
	"madoguchi/assets/fonts/printfonts"
	"madoguchi/internal/services"
	"madoguchi/internal/testenv"
)

const holder = "窓口　花子"

var (
	noticeOnce sync.Once
	noticePDF  []byte
	noticeErr  error
)

// notice renders one issuance notice with app/printout (fonts parsed once per test binary).
func notice(tb testing.TB) []byte {
	tb.Helper()
	noticeOnce.Do(func() {
		p, err := printout.New(printout.Fonts{Regular: printfonts.Regular(), Bold: printfonts.Bold()})
		if err != nil {
			noticeErr = err
			return
		}
		at := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
		noticePDF, noticeErr = p.Notice(printout.IssuanceNotice{
			Municipality: "東京都千代田区長",
			Date:         at,
			ReceiptNo:    "2026-000012",
			OperatorID:   "op-0007",
			HolderName:   holder,
			Certificates: []printout.Certificate{{Kind: printout.UserAuth, Serial: big.NewInt(0x1234ABCD),
				NotBefore: at, NotAfter: at.AddDate(5, 0, 0)}},
			Explanations: []printout.Explanation{printout.ProtectKey, printout.ReportLoss},
		})
	})
	if noticeErr != nil {
		tb.Fatal(noticeErr)
	}
	return noticePDF
}

func client(t testing.TB, server, queue string) *spool.Client {
	t.Helper()
	c, err := spool.New(spool.Options{Server: server, Queue: queue, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantErr checks err is a *spool.Error wrapping want, and returns it.
func wantErr(t *testing.T, err, want error) *spool.Error {
	t.Helper()
	var se *spool.Error
	if !errors.Is(err, want) || !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *spool.Error wrapping %v", err, want)
	}
	t.Logf("%v", err)
	if !strings.HasPrefix(err.Error(), "spool: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	return se
}

// pdfText extracts a PDF's text with poppler's pdftotext, without white space (the layout
// spaces out CJK names).
func pdfText(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext %s: %v: %s", path, err, out)
	}
	return strings.Join(strings.Fields(string(out)), "")
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("%s holds %d files, want none (nothing printed)", dir, len(entries))
	}
}

// TestPrintNoticeArrives: an issuance notice printed to the real cupsd's file queue arrives as
// a file that is exactly the PDF, and the holder's name is in its text.
func TestPrintNoticeArrives(t *testing.T) {
	pdf := notice(t)
	cups := testenv.CUPSD(t)
	c := client(t, cups.Server, cups.Queue)
	id, err := c.Print(context.Background(), "notice case 12", pdf)
	if err != nil {
		t.Fatal(err)
	}
	if id <= 0 {
		t.Fatalf("job id %d", id)
	}
	got, err := os.ReadFile(cups.JobFile(id)) // completed means the backend has written it
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pdf) {
		t.Fatalf("printed file is %d bytes and differs from the %d-byte notice", len(got), len(pdf))
	}
	if text := pdfText(t, cups.JobFile(id)); !strings.Contains(text, strings.ReplaceAll(holder, "　", "")) {
		t.Errorf("the printed notice's text lacks the holder's name %q:\n%s", holder, text)
	}
	// A second job gets its own id and file.
	id2, err := c.Print(context.Background(), "notice case 13", pdf)
	if err != nil {
		t.Fatal(err)
	}
	if id2 == id {
		t.Fatalf("second job has the same id %d", id)
	}
	if _, err := os.Stat(cups.JobFile(id2)); err != nil {
		t.Fatal(err)
	}
	// The job title is in CUPS' page log; the holder's name must not be anywhere in its logs.
	log, _ := os.ReadFile(cups.LogPath)
	if !bytes.Contains(log, []byte("notice case 12")) {
		t.Errorf("the page log does not name the job \"notice case 12\"")
	}
	if bytes.Contains(log, []byte(holder)) {
		t.Errorf("cupsd's log contains the holder's name")
	}
}

// TestUnknownQueue: a queue the server does not have → ErrNoSuchQueue, no job.
func TestUnknownQueue(t *testing.T) {
	cups := testenv.CUPSD(t)
	id, err := client(t, cups.Server, "no-such-queue").Print(context.Background(), "notice case 1", notice(t))
	se := wantErr(t, err, spool.ErrNoSuchQueue)
	if id != 0 || se.JobID != 0 {
		t.Errorf("job id %d/%d for an unknown queue", id, se.JobID)
	}
	emptyDir(t, cups.OutDir)
}

// TestDisabledQueue: a queue stopped with cupsdisable → ErrQueueStopped with the reason, and
// nothing is queued; after cupsenable the same client prints.
func TestDisabledQueue(t *testing.T) {
	cups := testenv.CUPSD(t)
	if err := cups.DisableQueue(cups.Queue, "paper jam"); err != nil {
		t.Fatal(err)
	}
	c := client(t, cups.Server, cups.Queue)
	id, err := c.Print(context.Background(), "notice case 2", notice(t))
	se := wantErr(t, err, spool.ErrQueueStopped)
	if id != 0 || se.JobID != 0 {
		t.Errorf("a job (%d) was queued on a stopped queue", id)
	}
	if !strings.Contains(se.Detail, "paper jam") {
		t.Errorf("detail %q lacks the administrator's reason", se.Detail)
	}
	st, err := c.Status(context.Background())
	if err != nil || !st.Stopped {
		t.Fatalf("Status = %+v, %v; want stopped", st, err)
	}
	if err := cups.EnableQueue(cups.Queue); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Print(context.Background(), "notice case 2", notice(t)); err != nil {
		t.Fatalf("after cupsenable: %v", err)
	}
}

// TestQueueStoppedWhileWaiting: a job submitted to a queue that is stopped makes Wait report
// ErrQueueStopped with the job id and cancel the job (it does not print when the queue resumes).
func TestQueueStoppedWhileWaiting(t *testing.T) {
	cups := testenv.CUPSD(t)
	if err := cups.DisableQueue(cups.Queue, ""); err != nil {
		t.Fatal(err)
	}
	c := client(t, cups.Server, cups.Queue)
	id, err := c.Submit(context.Background(), "notice case 3", notice(t))
	if err != nil {
		t.Fatal(err)
	}
	se := wantErr(t, c.Wait(context.Background(), id), spool.ErrQueueStopped)
	if se.JobID != id {
		t.Errorf("error names job %d, want %d", se.JobID, id)
	}
	// Cancelled: the job has ended without printing, and resuming prints nothing.
	wantErr(t, c.Wait(context.Background(), id), spool.ErrJobAborted)
	if err := cups.EnableQueue(cups.Queue); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Print(context.Background(), "notice case 4", notice(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cups.JobFile(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cancelled job %d printed after the queue resumed (%v)", id, err)
	}
}

// TestWaitRunsOutCancelsHeldJob: when the wait ends (the context's deadline) before the job
// started — here the queue holds every job — Print reports the context's error with the job id,
// and the job is cancelled so that it cannot print unexpectedly later.
func TestWaitRunsOutCancelsHeldJob(t *testing.T) {
	cups := testenv.CUPSD(t)
	if _, err := services.RunTool("lpadmin", "/usr/sbin/lpadmin", []string{"-h", cups.Server, "-p", cups.Queue,
		"-o", "job-hold-until-default=indefinite"}, []string{"LANG=C"}, nil); err != nil {
		t.Fatal(err)
	}
	c := client(t, cups.Server, cups.Queue)
	pdf := notice(t) // rendered before the clock starts
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	id, err := c.Print(ctx, "notice case 9", pdf)
	se := wantErr(t, err, context.DeadlineExceeded)
	if id <= 0 || se.JobID != id {
		t.Fatalf("job id %d, error's %d", id, se.JobID)
	}
	wantErr(t, c.Wait(context.Background(), id), spool.ErrJobAborted) // cancelled
	emptyDir(t, cups.OutDir)
}

// TestServerDown: no scheduler at the socket (stopped, or never there) → ErrServerUnreachable.
func TestServerDown(t *testing.T) {
	cups := testenv.CUPSD(t)
	c := client(t, cups.Server, cups.Queue)
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := cups.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Print(context.Background(), "notice case 5", notice(t))
	wantErr(t, err, spool.ErrServerUnreachable)

	missing := client(t, filepath.Join(t.TempDir(), "no.sock"), "notices")
	_, err = missing.Print(context.Background(), "notice case 5", notice(t))
	wantErr(t, err, spool.ErrServerUnreachable)

	tcp := client(t, "127.0.0.1:1", "notices") // nothing listens on port 1
	_, err = tcp.Print(context.Background(), "notice case 5", notice(t))
	wantErr(t, err, spool.ErrServerUnreachable)
}

// TestJobAborted: the printer cannot take the job (the file queue's directory is gone, the
// backend fails, the queue's error policy aborts the job) → ErrJobAborted with the job id.
func TestJobAborted(t *testing.T) {
	cups := testenv.CUPSD(t)
	if err := os.Remove(cups.OutDir); err != nil {
		t.Fatal(err)
	}
	id, err := client(t, cups.Server, cups.Queue).Print(context.Background(), "notice case 6", notice(t))
	se := wantErr(t, err, spool.ErrJobAborted)
	if id <= 0 || se.JobID != id {
		t.Errorf("job id %d, error's %d", id, se.JobID)
	}
}

// TestBadRequestsSendNothing: a title that could hold personal data, a document that is not a
// PDF and a bad queue name are refused before anything reaches the server.
func TestBadRequestsSendNothing(t *testing.T) {
	cups := testenv.CUPSD(t)
	c := client(t, cups.Server, cups.Queue)
	for _, title := range []string{"", "notice " + holder, "notice\ncase", strings.Repeat("x", 65)} {
		_, err := c.Print(context.Background(), title, notice(t))
		wantErr(t, err, spool.ErrBadRequest)
		if title != "" && strings.Contains(err.Error(), title) {
			t.Errorf("the error repeats the refused title: %v", err)
		}
	}
	_, err := c.Print(context.Background(), "notice case 7", []byte("hello"))
	wantErr(t, err, spool.ErrBadRequest)
	for _, q := range []string{"", "a b", "a/b", "q#1"} {
		_, err := spool.New(spool.Options{Server: cups.Server, Queue: q})
		wantErr(t, err, spool.ErrBadRequest)
	}
	_, err = spool.New(spool.Options{Server: "host:99999", Queue: "q"})
	wantErr(t, err, spool.ErrBadRequest)
	emptyDir(t, cups.OutDir)
}

// TestCancelledContext: a context that is already over stops Print before it sends the job.
func TestCancelledContext(t *testing.T) {
	cups := testenv.CUPSD(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := client(t, cups.Server, cups.Queue).Print(ctx, "notice case 8", notice(t))
	wantErr(t, err, context.Canceled)
	emptyDir(t, cups.OutDir)
}

// BenchmarkPrint measures Print of one issuance notice to the real cupsd's file queue, until
// the job is completed (the file written). Baseline in the same run: Status, one IPP round
// trip to the same scheduler.
func BenchmarkPrint(b *testing.B) {
	pdf := notice(b)
	cups := testenv.CUPSD(b)
	c := client(b, cups.Server, cups.Queue)
	b.Run("baseline-Status", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Status(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Print", func(b *testing.B) {
		b.SetBytes(int64(len(pdf)))
		for b.Loop() {
			if _, err := c.Print(context.Background(), "notice case 1", pdf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
