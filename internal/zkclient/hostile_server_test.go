package zkclient

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hsrv is a scripted hostile ZooKeeper server.
type hsrv struct {
	ln      net.Listener
	accepts atomic.Int64
	done    chan struct{}
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

type sconn struct {
	net.Conn
	idx  int
	done chan struct{}
}

func hostile(t *testing.T, script func(c *sconn)) (*hsrv, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hsrv{ln: ln, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				script(&sconn{Conn: c, idx: i, done: s.done})
			}()
		}
	}()
	t.Cleanup(s.stop)
	return s, ln.Addr().String()
}

func (s *hsrv) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (c *sconn) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 32<<20 {
		return nil, errors.New("too big")
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

// readConnect reads the ConnectRequest; returns the session id asked.
func (c *sconn) readConnect() (sid int64, err error) {
	b, err := c.readFrame()
	if err != nil {
		return 0, err
	}
	d := dec{b: b}
	d.int32()
	d.int64()
	d.int32()
	sid = d.int64()
	return sid, d.err
}

func connResp(timeout int32, sid int64, passwd []byte) []byte {
	var e enc
	e.int32(0)
	e.int32(0)
	e.int32(timeout)
	e.int64(sid)
	e.buffer(passwd)
	e.bool(false)
	putLength(e.b)
	return e.b
}

// handshake reads the connect request and grants session sid.
func (c *sconn) handshake(timeout int32, sid int64) error {
	if _, err := c.readConnect(); err != nil {
		return err
	}
	_, err := c.Write(connResp(timeout, sid, make([]byte, 16)))
	return err
}

func rawFrame(parts ...[]byte) []byte {
	var e enc
	e.int32(0)
	for _, p := range parts {
		e.b = append(e.b, p...)
	}
	putLength(e.b)
	return e.b
}

func hdrB(xid int32, zxid int64, code int32) []byte {
	var e enc
	e.int32(xid)
	e.int64(zxid)
	e.int32(code)
	return e.b
}

func replyF(xid int32, code int32, body ...[]byte) []byte {
	return rawFrame(append([][]byte{hdrB(xid, 1, code)}, body...)...)
}

func notifF(typ, state int32, path string) []byte {
	var e enc
	e.int32(typ)
	e.int32(state)
	e.string(path)
	return rawFrame(hdrB(-1, 0, 0), e.b)
}

func statB() []byte {
	var e enc
	e.stat(&Stat{Version: 1})
	return e.b
}

// serve answers pings and closeSession and hands every other request to h,
// which returns the bytes to write (nil: no answer). It ends when the
// client hangs up.
func (c *sconn) serve(h func(xid, op int32, body []byte) []byte) {
	c.serveOrHangUp(func(xid, op int32, body []byte) ([]byte, bool) { return h(xid, op, body), false })
}

// serveOrHangUp is serve with a handler that may also hang up, after its
// bytes are written.
func (c *sconn) serveOrHangUp(h func(xid, op int32, body []byte) (out []byte, hangUp bool)) {
	for {
		b, err := c.readFrame()
		if err != nil || len(b) < 8 {
			return
		}
		xid := int32(binary.BigEndian.Uint32(b))
		op := int32(binary.BigEndian.Uint32(b[4:]))
		switch op {
		case opPing:
			if _, err := c.Write(replyF(xidPing, 0)); err != nil {
				return
			}
			continue
		case opCloseSession:
			c.Write(replyF(xid, 0))
			return
		}
		out, hangUp := h(xid, op, b[8:])
		if out != nil {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		if hangUp {
			return
		}
	}
}

// secondWaits holds the server's second connection (conns counts them)
// until gate is closed; it reports false if the server stopped first.
func (c *sconn) secondWaits(conns *atomic.Int64, gate <-chan struct{}) bool {
	if conns.Add(1) != 2 {
		return true
	}
	select {
	case <-gate:
		return true
	case <-c.done:
		return false
	}
}

// sleep waits d or until the server stops.
func (c *sconn) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-c.done:
		return false
	}
}

