package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

func TestGuardedWriteFailsOnceTheNodeIsGone(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(8*time.Second))
	other := connect(t, root, WithSessionTimeout(8*time.Second)) // a loaded machine must not expire it
	ctx := testCtx(t)
	if _, err := s.Create(ctx, "/config", []byte("0"), Persistent); err != nil {
		t.Fatal(err)
	}
	r := newReferee(t)
	join(t, r, "", s, "/leader", "a")
	r.awaitGrant("a", 5*time.Second)
	l := r.current("a")

	if _, err := s.Txn(ctx, l.Guard(), SetOp("/config", []byte("1"), AnyVersion)); err != nil {
		t.Fatalf("leader's guarded write: %v", err)
	}
	// Another session deletes the leader's node behind its back. The leader
	// watches its node, but news reach it late (a slow link): it still
	// believes it leads when it writes.
	ps, err := other.Participants(ctx, "/leader")
	if err != nil || len(ps) != 1 {
		t.Fatalf("participants %+v %v", ps, err)
	}
	proxy.Delay(500 * time.Millisecond)
	if err := other.Delete(ctx, "/leader/"+ps[0].Node, AnyVersion); err != nil {
		t.Fatal(err)
	}
	believed := l.IsLeader && l.Context.Err() == nil
	_, err = s.Txn(ctx, l.Guard(), SetOp("/config", []byte("2"), AnyVersion))
	if !believed {
		t.Fatal("the test did not write while the process believed it led")
	}
	var te *TxnError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &te) || te.Index != 0 || te.Op != "guard" || te.Path != "/leader/"+ps[0].Node {
		t.Fatalf("guarded write of a deposed leader: %v, want op 0 guard on its node failing with ErrNotLeader", err)
	}
	if data, _, err := other.Get(ctx, "/config"); err != nil || string(data) != "1" {
		t.Fatalf("config %q (%v): want the leader's write only", data, err)
	}
	proxy.Delay(0)
}

func TestGuardedWriteFailsAfterExpiry(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(8*time.Second))
	ctx := testCtx(t)
	if _, err := s.Create(ctx, "/config", []byte("0"), Persistent); err != nil {
		t.Fatal(err)
	}
	r := newReferee(t)
	join(t, r, "", s, "/leader", "a")
	r.awaitGrant("a", 5*time.Second)
	l := r.current("a")
	if _, err := s.Txn(ctx, l.Guard(), SetOp("/config", []byte("1"), AnyVersion)); err != nil {
		t.Fatalf("leader's guarded write: %v", err)
	}
	if err := proxy.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	// Until the client has reconnected it may only hear that the connection
	// or session is gone; it must never commit.
	for {
		_, err := s.Txn(ctx, l.Guard(), SetOp("/config", []byte("2"), AnyVersion))
		if err == nil {
			t.Fatal("a guarded write committed after the session expired")
		}
		if errors.Is(err, ErrNotLeader) {
			break
		}
		if !errors.Is(err, ErrConnectionLoss) && !errors.Is(err, ErrSessionExpired) {
			t.Fatalf("guarded write after expiry: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatalf("no ErrNotLeader after expiry: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the client reconnects on its own schedule
	}
	if data, _, _ := s.Get(ctx, "/config"); string(data) != "1" {
		t.Fatalf("config %q after expiry", data)
	}
}

// After a connection loss the session survives, the same node leads again
// with the same token: the guard of the earlier Leadership value passes.
func TestGuardHoldsWhenTheSameNodeLeadsAgain(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(8*time.Second))
	ctx := testCtx(t)
	if _, err := s.Create(ctx, "/config", nil, Persistent); err != nil {
		t.Fatal(err)
	}
	r := newReferee(t)
	join(t, r, "", s, "/leader", "a")
	r.awaitGrant("a", 5*time.Second)
	before := r.current("a")
	proxy.Cut()
	select {
	case <-before.Context.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("leadership not revoked on connection loss")
	}
	proxy.Heal()
	r.awaitGrant("a", 10*time.Second)
	if again := r.current("a"); again.Token != before.Token {
		t.Fatalf("token %d after reconnect, want %d", again.Token, before.Token)
	}
	if _, err := s.Txn(ctx, before.Guard(), SetOp("/config", []byte("x"), AnyVersion)); err != nil {
		t.Fatalf("guard of the same node after reconnect: %v", err)
	}
}

func TestGuardOfAFollowerFailsAtOnce(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	r := newReferee(t)
	join(t, r, root, nil, "/leader", "a")
	r.awaitGrant("a", 5*time.Second)
	b := join(t, r, root, nil, "/leader", "b")
	r.await("b", func(l Leadership) bool { return l.ID == "b" && l.Leader == "a" })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // anything sent would fail with context.Canceled instead
	_, err := b.sess.Txn(ctx, CheckExists("/"), r.current("b").Guard())
	var te *TxnError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &te) || te.Index != 1 || te.Path != "/leader" {
		t.Fatalf("follower's guarded write: %v, want op 1 on /leader: ErrNotLeader", err)
	}
}

