package zkclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// handshakeParams is what one attempt needs from the owner's state.
type handshakeParams struct {
	addr     string
	lastZxid int64
	timeout  time.Duration // the session timeout to ask for
	sid      int64
	passwd   []byte
	limit    time.Duration // the attempt's time limit, for its error
}

// attemptResult is the outcome of one attempt: a connection with a
// ConnectResponse, or why not.
type attemptResult struct {
	addr string
	conn *connection
	resp connectResponse
	err  error
}

// dialServer dials p.addr, wraps it in TLS if configured, and does
// ZooKeeper's handshake, all within ctx.
func dialServer(ctx context.Context, cfg *Config, p handshakeParams) attemptResult {
	res := attemptResult{addr: p.addr}
	conn, err := handshake(ctx, cfg, p, &res)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimeout) ||
			ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within %v", p.limit)
		}
		res.err = err
		return res
	}
	res.conn = conn
	return res
}

var errTimeout = errors.New("timeout")

func handshake(ctx context.Context, cfg *Config, p handshakeParams, res *attemptResult) (*connection, error) {
	dial := cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	raw, err := dial(ctx, "tcp", p.addr)
	if err == nil && raw == nil {
		err = errors.New("the dialer returned no connection and no error")
	}
	if err != nil {
		if raw != nil {
			raw.Close()
		}
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	deadline, _ := ctx.Deadline()
	raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn := raw
	if cfg.TLS != nil {
		tc := cfg.TLS.Clone()
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(p.addr)
			tc.ServerName = host
		}
		t := tls.Client(raw, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS: %w", timeoutErr(err))
		}
		conn = t
	}
	req := appendConnectRequest(nil, p.lastZxid, int32(p.timeout/time.Millisecond), p.sid, p.passwd)
	if _, err := conn.Write(req); err != nil {
		return nil, timeoutErr(err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	var size [4]byte
	if _, err := io.ReadFull(br, size[:]); err != nil {
		return nil, timeoutErr(err)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > 1024 {
		return nil, fmt.Errorf("%w: connect response of %d bytes", errProtocol, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, timeoutErr(err)
	}
	resp, err := decodeConnectResponse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: connect response: %s", errProtocol, trimPrefix(err))
	}
	if !stop() {
		return nil, ctx.Err()
	}
	raw.SetDeadline(time.Time{})
	res.resp = resp
	ok = true
	return &connection{raw: raw, conn: conn, br: br, addr: p.addr}, nil
}

// timeoutErr maps a deadline error to errTimeout, so the caller can name it
// plainly.
func timeoutErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errTimeout
	}
	return err
}

// frame is a reply or notification from the reader, or (err set) the end
// of the connection.
type frame struct {
	hdr  replyHeader
	body []byte // after the header
	err  error
	big  bool // holds the connection's big token (see connection.big)
}

// bigFrame is the size from which the reader hands frames over one at a
// time: a server flooding maximum-size frames then keeps two of them in
// memory, not the whole queue (64 × 16 MB).
const bigFrame = 1 << 20

// connection is one established connection with its reader and writer
// goroutines.
type connection struct {
	raw   net.Conn // closed to end everything
	conn  net.Conn // raw, or TLS over it
	br    *bufio.Reader
	addr  string
	since time.Time

	frames  chan frame
	handled atomic.Int64                                     // frames the owner has handled
	direct  func(cn *connection, f frame, queued int64) bool // owner.notifyDirect
	big     chan struct{}                                    // buffer 1: a big frame is queued or being handled
	quit    chan struct{}
	wg      sync.WaitGroup
	w       *writer
}

// start launches the reader and writer; writes fail after writeTimeout.
func (cn *connection) start(writeTimeout time.Duration, heard func()) {
	cn.since = time.Now()
	cn.frames = make(chan frame, 64)
	cn.big = make(chan struct{}, 1)
	cn.quit = make(chan struct{})
	cn.w = &writer{conn: cn.conn, raw: cn.raw, timeout: writeTimeout, wake: make(chan struct{}, 1), quit: cn.quit}
	if sc, ok := cn.conn.(syscall.Conn); ok { // not TLS: tls.Conn has no socket of its own
		if rc, err := sc.SyscallConn(); err == nil {
			cn.w.rc = rc
		}
	}
	cn.wg.Add(2)
	go func() {
		defer cn.wg.Done()
		cn.read(heard)
	}()
	go func() {
		defer cn.wg.Done()
		cn.w.run()
	}()
}

// close closes the connection and waits for its goroutines.
func (cn *connection) close() {
	close(cn.quit)
	cn.raw.Close()
	cn.wg.Wait()
}

// read reads frames until the connection fails, handing each to the owner.
// A length outside [16, maxFrame] is a protocol error: nothing is allocated
// from it.
func (cn *connection) read(heard func()) {
	var size [4]byte
	var queued int64 // frames given to the owner
	for {
		var f frame
		_, err := io.ReadFull(cn.br, size[:])
		if err == nil {
			n := int32(binary.BigEndian.Uint32(size[:]))
			if n < replyHeaderSize || n > maxFrame {
				err = fmt.Errorf("%w: frame of %d bytes", errProtocol, n)
			} else {
				if f.big = n >= bigFrame; f.big {
					select { // wait until the owner has taken the last one
					case cn.big <- struct{}{}:
					case <-cn.quit:
						return
					}
				}
				buf := make([]byte, n)
				if _, err = io.ReadFull(cn.br, buf); err == nil {
					heard()
					f.hdr, f.body, err = decodeReplyHeader(buf)
				}
			}
		}
		if err != nil {
			f = frame{err: err}
		} else if f.hdr.xid == xidNotification && !f.big && cn.direct != nil && cn.direct(cn, f, queued) {
			continue
		}
		select {
		case cn.frames <- f:
			queued++
		case <-cn.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// writer writes what the owner sends, so that the owner never waits on the
// socket. When nothing is queued, write hands the bytes to the socket at
// once without blocking (a request then goes out without waking another
// goroutine); what the socket does not take is queued, and run writes the
// queue in batches, blocking as long as the server is slow to read.
type writer struct {
	conn, raw net.Conn
	rc        syscall.RawConn // nil if conn has no socket of its own (TLS): all goes through run
	timeout   time.Duration
	wake      chan struct{} // buffer 1
	quit      chan struct{}

	mu    sync.Mutex
	now   nowWrite // tryWrite's, kept so that it allocates nothing
	buf   []byte   // to write
	spare []byte
	busy  bool // run is writing a batch
}

// write sends b, or queues what the socket does not take at once (copied).
func (w *writer) write(b []byte) {
	w.mu.Lock()
	if w.rc != nil && !w.busy && len(w.buf) == 0 {
		b = b[w.tryWrite(b):] // in order: nothing is queued or being written
	}
	if len(b) == 0 {
		w.mu.Unlock()
		return
	}
	w.buf = append(w.buf, b...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// tryWrite writes what the socket takes of b without waiting, and returns
// how much that was. A failure is left to run, whose write of the rest
// fails the same way and ends the connection.
func (w *writer) tryWrite(b []byte) int { return writeNow(w.rc, b, &w.now) }

func (w *writer) run() {
	for {
		select {
		case <-w.wake:
		case <-w.quit:
			return
		}
		// Two buffers alternate: the owner fills one while the other is
		// written. The taken one is ours alone until handed back as spare.
		w.mu.Lock()
		b := w.buf
		w.buf, w.spare = w.spare[:0], nil
		w.busy = len(b) > 0
		w.mu.Unlock()
		if len(b) > 0 {
			w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
			if _, err := w.conn.Write(b); err != nil {
				w.raw.Close() // the reader fails and tells the owner
				return
			}
			// A deadline left to pass would fail write's direct sends
			// (the socket refuses them once it is past).
			w.conn.SetWriteDeadline(time.Time{})
		}
		if cap(b) > 1<<20 {
			b = nil
		}
		w.mu.Lock()
		w.spare, w.busy = b[:0], false
		w.mu.Unlock()
	}
}
