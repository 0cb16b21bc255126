package zkclient

import (
	"context"
	"sync"
	"testing"
	"time"
)

// gateCtx is a context whose first Done call waits for gate: it stands for
// a caller descheduled between handing its request over and waiting.
type gateCtx struct {
	context.Context
	once     sync.Once
	inDone   chan struct{}
	gate     chan struct{}
	mu       sync.Mutex
	canceled bool
	done     chan struct{}
}

func (c *gateCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.inDone); <-c.gate })
	return c.done
}
func (c *gateCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return context.Canceled
	}
	return nil
}
func (c *gateCtx) cancel() {
	c.mu.Lock()
	c.canceled = true
	c.mu.Unlock()
	close(c.done)
}

// A watch call whose ctx ended after it was sent but before its reply was
// handled could return success with a channel whose watch the owner had not
// registered (it checked ctx.Err()): the channel got nothing, not even
// EventLost on Close (11 of 20 rounds).
func TestWatchCallSucceedsIffRegistered(t *testing.T) {
	release := make(chan struct{})
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(3000, 5) != nil {
			return
		}
		c.serve(func(xid, op int32, body []byte) []byte {
			<-release
			return replyF(xid, 0, i32(0), statB())
		})
	})
	bad, tried := 0, 0
	for i := range 20 {
		c, ctx := connectScripted(t, addr)
		g := &gateCtx{Context: ctx, inDone: make(chan struct{}), gate: make(chan struct{}), done: make(chan struct{})}
		type res struct {
			ch  <-chan WatchEvent
			err error
		}
		out := make(chan res, 1)
		go func() {
			_, _, ch, err := c.GetW(g, "/n")
			out <- res{ch, err}
		}()
		<-g.inDone // sent, about to wait
		if handOverWaited(c) {
			close(g.gate)
			release <- struct{}{}
			<-out
			c.Close(ctx)
			continue
		}
		tried++
		g.cancel()
		release <- struct{}{}
		ownerState(c, func() bool { return c.o.pending.front() == nil }) // the reply is handled
		close(g.gate)
		r := <-out
		c.Close(ctx)
		if r.err == nil {
			select {
			case <-r.ch:
			default:
				bad++
				t.Logf("round %d: GetW succeeded, its watch got nothing, not even EventLost on Close", i)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d rounds returned a dead watch channel", bad, tried)
	}
	if tried < 10 {
		t.Fatalf("only %d of 20 rounds sent the call before waiting", tried)
	}
}

// handOverWaited reports whether the call whose ctx's Done is gated found
// the owner busy and waits to hand its request over (the round then tests
// nothing: its ctx was to be read after the request was sent).
func handOverWaited(c *Client) bool { return c.inReqs.Load() != 0 }

// AddWatch whose ctx ended after the owner registered the Watcher, before
// the caller took the reply: AddWatch returned ctx's error and the Watcher
// stayed registered, with nobody to Remove it (9 of 20 rounds).
func TestAddWatchFailsIffNotRegistered(t *testing.T) {
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(3000, 5) != nil {
			return
		}
		c.serve(func(xid, op int32, body []byte) []byte { return replyF(xid, 0) })
	})
	ghosts, tried := 0, 0
	for range 20 {
		c, ctx := connectScripted(t, addr)
		g := &gateCtx{Context: ctx, inDone: make(chan struct{}), gate: make(chan struct{}), done: make(chan struct{})}
		out := make(chan error, 1)
		go func() {
			_, err := c.AddWatch(g, "/p", true)
			out <- err
		}()
		<-g.inDone
		if handOverWaited(c) {
			close(g.gate)
			<-out
			c.Close(ctx)
			continue
		}
		tried++
		ownerState(c, func() bool { return len(c.o.watches.recursive["/p"]) > 0 }) // registered and answered
		g.cancel()
		close(g.gate)
		err := <-out
		c.o.mu.Lock()
		n := len(c.o.watches.recursive["/p"])
		c.o.mu.Unlock()
		if err != nil && n > 0 {
			ghosts++
		}
		c.Close(ctx)
	}
	if ghosts > 0 {
		t.Fatalf("%d of %d AddWatch calls failed with ctx's error yet left their Watcher registered", ghosts, tried)
	}
	if tried < 10 {
		t.Fatalf("only %d of 20 rounds sent the call before waiting", tried)
	}
}

// ownerState waits until cond, read under the owner's mu, holds.
func ownerState(c *Client, cond func() bool) {
	for {
		c.o.mu.Lock()
		ok := cond()
		c.o.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}
