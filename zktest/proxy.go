package zktest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxyMode is what a Proxy does with traffic.
type proxyMode int

const (
	forwarding proxyMode = iota
	cutting              // connections are closed, new ones refused
	stalling             // bytes are read and dropped
)

// noXid marks a link with no reply to lose; xids are int32.
const noXid = math.MinInt64

// Proxy is a TCP proxy in front of one ZooKeeper server that injects faults
// on demand. Connect the code under test to Addr instead of the server.
// While no fault is set it copies bytes both ways as they come; it follows
// ZooKeeper's framing only to learn each connection's session (for Expire)
// and to find a reply to lose (for LoseReplyTo). Faults apply to every
// connection through the proxy, open or new. To reach an ensemble through
// proxies, start one per server and join their Addrs with commas. Its
// methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // ends with Close; bounds dials to target
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	expireMu sync.Mutex // one Expire at a time

	mu        sync.Mutex
	mode      proxyMode // as Cut, Stall and Heal set it
	expiring  bool      // Expire holds connections off, whatever mode
	delay     time.Duration
	loseOp    Op
	loseArmed bool
	session   session // of the latest connection to get one
	links     map[*link]struct{}
	closed    bool
}

// link is one proxied connection: a client's and ours to the target.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{} // closed by close
	lossy          atomic.Bool   // bytes were dropped during a stall
	loseXid        atomic.Int64  // xid whose reply ends the link, or noXid
}

// close closes both connections; with reset, so that the peers see a reset
// rather than an orderly end.
func (l *link) close(reset bool) {
	l.once.Do(func() {
		for _, c := range []net.Conn{l.client, l.server} {
			if tc, ok := c.(*net.TCPConn); ok && reset {
				tc.SetLinger(0)
			}
			c.Close()
		}
		close(l.done)
	})
}

// sleep waits for d, or until the link is closed; it reports whether the
// link is still open.
func (l *link) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

