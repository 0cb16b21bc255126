package zktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestStartSweepsDirectoriesOfEndedProcesses: a process that used Shared
// without Main leaves its directory behind; the next Start removes it, and
// keeps those of live processes.
func TestStartSweepsDirectoriesOfEndedProcesses(t *testing.T) {
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	stale, live := filepath.Join(os.TempDir(), "zktest-stale-test"), filepath.Join(os.TempDir(), "zktest-live-test")
	for dir, pid := range map[string]int{stale: ended.Process.Pid, live: os.Getpid()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sweepStale()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the ended process's directory is still there (%v)", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's directory was removed: %v", err)
	}
}
