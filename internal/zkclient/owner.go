package zkclient

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// owner is the goroutine that holds the session: connection, xids, pending
// requests, watches, lastZxid. It holds mu while it handles anything. Two
// others take mu, only when it is free at once, to spare a hop through the
// owner: a caller, to submit its request (submitDirect), and the
// connection's reader, to deliver a watch notification (notifyDirect).
// Neither ever waits for mu, so the owner may wait for them while holding
// it.
type owner struct {
	mu      sync.Mutex
	c       *Client
	servers []string                    // shuffled
	next    int                         // index of the next server to try
	failed  int                         // failed attempts since the last session
	bo      *backoff.ExponentialBackOff // between rounds of failed attempts
	quick   *backoff.ExponentialBackOff // before redialling after connections lost before any frame
	reasons map[string]error            // each server's last failure

	sid      int64
	passwd   []byte
	timeout  time.Duration // negotiated
	lastZxid int64
	xid      int32
	ever     bool // a session was established once

	queue   []*request // waiting for a connection
	pending fifo       // sent, in order
	auths   int        // auth replies still expected
	ready   bool       // handshake and auths done: requests go out

	conn      *connection
	healthy   bool               // a frame came on conn after the handshake
	attempt   context.CancelFunc // an attempt is under way
	attemptCh chan attemptResult
	retry     *time.Timer
	timer     *time.Timer // pings and read timeout
	lastSend  time.Time

	watches registry
	holds   map[string]*pathHold // paths whose registry awaits replies

	closing  bool
	closeCtx context.Context
	finished bool
}

func newOwner(c *Client) *owner {
	o := &owner{
		c:         c,
		servers:   append([]string(nil), c.cfg.Servers...),
		reasons:   make(map[string]error),
		attemptCh: make(chan attemptResult, 1),
		watches:   newRegistry(),
		retry:     time.NewTimer(time.Hour),
		timer:     time.NewTimer(time.Hour),
	}
	o.retry.Stop()
	o.timer.Stop()
	shuffle(o.servers)
	newBackOff := func() *backoff.ExponentialBackOff {
		return backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(10*time.Millisecond),
			backoff.WithMaxInterval(time.Second),
			backoff.WithMaxElapsedTime(0))
	}
	o.bo, o.quick = newBackOff(), newBackOff()
	return o
}

