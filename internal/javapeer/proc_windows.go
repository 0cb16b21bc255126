package javapeer

import "syscall"

// sysProcAttr has nothing to set on Windows.
func sysProcAttr() *syscall.SysProcAttr { return nil }
