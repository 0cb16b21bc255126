// Package lighthouse gives Go services the ZooKeeper coordination recipes
// that Java services get from Apache Curator: leader election, service
// registration and discovery, and client-side balancing, over one
// [Session] that handles connection loss and session expiry.
//
// A Session owns one ZooKeeper connection. One goroutine drains the client's
// events and tracks the session's state; recipes hear about it from that
// goroutine and rebuild themselves when the session expires. Everything a
// recipe reports arrives on channels that carry the newest state and never
// block the session.
package lighthouse

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/internal/actor"
)

// Defaults for Connect's options.
const (
	DefaultSessionTimeout = 10 * time.Second
	DefaultDialTimeout    = 1 * time.Second
)

// closeBudget bounds Close: it returns within this time however unreachable
// ZooKeeper is.
const closeBudget = 900 * time.Millisecond

// Option configures Connect.
type Option func(*options)

type options struct {
	sessionTimeout time.Duration
	dialTimeout    time.Duration
	log            *slog.Logger
	authSet        bool
	authUser       string
	authPass       string
	acl            []zk.ACL
	parentACL      []zk.ACL
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
}

// WithSessionTimeout sets the session timeout to ask the server for (default
// 10 s). The server may shorten or lengthen it to fit its own bounds
// (minSessionTimeout, maxSessionTimeout). A connection is declared lost
// (Suspended) after two thirds of it without an answer from the server.
func WithSessionTimeout(d time.Duration) Option {
	return func(o *options) { o.sessionTimeout = d }
}

// WithDialTimeout bounds each attempt to open a TCP connection to one server
// (default 1 s).
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) { o.dialTimeout = d }
}

// WithLogger sends the session's and the ZooKeeper client's logs to l
// (default: discarded). Client chatter is logged at Debug level.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithDigestAuth authenticates every connection of the session with
// ZooKeeper's digest scheme as user:password. Unless WithACL says otherwise,
// nodes the library creates can then be read by anyone but changed only by
// this identity.
//
// ZooKeeper accepts any digest credentials: a wrong password is not an
// error at Connect, it is simply another identity, which then gets ErrNoAuth
// on nodes the intended one owns. An empty user or password is
// ErrInvalidOption.
func WithDigestAuth(user, password string) Option {
	return func(o *options) { o.authUser, o.authPass, o.authSet = user, password, true }
}

// WithACL sets the ACL of every node the library creates. The default is
// zk.WorldACL(zk.PermAll), or with WithDigestAuth, all permissions for that
// identity and read for anyone.
func WithACL(acl ...zk.ACL) Option {
	return func(o *options) { o.acl = acl }
}

// WithParentACL sets the ACL of the shared nodes the recipes create above
// their own: an election's path and its ancestors, "/services" and each
// service's node, a barrier's path. Other identities must be able to create
// and delete their own nodes under these, so the default is all
// permissions for anyone, or with WithDigestAuth, all permissions for that
// identity and read, create and delete for anyone. (Nodes made by Create
// with CreateParents get the node's ACL instead.)
func WithParentACL(acl ...zk.ACL) Option {
	return func(o *options) { o.parentACL = acl }
}

// WithDialer opens the session's TCP connections with dial instead of
// net.Dialer, for example to wrap them in TLS.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(o *options) { o.dial = dial }
}

func (o *options) validate() error {
	if o.sessionTimeout <= 0 {
		return fmt.Errorf("%w: session timeout %v is not positive", ErrInvalidOption, o.sessionTimeout)
	}
	if o.dialTimeout <= 0 {
		return fmt.Errorf("%w: dial timeout %v is not positive", ErrInvalidOption, o.dialTimeout)
	}
	if o.authSet && (o.authUser == "" || o.authPass == "") {
		return fmt.Errorf("%w: digest auth needs a user and a password", ErrInvalidOption)
	}
	if strings.Contains(o.authUser, ":") {
		return fmt.Errorf("%w: digest auth user contains ':'", ErrInvalidOption)
	}
	if o.log == nil {
		return fmt.Errorf("%w: nil logger", ErrInvalidOption)
	}
	if o.dial == nil {
		return fmt.Errorf("%w: nil dialer", ErrInvalidOption)
	}
	return nil
}

