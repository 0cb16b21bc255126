package lighthouse

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// liveness tells Leadership.Valid whether the server was heard from
// recently. It wraps the session's connections to see every byte the server
// sends.
type liveness struct {
	born      time.Time    // monotonic origin of lastHeard
	lastHeard atomic.Int64 // ns since born when the server last sent bytes that count
	granted   atomic.Int64 // session timeout the server granted, in ns
}

func (l *liveness) init(asked time.Duration) {
	l.born = time.Now()
	l.granted.Store(int64(asked))
}

func (l *liveness) timeout() time.Duration { return time.Duration(l.granted.Load()) }

// heardWithin reports whether the server has sent anything within d. The
// client pings every third of the session timeout, so on a live connection
// the gap stays well under two thirds of it.
func (l *liveness) heardWithin(d time.Duration) bool {
	return time.Since(l.born)-time.Duration(l.lastHeard.Load()) < d
}

// dialer wraps dial so that the connections it opens report what they read.
func (l *liveness) dialer(dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &heardConn{Conn: c, l: l}, nil
	}
}

// heardConn is one connection of the session; the client's reader goroutine
// alone reads it.
type heardConn struct {
	net.Conn
	l        *liveness
	lastRead time.Duration // since born: when a Read last returned bytes
	distrust time.Duration // since born: reads before this prove nothing
}

// SyscallConn gives the client the socket, when there is one, so that it
// can send without waking its writer goroutine.
func (c *heardConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

func (c *heardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		// On a live connection the server answers a ping every third of the
		// session timeout. A longer silence means the connection stalled or
		// this process was paused: bytes read now may have waited in the
		// socket since before the server gave up on the session, so they are
		// no proof that it lives until a quiet spell has passed.
		now := time.Since(c.l.born)
		quiet := c.l.timeout() * 2 / 3
		if c.lastRead > 0 && now-c.lastRead > quiet {
			c.distrust = now + quiet
		}
		c.lastRead = now
		if now >= c.distrust {
			c.l.lastHeard.Store(now.Nanoseconds())
		}
	}
	return n, err
}
