//go:build unix && !linux

package zktest

import (
	"os"
	"syscall"
	"time"
)

// sysProcAttr puts a server in its own process group. Without Linux's
// parent-death signal, a killed test binary can leave servers running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitStopped cannot tell when SIGSTOP has taken effect here; it returns at
// once.
func waitStopped(pid int, timeout time.Duration) error { return nil }

// The signals of Pause and Resume.
const sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT

// holdDir does nothing here: directories are not swept.
func holdDir(dir string) *os.File { return nil }

// sweepStale does nothing here: without Linux's parent-death signal, the
// servers of a process that ended may still be running in its directories.
func sweepStale() {}