// Session is a ZooKeeper session that survives connection loss and replaces
// itself after expiry. Its methods are safe for concurrent use.
type Session struct {
	conn      *zk.Conn
	chroot    string // "" or an absolute path without trailing slash
	acl       []zk.ACL
	parentACL []zk.ACL // of the shared nodes recipes create (WithParentACL)
	log       *slog.Logger

	inbox  actor.Mailbox[zk.Event]        // from the client's callback to run
	state  *actor.Broadcast[sessionState] // from run to the recipes
	events *actor.Broadcast[Event]        // to users (Events)
	loop   *actor.Actor

	closing   chan struct{} // closed when Close starts
	stopMu    sync.Mutex
	stops     map[*int]func() // recipes' stop functions, called first by Close
	closeOnce sync.Once
	recipes   actor.Group // goroutines of recipes and watches, waited for by Close

	dialCtx    context.Context // cancelled by Close, so dials in progress end at once
	dialCancel context.CancelFunc
	connsMu    sync.Mutex
	conns      map[*trackedConn]struct{} // open TCP connections, closed by Close if it must
	lastDial   atomic.Pointer[error]
	born       time.Time       // monotonic origin for lastHeard
	lastHeard  atomic.Int64    // ns since born when the server last sent bytes
	granted    atomic.Int64    // session timeout the server granted, in ns
	zkEvents   <-chan zk.Event // closed when the client's goroutines are done

	// claims holds the paths of nodes that this Session's recipes own
	// (Register, Barrier), so a second claim of one in this process fails at
	// once: on the server it would look like the first one's node.
	claims sync.Map // path -> struct{}

	stats struct {
		predWatches atomic.Int64 // election watches fired (for tests and benchmarks)
	}
}

// sessionState is what the session's goroutine tells recipes. Recipes get
// only the newest one; Gen tells them whether anything happened in between.
type sessionState struct {
	Gen       uint64 // increases with every change
	Connected bool   // a session is established and the connection is up
	ID        int64  // the current session (kept while Suspended, 0 once expired)
	Closed    bool
}

// Connect opens a session to the ZooKeeper ensemble in connectString
// ("host:port,host:port/optional/chroot"; the port defaults to 2181) and
// returns once the session is established. If ctx ends first, Connect gives
// up and its error says why, with the last error from dialing.
//
// With a chroot every path the Session takes or returns is relative to it;
// the chroot node must exist, as with ZooKeeper's own clients.
func Connect(ctx context.Context, connectString string, opts ...Option) (*Session, error) {
	o := options{
		sessionTimeout: DefaultSessionTimeout,
		dialTimeout:    DefaultDialTimeout,
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	d := &net.Dialer{}
	o.dial = d.DialContext
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, opError("connect", connectString, err)
	}
	hosts, chroot, err := parseConnectString(connectString)
	if err != nil {
		return nil, opError("connect", connectString, err)
	}
	s := &Session{
		chroot:  chroot,
		acl:     o.acl,
		log:     o.log,
		state:   actor.NewBroadcast[sessionState](1, true, nil),
		events:  actor.NewBroadcast(eventBuffer, false, markDropped),
		closing: make(chan struct{}),
		conns:   make(map[*trackedConn]struct{}),
		born:    time.Now(),
	}
	s.granted.Store(int64(o.sessionTimeout))
	if s.acl == nil {
		s.acl = zk.WorldACL(zk.PermAll)
		if o.authUser != "" {
			s.acl = append(zk.DigestACL(zk.PermAll, o.authUser, o.authPass), zk.WorldACL(zk.PermRead)...)
		}
	}
	s.parentACL = o.parentACL
	if s.parentACL == nil {
		s.parentACL = zk.WorldACL(zk.PermAll)
		if o.authUser != "" {
			s.parentACL = append(zk.DigestACL(zk.PermAll, o.authUser, o.authPass),
				zk.WorldACL(zk.PermRead|zk.PermCreate|zk.PermDelete)...)
		}
	}
	s.dialCtx, s.dialCancel = context.WithCancel(context.Background())

	// Subscribe before anything can happen, so Connect sees the first state.
	states, unsubscribe := s.state.Subscribe()
	defer unsubscribe()

	conn, zkEvents, err := zk.Connect(hosts, o.sessionTimeout,
		zk.WithDialer(s.dialer(o.dial)),
		zk.WithLogger(zkLogger{o.log}),
		zk.WithLogInfo(false),
		// The callback runs on the client's goroutines and must not call the
		// Conn or block: hand the event to our loop and return.
		zk.WithEventCallback(func(ev zk.Event) { s.inbox.Put(ev) }),
	)
	if err != nil {
		s.dialCancel()
		return nil, opError("connect", connectString, fmt.Errorf("%w: %v", ErrInvalidConnectString, err))
	}
	s.conn, s.zkEvents = conn, zkEvents
	s.loop = actor.Start(context.Background(), s.run)

	if err := s.awaitSession(ctx, states, o); err != nil {
		s.Close()
		return nil, opError("connect", connectString, err)
	}
	if err := s.checkChroot(ctx); err != nil {
		s.Close()
		return nil, opError("connect", connectString, err)
	}
	return s, nil
}

