// Package zkclient is lighthouse's ZooKeeper client, written from
// ZooKeeper's protocol specification (zookeeper.jute, ZooDefs,
// KeeperException, ClientCnxn).
//
// One goroutine, the owner, holds the session and all its state; a reader
// goroutine per connection reads frames. The owner sends a request to the
// socket itself when the socket takes it at once; a writer goroutine writes
// what it does not, so the owner never waits on the server.
// Calls encode their request, hand it to the owner and wait for their reply
// or their ctx; no goroutine is started per call.
//
// Session events come in this order: StateConnected once Connect succeeds;
// on a lost connection StateDisconnected, then StateConnected with the same
// session id; if the session turns out to have expired, StateDisconnected,
// StateExpired (every watch gets EventLost with ErrSessionExpired, calls
// waiting for a connection fail with ErrSessionExpired), then
// StateConnected with a new id.
// StateClosed is the last event. Calls in flight when a connection drops
// fail with ErrConnectionLoss (they may or may not have been applied);
// calls made while disconnected wait for the next connection or their ctx.
//
// Persistent watches (AddWatch) are re-registered on reconnect, but the
// server reports no events for changes made while disconnected (one-shot
// watches do get them, via setWatches).
package zkclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures Connect. Servers is required; the rest has defaults.
type Config struct {
	// Servers are "host:port" addresses, tried in a random order, round
	// robin. Names are resolved on every attempt.
	Servers []string
	// Chroot ("" or a path such as "/app") is prefixed to every path.
	Chroot string
	// SessionTimeout is asked of the server, which may change it; default
	// 10s. The protocol carries milliseconds in 32 bits: a longer timeout
	// is asked as MaxSessionTimeout.
	SessionTimeout time.Duration
	// ConnectTimeout bounds one attempt to reach a server: dial, TLS and
	// ZooKeeper handshake. Default: a third of the session timeout (the one
	// the server granted, once it has granted one; before that, at least
	// minConnectTimeout), so that an attempt on a server that accepts but
	// does not answer (one still starting) leaves time to retry before the
	// session expires.
	ConnectTimeout time.Duration
	// Dial dials a server; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, if not nil, makes every connection TLS. ServerName defaults to
	// the host being dialled.
	TLS *tls.Config
	// Auth credentials are sent on every connection before any request.
	Auth []Auth
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// OnEvent receives session state changes, in order. It is called on the
	// client's owner goroutine: it must not block and must not call the
	// Client.
	OnEvent func(Event)
	// MaxPacket is the largest request frame the server accepts (its
	// jute.maxbuffer); larger requests fail before they are sent with an
	// error wrapping ErrRequestTooLarge. Default 1048575.
	MaxPacket int
	// Hooks report attempts, calls and watch notifications (see Hooks).
	Hooks Hooks
}

// MaxSessionTimeout is the longest session timeout the protocol can ask for
// (2^31-1 ms, about 24.8 days); servers grant far less (by default at most
// 20 ticks, 40 s).
const MaxSessionTimeout = math.MaxInt32 * time.Millisecond

// Client is a ZooKeeper client holding one session at a time. Its methods
// are safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	chroot string

	reqs     chan *request
	inReqs   atomic.Int64 // requests on their way through reqs
	o        *owner
	closeReq chan context.Context
	closing  sync.Once
	// connectDefault: ConnectTimeout was not set, so attempts follow the
	// granted session timeout.
	connectDefault bool
	done           chan struct{} // closed when the owner has ended everything
	first          chan struct{} // closed when the first session is established
	endErr         error         // why the owner ended; read after done

	sessionID atomic.Int64
	timeout   atomic.Int64
	state     atomic.Int32
	epoch     time.Time
	heard     atomic.Int64 // nanoseconds since epoch of the last frame

	pool sync.Pool // *request
}

