package services

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// CUPS is a private CUPS scheduler: `cupsd -f` with its own ServerRoot, spool, cache, state
// and backend directory under one temporary directory, listening only on a unix socket there.
// It uses no system path (no /etc/cups, /var/spool/cups, /run/cups) and no system service, so
// any number can run side by side with each other and with a system cupsd.
//
// Queues made by AddFileQueue are raw queues (no filter: the PDF passes through unchanged)
// whose device is a directory: each job is written there as job-<id>.pdf (see FileQueueBackend).
// CUPS' own `file:` device was not used because it writes every job over the same file.
//
// Clients reach it by Socket: `lp -h <Socket>`, CUPS_SERVER=<Socket>, or
// madoguchi/app/printout/spool's Options.Server. The cups-client tools (lpadmin, cupsdisable,
// cupsenable) administer it as root over that socket. Safe for concurrent use.
type CUPS struct {
	Socket  string // the scheduler's unix socket: the server address for clients
	Dir     string // everything of this cupsd lives here
	LogPath string // cupsd's error, access and page logs (LogLevel info)

	svc *Service
}

// CUPSDOptions configures StartCUPSD.
type CUPSDOptions struct {
	Binary  string        // default /usr/sbin/cupsd
	Dir     string        // required, existing, 0700; keep it short (the socket path ≤ 107 bytes)
	LogPath string        // default Dir/cupsd.log
	Timeout time.Duration // readiness; 0: DefaultStartTimeout
}

// FileQueueBackend is the CUPS backend (a /bin/sh program installed in the private ServerBin
// as backend/madoguchi-dir) behind AddFileQueue: the device URI "madoguchi-dir:/some/dir" names
// the directory, and each job is written to a temporary file there and renamed to
// job-<id>.pdf, so a reader never sees half a document. Mode 0700 makes cupsd run it as root
// (backend(7)), which lets it write into root-only (0700) test directories. If the directory is
// missing or not writable it fails, and the queue's error policy decides what happens to the
// job (AddFileQueue sets abort-job).
const FileQueueBackend = `#!/bin/sh
# madoguchi-dir: write each job to DIR/job-<id>.pdf (device URI madoguchi-dir:DIR).
# argv: job-id user title copies options [file]; without arguments: device discovery.
if [ $# -eq 0 ]; then
	echo 'direct madoguchi-dir "Unknown" "Madoguchi job directory"'
	exit 0
fi
dir=${DEVICE_URI#madoguchi-dir:}
tmp="$dir/.job-$1.part"
if [ -n "$6" ]; then
	cat -- "$6" >"$tmp" || { echo "ERROR: cannot write $tmp" >&2; rm -f -- "$tmp"; exit 1; }
else
	cat >"$tmp" || { echo "ERROR: cannot write $tmp" >&2; rm -f -- "$tmp"; exit 1; }
fi
mv -f -- "$tmp" "$dir/job-$1.pdf" || exit 1
echo "INFO: wrote $dir/job-$1.pdf" >&2
exit 0
`

// safeConfPath: paths written into cupsd's configuration and device URIs hold no space, quote
// or other character that cupsd.conf or a URI would need escaped.
var safeConfPath = regexp.MustCompile(`^/[A-Za-z0-9/._+-]*$`)

// StartCUPSD writes cupsd.conf and cups-files.conf into opts.Dir and starts `cupsd -f -c … -s …`
// in the foreground as a supervised child. It returns once the scheduler answers HTTP on its
// socket. Job files are not kept after printing (PreserveJobFiles No: documents carry personal
// data); the job history is (the state of a finished job stays queryable). On error nothing is
// left running.
func StartCUPSD(opts CUPSDOptions) (*CUPS, error) {
	if opts.Binary == "" {
		opts.Binary = "/usr/sbin/cupsd"
	}
	if opts.Dir == "" {
		return nil, errors.New("services: cupsd: no directory")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("services: cupsd: %w", err)
	}
	if !safeConfPath.MatchString(dir) {
		return nil, fmt.Errorf("services: cupsd: directory %q has characters cupsd.conf cannot take", dir)
	}
	c := &CUPS{Socket: filepath.Join(dir, "cups.sock"), Dir: dir, LogPath: opts.LogPath}
	if c.LogPath == "" {
		c.LogPath = filepath.Join(dir, "cupsd.log")
	}
	if n := len(c.Socket); n > 107 {
		return nil, fmt.Errorf("services: cupsd: socket path %s is %d bytes, over the 107 of a unix socket", c.Socket, n)
	}
	if _, err := os.Stat(opts.Binary); err != nil {
		return nil, fmt.Errorf("services: cupsd: %w (Debian package cups-daemon; run scripts/setup.sh)", err)
	}
	if err := writeCUPSConfig(dir, c.Socket); err != nil {
		return nil, err
	}
	s, err := Start(Spec{
		Name:    "cupsd",
		Path:    opts.Binary,
		Args:    []string{"-f", "-c", filepath.Join(dir, "etc", "cupsd.conf"), "-s", filepath.Join(dir, "etc", "cups-files.conf")},
		Env:     []string{"LANG=C"},
		Dir:     dir,
		LogPath: c.LogPath,
	})
	if err != nil {
		return nil, err
	}
	c.svc = s
	if err := s.WaitReady(opts.Timeout, func() error { return httpAnswers(c.Socket) }); err != nil {
		s.Abort()
		return nil, err
	}
	return c, nil
}

