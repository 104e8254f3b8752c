package main

// Personal secrets — custodians' share passphrases and staff credentials —
// are read from the person's own terminal without echo, or from a file
// descriptor the caller opened (a pipe from the custodian's own tool; the
// tests' helper), never from argv (TS Art. 27, 45: the secret is the
// person's, and argv is visible to every local user). Sources:
//
//	tty    prompt on the controlling terminal (/dev/tty), echo off (default)
//	fd:N   read one line from file descriptor N
//
// "file:" and "env:" sources are accepted only with --dev.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"madoguchi/ca-server/ceremony"
)

// maxSecretLen bounds a secret read from a terminal or descriptor.
const maxSecretLen = 1024

// ttyPath is the terminal secrets are asked on; tests point it nowhere, so
// that a test never waits for a person.
var ttyPath = "/dev/tty"

// readSecretSource reads one secret. prompt is shown on the terminal for
// "tty"; dev allows "file:" and "env:" sources.
func readSecretSource(source, prompt string, dev bool) (string, error) {
	switch {
	case source == "" || source == "tty":
		return readTTYSecret(prompt)
	case strings.HasPrefix(source, "fd:"):
		n, err := strconv.Atoi(strings.TrimPrefix(source, "fd:"))
		if err != nil || n < 0 {
			return "", fmt.Errorf("%w: secret source %q: want fd:N", errUsage, source)
		}
		return readFDSecret(n)
	case strings.HasPrefix(source, "file:") || strings.HasPrefix(source, "env:"):
		if !dev {
			return "", fmt.Errorf("%w: secret source %q: outside --dev a personal secret is typed at the terminal (tty) or read from a file descriptor (fd:N), never from a file or the environment", errUsage, source)
		}
		return ceremony.ReadSecret(source)
	}
	return "", fmt.Errorf("%w: secret source %q: want tty or fd:N", errUsage, source)
}

// readFDSecret reads up to a newline (or end of input) from fd, one byte
// at a time so that a descriptor carrying several lines is not
// over-read. The descriptor is not closed: it belongs to the caller (and
// an *os.File here would close it when collected).
func readFDSecret(fd int) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) <= maxSecretLen {
		n, err := syscall.Read(fd, one)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("ca-server: read secret from fd %d: %w", fd, err)
		}
		if n == 0 || one[0] == '\n' {
			s := strings.TrimRight(string(b), "\r")
			clear(b)
			if s == "" {
				return "", fmt.Errorf("%w: fd %d gave an empty secret", errUsage, fd)
			}
			return s, nil
		}
		b = append(b, one[0])
	}
	clear(b)
	return "", fmt.Errorf("%w: secret from fd %d longer than %d bytes", errUsage, fd, maxSecretLen)
}

// readTTYSecret prompts on /dev/tty with echo off.
func readTTYSecret(prompt string) (string, error) {
	tty, err := os.OpenFile(ttyPath, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("%w: %s: no terminal to ask on (%v); give the secret on a file descriptor (fd:N)", errUsage, strings.TrimSuffix(prompt, ": "), err)
	}
	defer tty.Close()
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("ca-server: terminal: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("ca-server: terminal: %w", err)
	}
	defer func() {
		unix.IoctlSetTermios(fd, unix.TCSETS, old)
		fmt.Fprintln(tty)
	}()
	fmt.Fprint(tty, prompt)
	return readFDSecret(fd)
}

// readNewSecret reads a secret a person chooses: at the terminal it is
// asked twice, to catch a typing error no one could see.
func readNewSecret(source, prompt string, dev bool) (string, error) {
	s, err := readSecretSource(source, prompt, dev)
	if err != nil || (source != "" && source != "tty") {
		return s, err
	}
	again, err := readSecretSource(source, "again: "+prompt, dev)
	if err != nil {
		return "", err
	}
	if again != s {
		return "", fmt.Errorf("%w: the two entries differ", errUsage)
	}
	return s, nil
}

// secretSources parses repeated NAME=SOURCE flags.
func secretSources(flagName string, vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		name, src, ok := strings.Cut(v, "=")
		if !ok || name == "" || src == "" {
			return nil, fmt.Errorf("%w: --%s %q: want NAME=SOURCE (tty or fd:N)", errUsage, flagName, v)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: --%s given twice for %q", errUsage, flagName, name)
		}
		out[name] = src
	}
	return out, nil
}
