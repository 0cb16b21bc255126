package zkclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// proxied returns a client connected through a new proxy to the shared
// server, under its own root, and a direct client to the same root.
func proxied(t *testing.T, cfg Config) (*Client, *events, *zktest.Proxy, *Client) {
	t.Helper()
	root := zktest.Shared(t).Root(t)
	addr, chroot, _ := strings.Cut(root, "/")
	p := zktest.ProxyT(t, addr)
	c, ev := connectT(t, p.Addr()+"/"+chroot, cfg)
	direct, _ := connectT(t, root, Config{})
	return c, ev, p, direct
}

func TestReconnectWatchFires(t *testing.T) {
	c, ev, p, direct := proxied(t, Config{SessionTimeout: 4 * time.Second})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/n", []byte("1"), all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	_, _, dch, err := c.GetW(ctx, "/n")
	if err != nil {
		t.Fatal(err)
	}
	_, ech, err := c.ExistsW(ctx, "/later")
	if err != nil {
		t.Fatal(err)
	}
	sid := c.SessionID()
	p.Cut()
	ev.await(t, StateDisconnected)
	if _, err := direct.Set(ctx, "/n", []byte("2"), -1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := direct.Create(ctx, "/later", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	p.Heal()
	if got := ev.await(t, StateConnected); got.SessionID != sid {
		t.Fatalf("session %#x after reconnect, want %#x", got.SessionID, sid)
	}
	if e := awaitWatch(t, dch); e.Type != EventNodeDataChanged || e.Path != "/n" {
		t.Fatalf("data watch after reconnect: %+v", e)
	}
	if e := awaitWatch(t, ech); e.Type != EventNodeCreated || e.Path != "/later" {
		t.Fatalf("exist watch after reconnect: %+v", e)
	}
}

func TestStallDisconnectsAndPendingFails(t *testing.T) {
	const timeout = 3 * time.Second
	c, ev, p, _ := proxied(t, Config{SessionTimeout: timeout})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/s", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Stall()
	if _, _, err := c.Get(ctx, "/s"); !errors.Is(err, ErrConnectionLoss) {
		t.Fatalf("Get through a stalled connection: %v, want ErrConnectionLoss", err)
	}
	ev.await(t, StateDisconnected)
	// Two thirds of the negotiated timeout, plus scheduling slack.
	if limit := c.SessionTimeout()*2/3 + 500*time.Millisecond; time.Since(start) > limit {
		t.Errorf("disconnected after %v, want within %v", time.Since(start), limit)
	}
	// A request made while disconnected waits for the next connection.
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Get(ctx, "/s")
		done <- err
	}()
	p.Heal()
	ev.await(t, StateConnected)
	if err := <-done; err != nil {
		t.Fatalf("Get queued while disconnected: %v", err)
	}
}

func TestLostReply(t *testing.T) {
	c, ev, p, _ := proxied(t, Config{})
	ctx := ctxT(t)
	sid := c.SessionID()
	p.LoseReplyTo(zktest.OpCreate2)
	if _, _, err := c.Create(ctx, "/x", nil, all, Persistent, 0); !errors.Is(err, ErrConnectionLoss) {
		t.Fatalf("Create with a lost reply: %v, want ErrConnectionLoss", err)
	}
	ev.await(t, StateDisconnected)
	if got := ev.await(t, StateConnected); got.SessionID != sid {
		t.Fatalf("new session %#x, want %#x", got.SessionID, sid)
	}
	if st, err := c.Exists(ctx, "/x"); st == nil || err != nil {
		t.Fatalf("the server applied the create: Exists = %v, %v", st, err)
	}
}

func TestExpiry(t *testing.T) {
	c, ev, p, _ := proxied(t, Config{SessionTimeout: 4 * time.Second})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/e", nil, all, Ephemeral, 0); err != nil {
		t.Fatal(err)
	}
	_, _, dch, err := c.GetW(ctx, "/e")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.AddWatch(ctx, "/", true)
	if err != nil {
		t.Fatal(err)
	}
	old := c.SessionID()
	// Expire attaches to the session from elsewhere; keep the client from
	// re-attaching first (it reconnects at once).
	p.Cut()
	ev.await(t, StateDisconnected)
	// A request made while disconnected waits, and fails with the session.
	queued := make(chan error, 1)
	go func() {
		_, err := c.Exists(ctx, "/e")
		queued <- err
	}()
	if err := p.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	p.Heal()
	if got := ev.await(t, StateExpired); got.SessionID != old {
		t.Fatalf("expired session %#x, want %#x", got.SessionID, old)
	}
	e := awaitWatch(t, dch)
	if e.Type != EventLost && e.Type != EventNodeDeleted {
		t.Fatalf("one-shot watch on expiry: %+v", e)
	}
	if e.Type == EventLost && !errors.Is(e.Err, ErrSessionExpired) {
		t.Fatalf("one-shot watch lost with %v", e.Err)
	}
	if err := <-queued; !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("request queued across the expiry: %v, want ErrSessionExpired", err)
	}
	got := ev.await(t, StateConnected)
	if got.SessionID == 0 || got.SessionID == old || c.SessionID() != got.SessionID {
		t.Fatalf("new session %#x (client says %#x), old %#x", got.SessionID, c.SessionID(), old)
	}
	evs := takeUntilLost(t, w)
	if last := evs[len(evs)-1]; !errors.Is(last.Err, ErrSessionExpired) {
		t.Fatalf("persistent watch ended with %+v", last)
	}
	if st, err := c.Exists(ctx, "/e"); st != nil || err != nil {
		t.Fatalf("ephemeral of the expired session: %v, %v", st, err)
	}
}

