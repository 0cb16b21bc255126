package zktest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// sysProcAttr puts a server in its own process group, so a terminal's ^C
// reaches only the test binary, and has the kernel kill it when its parent
// dies, so a killed `go test` leaves no JVM behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitStopped returns once every thread of process pid is stopped, as
// SIGSTOP takes effect asynchronously, or after timeout.
func waitStopped(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		stopped, err := allStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not stopped after %v", pid, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// allStopped reports whether /proc shows every thread of pid as stopped.
func allStopped(pid int) (bool, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false, fmt.Errorf("process %d: no threads in /proc", pid)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // the thread has exited
		}
		// "tid (comm) S ...": comm may hold anything, so look after its last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("unexpected %s: %q", task, b)
		}
		if s := b[i+2]; s != 'T' && s != 't' {
			return false, nil
		}
	}
	return true, nil
}

// The signals of Pause and Resume.
const sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT

// holdDir creates dir's owner file, locked (flock) until the returned file
// is closed or this process ends. The file is locked under another name
// and then renamed, so a sweep never finds it unlocked. nil if that fails:
// the directory is then never swept.
func holdDir(dir string) *os.File {
	tmp := filepath.Join(dir, ownerFile+".new")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil || os.Rename(tmp, filepath.Join(dir, ownerFile)) != nil {
		f.Close()
		return nil
	}
	return f
}

// sweepStale removes the directories that Start made in processes that
// have ended without closing their cluster, such as a test binary that
// used Shared without Main: their servers died with them (the parent-death
// signal), their files stayed, and nothing holds their owner file's lock.
// A lock is seen across processes, pid namespaces and pid reuse alike.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "zktest-*"))
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not made by a Start that locks, or being made
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}
