package testzk

import "syscall"

// sysProcAttr puts a server in its own process group, so a terminal's ^C
// reaches only the test binary, and has the kernel kill it when its parent
// dies, so a killed `go test` leaves no JVM behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