// takeUntilLost collects w's events up to and including EventLost.
func takeUntilLost(t *testing.T, w *Watcher) []WatchEvent {
	t.Helper()
	var all []WatchEvent
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for {
		select {
		case <-w.Events():
			all = append(all, w.Take()...)
			if len(all) > 0 && all[len(all)-1].Type == EventLost {
				return all
			}
		case <-timer.C:
			t.Fatalf("no EventLost within %v; got %+v", eventTimeout, all)
		}
	}
}

func TestServerRestart(t *testing.T) {
	cl := zktest.StartT(t, 1)
	c, ev := connectT(t, cl.ConnectString(), Config{SessionTimeout: 10 * time.Second})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/r", []byte("v"), all, Ephemeral, 0); err != nil {
		t.Fatal(err)
	}
	sid := c.SessionID()
	if err := cl.Kill(0); err != nil {
		t.Fatal(err)
	}
	ev.await(t, StateDisconnected)
	if err := cl.Restart(0); err != nil {
		t.Fatal(err)
	}
	if got := ev.await(t, StateConnected); got.SessionID != sid {
		t.Logf("events: %+v", drain(ev))
		t.Fatalf("session %#x after restart, want %#x", got.SessionID, sid)
	}
	if data, _, err := c.Get(ctx, "/r"); err != nil || string(data) != "v" {
		t.Fatalf("Get after restart = %q, %v", data, err)
	}
}

func TestAuthResentAfterCut(t *testing.T) {
	c, ev, p, direct := proxied(t, Config{Auth: []Auth{{"digest", []byte("bob:pw")}}})
	ctx := ctxT(t)
	if _, _, err := direct.Create(ctx, "/secret", []byte("s"), DigestACL(PermRead, "bob", "pw"), Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "/secret"); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	ev.await(t, StateDisconnected)
	p.Heal()
	ev.await(t, StateConnected)
	if data, _, err := c.Get(ctx, "/secret"); err != nil || string(data) != "s" {
		t.Fatalf("Get of an auth-only node after reconnect = %q, %v", data, err)
	}
}

func TestAuthFailedCloses(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	servers, chroot, _ := ParseConnectString(root)
	ev := newEvents()
	ctx := ctxT(t)
	c, err := Connect(ctx, Config{Servers: servers, Chroot: chroot, OnEvent: ev.on,
		Auth: []Auth{{"no-such-scheme", []byte("x")}}})
	if c != nil || !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Connect with a bad auth = %v, %v; want ErrAuthFailed", c, err)
	}
	ev.await(t, StateAuthFailed)
	ev.await(t, StateClosed)
}

// silentListener accepts connections and never answers; it is closed when
// t ends.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// refusedAddr returns an address where nothing listens.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// inOrder makes clients connected during t try servers in the listed order.
func inOrder(t *testing.T) {
	saved := shuffle
	shuffle = func([]string) {}
	t.Cleanup(func() { shuffle = saved })
}

