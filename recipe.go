package lighthouse

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// The recipe runtime. Every recipe's goroutine runs one loop: the loop owns
// the subscription to session states, decides when the recipe must look at
// ZooKeeper again (a look is due and the session is connected), retries a
// failed look after a backoff, waits on the watches the recipe set, and
// reports the outcome of the first look to whoever started the recipe. A
// recipe supplies what it does when it looks, and says which events make a
// look due; nothing else.
//
// Recovery is prompt: a reconnect, a new session or a fired watch ends any
// retry wait at once.

// loop is one recipe's loop. Its fields are the recipe's hooks; all but look
// are optional.
type loop struct {
	s    *Session
	op   string // the recipe's operation and path, for its errors
	path string

	// look brings the recipe up to date with ZooKeeper and sets the watches
	// that say when to look again (watch). An error wrapping errWatching
	// means: not done, but a watch will tell. Another error makes the loop
	// look again after a backoff; a lasting one (see fatal) ends the loop
	// before the first success.
	look func() error
	// state takes a new session state and reports whether a look is due. It
	// may end the loop by returning an error. Default: a look is due on a
	// new session or a reconnect.
	state func(prev, next sessionState) (due bool, err error)
	// fired takes the firing of watch i and reports whether a look is due.
	// Default: it is.
	fired func(i int, ev zkclient.WatchEvent) bool
	// poke and alarm, if not nil, give the recipe's own channels (a
	// mailbox's Ready, a timer's C); poked and alarms handle them and report
	// whether a look is due.
	poke   func() <-chan struct{}
	alarm  func() <-chan time.Time
	poked  func() bool
	alarms func() bool
	// fatal reports whether a look's error ends the loop. Default: a
	// lasting error before the first success.
	fatal func(err error, started bool) bool
	// end is called once when the loop ends, with why: ctx's error,
	// ErrClosed, or the error of a state hook or a fatal look. It is not
	// called when look sets done.
	end func(why error)

	watch [3]<-chan zkclient.WatchEvent // set by look; cleared when they fire
	// events, set by look, is a persistent watch's Events channel: a value
	// on it makes a look due. Unlike watch it stays set until look clears
	// it.
	events  <-chan struct{}
	st      sessionState // the newest session state
	started bool         // the first look has succeeded
	done    bool         // set by look: the recipe is finished
}

// bg is the context of the calls of recipes that own nodes: they are not
// abandoned half-way, lest a create that happened be lost track of.
var bg = context.Background()

// failFast is bg for a call that fails rather than waits for a connection.
var failFast = zkclient.FailFast(bg)

// endWait bounds how long a recipe that ends waits for the answer to its
// cleanup (the delete of its node, the removal of its watch) before it
// leaves the rest to the session: when the server is silent, the client
// declares the connection lost only after two thirds of the session
// timeout, and ending a recipe must not take that long.
const endWait = 500 * time.Millisecond

// endCtx is failFast with a deadline endWait after its Done channel is
// first asked for. A call sends its request before it asks, so the timer
// is set while the request is on its way, not before the delete that hands
// leadership over goes out (setting it still costs the hand-over about
// 0.01 of the floor in BenchmarkFailover: see README).
type endCtx struct {
	context.Context // failFast, which never ends
	once            sync.Once
	done            chan struct{}
	timer           *time.Timer
	ended           atomic.Bool
}

func newEndCtx() *endCtx { return &endCtx{Context: failFast} }

func (c *endCtx) Done() <-chan struct{} {
	c.once.Do(func() {
		c.done = make(chan struct{})
		c.timer = time.AfterFunc(endWait, func() {
			c.ended.Store(true)
			close(c.done)
		})
	})
	return c.done
}

