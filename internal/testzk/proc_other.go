//go:build unix && !linux

package testzk

import "syscall"

// sysProcAttr puts a server in its own process group. Without Linux's
// parent-death signal, a killed test binary can leave servers running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
