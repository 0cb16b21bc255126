package zkclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The session's life on the owner goroutine: attempts to reach a server,
// establishing or expiring the session, re-registering watches, closing.

// startAttempt tries the next server, in a goroutine of its own.
func (o *owner) startAttempt() {
	addr := o.servers[o.next]
	o.next = (o.next + 1) % len(o.servers)
	limit := o.c.cfg.ConnectTimeout
	if o.c.connectDefault && o.timeout > 0 {
		limit = o.timeout / 3 // what was granted, not what was asked
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	o.attempt = cancel
	p := handshakeParams{
		addr:     addr,
		lastZxid: o.lastZxid,
		timeout:  o.c.cfg.SessionTimeout,
		sid:      o.sid,
		passwd:   o.passwd,
		limit:    limit,
	}
	go func() {
		o.attemptCh <- dialServer(ctx, &o.c.cfg, p)
	}()
}

// attempted takes the outcome of an attempt.
func (o *owner) attempted(res attemptResult) {
	o.attempt()
	o.attempt = nil
	if res.err == nil && res.resp.timeout <= 0 && o.sid == 0 {
		// No session to have expired: a server that grants none fails
		// the attempt, retried with the others and the backoff.
		res.conn.raw.Close()
		res.conn, res.err = nil, fmt.Errorf("%w: the server granted a session timeout of %d ms", errProtocol, res.resp.timeout)
	}
	o.c.cfg.Hooks.attempt(res.addr, res.err)
	if res.err != nil {
		o.reasons[res.addr] = res.err
		o.c.log.Debug("zk: server unavailable", "server", res.addr, "err", res.err)
		o.failed++
		if o.failed%len(o.servers) == 0 {
			wait := o.bo.NextBackOff()
			o.c.log.Warn("zk: no server reachable", "servers", len(o.servers), "retry_in", wait, "last_err", res.err)
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
	o.conn.direct = o.notifyDirect
	o.healthy = false
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
		if err := r.ctx.Err(); err != nil && r.remove == nil { // a Remove still cleans up
			r.reply <- reply{err: err}
			continue
		}
		o.submit(r)
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
		res := <-o.attemptCh
		if res.err == nil {
			res.conn.raw.Close()
		}
		if o.reasons[res.addr] == nil {
			o.reasons[res.addr] = errors.New("attempt under way when the client closed")
		}
		o.attempt = nil
	}
	if o.conn != nil && !o.ready {
		o.reasons[o.conn.addr] = errors.New("connected, but the authentication was not answered")
	}
	o.dropConn()
	o.failPending(err)
	o.failQueued(err)
	o.watches.lostAll(err, o.strip)
	o.sid = 0
	o.c.sessionID.Store(0)
	if !o.ever {
		cause := err
		if o.closeCtx != nil && o.closeCtx.Err() != nil {
			cause = o.closeCtx.Err()
		}
		if errors.Is(err, ErrAuthFailed) {
			o.c.endErr = err
		} else {
			o.c.endErr = &noSessionError{reasons: o.reasonsText(), cause: cause}
		}
	} else {
		o.c.endErr = err
	}
	o.emit(Event{State: StateClosed, Err: err})
}

// reasonsText says why each server gave no session, each server once and
// at most maxReasons of them, so that a long or repetitive server list
// makes a readable error.
func (o *owner) reasonsText() string {
	const maxReasons = 8
	var b strings.Builder
	seen := make(map[string]bool)
	for _, s := range o.c.cfg.Servers {
		if seen[s] {
			continue
		}
		seen[s] = true
		if len(seen) > maxReasons {
			continue
		}
		if len(seen) > 1 {
			b.WriteString("; ")
		}
		reason := "not tried"
		if r := o.reasons[s]; r != nil {
			reason = strings.TrimPrefix(r.Error(), "zk: ") // the message has it once
		}
		b.WriteString(s + ": " + reason)
	}
	if n := len(seen) - maxReasons; n > 0 {
		fmt.Fprintf(&b, "; and %d more", n)
	}
	return b.String()
}
