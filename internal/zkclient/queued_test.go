package zkclient

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// queuedLen waits until n requests are queued for a connection.
func queuedLen(c *Client, n int) {
	ownerState(c, func() bool { return len(c.o.queue) == n })
}

// AddWatch(recursive) then AddWatch(plain) on one path, both queued while
// disconnected: both were decided when queued and sent on reconnect, and
// the plain one replaced the recursive one on a 3.8 server.
func TestQueuedAddWatchesKeepTheRecursiveOne(t *testing.T) {
	c, ev, p, direct := proxied(t, Config{SessionTimeout: 4 * time.Second})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/q", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, "/q/a", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	ev.await(t, StateDisconnected)
	recCh := make(chan *Watcher, 1)
	go func() {
		w, err := c.AddWatch(ctx, "/q", true)
		if err != nil {
			t.Error(err)
		}
		recCh <- w
	}()
	queuedLen(c, 1)
	plainDone := make(chan struct{})
	go func() {
		defer close(plainDone)
		if _, err := c.AddWatch(ctx, "/q", false); err != nil {
			t.Error(err)
		}
	}()
	queuedLen(c, 2)
	p.Heal()
	rec := <-recCh
	<-plainDone
	if rec == nil {
		t.Fatal("no watcher")
	}
	if _, err := direct.Set(ctx, "/q/a", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	barrier(t, c, "/q-barrier")
	if evs := rec.Take(); len(evs) != 1 {
		c.o.mu.Lock()
		t.Logf("srv[/q] = %d", c.o.watches.srv["/q"])
		c.o.mu.Unlock()
		t.Fatalf("recursive watcher got %+v, want NodeDataChanged /q/a", evs)
	}
}

// GetW then Remove of the path's persistent watch, both queued while
// disconnected: the Remove was decided when queued (no one-shot yet), so
// removeWatches went out after the GetW (sent with its flag) and removed
// the GetW's watch on the server: GetW succeeded with a dead channel.
func TestQueuedRemoveSparesAQueuedGetW(t *testing.T) {
	c, ev, p, direct := proxied(t, Config{SessionTimeout: 4 * time.Second})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/g", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	w, err := c.AddWatch(ctx, "/g", false)
	if err != nil {
		t.Fatal(err)
	}
	p.Cut()
	ev.await(t, StateDisconnected)
	chCh := make(chan (<-chan WatchEvent), 1)
	go func() {
		_, _, ch, err := c.GetW(ctx, "/g")
		if err != nil {
			t.Error(err)
		}
		chCh <- ch
	}()
	queuedLen(c, 1)
	remDone := make(chan struct{})
	go func() {
		defer close(remDone)
		if err := w.Remove(ctx); err != nil {
			t.Error(err)
		}
	}()
	<-remDone // done at once: no connection, nothing on the server to remove
	p.Heal()
	ch := <-chCh
	<-remDone
	if ch == nil {
		t.Fatal("no channel")
	}
	if _, err := direct.Set(ctx, "/g", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		t.Logf("fired: %+v", ev)
	case <-time.After(3 * time.Second):
		t.Fatal("GetW succeeded but its watch did not fire on Set: removed by the queued Remove")
	}
}

// A call made from OnEvent with a deadline (documented as forbidden) ends
// at its deadline. When a caller whose ctx ended took the owner's mu to
// settle its reply, this one, on the owner goroutine, deadlocked.
func TestCallFromOnEventEndsWithItsCtx(t *testing.T) {
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(3000, 5) != nil {
			return
		}
		c.serveOrHangUp(func(xid, op int32, body []byte) ([]byte, bool) {
			return nil, op == opExists // hang up on exists; sync: never answered
		})
	})
	var cl atomic.Pointer[Client]
	returned := make(chan error, 1)
	cfg := Config{Servers: []string{addr}, SessionTimeout: 3 * time.Second,
		OnEvent: func(ev Event) {
			c := cl.Load()
			if c == nil || ev.State != StateConnected {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			returned <- c.Sync(ctx, "/x") // never answered: ends with ctx
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl.Store(c)
	c.Exists(ctx, "/hang-up") // the server hangs up; on the reconnect, OnEvent calls
	select {
	case err := <-returned:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("OnEvent's call returned %v, want its ctx's deadline", err)
		}
		c.Close(ctx)
	case <-time.After(3 * time.Second):
		t.Fatal("the call made in OnEvent never returned: the owner deadlocked")
	}
}

// setWatches refused on a reconnect while a queued GetW on a path with a
// persistent watch goes out right behind it, its watch flag cleared because
// setWatches had registered the persistent watch: every watch got EventLost,
// but the GetW then succeeded with a watch the server did not hold, which
// never fired.
func TestRefusedSetWatchesLosesAReadThatReliedOnIt(t *testing.T) {
	gate := make(chan struct{})
	flag := make(chan byte, 1)
	addr := refusedSetWatchesServer(t, gate, flag)
	c, ctx := connectScripted(t, addr)
	if _, err := c.AddWatch(ctx, "/n", false); err != nil {
		t.Fatal(err)
	}
	c.Sync(ctx, "/") // the server hangs up
	ownerState(c, func() bool { return !c.o.ready })
	type res struct {
		ch  <-chan WatchEvent
		err error
	}
	out := make(chan res, 1)
	go func() {
		_, _, ch, err := c.GetW(ctx, "/n")
		out <- res{ch, err}
	}()
	queuedLen(c, 1)
	close(gate)
	r := <-out
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("GetW sent with watch flag %d", <-flag)
	select {
	case ev := <-r.ch:
		t.Logf("got %+v", ev)
	case <-time.After(time.Second):
		t.Fatal("GetW succeeded after setWatches was refused; its watch was sent without the flag, the server holds nothing and it got no EventLost")
	}
}

// refusedSetWatchesServer is a scripted server that hangs up on a sync and
// refuses setWatches, and whose second connection waits for gate. It
// answers addWatch, and getData with a stat, sending each getData's watch
// flag on flag.
func refusedSetWatchesServer(t *testing.T, gate <-chan struct{}, flag chan<- byte) string {
	var conns atomic.Int64
	_, addr := hostile(t, func(c *sconn) {
		if !c.secondWaits(&conns, gate) || c.handshake(3000, 5) != nil {
			return
		}
		c.serveOrHangUp(func(xid, op int32, body []byte) ([]byte, bool) {
			switch op {
			case opAddWatch:
				return replyF(xid, 0), false
			case opSync:
				return nil, true
			case opGetData:
				flag <- body[len(body)-1]
				return replyF(xid, 0, i32(0), statB()), false
			case opSetWatches, opSetWatches2:
				return replyF(xid, int32(ErrMarshalling)), false
			}
			return nil, false
		})
	})
	return addr
}