// shuffle puts servers in a random order; tests replace it to fix the order.
var shuffle = func(s []string) {
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

func (o *owner) run() {
	defer close(o.c.done)
	defer o.retry.Stop()
	defer o.timer.Stop()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.startAttempt()
	for !o.finished {
		cn := o.conn
		var frames <-chan frame
		if cn != nil {
			frames = cn.frames
		}
		var closeDone <-chan struct{}
		if o.closing {
			closeDone = o.closeCtx.Done()
		}
		o.mu.Unlock()
		select {
		case r := <-o.c.reqs:
			o.mu.Lock()
			o.c.inReqs.Add(-1)
			o.submit(r)
		case f := <-frames:
			o.mu.Lock()
			o.handle(f)
			cn.handled.Add(1)
		case res := <-o.attemptCh:
			o.mu.Lock()
			o.attempted(res)
		case <-o.retry.C:
			o.mu.Lock()
			o.startAttempt()
		case <-o.timer.C:
			o.mu.Lock()
			o.tick()
		case ctx := <-o.c.closeReq:
			o.mu.Lock()
			o.beginClose(ctx)
		case <-closeDone:
			o.mu.Lock()
			o.finish(ErrClosed)
		}
	}
}

// submitDirect submits r on the caller's goroutine, sparing it a hop
// through the owner goroutine, when that is safe: the owner is idle (mu is
// free; the caller does not wait for it) and no request is on its way
// through reqs, which r must not overtake. It reports whether it did; if
// not, r goes through reqs.
func (o *owner) submitDirect(r *request) bool {
	if !o.mu.TryLock() {
		return false
	}
	defer o.mu.Unlock()
	if o.finished || o.c.inReqs.Load() != 0 {
		return false
	}
	o.submit(r)
	return true
}

// notifyDirect delivers a watch notification on cn's reader goroutine,
// sparing the notification a hop through the owner goroutine, when that is
// safe: the owner is idle (mu is free: the reader never waits for it, as
// the owner waits for the reader when it drops the connection) and has
// handled every frame the reader gave it before this one (queued), so that
// watches are registered and events delivered in the server's order. It
// reports whether it did; if not, the frame goes to the owner.
func (o *owner) notifyDirect(cn *connection, f frame, queued int64) bool {
	if !o.mu.TryLock() {
		return false
	}
	defer o.mu.Unlock()
	if o.conn != cn || !o.ready || cn.handled.Load() != queued {
		return false
	}
	return o.notification(f) == nil
}

func (o *owner) emit(ev Event) {
	o.c.state.Store(int32(ev.State))
	if ev.State == StateConnected {
		o.c.log.Info("zk: session established", "session", fmt.Sprintf("%#x", ev.SessionID), "server", ev.Server, "timeout", ev.Timeout)
	} else {
		o.c.log.Info("zk: session "+ev.State.String(), "session", fmt.Sprintf("%#x", o.sid), "err", ev.Err)
	}
	if o.c.cfg.OnEvent != nil {
		o.c.cfg.OnEvent(ev)
	}
}

// submit takes a caller's request: sent now if the session is ready,
// queued otherwise.
func (o *owner) submit(r *request) {
	if o.closing {
		r.reply <- reply{err: ErrClosed}
		return
	}
	if o.park(r) {
		return
	}
	if r.remove != nil && o.conn == nil {
		// No connection: the server holds no watch of this client, and
		// the next setWatches names only those still registered.
		r.remove.end()
		o.watches.removeWatcher(r.remove)
		r.reply <- reply{}
		return
	}
	if !o.ready {
		// Decided when sent: the registry and the server's modes are
		// known then, and holds apply.
		o.sendOrQueue(r)
		return
	}
	if (r.add != nil || r.remove != nil) && !o.persistentChange(r) {
		return
	}
	o.sendOrQueue(r)
}

// sendOrQueue sends r if the session is ready, else queues it (or fails
// it, if its caller asked to fail fast).
func (o *owner) sendOrQueue(r *request) {
	if o.ready {
		o.send(r)
	} else if r.reply != nil && r.ctx != nil && r.ctx.Value(failFastKey{}) != nil {
		r.reply <- reply{err: ErrConnectionLoss}
	} else {
		if len(o.queue) >= 64 && len(o.queue)&(len(o.queue)-1) == 0 {
			o.pruneQueue()
		}
		o.queue = append(o.queue, r)
	}
}

// persistentChange applies an AddWatch or Remove to the registry and
// decides what the server must be told: it rewrites r into the request to
// send and returns true, or answers r itself and returns false.
func (o *owner) persistentChange(r *request) bool {
	var path string
	if r.add != nil {
		path = r.add.path
		if o.watches.modeNeeded(path) == addWatchPersistentRecursive || !r.add.recursive && o.watches.modeNeeded(path) == addWatchPersistent {
			// Covered by what the server holds (or will, when connected).
			if r.state.CompareAndSwap(reqPending, reqAnswered) {
				o.watches.addWatcher(r.add)
			}
			r.reply <- reply{}
			return false
		}
		return true // registered when the reply comes
	}
	r.remove.end()
	path = r.remove.path
	o.watches.removeWatcher(r.remove)
	need := o.watches.modeNeeded(path)
	switch {
	case need == addWatchPersistent && o.watches.srv[path] == addWatchPersistentRecursive:
		// Downgrade: the remaining plain persistent watches need child events.
		e := enc{r.buf[:0]}
		e.int32(0)
		e.int32(0)
		e.int32(opAddWatch)
		e.string(path)
		e.int32(addWatchPersistent)
		putLength(e.b)
		r.buf, r.op = e.b, opAddWatch
		return true
	case need >= 0 || o.watches.hasOneShot(path):
		// Still needed, or serving one-shot watches set locally.
		r.reply <- reply{}
		return false
	}
	return true
}

// send writes r on the connection with the next xid (unless r has a special
// one) and expects its reply.
func (o *owner) send(r *request) {
	if r.xid >= 0 || r.reply != nil {
		o.xid++
		if o.xid <= 0 {
			o.xid = 1
		}
		r.xid = o.xid
	}
	if r.watch.ch != nil {
		if _, ok := o.watches.srv[r.watch.path]; ok {
			// The persistent registration reports what this watch needs;
			// a one-shot registration would replace it on servers < 3.9.
			r.buf[len(r.buf)-1] = 0
			o.hold(r, r.watch.path, holdRead)
		}
	}
	x := r.xid
	r.buf[4], r.buf[5], r.buf[6], r.buf[7] = byte(x>>24), byte(x>>16), byte(x>>8), byte(x)
	if (r.op == opAddWatch || r.op == opRemoveWatches) && (r.add != nil || r.remove != nil) {
		path := r.registryPath()
		switch {
		case r.op == opRemoveWatches:
			delete(o.watches.srv, path)
		case r.add != nil && r.add.recursive:
			o.watches.srv[path] = addWatchPersistentRecursive
		default: // a plain AddWatch, or a Remove's downgrade to one
			o.watches.srv[path] = addWatchPersistent
		}
		o.hold(r, path, holdChange)
	}
	o.write(r.buf)
	o.pending.push(r)
}

func (o *owner) write(b []byte) {
	o.conn.w.write(b)
	o.lastSend = time.Now()
}

// handle processes a frame from the reader, or its end.
func (o *owner) handle(f frame) {
	if f.big {
		<-o.conn.big // the reader may read the next big frame
	}
	if f.err != nil {
		o.lost(f.err)
		return
	}
	o.frameCame()
	switch f.hdr.xid {
	case xidNotification:
		if err := o.notification(f); err != nil {
			o.lost(fmt.Errorf("%w: notification: %s", errProtocol, trimPrefix(err)))
		}
		return
	case xidPing:
		return
	case xidAuth:
		o.auths--
		if f.hdr.err != 0 {
			err := codeErr(f.hdr.err)
			o.emit(Event{State: StateAuthFailed, SessionID: o.sid, Err: err})
			o.finish(ErrAuthFailed)
			return
		}
		if o.auths == 0 && !o.ready {
			o.established()
		}
		return
	}
	r := o.pending.front()
	if r == nil || r.xid != f.hdr.xid {
		want := "none"
		if r != nil {
			want = fmt.Sprint(r.xid)
		}
		o.lost(fmt.Errorf("%w: reply xid %d, expected %s", errProtocol, f.hdr.xid, want))
		return
	}
	o.pending.pop()
	if f.hdr.zxid > 0 {
		o.lastZxid = f.hdr.zxid
	}
	err := codeErr(f.hdr.err)
	switch {
	case r.op == opCloseSession:
		o.finish(ErrClosed)
		return
	case r.reply == nil: // setWatches
		if err != nil {
			// The server holds none of them now: say so, rather than let
			// them wait for events that will not come.
			o.c.log.Warn("zk: re-registering watches failed", "err", err)
			// Changes in flight were sent after setWatches: the server
			// holds (or drops) what they say, whatever it refused.
			keep := make(map[string]int32)
			for p, h := range o.holds {
				if m, ok := o.watches.srv[p]; ok && h.changing > 0 {
					keep[p] = m
				}
			}
			o.watches.lostAll(fmt.Errorf("%w: re-registering the watches: %w", ErrConnectionLoss, err), o.strip)
			for p, m := range keep {
				o.watches.srv[p] = m
			}
		}
		return
	}
	if r.state.CompareAndSwap(reqPending, reqAnswered) {
		if _, held := o.watches.srv[r.watch.path]; r.watch.ch != nil && r.heldKind == holdRead && !held && (err == nil || err == ErrNoNode && r.watch.kind == kindExist) {
			// Sent relying on a persistent watch the server turned out
			// not to hold (setWatches refused): nothing will fire.
			r.watch.ch <- WatchEvent{Type: EventLost, Path: o.strip(r.watch.path), Err: ErrConnectionLoss}
			close(r.watch.ch)
		} else if r.watch.ch != nil {
			switch {
			case err == nil && r.watch.kind == kindExist:
				o.watches.addOneShot(kindData, r.watch.path, r.watch.ch)
			case err == nil:
				o.watches.addOneShot(r.watch.kind, r.watch.path, r.watch.ch)
			case err == ErrNoNode && r.watch.kind == kindExist:
				o.watches.addOneShot(kindExist, r.watch.path, r.watch.ch)
			}
		}
		if r.add != nil && err == nil {
			o.watches.addWatcher(r.add)
		}
	}
	if r.add != nil && err != nil && o.watches.modeNeeded(r.add.path) < 0 {
		delete(o.watches.srv, r.add.path)
	}
	o.unhold(r) // before the reply: the caller then puts r back in the pool
	r.reply <- reply{zxid: f.hdr.zxid, err: err, body: f.body}
}

// frameCame records that the connection carried a frame after its
// handshake: a reconnect after it goes at once.
func (o *owner) frameCame() {
	if !o.healthy {
		o.healthy = true
		o.quick.Reset()
	}
}

// notification delivers a watch notification to the watches it triggers,
// or does nothing and returns why it is malformed.
func (o *owner) notification(f frame) error {
	ev, err := decodeWatcherEvent(f.body)
	if err != nil {
		return err
	}
	o.frameCame() // already done if it came through handle
	if f.hdr.zxid > 0 {
		o.lastZxid = f.hdr.zxid
	}
	typ := EventType(ev.typ)
	o.c.cfg.Hooks.watch(typ)
	o.watches.dispatch(typ, ev.path, WatchEvent{Type: typ, Path: o.strip(ev.path), Zxid: max(f.hdr.zxid, 0)}, o.strip)
	return nil
}

// tick sends a ping when nothing was sent for a third of the session
// timeout, and drops a connection that heard nothing for two thirds.
func (o *owner) tick() {
	if o.conn == nil {
		return
	}
	now := time.Now()
	readTimeout := o.timeout * 2 / 3
	pingEvery := o.timeout / 3
	heard := o.c.epoch.Add(time.Duration(o.c.heard.Load()))
	if heard.Before(o.conn.since) {
		heard = o.conn.since
	}
	if now.Sub(heard) >= readTimeout {
		o.lost(fmt.Errorf("zk: nothing from %s within %v", o.conn.addr, readTimeout))
		return
	}
	if now.Sub(o.lastSend) >= pingEvery && !o.closing {
		// No pings while closing: a server that answers them but not
		// closeSession would hold Close without a deadline for ever.
		o.write(pingFrame)
	}
	o.timer.Reset(min(heard.Add(readTimeout).Sub(now), o.lastSend.Add(pingEvery).Sub(now)))
}

var pingFrame = []byte{0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, byte(opPing)}

// lost drops the connection: pending requests fail with ErrConnectionLoss,
// queued ones wait for the next connection.
func (o *owner) lost(err error) {
	o.c.log.Debug("zk: connection lost", "server", o.conn.addr, "err", err)
	if !o.ready { // only authentication is answered before ready
		o.reasons[o.conn.addr] = fmt.Errorf("connected, but the connection was lost before the authentication was answered: %w", err)
	}
	wasReady := o.ready
	o.ready = false // so that requests parked behind those failed now are queued
	o.dropConn()
	o.failPending(ErrConnectionLoss)
	if o.closing {
		o.finish(ErrClosed)
		return
	}
	if wasReady {
		o.emit(Event{State: StateDisconnected, SessionID: o.sid, Err: err})
	}
	if !o.healthy {
		// Lost before a single frame came after the handshake: a server
		// that hangs up on every connection must not be redialled in a
		// tight loop.
		o.retry.Reset(o.quick.NextBackOff())
		return
	}
	o.startAttempt()
}

func (o *owner) dropConn() {
	if o.conn == nil {
		return
	}
	o.conn.close()
	o.conn = nil
	o.timer.Stop()
}

func (o *owner) failPending(err error) {
	for r := o.pending.front(); r != nil; r = o.pending.front() {
		o.pending.pop()
		o.unhold(r)
		if r.reply != nil {
			r.reply <- reply{err: err}
		}
	}
}

// A persistent-watch change (AddWatch, Remove) is decided from the registry
// and the mode the server holds for its path, and so is whether a watch read
// needs its own watch on the server or is served by a persistent one. While
// a request that will change that state is in flight, such decisions would
// be made on a guess: an AddWatch would be sent that replaces a recursive
// watch still being added (one mode per path on servers before 3.9), or a
// removeWatches would drop the watch that an unanswered read relies on. So
// the requests that would decide wait (park) until their path has no such
// request in flight, in the order they came.

// holdKind is what a request in flight holds on its path.
type holdKind uint8

const (
	holdChange holdKind = iota + 1 // addWatch or removeWatches: changes the server's mode
	holdRead                       // a watch read sent without its flag, relying on a persistent watch
)

// pathHold is a path's requests in flight that hold it, and those parked.
type pathHold struct {
	changing, reading int
	parked            []*request
}

// hold records that r, being sent, holds path.
func (o *owner) hold(r *request, path string, kind holdKind) {
	if o.holds == nil {
		o.holds = make(map[string]*pathHold)
	}
	h := o.holds[path]
	if h == nil {
		h = &pathHold{}
		o.holds[path] = h
	}
	if kind == holdChange {
		h.changing++
	} else {
		h.reading++
	}
	r.held, r.heldKind = path, kind
}

// park parks r if it must wait for its path's requests in flight (or
// behind others parked there), and reports whether it did.
func (o *owner) park(r *request) bool {
	h := o.holds[r.registryPath()]
	if h == nil {
		return false
	}
	if len(h.parked) > 0 || h.changing > 0 || r.watch.ch == nil && h.reading > 0 {
		h.parked = append(h.parked, r)
		return true
	}
	return false
}

// registryPath returns the path of the watch r adds, removes or sets, ""
// if none.
func (r *request) registryPath() string {
	switch {
	case r.add != nil:
		return r.add.path
	case r.remove != nil:
		return r.remove.path
	case r.watch.ch != nil:
		return r.watch.path
	}
	return ""
}

// unhold releases what r held, answered or failed; once its path has
// nothing in flight, the requests parked there are submitted in order.
func (o *owner) unhold(r *request) {
	if r.heldKind == 0 {
		return
	}
	path, h := r.held, o.holds[r.held]
	if r.heldKind == holdChange {
		h.changing--
	} else {
		h.reading--
	}
	r.held, r.heldKind = "", 0
	if h.changing > 0 || h.reading > 0 {
		return
	}
	delete(o.holds, path)
	for _, p := range h.parked {
		if p.state.Load() == reqAbandoned && p.remove == nil { // nobody waits; a Remove still cleans up
			continue
		}
		o.submit(p)
	}
}

// fifo is a queue of requests that reuses its array: one request at a
// time in flight allocates nothing.
type fifo struct {
	q    []*request
	head int // q[head:] are queued
}

func (f *fifo) push(r *request) {
	if f.head > 32 && f.head > len(f.q)/2 { // mostly spent: move the rest to the front
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
	f.q = append(f.q, r)
}

// front returns the oldest request, nil if none.
func (f *fifo) front() *request {
	if f.head == len(f.q) {
		return nil
	}
	return f.q[f.head]
}

// pop drops the oldest request.
func (f *fifo) pop() {
	f.q[f.head] = nil
	f.head++
	if f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0
	}
}

// pruneQueue drops queued requests whose caller stopped waiting, so that
// callers retrying during a long disconnection do not grow the queue.
func (o *owner) pruneQueue() {
	q := o.queue[:0]
	for _, r := range o.queue {
		if err := r.ctx.Err(); err != nil && r.remove == nil {
			r.reply <- reply{err: err}
			continue
		}
		q = append(q, r)
	}
	clear(o.queue[len(q):])
	o.queue = q
}

func (o *owner) failQueued(err error) {
	for i, r := range o.queue {
		r.reply <- reply{err: err}
		o.queue[i] = nil
	}
	o.queue = o.queue[:0]
}
