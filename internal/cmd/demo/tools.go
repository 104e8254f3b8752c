package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"madoguchi/internal/services"
)

// toolTimeout bounds a short command the demo runs (a --help, a ceremony, a batch).
const toolTimeout = 2 * time.Minute

// output runs path with args (process group, parent-death signal, killed with its group on
// ctx's end or after toolTimeout) and returns its combined output. A non-zero exit is returned
// as the error together with the output.
func output(ctx context.Context, path string, args ...string) (string, error) {
	return outputEnv(ctx, nil, path, args...)
}

func outputEnv(ctx context.Context, env []string, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), services.OwnerEnv+"="+services.OwnerValue())
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// runLogged runs a one-shot command, keeps its whole output in logs/<name>.log, and returns
// its output; on failure the error carries the output's tail.
func (d *demo) runLogged(ctx context.Context, name, path string, args ...string) (string, error) {
	out, err := output(ctx, path, args...)
	logPath := filepath.Join(d.logs, name+".log")
	_ = os.WriteFile(logPath, []byte(fmt.Sprintf("$ %s %s\n%s", path, strings.Join(args, " "), out)), 0o600)
	if err != nil {
		return out, fmt.Errorf("%v%s", err, services.FileTail(logPath, 2048))
	}
	return out, nil
}

// subcommandLine matches a line of ca-server's command list: two spaces, a name, spaces, the
// summary.
var subcommandLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s{2,}\S`)

// subcommands returns the sub-command names `bin --help` lists under "commands:".
func subcommands(ctx context.Context, bin string) ([]string, error) {
	out, err := output(ctx, bin, "--help")
	if err != nil {
		return nil, fmt.Errorf("%s --help: %v: %s", filepath.Base(bin), err, strings.TrimSpace(out))
	}
	return parseSubcommands(out), nil
}

func parseSubcommands(help string) []string {
	var names []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "commands:":
			in = true
		case in && strings.TrimSpace(line) == "":
			if len(names) > 0 {
				in = false
			}
		case in:
			if m := subcommandLine.FindStringSubmatch(line); m != nil {
				names = append(names, m[1])
			}
		}
	}
	return names
}

// flagLine matches a flag in Go's flag package usage: "  -name type" or "  -name".
var flagLine = regexp.MustCompile(`^\s+-{1,2}([A-Za-z0-9][A-Za-z0-9._-]*)(\s|$)`)

// parseFlags returns the flag names in a Go flag package usage text.
func parseFlags(usage string) []string {
	var names []string
	for _, line := range strings.Split(usage, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// flagsOf returns the flags of `bin sub --help` (exit status 0 or 2 both carry the usage).
func flagsOf(ctx context.Context, bin, sub string) ([]string, error) {
	out, err := output(ctx, bin, sub, "--help")
	if err != nil && !isExit(err) {
		return nil, fmt.Errorf("%s %s --help: %w", filepath.Base(bin), sub, err)
	}
	return parseFlags(out), nil
}

// terminalFlags returns the terminal's flags from `madoguchi -h` (which prints the usage and
// exits 2 before it opens a window).
func terminalFlags(ctx context.Context, bin, display string) ([]string, error) {
	out, err := outputEnv(ctx, []string{"DISPLAY=" + display}, bin, "-h")
	if err != nil && !isExit(err) {
		return nil, fmt.Errorf("%s -h: %w", filepath.Base(bin), err)
	}
	return parseFlags(out), nil
}

func isExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// pick returns the first of want that is in have, or "".
func pick(have []string, want ...string) string {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return w
			}
		}
	}
	return ""
}

// windowLine matches a window in `xwininfo -root -tree`: id, then its name in quotes.
var windowLine = regexp.MustCompile(`^\s*(0x[0-9a-f]+) "(.*)":`)

// findWindow returns the title of a window on display whose title contains marker.
func findWindow(ctx context.Context, display, marker string) (string, error) {
	out, err := output(ctx, "xwininfo", "-display", display, "-root", "-tree")
	if err != nil {
		return "", fmt.Errorf("xwininfo: %v: %s", err, strings.TrimSpace(out))
	}
	if title, ok := windowTitle(out, marker); ok {
		return title, nil
	}
	return "", fmt.Errorf("no window titled *%s* on %s yet", marker, display)
}

func windowTitle(tree, marker string) (string, bool) {
	for _, line := range strings.Split(tree, "\n") {
		if m := windowLine.FindStringSubmatch(line); m != nil && strings.Contains(m[2], marker) {
			return m[2], true
		}
	}
	return "", false
}

// stdoutOf is output for stdout alone (stderr is discarded).
func stdoutOf(ctx context.Context, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), services.OwnerEnv+"="+services.OwnerValue())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// redactAfter returns a copy of args with the value after any of the secret flags replaced.
func redactAfter(args []string, secretFlags ...string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		for _, f := range secretFlags {
			if out[i] == f {
				out[i+1] = "***"
			}
		}
	}
	return out
}
