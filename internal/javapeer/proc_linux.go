package javapeer

import "syscall"

// sysProcAttr puts a program in its own process group and has the kernel
// kill it when the test binary dies, so no JVM outlives a killed `go test`.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