// request is one call's request and the way back to it. The caller encodes
// buf (length, xid placeholder, opcode, body); the owner sets the xid.
type request struct {
	ctx    context.Context
	op     int32
	xid    int32
	buf    []byte
	reply  chan reply // buffer 1; nil for the owner's own requests
	watch  watchReg   // one-shot watch to register on success
	add    *Watcher   // persistent watch to register on success
	remove *Watcher   // persistent watch to drop before sending
	nops   int        // multi: number of ops

	// state settles, once, whether what the reply registers (a watch) is
	// kept: the owner sets it to answered before registering, a caller
	// whose ctx ended to abandoned before leaving; whoever comes second
	// goes along.
	state atomic.Int32
	// Under the owner's mu: the path whose watch registry waits for this
	// reply, and how (see owner.hold).
	held     string
	heldKind holdKind
}

// Values of request.state.
const (
	reqPending   int32 = iota
	reqAnswered        // the owner registers what the reply brings; the caller takes the reply
	reqAbandoned       // the caller has left; the owner registers nothing
)

// reply is what a caller gets back: the server's zxid, the error (server code
// or client-side), and the body after the reply header.
type reply struct {
	zxid int64
	err  error
	body []byte
}

// Connect starts a client and returns once it has its first session (and
// every Auth was accepted). If ctx ends first, everything is closed and the
// error names each server's last failure.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("zk: no servers")
	}
	for _, s := range cfg.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("zk: server %s: %v", quote(s), err)
		}
	}
	if cfg.Chroot == "/" {
		cfg.Chroot = ""
	}
	if cfg.Chroot != "" {
		if err := validatePath(cfg.Chroot, false); err != nil {
			return nil, fmt.Errorf("zk: chroot: %w", err)
		}
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	cfg.SessionTimeout = min(cfg.SessionTimeout, MaxSessionTimeout)
	connectDefault := cfg.ConnectTimeout <= 0
	if connectDefault {
		// At least minConnectTimeout: until a server grants a timeout, a
		// tiny one asked for (which the server would lengthen) must not
		// leave an attempt too little time to be answered at all.
		cfg.ConnectTimeout = max(cfg.SessionTimeout/3, minConnectTimeout)
	}
	if cfg.MaxPacket <= 0 {
		cfg.MaxPacket = defaultMaxPacket
	}
	c := &Client{
		cfg:      cfg,
		log:      cfg.Logger,
		chroot:   cfg.Chroot,
		reqs:     make(chan *request, 128),
		closeReq: make(chan context.Context),
		done:     make(chan struct{}),
		first:    make(chan struct{}),
		epoch:    time.Now(),

		connectDefault: connectDefault,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.state.Store(int32(StateDisconnected))
	o := newOwner(c)
	c.o = o
	go o.run()
	select {
	case <-c.first:
		return c, nil
	case <-c.done:
		return nil, c.endErr
	case <-ctx.Done():
		c.Close(ctx) // ctx has ended: nothing is sent, all is torn down
		return nil, c.endErr
	}
}

// minConnectTimeout is the least default ConnectTimeout before a session
// is granted.
const minConnectTimeout = time.Second

// Close ends the session (closeSession, if connected, waiting for its reply
// until ctx ends), closes the connection and ends every goroutine of the
// client before it returns. Waiting calls fail with ErrClosed and watches
// get EventLost with ErrClosed. Without a deadline on ctx, a stalled server
// holds Close for at most two thirds of the session timeout. Close is
// idempotent; it returns nil.
func (c *Client) Close(ctx context.Context) error {
	c.closing.Do(func() {
		select {
		case c.closeReq <- ctx:
		case <-c.done:
		}
	})
	<-c.done
	return nil
}

// SessionID returns the current session's id; 0 when there is none.
func (c *Client) SessionID() int64 { return c.sessionID.Load() }

// SessionTimeout returns the timeout the server granted the session.
func (c *Client) SessionTimeout() time.Duration { return time.Duration(c.timeout.Load()) }

// State returns the session's current state.
func (c *Client) State() State { return State(c.state.Load()) }

// LastHeard returns when the last frame arrived from a server (zero before
// any). It carries a monotonic clock reading.
func (c *Client) LastHeard() time.Time {
	ns := c.heard.Load()
	if ns == 0 {
		return time.Time{}
	}
	return c.epoch.Add(time.Duration(ns))
}

// touch records that a frame arrived.
func (c *Client) touch() { c.heard.Store(int64(time.Since(c.epoch))) }

// newRequest returns a request with its frame header written.
func (c *Client) newRequest(op int32) *request {
	r, _ := c.pool.Get().(*request)
	if r == nil {
		r = &request{reply: make(chan reply, 1)}
	}
	r.op = op
	r.buf = append(r.buf[:0], 0, 0, 0, 0, 0, 0, 0, 0, byte(op>>24), byte(op>>16), byte(op>>8), byte(op))
	return r
}

// release returns r to the pool once the owner is done with it.
func (c *Client) release(r *request) {
	if cap(r.buf) > 64<<10 {
		r.buf = nil
	}
	r.ctx, r.watch, r.add, r.remove, r.nops = nil, watchReg{}, nil, nil, 0
	r.state.Store(reqPending)
	r.held, r.heldKind = "", 0
	c.pool.Put(r)
}

type failFastKey struct{}

// FailFast returns ctx marked so that a call made with it fails at once
// with ErrConnectionLoss while the client has no connection, instead of
// waiting for one. Once sent, the call fails when the connection is lost
// (two thirds of the session timeout without a byte at most), so it needs
// no deadline of its own to be bounded.
func FailFast(ctx context.Context) context.Context {
	return context.WithValue(ctx, failFastKey{}, true)
}

// do sends r to the owner and waits for its reply or ctx. A reply that comes
// after ctx ended is dropped.
func (c *Client) do(ctx context.Context, r *request) (reply, error) {
	if n := len(r.buf) - 4; n > c.cfg.MaxPacket {
		return reply{}, fmt.Errorf("%w: %d bytes, limit %d", ErrRequestTooLarge, n, c.cfg.MaxPacket)
	}
	if err := ctx.Err(); err != nil && r.remove == nil { // a Remove always reaches the owner: it cleans up
		return reply{}, err
	}
	putLength(r.buf)
	r.ctx = ctx
	if !c.o.submitDirect(r) {
		c.inReqs.Add(1)
		ctxDone := ctx.Done()
		if r.remove != nil {
			ctxDone = nil // the owner drains reqs: a short wait
		}
		select {
		case c.reqs <- r:
		case <-ctxDone:
			c.inReqs.Add(-1)
			return reply{}, ctx.Err()
		case <-c.done:
			c.inReqs.Add(-1)
			return reply{}, ErrClosed
		}
	}
	select {
	case rep := <-r.reply:
		c.release(r)
		return rep, nil
	case <-ctx.Done():
		// The reply and its registrations go together: if the owner has
		// answered, the call succeeds (a watch it set is registered; the
		// reply follows at once); if not, the owner will register nothing
		// for it. (No lock: a call made on the owner's goroutine, from a
		// callback, must still end with its ctx.)
		if r.state.CompareAndSwap(reqPending, reqAbandoned) {
			return reply{}, ctx.Err()
		}
		rep := <-r.reply
		c.release(r)
		return rep, nil
	case <-c.done:
		select {
		case rep := <-r.reply:
			return rep, nil
		default:
			return reply{}, ErrClosed
		}
	}
}

// call is do for requests whose server error is the call's error.
func (c *Client) call(ctx context.Context, r *request) ([]byte, error) {
	rep, err := c.timed(ctx, r)
	if err != nil {
		return nil, err
	}
	return rep.body, rep.err
}

// noSessionError is Connect's error when no session was made: the last
// failure of each server.
type noSessionError struct {
	reasons string
	cause   error
}

func (e *noSessionError) Error() string {
	if errors.Is(e.cause, context.Canceled) || errors.Is(e.cause, context.DeadlineExceeded) {
		return "zk: no session: " + e.reasons + " (" + e.cause.Error() + ")"
	}
	return "zk: no session: " + e.reasons
}
func (e *noSessionError) Unwrap() error { return e.cause }
