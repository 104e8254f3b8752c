package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Display is a running Xvfb X server.
type Display struct {
	Name    string // DISPLAY value, e.g. ":1"
	Number  int
	LogPath string
}

// XvfbOptions configures XvfbWith. The zero value gives Xvfb's 1280x800x24 screen.
type XvfbOptions struct {
	Binary string // default "Xvfb" from PATH
	Screen string // WxHxDepth, default "1280x800x24"
}

// Xvfb starts an X server on a free display number with a 1280x800x24 screen and sets DISPLAY
// for the rest of the test.
func Xvfb(t testing.TB) *Display {
	t.Helper()
	return XvfbWith(t, XvfbOptions{})
}

// XvfbWith is Xvfb with options.
func XvfbWith(t testing.TB, opts XvfbOptions) *Display {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = "Xvfb"
	}
	if opts.Screen == "" {
		opts.Screen = "1280x800x24"
	}
	// -displayfd: Xvfb picks a free display number itself (no race with other servers) and writes
	// it to the pipe once it accepts connections.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer r.Close()
	dir := t.TempDir()
	s, err := startService(serviceSpec{
		name:       "Xvfb",
		path:       opts.Binary,
		args:       []string{"-displayfd", "3", "-screen", "0", opts.Screen, "-nolisten", "tcp", "-noreset"},
		logPath:    filepath.Join(dir, "xvfb.log"),
		extraFiles: []*os.File{w},
	})
	w.Close()
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.cleanup(t)

	numbers := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		numbers <- strings.TrimSpace(line)
	}()
	number := -1
	err = s.waitReady(func() error {
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
		s.abort()
		t.Fatalf("%v", err)
	}
	d := &Display{Name: ":" + strconv.Itoa(number), Number: number, LogPath: s.logPath}
	t.Setenv("DISPLAY", d.Name)
	return d
}

// Screenshot saves the display's root window to path (the format follows the extension; use
// .png) with ImageMagick's `import`. It fails the test if the capture fails.
func (d *Display) Screenshot(t testing.TB, path string) {
	t.Helper()
	if err := d.Capture(path); err != nil {
		t.Fatalf("%v", err)
	}
}

// Capture is Screenshot returning an error.
func (d *Display) Capture(path string) error {
	out, err := exec.Command("import", "-display", d.Name, "-window", "root", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testenv: screenshot of %s: %v: %s", d.Name, err, out)
	}
	return nil
}