func TestUnresolvableHostSkipped(t *testing.T) {
	inOrder(t)
	good := zktest.Shared(t).Addr(0)
	start := time.Now()
	c, _ := connectT(t, "", Config{Servers: []string{"no-such-host.invalid:2181", refusedAddr(t), good}})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Connect took %v", d)
	}
	if _, err := c.Exists(ctxT(t), "/"); err != nil {
		t.Fatal(err)
	}
}

func TestSilentServerSkipped(t *testing.T) {
	inOrder(t)
	const attempt = 500 * time.Millisecond
	good := zktest.Shared(t).Addr(0)
	start := time.Now()
	connectT(t, "", Config{Servers: []string{silentListener(t), good}, SessionTimeout: 2 * time.Second, ConnectTimeout: attempt})
	// The silent server is tried first and costs one attempt.
	if d := time.Since(start); d < attempt || d > attempt+time.Second {
		t.Errorf("Connect took %v, want about %v", d, attempt)
	}
}

func TestConnectNamesEveryHost(t *testing.T) {
	silent, refused := silentListener(t), refusedAddr(t)
	servers := []string{silent, "no-such-host.invalid:2181", refused}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := Connect(ctx, Config{Servers: servers, ConnectTimeout: 300 * time.Millisecond})
	if c != nil || err == nil {
		t.Fatal("Connect to unreachable hosts succeeded")
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("Connect returned after %v", d)
	}
	msg := err.Error()
	for _, want := range []string{"zk: no session: ", silent + ": no answer within 300ms", "no-such-host.invalid:2181: ", refused + ": "} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the ctx's error", err)
	}
}

func TestCloseStalled(t *testing.T) {
	c, _, p, _ := proxied(t, Config{})
	ctx := ctxT(t)
	_, _, dch, err := c.GetW(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	p.Stall()
	start := time.Now()
	cctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c.Close(cctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if e := awaitWatch(t, dch); e.Type != EventLost || !errors.Is(e.Err, ErrClosed) {
		t.Errorf("watch after Close: %+v", e)
	}
	if _, err := c.Exists(ctx, "/"); !errors.Is(err, ErrClosed) {
		t.Errorf("Exists after Close: %v", err)
	}
	if c.SessionID() != 0 || c.State() != StateClosed {
		t.Errorf("after Close: session %#x, state %v", c.SessionID(), c.State())
	}
	c.Close(ctx) // idempotent
}

func TestCloseEndsSession(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	c, _ := connectT(t, root, Config{})
	other, _ := connectT(t, root, Config{})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/eph", nil, all, Ephemeral, 0); err != nil {
		t.Fatal(err)
	}
	_, ch, err := other.ExistsW(ctx, "/eph")
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if e := awaitWatch(t, ch); e.Type != EventNodeDeleted {
		t.Fatalf("ephemeral after Close: %+v", e)
	}
}

func TestEnsembleLeaderKill(t *testing.T) {
	cl := zktest.StartT(t, 3)
	c, ev := connectT(t, cl.ConnectString(), Config{SessionTimeout: 10 * time.Second})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/k", nil, all, Ephemeral, 0); err != nil {
		t.Fatal(err)
	}
	sid := c.SessionID()
	leader, err := cl.Leader()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Kill(leader); err != nil {
		t.Fatal(err)
	}
	ev.await(t, StateDisconnected)
	got := ev.await(t, StateConnected)
	if got.SessionID != sid {
		t.Fatalf("session %#x after leader kill, want %#x", got.SessionID, sid)
	}
	if got.Server == cl.Addr(leader) {
		t.Fatalf("reconnected to the killed server %s", got.Server)
	}
	if st, err := c.Exists(ctx, "/k"); st == nil || err != nil {
		t.Fatalf("ephemeral after failover: %v, %v", st, err)
	}
}

func drain(e *events) []Event {
	var v []Event
	for {
		select {
		case ev := <-e.ch:
			v = append(v, ev)
		default:
			return v
		}
	}
}

