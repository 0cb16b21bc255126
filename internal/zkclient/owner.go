package zkclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// owner is the goroutine that holds the session: connection, xids, pending
// requests, watches, lastZxid. Nothing else touches these fields.
type owner struct {
	c       *Client
	servers []string // shuffled
	next    int      // index of the next server to try
	failed  int      // failed attempts since the last session
	bo      *backoff.ExponentialBackOff
	reasons map[string]error // each server's last failure

	sid      int64
	passwd   []byte
	timeout  time.Duration // negotiated
	lastZxid int64
	xid      int32
	ever     bool // a session was established once

	queue   []*request // waiting for a connection
	pending []*request // sent, in order
	auths   int        // auth replies still expected
	ready   bool       // handshake and auths done: requests go out

	conn      *connection
	attempt   context.CancelFunc // an attempt is under way
	attemptCh chan attemptResult
	retry     *time.Timer
	retrying  bool
	timer     *time.Timer // pings and read timeout
	lastSend  time.Time

	watches registry

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
	rand.Shuffle(len(o.servers), func(i, j int) { o.servers[i], o.servers[j] = o.servers[j], o.servers[i] })
	o.bo = backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(time.Second),
		backoff.WithMaxElapsedTime(0))
	return o
}

func (o *owner) run() {
	defer close(o.c.done)
	defer o.retry.Stop()
	defer o.timer.Stop()
	o.startAttempt()
	for !o.finished {
		var frames <-chan frame
		if o.conn != nil {
			frames = o.conn.frames
		}
		var closeDone <-chan struct{}
		if o.closing {
			closeDone = o.closeCtx.Done()
		}
		select {
		case r := <-o.c.reqs:
			o.submit(r)
		case f := <-frames:
			o.handle(f)
		case res := <-o.attemptCh:
			o.attempted(res)
		case <-o.retry.C:
			o.retrying = false
			o.startAttempt()
		case <-o.timer.C:
			o.tick()
		case ctx := <-o.c.closeReq:
			o.beginClose(ctx)
		case <-closeDone:
			o.finish(ErrClosed)
		}
	}
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
	if (r.add != nil || r.remove != nil) && !o.persistentChange(r) {
		return
	}
	o.sendOrQueue(r)
}

// sendOrQueue sends r if the session is ready, else queues it.
func (o *owner) sendOrQueue(r *request) {
	if o.ready {
		o.send(r)
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
			o.watches.addWatcher(r.add)
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
		}
	}
	x := r.xid
	r.buf[4], r.buf[5], r.buf[6], r.buf[7] = byte(x>>24), byte(x>>16), byte(x>>8), byte(x)
	switch r.op {
	case opAddWatch:
		if r.add != nil && r.add.recursive {
			o.watches.srv[r.add.path] = addWatchPersistentRecursive
		} else if r.add != nil {
			o.watches.srv[r.add.path] = addWatchPersistent
		} else {
			o.watches.srv[r.remove.path] = addWatchPersistent
		}
	case opRemoveWatches:
		delete(o.watches.srv, r.remove.path)
	}
	o.write(r.buf)
	o.pending = append(o.pending, r)
}

func (o *owner) write(b []byte) {
	o.conn.w.write(b)
	o.lastSend = time.Now()
}

