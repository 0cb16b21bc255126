package zkclient

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setWatches refused on a reconnect, with an AddWatch queued while
// disconnected going out right behind it: lostAll cleared srv (which the
// AddWatch's send had just set), then the AddWatch succeeded and its Watcher
// was registered with srv not knowing the server held it. A GetW on the path
// was then sent with its watch flag, which replaces the persistent watch on
// servers before 3.9 (the thing the holds and srv exist to prevent).
func TestRefusedSetWatchesKeepsAnAddWatchInFlight(t *testing.T) {
	gate := make(chan struct{})
	flag := make(chan byte, 4)
	addr := refusedSetWatchesServer(t, gate, flag)
	c, ctx := connectScripted(t, addr)
	if _, err := c.AddWatch(ctx, "/a", false); err != nil { // so that setWatches is sent
		t.Fatal(err)
	}
	c.Sync(ctx, "/") // the server hangs up
	ownerState(c, func() bool { return !c.o.ready })
	wch := make(chan *Watcher, 1)
	go func() {
		w, err := c.AddWatch(ctx, "/n", false)
		if err != nil {
			t.Error(err)
		}
		wch <- w
	}()
	queuedLen(c, 1)
	close(gate)
	if w := <-wch; w == nil {
		t.Fatal("no watcher")
	}
	c.o.mu.Lock()
	mode, ok := c.o.watches.srv["/n"]
	nw := len(c.o.watches.persist["/n"])
	c.o.mu.Unlock()
	t.Logf("after AddWatch(/n): watchers %d, srv[/n] = %d (known %v)", nw, mode, ok)
	if _, _, _, err := c.GetW(ctx, "/n"); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-flag:
		if f != 0 {
			t.Fatalf("GetW(/n) sent with watch flag %d while the server holds /n's persistent watch (the AddWatch succeeded after the refused setWatches): the one-shot watch replaces it before 3.9", f)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no getData")
	}
	_ = context.Background
}

// A Remove whose ctx had ended before it reached the owner (already ended,
// or ended while waiting to be handed over), or a FailFast Remove made
// while disconnected, returned an error and ended the Watcher, but the
// Watcher stayed in the registry for the rest of the session: re-registered
// on every reconnect, its events still sent, and Removes of other watchers
// on the path keeping the server's watch. A Remove now always reaches the
// owner: it only cleans up.
func TestRemoveWithAnEndedCtxStillUnregisters(t *testing.T) {
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(3000, 5) != nil {
			return
		}
		c.serve(func(xid, op int32, body []byte) []byte { return replyF(xid, 0) })
	})
	c, ctx := connectScripted(t, addr)
	w, err := c.AddWatch(ctx, "/p", false)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	t.Logf("Remove with an ended ctx: %v", w.Remove(cctx))
	c.o.mu.Lock()
	n := len(c.o.watches.persist["/p"])
	c.o.mu.Unlock()
	if n != 0 {
		t.Fatalf("the removed (ended) Watcher is still registered: %d watcher(s) on /p, re-registered on every reconnect", n)
	}
}

// Watch calls on two paths from six goroutines, with short deadlines,
// across connection cuts, then Close: every call returns, no hold is left,
// and every channel a successful watch call returned gets exactly one event
// and is closed.
func TestWatchCallsUnderCutsAndClose(t *testing.T) {
	c, _, p, direct := proxied(t, Config{SessionTimeout: 4 * time.Second})
	ctx := ctxT(t)
	paths := []string{"/s0", "/s1"}
	for _, q := range paths {
		if _, _, err := c.Create(ctx, q, nil, all, Persistent, 0); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var mu sync.Mutex
	var chans []<-chan WatchEvent
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var ws []*Watcher
			for {
				select {
				case <-stop:
					return
				default:
				}
				q := paths[rng.IntN(len(paths))]
				d := time.Duration(1+rng.IntN(30)) * time.Millisecond
				cctx, cancel := context.WithTimeout(context.Background(), d)
				var ch <-chan WatchEvent
				var err error
				switch rng.IntN(6) {
				case 0:
					if w, err := c.AddWatch(cctx, q, rng.IntN(2) == 0); err == nil {
						ws = append(ws, w)
					}
				case 1:
					if len(ws) > 0 {
						k := rng.IntN(len(ws))
						ws[k].Remove(cctx)
						ws = append(ws[:k], ws[k+1:]...)
					}
				case 2:
					_, _, ch, err = c.GetW(cctx, q)
				case 3:
					_, ch, err = c.ExistsW(cctx, q)
				case 4:
					_, _, ch, err = c.ChildrenW(cctx, q)
				case 5:
					direct.Set(cctx, q, []byte("x"), -1)
				}
				cancel()
				if err == nil && ch != nil {
					mu.Lock()
					chans = append(chans, ch)
					mu.Unlock()
				}
			}
		}()
	}
	for range 4 {
		time.Sleep(300 * time.Millisecond)
		p.Cut()
		time.Sleep(100 * time.Millisecond)
		p.Heal()
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("callers hung")
	}
	if err := c.Sync(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	c.o.mu.Lock()
	for k, h := range c.o.holds {
		t.Errorf("hold left on %s: %+v", k, *h)
	}
	c.o.mu.Unlock()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c.Close(cctx)
	cancel()
	bad := 0
	for i, ch := range chans {
		n := 0
		for {
			select {
			case _, ok := <-ch:
				if ok {
					n++
					continue
				}
			default:
				n = -1 - n // open and empty
			}
			break
		}
		if n != 1 {
			bad++
			if bad < 5 {
				t.Errorf("channel %d: %d events (negative: left open)", i, n)
			}
		}
	}
	t.Logf("%d channels, %d bad", len(chans), bad)
}

// A FailFast Remove while disconnected failed with ErrConnectionLoss and
// ended the Watcher, which stayed registered, and setWatches re-registered
// it. With no connection the server holds no watch of this client: the
// Remove is done at once.
func TestRemoveWhileDisconnectedUnregistersAtOnce(t *testing.T) {
	var conns atomic.Int64
	gate := make(chan struct{})
	_, addr := hostile(t, func(c *sconn) {
		if !c.secondWaits(&conns, gate) || c.handshake(3000, 5) != nil {
			return
		}
		c.serveOrHangUp(func(xid, op int32, body []byte) ([]byte, bool) {
			if op == opSync {
				return nil, true // hang up
			}
			return replyF(xid, 0), false
		})
	})
	c, ctx := connectScripted(t, addr)
	w, err := c.AddWatch(ctx, "/p", false)
	if err != nil {
		t.Fatal(err)
	}
	c.Sync(ctx, "/")
	ownerState(c, func() bool { return !c.o.ready })
	t.Logf("FailFast Remove while disconnected: %v", w.Remove(FailFast(ctx)))
	c.o.mu.Lock()
	n := len(c.o.watches.persist["/p"])
	c.o.mu.Unlock()
	close(gate)
	if n != 0 {
		t.Fatalf("%d watcher(s) still registered on /p after its Remove ended it; the next setWatches re-registers it", n)
	}
}