// TestDialerWithoutConnection: a dialer that returns neither a connection
// nor an error fails its attempt; it used to crash the process from the
// client's goroutine.
func TestDialerWithoutConnection(t *testing.T) {
	addr := zktest.Shared(t).Addr(0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	dial := func(context.Context, string, string) (net.Conn, error) { return nil, nil }
	c, err := Connect(ctx, Config{Servers: []string{addr}, Dial: dial})
	if c != nil || err == nil || !strings.Contains(err.Error(), "no connection and no error") {
		t.Fatalf("Connect = %v, %v; want the attempt's failure", c, err)
	}
}

// TestLongSessionTimeout: a session timeout beyond what the protocol's 32
// bits of milliseconds hold is asked as the longest it can carry, and the
// server grants its maximum; it used to wrap around and get the minimum.
func TestLongSessionTimeout(t *testing.T) {
	addr := zktest.Shared(t).Addr(0)
	c, _ := connectT(t, "", Config{Servers: []string{addr}, SessionTimeout: 24 * time.Hour})
	max := c.SessionTimeout()
	c2, _ := connectT(t, "", Config{Servers: []string{addr}, SessionTimeout: 25 * 24 * time.Hour})
	if got := c2.SessionTimeout(); got != max {
		t.Errorf("asked 25 days: granted %v, want the server's maximum %v", got, max)
	}
}

// TestAttemptsFollowTheGrantedTimeout: once the server has granted a
// session timeout, an attempt without a ConnectTimeout of its own gets a
// third of it, not a third of what was asked.
func TestAttemptsFollowTheGrantedTimeout(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		d, _ := ctx.Deadline()
		deadlines <- time.Until(d)
		return nil, errors.New("no")
	}
	for _, tc := range []struct {
		connect, granted, want time.Duration
		defaulted              bool
	}{
		{connect: 8 * time.Hour, granted: 0, want: 8 * time.Hour, defaulted: true},
		{connect: 8 * time.Hour, granted: 3 * time.Second, want: time.Second, defaulted: true},
		{connect: 8 * time.Hour, granted: 3 * time.Second, want: 8 * time.Hour},
	} {
		c := &Client{cfg: Config{Servers: []string{"x:1"}, ConnectTimeout: tc.connect, Dial: dial}, connectDefault: tc.defaulted}
		o := newOwner(c)
		o.timeout = tc.granted
		o.startAttempt()
		<-o.attemptCh
		o.attempt()
		if got := <-deadlines; got > tc.want || got < tc.want-time.Second {
			t.Errorf("%+v: the attempt had %v", tc, got)
		}
	}
}

// TestConnectErrorNamesEachServerOnce: the error of a Connect that got no
// session names each server once, at most 8 of them, and says of the one
// still being tried that it was.
func TestConnectErrorNamesEachServerOnce(t *testing.T) {
	silent := silentListener(t)
	var servers []string
	for range 100 {
		servers = append(servers, silent)
	}
	for i := range 20 {
		servers = append(servers, fmt.Sprintf("host-%d.invalid:2181", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Connect(ctx, Config{Servers: servers, ConnectTimeout: time.Hour})
	if err == nil {
		t.Fatal("Connect succeeded")
	}
	msg := err.Error()
	if n := strings.Count(msg, silent); n != 1 || len(msg) > 2000 || !strings.Contains(msg, "and 13 more") {
		t.Errorf("error names the silent server %d times in %d bytes: %s", n, len(msg), msg)
	}
	if strings.Contains(msg, silent+": not tried") || !strings.Contains(msg, silent+": attempt under way") {
		t.Errorf("the server being tried when ctx ended: %s", msg)
	}
}

// TestFailFast: without a connection, a call marked FailFast fails at once
// with ErrConnectionLoss; an unmarked one waits for the connection (here,
// until its ctx ends), and both work again after Heal.
func TestFailFast(t *testing.T) {
	c, ev, p, _ := proxied(t, Config{SessionTimeout: 10 * time.Second})
	ctx := ctxT(t)
	p.Cut()
	ev.await(t, StateDisconnected)
	start := time.Now()
	_, _, err := c.Get(FailFast(ctx), "/")
	if !errors.Is(err, ErrConnectionLoss) || time.Since(start) > time.Second {
		t.Errorf("FailFast Get while cut off: %v after %v, want ErrConnectionLoss at once", err, time.Since(start))
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, _, err := c.Get(short, "/"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get while cut off: %v, want it to wait until ctx ends", err)
	}
	p.Heal()
	ev.await(t, StateConnected)
	if _, _, err := c.Get(FailFast(ctx), "/"); err != nil {
		t.Errorf("FailFast Get once connected: %v", err)
	}
}