// NewProxy listens on a free 127.0.0.1 port and forwards every connection it
// accepts to target ("host:port"), until Close.
func NewProxy(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("zktest: proxy: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("zktest: proxy: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{target: target, ln: ln, ctx: ctx, cancel: cancel, links: make(map[*link]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// ProxyT is NewProxy for a test: it fails t on error and closes the proxy
// when t ends.
func ProxyT(t TB, target string) *Proxy {
	t.Helper()
	p, err := NewProxy(target)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Addr returns the address clients should connect to, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut cuts the client off: it resets every open connection (the client
// sees a TCP reset at once) and, until Heal, accepts new connections only to
// close them. The server learns that the connection is gone but keeps the
// session until its timeout passes with no reconnect, so a client that gets
// back within the session timeout after Heal keeps its session; after that,
// it finds the session expired.
func (p *Proxy) Cut() {
	for _, l := range p.setMode(cutting) {
		l.close(true)
	}
}

// Stall simulates a network partition: until Heal, connections old and new
// stay open but every byte in either direction is dropped, so neither side
// hears of it except through its own timeouts. The client gives up on its
// connection when it hears nothing (for lighthouse, after two thirds of the
// session timeout) and the server expires the session once the session
// timeout passes without a ping.
func (p *Proxy) Stall() { p.setMode(stalling) }

// Heal ends a Cut or Stall: the proxy forwards again. Connections that lost
// bytes during a stall cannot carry on and are reset; clients then
// reconnect.
func (p *Proxy) Heal() {
	for _, l := range p.setMode(forwarding) {
		if l.lossy.Load() {
			l.close(true)
		}
	}
}

// setMode sets the mode and returns the open links.
func (p *Proxy) setMode(m proxyMode) []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	return p.linksLocked()
}

// linksLocked returns the open links; p.mu is held.
func (p *Proxy) linksLocked() []*link {
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	return links
}

// modeLocked is the mode in force: cutting while Expire runs; p.mu is held.
func (p *Proxy) modeLocked() proxyMode {
	if p.expiring {
		return cutting
	}
	return p.mode
}

// Delay holds every chunk of bytes for d before forwarding it, in both
// directions, so a request and its reply each take d longer; 0 removes the
// delay. Each direction of a connection forwards one chunk at a time, so
// under steady traffic the delays add up. A delay near the session timeout
// makes the client time out.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = max(d, 0)
}

// LoseReplyTo arms a one-shot fault: the next request with opcode op
// (OpCreate, OpMulti, ...) from any client through the proxy reaches the
// server, but the connection is reset just before the server's reply to it
// would reach the client. The server has applied the request; the client
// sees only a lost connection, reconnects within its session and must find
// out for itself whether the request took effect. Later requests are not
// affected.
func (p *Proxy) LoseReplyTo(op Op) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loseOp, p.loseArmed = op, true
}

// takeLose disarms LoseReplyTo and reports true if it was armed for op.
func (p *Proxy) takeLose(op Op) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.loseArmed || op != p.loseOp {
		return false
	}
	p.loseArmed = false
	return true
}

// Expire ends the ZooKeeper session most recently established through the
// proxy, the way Curator's KillSession does: it attaches to the session from
// a connection of its own, straight to the target, and closes it. While it
// does, the proxy's connections are cut as by Cut (the client sees its
// connection reset); the proxy's mode is then as before, or as a Cut,
// Stall or Heal made meanwhile set it. Concurrent calls run one after the
// other (the later one finds the session gone). The server deletes
// the session's ephemeral nodes and drops its watches; when the client
// reconnects, the server tells it the session has expired (lighthouse reports EventExpired and starts a new
// session). Expire returns once the server has closed the session. It
// fails if no session has been seen. ctx bounds the call; without a
// deadline, 10s.
func (p *Proxy) Expire(ctx context.Context) error {
	if ctx == nil {
		return errors.New("zktest: expire: nil context")
	}
	p.expireMu.Lock()
	defer p.expireMu.Unlock()
	p.mu.Lock()
	s := p.session
	if s.id == 0 {
		p.mu.Unlock()
		return errors.New("zktest: expire: no session seen by the proxy")
	}
	// Hold the client off meanwhile: one that reconnected at once would take
	// the session back from the connection closing it, before its
	// closeSession is answered. The mode stays the caller's: a Cut, Stall
	// or Heal meanwhile takes effect when Expire ends.
	p.expiring = true
	links := p.linksLocked()
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.expiring = false
		p.mu.Unlock()
	}()
	for _, l := range links {
		l.close(true)
	}
	if err := expireSession(ctx, p.target, s); err != nil {
		return fmt.Errorf("zktest: expire session %#x: %w", s.id, err)
	}
	return nil
}

// Close closes the listener and every connection and waits until all the
// proxy's goroutines have ended. Later calls return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	for _, l := range links {
		l.close(false)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve proxies one accepted connection until either side ends it.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	m := p.modeLocked()
	p.mu.Unlock()
	if m == cutting {
		c.Close()
		return
	}
	var d net.Dialer
	s, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		c.Close() // as if the server refused
		return
	}
	l := &link{client: c, server: s, done: make(chan struct{})}
	l.loseXid.Store(noXid)
	p.mu.Lock()
	if p.closed || p.modeLocked() == cutting {
		p.mu.Unlock()
		l.close(false)
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()

	up := make(chan struct{})
	go func() {
		defer close(up)
		p.pump(l, true)
	}()
	p.pump(l, false)
	<-up
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// pump copies one direction of l until an error or a fault ends the link.
func (p *Proxy) pump(l *link, toServer bool) {
	src, dst := l.server, l.client
	if toServer {
		src, dst = l.client, l.server
	}
	defer l.close(false)
	var sc frameScanner
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.forward(l, &sc, toServer, dst, buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// forward passes one chunk b on to dst, as the proxy's mode says. It reports
// whether the link stays open.
func (p *Proxy) forward(l *link, sc *frameScanner, toServer bool, dst net.Conn, b []byte) bool {
	cut := -1
	if toServer {
		// Requests after the ConnectRequest start with int32 xid, int32 type.
		sc.scan(b, func(i int, head []byte) bool {
			if i > 0 && len(head) >= 8 && p.takeLose(Op(binary.BigEndian.Uint32(head[4:8]))) {
				l.loseXid.Store(int64(int32(binary.BigEndian.Uint32(head[:4]))))
			}
			return false
		})
	} else {
		// The first reply is the ConnectResponse; later ones start with int32 xid.
		cut = sc.scan(b, func(i int, head []byte) bool {
			if i == 0 {
				if s, ok := parseConnectResponse(head); ok {
					p.mu.Lock()
					p.session = s
					p.mu.Unlock()
				}
				return false
			}
			return len(head) >= 4 && int64(int32(binary.BigEndian.Uint32(head[:4]))) == l.loseXid.Load()
		})
	}
	p.mu.Lock()
	m, delay := p.modeLocked(), p.delay
	p.mu.Unlock()
	switch m {
	case cutting:
		return false
	case stalling:
		l.lossy.Store(true)
		return true
	}
	if delay > 0 && !l.sleep(delay) {
		return false
	}
	if cut >= 0 {
		dst.Write(b[:cut]) // the replies before the lost one
		l.close(true)
		return false
	}
	_, err := dst.Write(b)
	return err == nil
}