// checkChroot fails if the chroot node does not exist. ZooKeeper's own
// clients accept a missing chroot and then fail every call; failing here
// says what is wrong where it can be fixed.
func (s *Session) checkChroot(ctx context.Context) error {
	if s.chroot == "" {
		return nil
	}
	ok, _, err := s.Exists(ctx, "/")
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: chroot %s does not exist", ErrNoNode, clip(s.chroot))
	}
	return nil
}

// awaitSession waits for the first session and authenticates it.
func (s *Session) awaitSession(ctx context.Context, states <-chan sessionState, o options) error {
	for {
		select {
		case st := <-states:
			if st.Closed {
				return ErrAuthFailed // the loop closes early only when auth fails
			}
			if !st.Connected {
				continue
			}
			if o.authUser != "" {
				// The client re-sends these credentials on every reconnect.
				if err := s.conn.AddAuth("digest", []byte(o.authUser+":"+o.authPass)); err != nil {
					return fmt.Errorf("%w: %w", ErrAuthFailed, err)
				}
			}
			return nil
		case <-ctx.Done():
			if last := s.lastDial.Load(); last != nil {
				return fmt.Errorf("%w (last dial error: %w)", ctx.Err(), *last)
			}
			return ctx.Err()
		}
	}
}

// dialer wraps dial so Close can abort dials and close connections.
func (s *Session) dialer(dial func(context.Context, string, string) (net.Conn, error)) zk.Dialer {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(s.dialCtx, timeout)
		defer cancel()
		c, err := dial(ctx, network, addr)
		if err != nil {
			s.lastDial.Store(&err)
			return nil, err
		}
		tc := &trackedConn{Conn: c, s: s}
		s.connsMu.Lock()
		defer s.connsMu.Unlock()
		if s.conns == nil { // closed meanwhile
			c.Close()
			return nil, net.ErrClosed
		}
		s.conns[tc] = struct{}{}
		return tc, nil
	}
}

// trackedConn is one TCP connection of the session. It records when the
// server last sent anything (see Session.heardWithin) and reads the session
// timeout the server granted from the first bytes of the handshake.
type trackedConn struct {
	net.Conn
	s         *Session
	once      sync.Once
	handshake []byte        // the first connectHead bytes read, until complete
	lastRead  time.Duration // since s.born: when a Read last returned bytes
	distrust  time.Duration // since s.born: reads before this prove nothing
}

// connectHead is the start of ZooKeeper's ConnectResponse: frame length,
// protocol version, negotiated session timeout in ms (all int32).
const connectHead = 12

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		// On a live connection the server answers a ping every third of the
		// session timeout. A longer silence means the connection stalled or
		// this process was paused: bytes read now may have waited in the
		// socket since before the server gave up on the session, so they are
		// no proof that it lives until a quiet spell has passed.
		now := time.Since(c.s.born)
		quiet := c.s.SessionTimeout() * 2 / 3
		if c.lastRead > 0 && now-c.lastRead > quiet {
			c.distrust = now + quiet
		}
		c.lastRead = now
		if now >= c.distrust {
			c.s.lastHeard.Store(now.Nanoseconds())
		}
		if len(c.handshake) < connectHead {
			c.handshake = append(c.handshake, b[:min(n, connectHead-len(c.handshake))]...)
			if len(c.handshake) == connectHead {
				ms := int32(binary.BigEndian.Uint32(c.handshake[8:12]))
				if ms > 0 {
					c.s.granted.Store(int64(ms) * int64(time.Millisecond))
				}
			}
		}
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.connsMu.Lock()
		delete(c.s.conns, c)
		c.s.connsMu.Unlock()
	})
	return c.Conn.Close()
}

// run is the session's goroutine: it owns the session state, turns the
// client's events into session events and tells the recipes.
func (s *Session) run(ctx context.Context) error {
	var st sessionState
	// The event goes out before the state: whoever learns the new state
	// (Connect returning, a recipe) finds the event already emitted, and a
	// subscription made after Connect sees only later events.
	publish := func(typ EventType, err error) {
		s.emit(Event{Type: typ, SessionID: st.ID, Err: err})
		st.Gen++
		s.state.Publish(st)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.inbox.Ready():
		}
		for _, ev := range s.inbox.Take() {
			if ev.Type != zk.EventSession || s.isClosing() {
				continue // closing is not a connection loss: say nothing
			}
			switch ev.State {
			case zk.StateHasSession:
				id := s.conn.SessionID()
				switch {
				case st.Connected && id == st.ID:
					continue
				case st.ID == id:
					st.Connected = true
					publish(EventReconnected, nil)
				default:
					if st.ID != 0 { // missed the expiry; announce it first
						st.ID, st.Connected = 0, false
						publish(EventExpired, zk.ErrSessionExpired)
					}
					st.ID, st.Connected = id, true
					publish(EventConnected, nil)
				}
			case zk.StateDisconnected:
				if st.Connected {
					st.Connected = false
					publish(EventSuspended, nil)
				}
			case zk.StateExpired:
				if st.ID != 0 {
					s.emit(Event{Type: EventExpired, SessionID: st.ID, Err: ErrSessionExpired})
					st.ID, st.Connected = 0, false
					st.Gen++
					s.state.Publish(st)
				}
			case zk.StateAuthFailed:
				s.emit(Event{Type: EventError, SessionID: st.ID, Err: ErrAuthFailed})
				if st.ID == 0 {
					st.Closed = true
					s.state.Publish(st)
				}
			}
		}
	}
}

