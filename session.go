package lighthouse

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/actor"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// closeBudget bounds Close: it returns within this time however unreachable
// ZooKeeper is.
const closeBudget = 900 * time.Millisecond

// Session is a ZooKeeper session that survives connection loss and replaces
// itself after expiry. Its methods are safe for concurrent use. A nil or
// zero Session, not made by Connect, holds no session: its methods fail
// with an error matching ErrClosed, as a closed Session's do, and so do
// those of a zero Balancer, Barrier or Registration.
type Session struct {
	zk        client         // a *zkclient.Client, or a fake in recipe tests
	chroot    string         // "" or an absolute path without trailing slash
	acl       []zkclient.ACL // of the nodes the library creates (WithACL)
	parentACL []zkclient.ACL // of the shared nodes recipes create (WithParentACL)
	log       *slog.Logger

	inbox  actor.Mailbox[zkclient.Event]  // from the client's owner to run
	state  *actor.Broadcast[sessionState] // from run to the recipes
	events *actor.Broadcast[Event]        // to users (Events)
	loop   *actor.Actor

	closing   chan struct{} // closed when Close starts
	ended     chan struct{} // closed when Close starts or the client ends by itself
	endOnce   sync.Once
	stopMu    sync.Mutex
	stops     map[*int]closer // the recipes', called first by Close
	closeOnce sync.Once
	recipes   actor.Group // goroutines of recipes and watches, waited for by Close

	live       liveness
	serverAddr atomic.Pointer[string] // the server of the last connection, for tests

	// claims holds the paths of nodes that this Session's recipes own
	// (Register, Barrier), so a second claim of one in this process fails at
	// once: on the server it would look like the first one's node.
	claims sync.Map // path -> *claim (Register) or struct{} (Barrier)

	// memberReads counts the ZooKeeper reads made by this Session's Members
	// and Balancers, for tests and benchmarks.
	memberReads atomic.Int64

	metrics *metrics

	stats struct {
		// Of elections, for tests and benchmarks: watches fired on the
		// predecessor and on the grand-predecessor, children reads, and
		// grants decided by a children read rather than by a watch alone.
		predWatches atomic.Int64
		gpWatches   atomic.Int64
		childReads  atomic.Int64
		readGrants  atomic.Int64
	}
}

// sessionState is what the session's goroutine tells recipes. Recipes get
// only the newest one.
type sessionState struct {
	Gen       uint64 // counts changes: a recipe that sees only the newest state learns that others came between
	Connected bool   // a session is established and the connection is up
	ID        int64  // the current session (kept while Suspended, 0 once expired)
	Closed    bool
}

// Connect opens a session to the ZooKeeper ensemble in connectString
// ("host:port,host:port/optional/chroot"; the port defaults to 2181) and
// returns once the session is established.
//
// Servers are tried in a random order; a host name is resolved again on
// every attempt, and one that does not resolve, refuses, or accepts but does
// not answer within the dial timeout (WithDialTimeout) is passed over for the
// next. If ctx ends before any server gives a session, Connect fails, naming
// each server's last failure.
//
// With a chroot every path the Session takes or returns is relative to it;
// the chroot node must exist (ErrNoNode, naming it, if it does not).
func Connect(ctx context.Context, connectString string, opts ...Option) (*Session, error) {
	if ctx == nil {
		return nil, opError("connect", connectString, errNilCtx)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, opError("connect", connectString, err)
	}
	hosts, chroot, err := parseConnectString(connectString)
	if err != nil {
		return nil, opError("connect", connectString, err)
	}
	s := newSession(o, chroot)

	// Subscribe before anything can happen, so Connect sees the first state.
	states, unsubscribe := s.state.Subscribe()
	defer unsubscribe()
	s.loop = actor.Start(context.Background(), s.run)

	cfg := zkclient.Config{
		Servers:        hosts,
		Chroot:         chroot,
		SessionTimeout: o.sessionTimeout,
		ConnectTimeout: o.dialTimeout,
		Dial:           s.live.dialer(o.dial),
		TLS:            o.tls,
		Logger:         o.log,
		// Called on the client's owner goroutine: hand the event to our
		// loop and return.
		OnEvent: func(ev zkclient.Event) { s.inbox.Put(ev) },
		Hooks:   s.metrics.hooks(),
	}
	if o.authSet {
		cfg.Auth = []zkclient.Auth{{Scheme: "digest", Payload: []byte(o.authUser + ":" + o.authPass)}}
	}
	var c *zkclient.Client
	if c, err = zkclient.Connect(ctx, cfg); err == nil {
		s.zk = c
		err = awaitConnected(ctx, states)
	}
	if err == nil {
		err = s.checkChroot(ctx)
	}
	if err != nil {
		s.Close()
		return nil, opError("connect", connectString, mapErr(err))
	}
	return s, nil
}

