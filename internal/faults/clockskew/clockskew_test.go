package clockskew

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileSkew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skew")
	skew := File(path)
	if d := skew(); d != 0 {
		t.Fatalf("missing file: %v, want 0", d)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	// Each step waits for the value instead of timing the re-read: no threshold in the test,
	// only a generous deadline for a machine under load.
	waitFor := func(want time.Duration) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for skew() != want {
			if time.Now().After(deadline) {
				t.Fatalf("skew %v, want %v", skew(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write("-90s\n")
	waitFor(-90 * time.Second)
	write("2h")
	waitFor(2 * time.Hour)
	write("not a duration")
	time.Sleep(2 * Interval)
	if d := skew(); d != 2*time.Hour {
		t.Fatalf("garbage in the file: %v, want the last good value 2h", d)
	}
	write("")
	waitFor(0)
	write("1m30s")
	waitFor(90 * time.Second)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(0)
}

// The file is not read again within Interval: a process calling Now in a loop costs one read
// per Interval, not one per call.
func TestFileReadAtMostEveryInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skew")
	if err := os.WriteFile(path, []byte("1s"), 0o600); err != nil {
		t.Fatal(err)
	}
	skew := File(path)
	start := time.Now()
	if skew() != time.Second {
		t.Fatal("first read")
	}
	if err := os.WriteFile(path, []byte("5s"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := skew()
	if time.Since(start) < Interval && got != time.Second {
		t.Fatalf("re-read within %v: %v", Interval, got)
	}
}