// A server that grants a session timeout of 0 or less on every attempt:
// each attempt fails, with the backoff, and no session is reported expired.
// The client reconnected in a tight loop (about 2,650 connections and as
// many Expired events in a second).
func TestHostileServerGrantsNoTimeout(t *testing.T) {
	for _, granted := range []int32{0, -5} {
		srv, addr := hostile(t, func(c *sconn) {
			if c.handshake(granted, 77) != nil {
				return
			}
			c.serve(func(xid, op int32, body []byte) []byte { return nil })
		})
		var expired atomic.Int64
		cfg := Config{Servers: []string{addr}, SessionTimeout: 3 * time.Second}
		cfg.OnEvent = func(e Event) {
			if e.State == StateExpired {
				expired.Add(1)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := Connect(ctx, cfg)
		cancel()
		if c != nil {
			c.Close(context.Background())
			t.Fatal("connected to a server that grants no timeout")
		}
		if n := srv.accepts.Load(); n > 50 || expired.Load() > 0 || !strings.Contains(err.Error(), "granted a session timeout") {
			t.Errorf("granted %d: %d connections in 1s, %d Expired events, error %v", granted, n, expired.Load(), err)
		}
	}
}

// A server that grants the session and hangs up at once, every time: the
// client reconnects with the backoff, not in a tight loop (about 2,470
// connections a second).
func TestHostileServerHangsUpAfterHandshake(t *testing.T) {
	srv, addr := hostile(t, func(c *sconn) { c.handshake(3000, 5) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := Connect(ctx, Config{Servers: []string{addr}, SessionTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	n := srv.accepts.Load()
	c.Close(ctx)
	if n > 50 {
		t.Errorf("%d connections in 1s to a server that hangs up after the handshake", n)
	}
}

// A server that answers pings but never closeSession: Close without a
// deadline returns once the client gives the connection up (two thirds of
// the session timeout), as documented. The client's pings kept the
// connection alive, and Close waited for ever.
func TestHostileServerIgnoresCloseSession(t *testing.T) {
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(1500, 5) != nil {
			return
		}
		for {
			b, err := c.readFrame()
			if err != nil {
				return
			}
			if len(b) >= 8 && int32(binary.BigEndian.Uint32(b[4:])) == opPing {
				c.Write(replyF(xidPing, 0))
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	c, err := Connect(ctx, Config{Servers: []string{addr}, SessionTimeout: 1500 * time.Millisecond})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		c.Close(context.Background())
		close(done)
	}()
	select {
	case <-done:
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Close took %v, want about 1s (two thirds of 1.5s)", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close without a deadline still waiting after 5s")
	}
}

// A server that refuses setWatches on a reconnect holds none of the
// watches: each gets EventLost. They stayed registered, waiting for events
// that would never come, with a warning in the log as the only trace.
func TestHostileServerRefusesSetWatches(t *testing.T) {
	var conns atomic.Int64
	_, addr := hostile(t, func(c *sconn) {
		first := conns.Add(1) == 1
		if c.handshake(3000, 5) != nil {
			return
		}
		c.serveOrHangUp(func(xid, op int32, body []byte) ([]byte, bool) {
			switch op {
			case opGetData: // hang up after the first: the client reconnects and re-registers
				return replyF(xid, 0, i32(0), statB()), first
			case opSetWatches, opSetWatches2:
				return replyF(xid, int32(ErrMarshalling)), false
			}
			return nil, false
		})
	})
	c, ctx := connectScripted(t, addr)
	_, _, ch, err := c.GetW(ctx, "/n")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		if ev.Type != EventLost || !errors.Is(ev.Err, ErrConnectionLoss) {
			t.Fatalf("watch event %+v, want EventLost with ErrConnectionLoss", ev)
		}
	case <-ctx.Done():
		t.Fatal("the watch got nothing after the server refused to re-register it")
	}
}

// connectScripted connects to a scripted server with a 3 s session; the
// client closes and ctx (10 s) ends when the test does.
func connectScripted(t *testing.T, addr string) (*Client, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := Connect(ctx, Config{Servers: []string{addr}, SessionTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c, ctx
}

func i32(v int32) []byte {
	var e enc
	e.int32(v)
	return e.b
}

// A server flooding maximum-size frames: the client keeps about two of
// them in memory, not its whole frame queue. 150 notifications of 16 MB
// each kept up to 832 MB live, as the reader queued up to 64 of them.
func TestHostileServerFloodsBigFrames(t *testing.T) {
	const count = 50
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(30000, 5) != nil {
			return
		}
		// A notification of maxFrame bytes for a path nobody watches.
		plen := maxFrame - replyHeaderSize - 12
		var e enc
		e.int32(int32(maxFrame))
		e.b = append(e.b, hdrB(-1, 0, 0)...)
		e.int32(int32(EventNodeDataChanged))
		e.int32(3)
		e.int32(int32(plen))
		f := append(e.b, make([]byte, plen)...)
		f[len(e.b)] = '/'
		for range count {
			if _, err := c.Write(f); err != nil {
				return
			}
		}
		c.serve(func(xid, op int32, body []byte) []byte { return nil })
	})
	handled := make(chan struct{}, count)
	cfg := Config{Servers: []string{addr}, SessionTimeout: 30 * time.Second}
	cfg.Hooks.OnWatch = func(EventType) { // on the client's goroutine: a slow one
		time.Sleep(5 * time.Millisecond)
		handled <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var peak atomic.Uint64
	stop, polled := make(chan struct{}), make(chan struct{})
	go func() { // the heap's high-water mark, while the frames come
		defer close(polled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak.Store(max(peak.Load(), m.HeapAlloc))
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	for range count {
		select {
		case <-handled:
		case <-ctx.Done():
			t.Fatal("the notifications did not all arrive")
		}
	}
	close(stop)
	<-polled
	t.Logf("peak heap %d MB", peak.Load()>>20)
	if peak := peak.Load(); peak > 256<<20 {
		t.Errorf("peak heap %d MB while %d frames of %d MB came, want a few frames' worth", peak>>20, count, maxFrame>>20)
	}
}

// Connect's error says what became of a server that took the handshake but
// never answered the authentication, or hung up before it was answered;
// it said "not tried".
func TestConnectErrorNamesTheUnansweredAuth(t *testing.T) {
	for _, hangUp := range []bool{false, true} {
		_, addr := hostile(t, func(c *sconn) {
			if c.handshake(3000, 5) != nil || hangUp {
				return
			}
			for { // auth and pings: no answer
				if _, err := c.readFrame(); err != nil {
					return
				}
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := Connect(ctx, Config{Servers: []string{addr}, SessionTimeout: 3 * time.Second, Auth: []Auth{{"digest", []byte("u:p")}}})
		cancel()
		if err == nil || strings.Contains(err.Error(), "not tried") || !strings.Contains(err.Error(), "authentication") {
			t.Errorf("hang up %v: Connect's error: %v", hangUp, err)
		}
		t.Log(err)
	}
}
