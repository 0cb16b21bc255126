package zktest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStartSweepsDirectoriesOfEndedProcesses: a process that used Shared
// without Main leaves its directory behind, its owner file unlocked; the
// next Start removes it. A directory whose owner file is locked (by any
// process, in any pid namespace) or that has none is kept.
func TestStartSweepsDirectoriesOfEndedProcesses(t *testing.T) {
	dir := func(name string) string {
		d := filepath.Join(os.TempDir(), "zktest-"+name+"-sweep-test")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	stale, live, foreign := dir("stale"), dir("live"), dir("foreign")
	if err := os.WriteFile(filepath.Join(stale, ownerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	held := holdDir(live)
	if held == nil {
		t.Fatal("holdDir failed")
	}
	defer held.Close()
	sweepStale()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the ended process's directory is still there (%v)", err)
	}
	for _, d := range []string{live, foreign} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}