// newSession makes a Session without a client: Connect gives it one,
// recipe tests a fake.
func newSession(o options, chroot string) *Session {
	s := &Session{
		chroot:  chroot,
		log:     o.log,
		state:   actor.NewBroadcast[sessionState](1, true, nil),
		events:  actor.NewBroadcast(eventBuffer, false, markDropped),
		closing: make(chan struct{}),
		ended:   make(chan struct{}),
		metrics: newMetrics(o.meterProvider, o.log),
	}
	s.acl, s.parentACL = o.nodeACLs()
	s.live.init(o.sessionTimeout)
	return s
}

// awaitConnected waits until run has published the first session, so that
// its event is out before Connect returns.
func awaitConnected(ctx context.Context, states <-chan sessionState) error {
	for {
		select {
		case st := <-states:
			if st.Connected {
				return nil
			}
			if st.Closed {
				return ErrClosed
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
			if s.isClosing() {
				continue // closing is not a connection loss: say nothing
			}
			switch ev.State {
			case zkclient.StateConnected:
				s.serverAddr.Store(&ev.Server) // before the event says so
				switch {
				case st.Connected && ev.SessionID == st.ID:
				case ev.SessionID == st.ID:
					st.Connected = true
					publish(EventReconnected, nil)
				default:
					if st.ID != 0 { // missed the expiry; announce it first
						id := st.ID
						st.ID, st.Connected = 0, false
						s.emit(Event{Type: EventExpired, SessionID: id, Err: sessionErr(ErrSessionExpired)})
						st.Gen++
						s.state.Publish(st)
					}
					st.ID, st.Connected = ev.SessionID, true
					s.live.granted.Store(int64(ev.Timeout))
					publish(EventConnected, nil)
				}
			case zkclient.StateDisconnected:
				if st.Connected {
					st.Connected = false
					publish(EventSuspended, nil)
				}
			case zkclient.StateExpired:
				if st.ID != 0 {
					id := st.ID
					st.ID, st.Connected = 0, false
					s.emit(Event{Type: EventExpired, SessionID: id, Err: sessionErr(ErrSessionExpired)})
					st.Gen++
					s.state.Publish(st)
				}
			case zkclient.StateAuthFailed:
				s.emit(Event{Type: EventError, SessionID: st.ID, Err: sessionErr(ErrAuthFailed)})
			case zkclient.StateClosed:
				// The client ended by itself (its credentials were refused):
				// the session cannot go on.
				st.Connected, st.Closed = false, true
				st.Gen++
				s.state.Publish(st)
				s.endOnce.Do(func() { close(s.ended) })
			}
		}
	}
}

// server returns the address of the server the session last connected to.
func (s *Session) server() string {
	if p := s.serverAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// errNotMade is the error of the methods of a nil or zero Session, which
// holds no session, and of handles that no Session made: errors.Is(err,
// ErrClosed) holds, as for a Session that was closed.
var errNotMade = fmt.Errorf("%w: not made by this package (a zero or nil value)", ErrClosed)

// sessionErr is err as an event of the session says it, with the prefix.
func sessionErr(err error) error { return &OpError{Op: "session", Err: err} }

// errNilCtx: a nil ctx, which Go's context rules forbid. Calls fail with
// it rather than panic, as a recipe's goroutine would, where no caller
// could recover.
var errNilCtx = fmt.Errorf("%w: nil context", ErrInvalidOption)

// usable reports why s cannot take a call with ctx, nil if it can: a nil
// ctx, or a Session not made by Connect.
func (s *Session) usable(ctx context.Context) error {
	if ctx == nil {
		return errNilCtx
	}
	if !s.made() {
		return errNotMade
	}
	return nil
}

// made reports whether s came from Connect (or a recipe test): a nil or
// zero Session holds no session, and its methods fail with errNotMade.
func (s *Session) made() bool { return s != nil && s.closing != nil }

// isClosing reports whether Close has begun. From then on recipes create
// no nodes and grant no leadership.
func (s *Session) isClosing() bool {
	if !s.made() {
		return true
	}
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// SessionTimeout returns the session timeout the server granted.
func (s *Session) SessionTimeout() time.Duration {
	if !s.made() {
		return 0
	}
	return time.Duration(s.live.granted.Load())
}

// heardWithin reports whether the server has sent anything within d (see
// liveness).
func (s *Session) heardWithin(d time.Duration) bool { return s.live.heardWithin(d) }

// SessionID returns the current ZooKeeper session id, 0 while there is none
// and after Close.
func (s *Session) SessionID() int64 {
	if s.isClosing() {
		return 0
	}
	return s.zk.SessionID()
}

// Done is closed when the Session ends: when Close is called, or when a
// server refused its credentials on a reconnect, after which it cannot go on
// (EventError with ErrAuthFailed says so).
func (s *Session) Done() <-chan struct{} {
	if !s.made() {
		return doneCtx.Done()
	}
	return s.ended
}

// WhoAmI returns the identities the server holds for this session, as
// "scheme:user" ("ip:127.0.0.1", "digest:orders"). It needs ZooKeeper 3.7 or
// newer (ErrUnimplemented before).
func (s *Session) WhoAmI(ctx context.Context) ([]string, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opError("whoami", "", err)
	}
	infos, err := s.zk.WhoAmI(ctx)
	if err != nil {
		return nil, s.opErr("whoami", "", err)
	}
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.AuthScheme + ":" + in.User
	}
	return out, nil
}

// Close ends the session: it ends every leadership (their Contexts are
// done), deletes the nodes its recipes hold (so that peers take over as
// fast as after a resignation), stops every recipe and goroutine the
// Session started, closes the ZooKeeper session (the server deletes its
// other ephemeral nodes at once, without waiting for the session timeout),
// and closes every channel it returned. It returns within about a second
// even when ZooKeeper is unreachable. It is idempotent and always returns
// nil.
func (s *Session) Close() error {
	if !s.made() {
		return nil
	}
	s.closeOnce.Do(func() {
		deadline := time.Now().Add(closeBudget)
		close(s.closing)
		s.endOnce.Do(func() { close(s.ended) })
		// A leader must know it no longer leads before its node vanishes
		// and a peer takes over: end the leaderships, delete the nodes the
		// recipes hold, then stop the recipes, then the session.
		s.stopMu.Lock()
		stops := s.stops
		s.stops = nil
		s.stopMu.Unlock()
		s.deleteNodes(s.endHeld(stops), deadline)
		for _, c := range stops {
			c.stop()
		}
		var id int64
		if s.zk != nil {
			id = s.zk.SessionID()
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			s.zk.Close(ctx) // closeSession, bounded by ctx; every call waiting fails
			cancel()
		}
		s.state.Publish(sessionState{Closed: true, ID: id})
		s.loop.Stop()
		s.recipes.Close(max(time.Until(deadline), 0))
		s.emit(Event{Type: EventClosed, SessionID: id})
		s.state.Close()
		s.events.Close()
		s.metrics.close()
	})
	return nil
}

func levelOf(e Event) slog.Level {
	switch e.Type {
	case EventSuspended, EventExpired, EventError:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
