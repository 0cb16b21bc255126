package zktest

import (
	"os"
	"syscall"
	"time"
)

// The kit runs Debian's ZooKeeper, so it runs on Linux (and, for what
// works there, other Unix systems). On Windows it compiles, so that a
// module's tests build everywhere, and its servers fail to start.

func sysProcAttr() *syscall.SysProcAttr { return nil }

// Windows has no SIGSTOP or SIGCONT: Pause and Resume fail (os.Process
// sends only Kill there).
const sigStop, sigCont = syscall.Signal(0x13), syscall.Signal(0x12)

func waitStopped(pid int, timeout time.Duration) error { return nil }

// holdDir does nothing here: directories are not swept.
func holdDir(dir string) *os.File { return nil }

// sweepStale does nothing here: without Linux's parent-death signal, the
// servers of a process that ended may still be running in its directories.
func sweepStale() {}