func (s *Session) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// SessionTimeout returns the session timeout the server granted.
func (s *Session) SessionTimeout() time.Duration { return time.Duration(s.granted.Load()) }

// heardWithin reports whether the server has sent anything within d. The
// client pings every third of the session timeout, so on a live connection
// the gap stays well under two thirds of it.
func (s *Session) heardWithin(d time.Duration) bool {
	return time.Since(s.born)-time.Duration(s.lastHeard.Load()) < d
}

// SessionID returns the current ZooKeeper session id, 0 while there is none
// and after Close.
func (s *Session) SessionID() int64 {
	if s.isClosing() {
		return 0
	}
	return s.conn.SessionID()
}

// Done is closed when Close is called.
func (s *Session) Done() <-chan struct{} { return s.closing }

// Close ends the session: it closes the ZooKeeper session (so the server
// deletes its ephemeral nodes at once and peers take over without waiting
// for the session timeout), stops every recipe and goroutine the Session
// started, and closes every channel it returned. It returns within about a
// second even when ZooKeeper is unreachable. It is idempotent and always
// returns nil.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		deadline := time.Now().Add(closeBudget)
		close(s.closing)
		s.dialCancel()
		// Stop the recipes before the session goes: a leader must know it no
		// longer leads before its node vanishes and a peer takes over.
		s.stopMu.Lock()
		stops := s.stops
		s.stops = nil
		s.stopMu.Unlock()
		for _, stop := range stops {
			stop()
		}

		closed := make(chan struct{})
		go func() {
			defer close(closed)
			s.conn.Close() // sends closeSession if connected; bounded by the client to 1 s
		}()
		select {
		case <-closed:
		case <-time.After(time.Until(deadline) / 2):
			// The server is not answering. Cut the connections so the client
			// gives up on its close request and its goroutines end.
			s.closeConns()
			select {
			case <-closed:
			case <-time.After(time.Until(deadline)):
			}
		}
		s.closeConns()
		drain(s.zkEvents, time.Until(deadline))

		id := s.conn.SessionID()
		s.state.Publish(sessionState{Closed: true, ID: id})
		s.loop.Stop()
		s.recipes.Close(max(time.Until(deadline), 0))
		s.emit(Event{Type: EventClosed, SessionID: id})
		s.state.Close()
		s.events.Close()
	})
	return nil
}

// startRecipe runs run on a goroutine of the session and waits for the
// outcome of its first attempt, which run sends on first. It returns that
// error, ctx's error if ctx ends first, or ErrClosed if the session closes
// first (the goroutine may then end without a first result). On an error
// the caller stops what it started; the goroutine stays the session's.
func (s *Session) startRecipe(ctx context.Context, run func(first chan<- error)) error {
	first := make(chan error, 1)
	if !s.recipes.Go(func() { run(first) }) {
		return ErrClosed
	}
	select {
	case err := <-first:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
}

// onClose registers stop to be called at the start of Close and returns a
// function that unregisters it. If Close has started, it calls stop at once.
func (s *Session) onClose(stop func()) (unregister func()) {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.isClosing() {
		stop()
		return func() {}
	}
	if s.stops == nil {
		s.stops = make(map[*int]func())
	}
	key := new(int)
	s.stops[key] = stop
	return func() {
		s.stopMu.Lock()
		defer s.stopMu.Unlock()
		delete(s.stops, key)
	}
}

func (s *Session) closeConns() {
	s.connsMu.Lock()
	conns := s.conns
	s.conns = nil
	s.connsMu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// drain reads ch until it is closed, at most d.
func drain[T any](ch <-chan T, d time.Duration) {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// zkLogger sends the ZooKeeper client's logs to slog at Debug level.
type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	if z.l.Enabled(context.Background(), slog.LevelDebug) {
		z.l.Debug("zk: " + fmt.Sprintf(format, args...))
	}
}

func levelOf(e Event) slog.Level {
	switch e.Type {
	case EventSuspended, EventExpired, EventError:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
