package services

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Display is a running Xvfb X server.
type Display struct {
	Name    string // DISPLAY value, e.g. ":1"
	Number  int
	LogPath string

	svc *Service
}

// XvfbOptions configures StartXvfb.
type XvfbOptions struct {
	Binary  string        // default "Xvfb" from PATH
	Screen  string        // WxHxDepth, default "1280x800x24"
	LogPath string        // required: Xvfb's output
	Timeout time.Duration // readiness; 0: DefaultStartTimeout
}

// StartXvfb starts an X server on a free display number and returns once it accepts
// connections. It sets no environment variable: pass Display.Name as DISPLAY to clients.
func StartXvfb(opts XvfbOptions) (*Display, error) {
	if opts.Binary == "" {
		opts.Binary = "Xvfb"
	}
	if opts.Screen == "" {
		opts.Screen = "1280x800x24"
	}
	if opts.LogPath == "" {
		return nil, errors.New("services: Xvfb: no log path")
	}
	// -displayfd: Xvfb picks a free display number itself (no race with other servers) and writes
	// it to the pipe once it accepts connections.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	defer r.Close()
	s, err := Start(Spec{
		Name:       "Xvfb",
		Path:       opts.Binary,
		Args:       []string{"-displayfd", "3", "-screen", "0", opts.Screen, "-nolisten", "tcp", "-noreset"},
		LogPath:    opts.LogPath,
		ExtraFiles: []*os.File{w},
	})
	w.Close()
	if err != nil {
		return nil, err
	}
	numbers := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		numbers <- strings.TrimSpace(line)
	}()
	number := -1
	err = s.WaitReady(opts.Timeout, func() error {
		if number < 0 {
			select {
			case line := <-numbers:
				n, err := strconv.Atoi(line)
				if err != nil {
					return fmt.Errorf("display number %q: %v", line, err)
				}
				number = n
			default:
				return fmt.Errorf("no display number yet")
			}
		}
		c, err := net.Dial("unix", fmt.Sprintf("/tmp/.X11-unix/X%d", number))
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		s.Abort()
		return nil, err
	}
	return &Display{Name: ":" + strconv.Itoa(number), Number: number, LogPath: s.logPath, svc: s}, nil
}

// Stop stops the X server.
func (d *Display) Stop() error { return d.svc.Stop() }

// Service returns the supervised Xvfb process.
func (d *Display) Service() *Service { return d.svc }

// Capture saves the display's root window to path (the format follows the extension; use .png)
// with ImageMagick's `import`. The image is written beside path and renamed into place, so a
// reader never sees half a file.
func (d *Display) Capture(path string) error {
	return CaptureDisplay(d.Name, path)
}

// CaptureDisplay is Display.Capture for any X display name.
func CaptureDisplay(display, path string) error {
	tmp := filepath.Join(filepath.Dir(path), ".capture-"+strconv.Itoa(os.Getpid())+"-"+filepath.Base(path))
	out, err := exec.Command("import", "-display", display, "-window", "root", tmp).CombinedOutput()
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("services: screenshot of %s: %v: %s", display, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("services: screenshot of %s: %w", display, err)
	}
	return nil
}