// leadLog is a log of what leaders did, on one clock, in order.
type leadLog struct {
	mu      sync.Mutex
	entries []leadEntry
}

type leadEntry struct {
	at   time.Time
	id   string
	what string // "start" or "end"
}

func (g *leadLog) add(id, what string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.entries = append(g.entries, leadEntry{time.Now(), id, what})
}

func (g *leadLog) snapshot() []leadEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]leadEntry(nil), g.entries...)
}

func TestLeadHandsOverOnlyAfterFnReturned(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	var log leadLog
	starts := make(chan string, 10)
	type member struct {
		resign chan struct{}
		cancel context.CancelFunc
		done   chan error
	}
	members := map[string]*member{}
	for _, id := range []string{"a", "b", "c"} {
		s := connect(t, root)
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{resign: make(chan struct{}, 1), cancel: cancel, done: make(chan error, 1)}
		members[id] = m
		go func() {
			m.done <- s.Lead(ctx, "/leader", func(ctx context.Context, l Leadership) error {
				log.add(id, "start")
				starts <- id
				select {
				case <-ctx.Done():
				case <-m.resign:
				}
				time.Sleep(100 * time.Millisecond) // work that outlasts the resignation
				log.add(id, "end")
				return nil
			}, WithID(id))
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-m.done; err != nil {
				t.Errorf("Lead %s: %v", id, err)
			}
		})
	}
	await := func() string {
		t.Helper()
		select {
		case id := <-starts:
			return id
		case <-time.After(10 * time.Second):
			t.Fatal("nobody leads")
		}
		return ""
	}
	// Two leaders resign (fn returns nil: they requeue), a third shuts down.
	leader := await()
	for range 2 {
		members[leader].resign <- struct{}{}
		leader = await()
	}
	members[leader].cancel()
	if err := <-members[leader].done; err != nil {
		t.Fatalf("Lead after ctx cancelled: %v, want nil", err)
	}
	members[leader].done <- nil // for the cleanup
	await()

	entries := log.snapshot()
	if len(entries) < 7 {
		t.Fatalf("log %+v", entries)
	}
	for i, e := range entries[:7] {
		want := "start"
		if i%2 == 1 {
			want = "end"
		}
		if e.what != want || (i%2 == 1 && e.id != entries[i-1].id) {
			t.Fatalf("entry %d is %s %s, want alternating start and end of one leader: %+v", i, e.id, e.what, entries)
		}
		if i > 0 && e.at.Before(entries[i-1].at) {
			t.Fatalf("entry %d before entry %d: %+v", i, i-1, entries)
		}
	}
}

func TestLeadCancelsFnOnConnectionLoss(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(8*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan Leadership, 2)
	ended := make(chan time.Time, 2)
	done := make(chan error, 1)
	go func() {
		done <- s.Lead(ctx, "/leader", func(ctx context.Context, l Leadership) error {
			started <- l
			<-ctx.Done()
			ended <- time.Now()
			return ctx.Err()
		}, WithID("a"))
	}()
	first := <-started
	cut := time.Now()
	proxy.Cut()
	select {
	case at := <-ended:
		if d := at.Sub(cut); d > time.Second {
			t.Fatalf("fn's ctx ended %v after the cut, with a session timeout of 8s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fn's ctx not cancelled on connection loss")
	}
	proxy.Heal()
	select {
	case again := <-started: // the same node leads again: fn runs again
		if again.Token != first.Token {
			t.Fatalf("token %d after reconnect, want %d", again.Token, first.Token)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fn not run again after reconnect")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Lead: %v, want nil after ctx ended", err)
	}
}

func TestLeadReturnsFnErrorAndLeaves(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	boom := errors.New("boom")
	err := s.Lead(testCtx(t), "/leader", func(ctx context.Context, l Leadership) error {
		if ps, err := s.Participants(ctx, "/leader"); err != nil || len(ps) != 1 || ps[0].ID != "a" {
			return fmt.Errorf("participants while leading: %+v %v", ps, err)
		}
		return boom
	}, WithID("a"))
	if !errors.Is(err, boom) {
		t.Fatalf("Lead = %v, want fn's error", err)
	}
	if ps, err := s.Participants(testCtx(t), "/leader"); err != nil || len(ps) != 0 {
		t.Fatalf("after Lead returned: participants %+v %v, want none", ps, err)
	}
}

// TestLeadFnPanicReachesTheCaller: a panic in fn, which runs on a goroutine
// of Lead's, is raised again in the goroutine that called Lead, once the
// election is left, where the caller can recover it. Before, it killed the
// process from fn's goroutine.
func TestLeadFnPanicReachesTheCaller(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	boom := errors.New("boom")
	recovered := func() (v any) {
		defer func() { v = recover() }()
		s.Lead(testCtx(t), "/leader", func(context.Context, Leadership) error { panic(boom) }, WithID("a"))
		return nil
	}()
	err, ok := recovered.(error)
	if !ok || !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "lighthouse: lead /leader: ") || !strings.Contains(err.Error(), "TestLeadFnPanicReachesTheCaller") {
		t.Fatalf("recovered %v, want an error wrapping fn's, with fn's stack", recovered)
	}
	if ps, err := s.Participants(testCtx(t), "/leader"); err != nil || len(ps) != 0 {
		t.Fatalf("after the panic: participants %+v %v, want none", ps, err)
	}
}

