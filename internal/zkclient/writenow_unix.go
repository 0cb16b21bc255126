//go:build unix

package zkclient

import "syscall"

// nowWrite is one writeNow's state; its method value, made once, is what
// RawConn.Write calls, so that a write allocates no closure.
type nowWrite struct {
	b  []byte
	n  int
	fn func(fd uintptr) bool
}

// writeNow writes what the socket takes of b without waiting (Go's sockets
// are non-blocking) and returns how much that was. st is the caller's, used
// by one call at a time.
func writeNow(rc syscall.RawConn, b []byte, st *nowWrite) int {
	if st.fn == nil {
		st.fn = st.write
	}
	st.b, st.n = b, 0
	rc.Write(st.fn)
	n := st.n
	st.b = nil
	return n
}

func (st *nowWrite) write(fd uintptr) bool {
	for st.n < len(st.b) {
		m, err := syscall.Write(int(fd), st.b[st.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || m <= 0 {
			break
		}
		st.n += m
	}
	return true // never wait for the socket
}