// handle processes a frame from the reader, or its end.
func (o *owner) handle(f frame) {
	if f.err != nil {
		o.lost(f.err)
		return
	}
	switch f.hdr.xid {
	case xidNotification:
		ev, err := decodeWatcherEvent(f.body)
		if err != nil {
			o.lost(fmt.Errorf("%w: notification: %v", errProtocol, err))
			return
		}
		if f.hdr.zxid > 0 {
			o.lastZxid = f.hdr.zxid
		}
		typ := EventType(ev.typ)
		o.watches.dispatch(typ, ev.path, WatchEvent{Type: typ, Path: o.strip(ev.path), Zxid: max(f.hdr.zxid, 0)}, o.strip)
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
	if len(o.pending) == 0 || o.pending[0].xid != f.hdr.xid {
		want := "none"
		if len(o.pending) > 0 {
			want = fmt.Sprint(o.pending[0].xid)
		}
		o.lost(fmt.Errorf("%w: reply xid %d, expected %s", errProtocol, f.hdr.xid, want))
		return
	}
	r := o.pending[0]
	o.pending[0] = nil
	o.pending = o.pending[1:]
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
			o.c.log.Warn("zk: re-registering watches failed", "err", err)
		}
		return
	}
	if r.ctx.Err() == nil {
		if r.watch.ch != nil {
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
	r.reply <- reply{zxid: f.hdr.zxid, err: err, body: f.body}
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
	if now.Sub(o.lastSend) >= pingEvery {
		o.write(pingFrame)
	}
	o.timer.Reset(min(heard.Add(readTimeout).Sub(now), o.lastSend.Add(pingEvery).Sub(now)))
}

var pingFrame = []byte{0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, byte(opPing)}

// lost drops the connection: pending requests fail with ErrConnectionLoss,
// queued ones wait for the next connection.
func (o *owner) lost(err error) {
	o.c.log.Debug("zk: connection lost", "server", o.conn.addr, "err", err)
	o.dropConn()
	o.failPending(ErrConnectionLoss)
	if o.closing {
		o.finish(ErrClosed)
		return
	}
	wasReady := o.ready
	o.ready = false
	if wasReady {
		o.emit(Event{State: StateDisconnected, SessionID: o.sid, Err: err})
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
	for i, r := range o.pending {
		if r.reply != nil {
			r.reply <- reply{err: err}
		}
		o.pending[i] = nil
	}
	o.pending = o.pending[:0]
}

// pruneQueue drops queued requests whose caller stopped waiting, so that
// callers retrying during a long disconnection do not grow the queue.
func (o *owner) pruneQueue() {
	q := o.queue[:0]
	for _, r := range o.queue {
		if err := r.ctx.Err(); err != nil {
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

// startAttempt tries the next server, in a goroutine of its own.
func (o *owner) startAttempt() {
	addr := o.servers[o.next]
	o.next = (o.next + 1) % len(o.servers)
	ctx, cancel := context.WithTimeout(context.Background(), o.c.cfg.ConnectTimeout)
	o.attempt = cancel
	p := handshakeParams{
		addr:     addr,
		lastZxid: o.lastZxid,
		timeout:  o.c.cfg.SessionTimeout,
		sid:      o.sid,
		passwd:   o.passwd,
	}
	go func() {
		o.attemptCh <- dialServer(ctx, &o.c.cfg, p)
	}()
}

// attempted takes the outcome of an attempt.
func (o *owner) attempted(res attemptResult) {
	o.attempt()
	o.attempt = nil
	if res.err != nil {
		o.reasons[res.addr] = res.err
		o.c.log.Debug("zk: server unavailable", "server", res.addr, "err", res.err)
		o.failed++
		if o.failed%len(o.servers) == 0 {
			wait := o.bo.NextBackOff()
			o.c.log.Warn("zk: no server reachable", "servers", len(o.servers), "retry_in", wait, "last_err", res.err)
			o.retrying = true
			o.retry.Reset(wait)
			return
		}
		o.startAttempt()
		return
	}
	resp := res.resp
	if resp.timeout <= 0 || o.sid != 0 && resp.sessionID != o.sid {
		res.conn.raw.Close()
		o.expired()
		o.startAttempt()
		return
	}
	o.sid, o.passwd = resp.sessionID, resp.passwd
	o.timeout = time.Duration(resp.timeout) * time.Millisecond
	o.c.sessionID.Store(o.sid)
	o.c.timeout.Store(int64(o.timeout))
	o.conn = res.conn
	o.conn.start(o.timeout*2/3, o.c.touch)
	o.lastSend = time.Now()
	o.timer.Reset(o.timeout / 3)
	for _, a := range o.c.cfg.Auth {
		e := enc{make([]byte, 0, 32+len(a.Scheme)+len(a.Payload))}
		e.int32(0)
		e.int32(xidAuth)
		e.int32(opAuth)
		e.int32(0)
		e.string(a.Scheme)
		e.buffer(a.Payload)
		putLength(e.b)
		o.write(e.b)
	}
	o.auths = len(o.c.cfg.Auth)
	o.setWatches()
	if o.auths == 0 {
		o.established()
	}
}

// established makes the session ready: queued requests go out.
func (o *owner) established() {
	o.ready = true
	o.failed = 0
	o.bo.Reset()
	clear(o.reasons)
	o.emit(Event{State: StateConnected, SessionID: o.sid, Timeout: o.timeout, Server: o.conn.addr})
	if !o.ever {
		o.ever = true
		close(o.c.first)
	}
	q := o.queue
	o.queue = nil
	for _, r := range q {
		if err := r.ctx.Err(); err != nil {
			r.reply <- reply{err: err}
			continue
		}
		o.send(r)
	}
}

// expired ends the old session: queued requests fail, every watch gets
// EventLost, and the next handshake asks for a new session.
func (o *owner) expired() {
	o.emit(Event{State: StateExpired, SessionID: o.sid, Err: ErrSessionExpired})
	o.failQueued(ErrSessionExpired)
	o.watches.lostAll(ErrSessionExpired, o.strip)
	o.sid, o.passwd = 0, nil
	o.c.sessionID.Store(0)
}

func (o *owner) strip(p string) string { return stripChroot(o.c.chroot, p) }

// setWatchesMax bounds the path bytes of one setWatches, as Java does.
const setWatchesMax = 128 << 10

// setWatches re-registers every watch, relative to lastZxid, in batches.
func (o *owner) setWatches() {
	lists := [5][]string{}
	lists[0], lists[1], lists[2], lists[3], lists[4] = o.watches.lists()
	clear(o.watches.srv)
	for _, p := range lists[3] {
		o.watches.srv[p] = addWatchPersistent
	}
	for _, p := range lists[4] {
		o.watches.srv[p] = addWatchPersistentRecursive
	}
	for {
		var batch [5][]string
		size, any := 0, false
		for i := range lists {
			for len(lists[i]) > 0 && size < setWatchesMax {
				batch[i] = append(batch[i], lists[i][0])
				size += len(lists[i][0])
				lists[i] = lists[i][1:]
				any = true
			}
		}
		if !any {
			return
		}
		op := opSetWatches2
		if len(batch[3]) == 0 && len(batch[4]) == 0 {
			op = opSetWatches // understood by servers before 3.6
		}
		e := enc{make([]byte, 0, 64+size+4*(len(batch[0])+len(batch[1])+len(batch[2])+len(batch[3])+len(batch[4])))}
		e.int32(0)
		e.int32(xidSetWatches)
		e.int32(op)
		e.int64(o.lastZxid)
		n := 3
		if op == opSetWatches2 {
			n = 5
		}
		for i := range n {
			e.strings(batch[i])
		}
		putLength(e.b)
		o.send(&request{op: op, xid: xidSetWatches, buf: e.b})
	}
}

// beginClose starts closing: closeSession if there is a ready session and
// ctx allows, else at once.
func (o *owner) beginClose(ctx context.Context) {
	o.closing, o.closeCtx = true, ctx
	o.failQueued(ErrClosed)
	if o.ready && ctx.Err() == nil {
		b := []byte{0, 0, 0, 8, 0, 0, 0, 0, 0xff, 0xff, 0xff, byte(opCloseSession & 0xff)}
		o.send(&request{op: opCloseSession, buf: b, xid: 0})
		return
	}
	o.finish(ErrClosed)
}

// finish ends everything: the attempt, the connection, every waiter (with
// err) and every watch (EventLost with err).
func (o *owner) finish(err error) {
	o.finished = true
	o.closing = true
	if o.attempt != nil {
		o.attempt()
		if res := <-o.attemptCh; res.err == nil {
			res.conn.raw.Close()
		}
		o.attempt = nil
	}
	o.dropConn()
	o.failPending(err)
	o.failQueued(err)
	o.watches.lostAll(err, o.strip)
	o.sid = 0
	o.c.sessionID.Store(0)
	if !o.ever {
		var b strings.Builder
		for i, s := range o.c.cfg.Servers {
			if i > 0 {
				b.WriteString("; ")
			}
			reason := "not tried"
			if r := o.reasons[s]; r != nil {
				reason = r.Error()
			}
			b.WriteString(s + ": " + reason)
		}
		cause := err
		if o.closeCtx != nil && o.closeCtx.Err() != nil {
			cause = o.closeCtx.Err()
		}
		if errors.Is(err, ErrAuthFailed) {
			o.c.endErr = err
		} else {
			o.c.endErr = &noSessionError{reasons: b.String(), cause: cause}
		}
	} else {
		o.c.endErr = err
	}
	o.emit(Event{State: StateClosed, Err: err})
}
