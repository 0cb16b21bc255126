//go:build !unix

package zkclient

import "syscall"

type nowWrite struct{}

// writeNow writes nothing: the writer goroutine writes everything.
func writeNow(syscall.RawConn, []byte, *nowWrite) int { return 0 }