// writeCUPSConfig lays out the private ServerRoot (etc/), ServerBin (bin/, with the file-queue
// backend and links to Debian's cups-exec and notifiers), spool, cache and state directories.
func writeCUPSConfig(dir, socket string) error {
	for _, d := range []string{"etc", "bin/backend", "spool/tmp", "cache", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("services: cupsd: %w", err)
		}
	}
	// cupsd runs cups-exec from ServerBin/daemon for every backend; notifiers are looked up too.
	for _, d := range []string{"daemon", "notifier"} {
		link := filepath.Join(dir, "bin", d)
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join("/usr/lib/cups", d), link); err != nil {
			return fmt.Errorf("services: cupsd: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "backend", "madoguchi-dir"), []byte(FileQueueBackend), 0o700); err != nil {
		return fmt.Errorf("services: cupsd: %w", err)
	}
	files := strings.Join([]string{
		"# cups-files.conf of a private cupsd (madoguchi/internal/services)",
		"ServerRoot " + filepath.Join(dir, "etc"),
		"ServerBin " + filepath.Join(dir, "bin"),
		"RequestRoot " + filepath.Join(dir, "spool"),
		"TempDir " + filepath.Join(dir, "spool", "tmp"),
		"CacheDir " + filepath.Join(dir, "cache"),
		"StateDir " + filepath.Join(dir, "state"),
		"Printcap " + filepath.Join(dir, "printcap"),
		"ErrorLog stderr",
		"AccessLog stderr",
		"PageLog stderr",
		// FileDevice lets queues have file: devices (not used by AddFileQueue, which has its
		// own backend; tests may add a plain file: queue with lpadmin).
		"FileDevice Yes",
		"",
	}, "\n")
	conf := strings.Join([]string{
		"# cupsd.conf of a private cupsd (madoguchi/internal/services)",
		"LogLevel info",
		"Listen " + socket,
		"Browsing No",
		"BrowseLocalProtocols none",
		"DefaultShared No",
		"WebInterface No",
		// Documents carry personal data: no copy stays in the spool after printing. The job
		// history stays, so a client can still read a finished job's state.
		"PreserveJobFiles No",
		"PreserveJobHistory Yes",
		"MaxJobs 0",
		"<Policy default>",
		"  JobPrivateAccess default",
		"  JobPrivateValues default",
		"  SubscriptionPrivateAccess default",
		"  SubscriptionPrivateValues default",
		"  <Limit All>",
		"    Order deny,allow",
		"  </Limit>",
		"</Policy>",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "etc", "cups-files.conf"), []byte(files), 0o644); err != nil {
		return fmt.Errorf("services: cupsd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "cupsd.conf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("services: cupsd: %w", err)
	}
	return nil
}

// httpAnswers sends one HTTP request over the socket and accepts any HTTP answer.
func httpAnswers(socket string) error {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.") {
		return fmt.Errorf("not an HTTP answer: %q", line)
	}
	return nil
}

// AddFileQueue adds an enabled, accepting raw queue named name whose jobs are written to
// outDir/job-<id>.pdf (FileQueueBackend; outDir must exist). Its error policy is abort-job: a
// job the backend cannot write ends aborted instead of stopping the queue.
func (c *CUPS) AddFileQueue(name, outDir string) error {
	out, err := filepath.Abs(outDir)
	if err != nil {
		return fmt.Errorf("services: cupsd: %w", err)
	}
	if !safeConfPath.MatchString(out) {
		return fmt.Errorf("services: cupsd: output directory %q has characters a device URI cannot take", out)
	}
	// "-m raw" prints CUPS 2.4's deprecation note for raw queues; they still work, and a raw
	// queue is what passes the PDF through unchanged.
	return c.admin("lpadmin", "-p", name, "-E", "-v", "madoguchi-dir:"+out, "-m", "raw",
		"-o", "printer-error-policy=abort-job", "-D", "Madoguchi file queue")
}

// DisableQueue stops (pauses) a queue with cupsdisable; jobs wait until EnableQueue.
func (c *CUPS) DisableQueue(name, reason string) error {
	args := []string{name}
	if reason != "" {
		args = []string{"-r", reason, name}
	}
	return c.admin("cupsdisable", args...)
}

// EnableQueue resumes a queue with cupsenable.
func (c *CUPS) EnableQueue(name string) error { return c.admin("cupsenable", name) }

// JobFile is where a file queue writing to outDir puts job id.
func JobFile(outDir string, id int) string {
	return filepath.Join(outDir, "job-"+strconv.Itoa(id)+".pdf")
}

// admin runs a cups-client administration tool against this scheduler (LANG=C).
func (c *CUPS) admin(tool string, args ...string) error {
	args = append([]string{"-h", c.Socket}, args...)
	path, err := exec.LookPath(tool)
	if err != nil {
		path = filepath.Join("/usr/sbin", tool) // root's tools, when /usr/sbin is not on PATH
	}
	_, err = RunTool(tool, path, args, []string{"LANG=C", "CUPS_SERVER=" + c.Socket}, nil)
	return err
}

// Stop stops cupsd and waits until it is reaped.
func (c *CUPS) Stop() error { return c.svc.Stop() }

// Service returns the supervised cupsd process.
func (c *CUPS) Service() *Service { return c.svc }