func (c *endCtx) Err() error {
	if c.ended.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// stop releases the timer, once the call has returned.
func (c *endCtx) stop() {
	c.once.Do(func() {}) // a Done asked for after this arms nothing
	if c.timer != nil {
		c.timer.Stop()
	}
}

// awaitEnd waits for a recipe's goroutine to end (done closed), at most
// endWait, which is also as long as the goroutine waits for its cleanup. A
// goroutine caught in a call that must not be abandoned (a create, which
// may have made a node) ends only when that call does; its caller need not
// wait for that.
func awaitEnd(done <-chan struct{}) {
	t := time.NewTimer(endWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// errWatching: a look found the recipe waiting on a watch, which will tell
// when to look again. It is not a failure.
var errWatching = errors.New("waiting on a watch")

// run runs the loop until ctx ends, the session closes, a state hook or a
// fatal error ends it, or look sets done. The first look's outcome (nil,
// or a fatal error) goes to first, if not nil.
func (l *loop) run(ctx context.Context, first chan<- error) error {
	states, unsubscribe := l.s.state.Subscribe()
	defer unsubscribe()
	retry := newRetry()
	var timer *time.Timer
	var retryC <-chan time.Time
	stopRetry := func() {
		if timer != nil {
			timer.Stop()
		}
		retryC = nil
	}
	defer stopRetry()
	var poke <-chan struct{}
	var alarm <-chan time.Time
	end := func(why error) error {
		if l.end != nil {
			l.end(why)
		}
		return why
	}
	due := true
	for {
		if due && l.st.Connected && retryC == nil {
			due = false
			err := l.look()
			switch {
			case err == nil || errors.Is(err, errWatching):
				retry.Reset()
				l.started = true
				if first != nil {
					first <- nil
					first = nil
				}
				if l.done {
					return nil
				}
			case l.isFatal(err, first == nil):
				err = l.s.opErr(l.op, l.path, err)
				if first != nil {
					first <- err
				}
				return end(err)
			default:
				l.s.emit(Event{Type: EventError, SessionID: l.st.ID, Path: l.path, Err: l.s.opErr(l.op, l.path, err)})
				due = true
				timer = time.NewTimer(retry.NextBackOff())
				retryC = timer.C
			}
		}
		if l.poke != nil {
			poke = l.poke()
		}
		if l.alarm != nil {
			alarm = l.alarm()
		}
		select {
		case <-ctx.Done():
			return end(ctx.Err())
		case next, ok := <-states:
			if !ok || next.Closed {
				return end(ErrClosed)
			}
			prev := l.st
			l.st = next
			d, err := l.changed(prev, next)
			if err != nil {
				return end(err)
			}
			due = due || d
			if next.Connected && next.Gen != prev.Gen {
				// A reconnect or a new session (perhaps while a look was in
				// flight, so that only the newest state shows): recover at
				// once.
				stopRetry()
			}
		case ev := <-l.watch[0]:
			l.watch[0] = nil
			if l.onFired(0, ev) {
				due = true
				stopRetry()
			}
		case ev := <-l.watch[1]:
			l.watch[1] = nil
			if l.onFired(1, ev) {
				due = true
				stopRetry()
			}
		case ev := <-l.watch[2]:
			l.watch[2] = nil
			if l.onFired(2, ev) {
				due = true
				stopRetry()
			}
		case <-l.events:
			due = true
			stopRetry()
		case <-poke:
			due = l.poked() || due
		case <-alarm:
			due = l.alarms() || due
		case <-retryC:
			retryC = nil
		}
	}
}

func (l *loop) changed(prev, next sessionState) (bool, error) {
	if l.state != nil {
		return l.state(prev, next)
	}
	return next.ID != prev.ID || (next.Connected && !prev.Connected), nil
}

func (l *loop) onFired(i int, ev zkclient.WatchEvent) bool {
	if l.fired != nil {
		return l.fired(i, ev)
	}
	return true
}

func (l *loop) isFatal(err error, started bool) bool {
	if l.fatal != nil {
		return l.fatal(err, started)
	}
	return !started && lasting(err)
}

// startRecipe runs run on a goroutine of the session and waits for the
// outcome of its first attempt, which run sends on first. It returns that
// error, ctx's error if ctx ends first, or ErrClosed if the session closes
// first (the goroutine may then end without a first result). On an error
// the caller stops what it started; the goroutine stays the session's.
func (s *Session) startRecipe(ctx context.Context, run func(first chan<- error)) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
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

// closer is what Close does for a recipe: stop it, then delete the node it
// holds (held may be nil).
type closer struct {
	stop func()
	held *heldNode
}

// onClose registers a recipe's stop function, and the node it holds if any,
// for Close, and returns a function that unregisters them. If Close has
// started, it calls stop at once.
func (s *Session) onClose(stop func(), held *heldNode) (unregister func()) {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.isClosing() {
		stop()
		return func() {}
	}
	if s.stops == nil {
		s.stops = make(map[*int]closer)
	}
	key := new(int)
	s.stops[key] = closer{stop, held}
	return func() {
		s.stopMu.Lock()
		defer s.stopMu.Unlock()
		delete(s.stops, key)
	}
}

// heldNode is the ephemeral node a recipe holds, as Close sees it. Close
// deletes it before it closes the session, without waiting on the recipe's
// goroutine: peers watching the node then learn as fast as after a
// resignation. The closing of the session deletes the node too, but the
// server tells watchers later (about 0.1 ms in BenchmarkFailover), also when
// the two requests are sent together. The recipe's goroutine sets and
// clears it; Close reads it.
type heldNode struct{ p atomic.Pointer[nodeRef] }

type nodeRef struct {
	path  string
	owner int64              // its session
	end   context.CancelFunc // ends the leadership it gives, if any
}

func (h *heldNode) set(path string, owner int64) { h.p.Store(&nodeRef{path: path, owner: owner}) }
func (h *heldNode) clear()                       { h.p.Store(nil) }

// leads records the function that ends the leadership the node gives (nil:
// none).
func (h *heldNode) leads(end context.CancelFunc) {
	if n := h.p.Load(); n != nil {
		h.p.Store(&nodeRef{path: n.path, owner: n.owner, end: end})
	}
}

// load returns the held node, nil if none (or h is nil).
func (h *heldNode) load() *nodeRef {
	if h == nil {
		return nil
	}
	return h.p.Load()
}

// endHeld ends the leaderships that the recipes' nodes give and returns
// those nodes that belong to the current session, for Close to delete. It
// wakes no recipe: Close stops them once the nodes are gone, so that their
// goroutines do not compete with the deletes for the CPU. (Once Close has
// begun, recipes create no nodes; see Session.isClosing.)
func (s *Session) endHeld(recipes map[*int]closer) []string {
	if s.zk == nil {
		return nil
	}
	id := s.zk.SessionID()
	var paths []string
	for _, c := range recipes {
		n := c.held.load()
		if n == nil {
			continue
		}
		if n.end != nil {
			n.end()
		}
		if n.owner == id {
			paths = append(paths, n.path)
		}
	}
	return paths
}

// deleteNodes deletes paths side by side if the connection is up, and
// returns once all are answered or half of the time left to deadline is
// spent.
func (s *Session) deleteNodes(paths []string, deadline time.Time) {
	if len(paths) == 0 || s.zk.State() != zkclient.StateConnected {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(time.Until(deadline)/2))
	defer cancel()
	var wg sync.WaitGroup
	for i, path := range paths {
		if i == len(paths)-1 {
			s.zk.Delete(ctx, path, AnyVersion) // the last (most often the only) one here
		} else {
			wg.Go(func() { s.zk.Delete(ctx, path, AnyVersion) })
		}
	}
	wg.Wait()
}

// gone reports whether a delete's error means the node is gone or will go
// without us: deleted, or the client closed (its session ends with it).
func gone(err error) bool {
	return err == nil || errors.Is(err, zkclient.ErrNoNode) || errors.Is(err, zkclient.ErrClosed)
}

// deleteEphemeral deletes an ephemeral node of session owner that a recipe
// is done with, by its path alone: for a node whose name no other session
// can take (an election's). At once if the connection is up, else (or if
// that fails) a goroutine of the session keeps trying until the node is
// gone, its session has ended, or the Session closes, so that no recipe
// leaves a node behind that peers would wait on. then, if not nil, is
// called once that is over.
func (s *Session) deleteEphemeral(path string, owner int64, then func()) {
	s.deleteWith(path, owner, func(ctx context.Context) error { return s.zk.Delete(ctx, path, AnyVersion) }, then)
}

// deleteIfOurs is deleteEphemeral for a node named by an ID, which another
// session may have taken since ours went (or which our create, whose answer
// was lost, may not have made): it deletes the node at path only if it is
// an ephemeral node of session owner, at the cost of a read first.
func (s *Session) deleteIfOurs(path string, owner int64, then func()) {
	s.deleteWith(path, owner, func(ctx context.Context) error {
		st, err := s.zk.Exists(ctx, path)
		if err != nil || st == nil || st.EphemeralOwner != owner {
			return err // nil: gone, or not ours
		}
		return s.zk.Delete(ctx, path, st.Version)
	}, then)
}

// deleteWith runs attempt, which deletes path, a node of session owner: at
// once if the connection is up, waiting for the answer at most endWait,
// then (or if that fails) with keepDeleting.
func (s *Session) deleteWith(path string, owner int64, attempt func(context.Context) error, then func()) {
	if s.isClosing() {
		callIf(then)
		return // Close deletes it (heldNode), or the session's end does
	}
	// The first attempt fails at once if the connection is down (failFast),
	// and waits for its answer at most endWait; keepDeleting then goes on
	// trying, on its own goroutine, until the client declares the connection
	// lost (two thirds of the session timeout without a byte) and after.
	if s.zk.State() == zkclient.StateConnected && s.zk.SessionID() == owner {
		ctx := newEndCtx()
		err := attempt(ctx)
		ctx.stop()
		if gone(err) {
			callIf(then)
			return
		}
	}
	s.keepDeleting(path, owner, attempt, then)
}

func callIf(f func()) {
	if f != nil {
		f()
	}
}

// keepDeleting runs attempt, which deletes path, on a goroutine of the
// session until it succeeds, the node is gone, session owner has ended
// (and the node with it), the server refuses it for good (an EventError
// says so), or the Session closes; then it calls then, if not nil.
func (s *Session) keepDeleting(path string, owner int64, attempt func(context.Context) error, then func()) {
	if s.isClosing() {
		callIf(then)
		return // Close ends the session, and the node with it
	}
	errEnded := errors.New("the node's session ended")
	l := &loop{s: s, op: "delete", path: path}
	l.look = func() error {
		if l.st.ID != owner {
			l.done = true // the node went with its session
			return nil
		}
		err := attempt(failFast)
		l.done = gone(err)
		if l.done {
			return nil
		}
		return err
	}
	l.state = func(prev, next sessionState) (bool, error) {
		if next.ID != owner && next.ID != 0 {
			return false, errEnded
		}
		return next.Connected && !prev.Connected, nil
	}
	l.fatal = func(err error, _ bool) bool { return lasting(err) }
	l.end = func(why error) {
		if why != ErrClosed && !errors.Is(why, errEnded) {
			s.emit(Event{Type: EventError, SessionID: owner, Path: path, Err: why})
		}
	}
	if !s.recipes.Go(func() {
		defer callIf(then)
		l.run(context.Background(), nil)
	}) {
		callIf(then)
	}
}

// newRetry makes a loop's retry schedule (tests may slow it down).
var newRetry = newBackoff

// newBackoff is the retry schedule of recipes: from 50 ms up to 5 s, for
// as long as it takes.
func newBackoff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(0))
}