// TestLeadFnGoexitEndsTheCaller: runtime.Goexit in fn (t.FailNow in a test)
// ends the goroutine that called Lead too, once the election is left.
// Before, Lead waited for fn's result for ever.
func TestLeadFnGoexitEndsTheCaller(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ended := make(chan bool, 1)
	go func() {
		returned := false
		defer func() { ended <- returned }()
		s.Lead(testCtx(t), "/leader", func(context.Context, Leadership) error {
			runtime.Goexit()
			return nil
		}, WithID("a"))
		returned = true
	}()
	select {
	case returned := <-ended:
		if returned {
			t.Fatal("Lead returned after fn called runtime.Goexit")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lead still waits after fn called runtime.Goexit")
	}
	if ps, err := s.Participants(testCtx(t), "/leader"); err != nil || len(ps) != 0 {
		t.Fatalf("after Goexit: participants %+v %v, want none", ps, err)
	}
}

func TestLeadGracePeriod(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Lead(ctx, "/leader", func(ctx context.Context, l Leadership) error {
			close(started)
			<-release // ignores ctx
			return nil
		}, WithID("slow"), WithGracePeriod(200*time.Millisecond))
	}()
	<-started
	r := newReferee(t)
	join(t, r, root, nil, "/leader", "next")
	cancel()
	// Past the grace period the node goes although fn still runs...
	r.awaitGrant("next", 5*time.Second)
	select {
	case err := <-done:
		t.Fatalf("Lead returned while fn ran: %v", err)
	default:
	}
	// ...and Lead returns once fn has, saying it overran.
	close(release)
	if err := <-done; !errors.Is(err, ErrGraceExceeded) {
		t.Fatalf("Lead = %v, want ErrGraceExceeded", err)
	}
}

func TestLeadBadInput(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	fn := func(context.Context, Leadership) error { return nil }
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		err  error
		run  func() error
	}{
		{"nil fn", ErrInvalidOption, func() error { return s.Lead(ctx, "/l", nil) }},
		{"grace", ErrInvalidOption, func() error { return s.Lead(ctx, "/l", fn, WithGracePeriod(0)) }},
		{"nil option", ErrInvalidOption, func() error { return s.Lead(ctx, "/l", fn, nil) }},
		{"path", ErrInvalidPath, func() error { return s.Lead(ctx, "l", fn) }},
		{"id", ErrInvalidID, func() error { return s.Lead(ctx, "/l", fn, WithID("a/b")) }},
	} {
		err := tc.run()
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: Lead = %v, want %v", tc.name, err, tc.err)
		} else if n := strings.Count(err.Error(), "lighthouse:"); n != 1 {
			t.Errorf("%s: message %q says lighthouse %d times", tc.name, err, n)
		}
	}
}

// Guards are plain checks: they leave a Curator LeaderLatch queued behind a
// Go leader waiting (its watch neither fired nor consumed), and it leads
// once the Go leader leaves.
func TestGuardLeavesCuratorLatchWaiting(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	b := newBench(t)
	java := startJava(t, root, javaTestTimeout, b.javaLine)
	s := connect(t, root, WithSessionTimeout(javaTestTimeout))
	ctx := testCtx(t)
	if _, err := s.Create(ctx, "/config", nil, Persistent); err != nil {
		t.Fatal(err)
	}
	leave := b.elect(s, "/leader", "go-1")
	b.r.awaitGrant("go-1", 10*time.Second)
	java.Call(nil, "latch", "/leader", "java-1")
	awaitParticipants(t, s, java, "java-1", "/leader", "go-1*,java-1")

	l := b.r.current("go-1")
	for i := range 5 {
		if _, err := s.Txn(ctx, l.Guard(), SetOp("/config", []byte(fmt.Sprint(i)), AnyVersion)); err != nil {
			t.Fatalf("guarded write %d with a latch waiting: %v", i, err)
		}
	}
	awaitParticipants(t, s, java, "java-1", "/leader", "go-1*,java-1")
	if got := b.order(); !slices.Equal(got, []string{"go-1"}) {
		t.Fatalf("led %v during the guarded writes, want go-1 alone", got)
	}

	leave()
	b.awaitLeader("java-1", 10*time.Second)
	if got := b.order(); !slices.Equal(got, []string{"go-1", "java-1"}) {
		t.Fatalf("led in order %v", got)
	}
	if _, err := s.Txn(ctx, l.Guard(), SetOp("/config", nil, AnyVersion)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("guarded write after leaving: %v, want ErrNotLeader", err)
	}
	b.check()
}
