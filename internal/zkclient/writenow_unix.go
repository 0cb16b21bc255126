//go:build unix

package zkclient

import "syscall"

// writeNow writes what the socket takes of b without waiting (Go's sockets
// are non-blocking) and returns how much that was.
func writeNow(rc syscall.RawConn, b []byte) int {
	n := 0
	rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || m <= 0 {
				break
			}
			n += m
		}
		return true // never wait for the socket
	})
	return n
}
