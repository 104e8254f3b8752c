package main

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"madoguchi/internal/testenv"
)

// variant is one program started per round.
type variant struct {
	name string
	bin  string
	args []string
	env  []string
}

// BenchmarkWindowStartup starts, in every round and in rotating order, the terminal binary and
// this package's minimal window (the baseline, same build, same window size, same X server),
// and reports for each:
//
//   - ms-frame-NAME: exec to the first drawn frame (captured with ImageMagick's import; the
//     capture's own cost, ms-capture, is the resolution);
//   - ms-cpu-NAME: CPU time the process had used (user + system, all threads) when its first
//     frame was seen: on this shared machine the wall time mostly measures waiting for a core;
//   - MiB-rss-NAME: resident memory (VmRSS) once the first screen is stable (two identical
//     captures in a row), and MiB-anon-NAME its anonymous part (heap, stacks, GL buffers;
//     the rest is the mapped binary and libraries);
//
// The variants: hello (Fyne's default theme), hello-otf (the terminal's theme with the bundled
// OpenType faces), hello-otf-nobold (the same without bold text: Fyne loads each face on first
// use, so this is what deferring the bold face saves while no bold text is shown), hello-ttf (the same faces as TrueType, assets/fonts/printfonts), terminal (the
// real program on an empty data directory, log-in screen). Extra environment for the terminal
// variant can be given with BENCH_TERMINAL_ENV (space separated, e.g. GOGC=50).
//
// BENCH_NICE=N starts every variant with `nice -n N` (N < 0 needs root): on a machine shared
// with other jobs this approaches what an otherwise idle machine gives, for all variants alike.
func BenchmarkWindowStartup(b *testing.B) {
	dir := b.TempDir()
	hello := build(b, dir, "benchwindow", ".")
	terminal := build(b, dir, "madoguchi", "madoguchi")
	ttf := func(face string) string {
		return filepath.Join(repoRoot(b), "assets", "fonts", "printfonts", "MadoguchiPrintJP-"+face+".ttf")
	}
	variants := []variant{
		{name: "hello", bin: hello, args: []string{"-theme", "default"}},
		{name: "hello-otf", bin: hello, args: []string{"-theme", "terminal"}},
		{name: "hello-otf-nobold", bin: hello, args: []string{"-theme", "terminal", "-nobold"}},
		{name: "hello-ttf", bin: hello, args: []string{"-theme", "files", "-regular", ttf("Regular"), "-bold", ttf("Bold")}},
		{name: "terminal", bin: terminal, args: []string{"--reader", "madoguchi-bench-no-reader"}},
	}
	if extra := os.Getenv("BENCH_TERMINAL_ENV"); extra != "" {
		variants = append(variants, variant{name: "terminal-env", bin: terminal,
			args: []string{"--reader", "madoguchi-bench-no-reader"}, env: strings.Fields(extra)})
	}
	d := testenv.Xvfb(b)
	sums := map[string]*[4]float64{}
	for _, v := range variants {
		sums[v.name] = &[4]float64{}
	}
	var capCost float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range variants {
			v := variants[(i+j)%len(variants)]
			frame, cpu, rss, anon := startOnce(b, d, v, dir)
			s := sums[v.name]
			s[0] += frame.Seconds() * 1000
			s[1] += rss
			s[2] += anon
			s[3] += cpu.Seconds() * 1000
			b.Logf("round %d %s: first frame %v (cpu %v), rss %.0f MiB (anon %.0f), load %s", i, v.name,
				frame.Round(time.Millisecond), cpu, rss, anon, loadAverage())
		}
		start := time.Now()
		d.Screenshot(b, filepath.Join(dir, "cost.png"))
		capCost += float64(time.Since(start).Milliseconds())
	}
	b.StopTimer()
	n := float64(b.N)
	for _, v := range variants {
		s := sums[v.name]
		b.ReportMetric(s[0]/n, "ms-frame-"+v.name)
		b.ReportMetric(s[3]/n, "ms-cpu-"+v.name)
		b.ReportMetric(s[1]/n, "MiB-rss-"+v.name)
		b.ReportMetric(s[2]/n, "MiB-anon-"+v.name)
	}
	b.ReportMetric(capCost/n, "ms-capture")
}

func repoRoot(tb testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

func build(tb testing.TB, dir, name, pkg string) string {
	tb.Helper()
	bin := filepath.Join(dir, name)
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, pkg)
	if pkg != "." {
		cmd.Dir = repoRoot(tb)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startOnce runs v until its first screen is stable and returns the time to the first drawn
// frame, the CPU time used by then, and the resident memory once stable (total and anonymous,
// MiB).
func startOnce(tb testing.TB, d *testenv.Display, v variant, dir string) (time.Duration, time.Duration, float64, float64) {
	tb.Helper()
	args := v.args
	if v.name == "terminal" || v.name == "terminal-env" {
		args = append([]string{"--data-dir", tb.TempDir()}, args...)
	}
	cmd := exec.Command(v.bin, args...)
	if n := os.Getenv("BENCH_NICE"); n != "" {
		cmd = exec.Command("nice", append([]string{"-n", n, v.bin}, args...)...)
	}
	cmd.Env = append(os.Environ(), v.env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	started := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var first, cpu time.Duration
	var prev image.Image
	for k := 0; ; k++ {
		if time.Since(started) > time.Minute {
			tb.Fatalf("%s: no stable frame in a minute:\n%s", v.name, out.String())
		}
		img := capture(tb, d, filepath.Join(dir, "frame.png"))
		if !drawn(img) {
			prev = nil
			continue
		}
		if first == 0 {
			first = time.Since(started)
			cpu = cpuTime(tb, cmd.Process.Pid)
		}
		if prev != nil && same(prev, img) {
			break
		}
		prev = img
		time.Sleep(50 * time.Millisecond)
	}
	rss, anon := memory(tb, cmd.Process.Pid)
	return first, cpu, rss, anon
}

// cpuTime returns the user + system time of pid (all its threads) from /proc/PID/stat.
func cpuTime(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name (which may contain spaces) start after the last ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func capture(tb testing.TB, d *testenv.Display, path string) image.Image {
	tb.Helper()
	d.Screenshot(tb, path)
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// drawn reports whether the capture shows a window with anti-aliased text rather than the
// empty (black) root window.
func drawn(img image.Image) bool {
	seen := map[uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			seen[(cr>>8)<<16|(cg>>8)<<8|cb>>8] = true
		}
	}
	return len(seen) > 32
}

func same(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

// memory returns VmRSS and RssAnon of pid in MiB.
func memory(tb testing.TB, pid int) (rss, anon float64) {
	tb.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = n / 1024
		case "RssAnon:":
			anon = n / 1024
		}
	}
	return rss, anon
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:1], "")
}
