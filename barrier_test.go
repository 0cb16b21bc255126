package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// barrierGroup is a barrier's participants, each on its own session.
type barrierGroup struct {
	t     *testing.T
	path  string
	ids   []string
	sess  []*Session
	b     []*Barrier
	watch *Session // a bystander that reads the barrier's nodes
}

// newBarrierGroup connects n sessions (to connectStrings[i], or to the last
// one given) and makes participant p<i> of a count-n barrier on each.
func newBarrierGroup(t *testing.T, n, count int, path string, connectStrings ...string) *barrierGroup {
	t.Helper()
	g := &barrierGroup{t: t, path: path, watch: connect(t, connectStrings[len(connectStrings)-1])}
	for i := range n {
		cs := connectStrings[min(i, len(connectStrings)-1)]
		s := connect(t, cs, WithSessionTimeout(5*time.Second))
		id := fmt.Sprintf("p%02d", i)
		b, err := s.Barrier(testCtx(t), path, count, WithID(id))
		if err != nil {
			t.Fatalf("Barrier %s: %v", id, err)
		}
		g.ids, g.sess, g.b = append(g.ids, id), append(g.sess, s), append(g.b, b)
	}
	return g
}

// call runs f(i) for each participant in is in its own goroutine and returns
// a channel of their results, tagged with the participant.
type barrierResult struct {
	i   int
	err error
}

func (g *barrierGroup) call(f func(i int) error, is ...int) <-chan barrierResult {
	ch := make(chan barrierResult, len(is))
	for _, i := range is {
		go func() { ch <- barrierResult{i, f(i)} }()
	}
	return ch
}

func (g *barrierGroup) enter(ctx context.Context, is ...int) <-chan barrierResult {
	return g.call(func(i int) error { return g.b[i].Enter(ctx) }, is...)
}

func (g *barrierGroup) leave(ctx context.Context, is ...int) <-chan barrierResult {
	return g.call(func(i int) error { return g.b[i].Leave(ctx) }, is...)
}

// awaitResults reads n results within d and fails on any error.
func awaitResults(t *testing.T, ch <-chan barrierResult, n int, d time.Duration, what string) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for range n {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("%s of p%02d: %v", what, r.i, r.err)
			}
		case <-timer.C:
			t.Fatalf("%s: not every participant returned within %v", what, d)
		}
	}
}

// quiet fails if anything arrives on ch within d (or is there already).
func quiet(t *testing.T, ch <-chan barrierResult, d time.Duration, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s of p%02d returned early: %v", what, r.i, r.err)
	default:
	}
	select {
	case r := <-ch:
		t.Fatalf("%s of p%02d returned early: %v", what, r.i, r.err)
	case <-time.After(d):
	}
}

// awaitNodes polls the barrier's children until they are exactly want
// (sorted; "ready" included if listed).
func (g *barrierGroup) awaitNodes(want ...string) {
	g.t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for {
		children, err := g.watch.Children(testCtx(g.t), g.path)
		if errors.Is(err, ErrNoNode) {
			children, err = nil, nil
		}
		if err != nil {
			g.t.Fatal(err)
		}
		got = slices.Sorted(slices.Values(children))
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("barrier nodes %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBarrierNobodyPassesUntilTheLast(t *testing.T) {
	for _, tc := range []struct {
		n          int
		lastLeaver int // the lowest waits for all; the highest is waited on
	}{
		{1, 0},
		{3, 0},
		{3, 2},
		{10, 0},
		{10, 9},
	} {
		t.Run(fmt.Sprintf("%d participants, p%02d leaves last", tc.n, tc.lastLeaver), func(t *testing.T) {
			zkc := zktest.Shared(t)
			root := zkc.Root(t)
			g := newBarrierGroup(t, tc.n, tc.n, "/jobs/reindex/barrier", root)
			ctx := testCtx(t)
			start := time.Now()

			// Enter: everyone but the last, then the last.
			var lastEntering atomic.Bool
			early := make(chan barrierResult, tc.n)
			enter := func(i int) error {
				err := g.b[i].Enter(ctx)
				if !lastEntering.Load() {
					early <- barrierResult{i, err}
				}
				return err
			}
			first := make([]int, tc.n-1)
			for i := range first {
				first[i] = i + 1
			}
			entered := g.call(enter, first...)
			g.awaitNodes(g.ids[1:]...)
			quiet(t, early, 100*time.Millisecond, "Enter")
			lastEntering.Store(true)
			entered2 := g.call(enter, 0)
			awaitResults(t, entered, tc.n-1, 10*time.Second, "Enter")
			awaitResults(t, entered2, 1, 10*time.Second, "Enter")
			quiet(t, early, 0, "Enter")
			g.awaitNodes(append([]string{readyName}, g.ids...)...)

			// Leave: everyone but the last, then the last.
			var lastLeaving atomic.Bool
			early = make(chan barrierResult, tc.n)
			leave := func(i int) error {
				err := g.b[i].Leave(ctx)
				if !lastLeaving.Load() {
					early <- barrierResult{i, err}
				}
				return err
			}
			var others []int
			for i := range tc.n {
				if i != tc.lastLeaver {
					others = append(others, i)
				}
			}
			left := g.call(leave, others...)
			// Every participant but the lowest deletes its node at once; the
			// lowest stays until it is alone.
			stay := []string{readyName, g.ids[0]}
			if tc.lastLeaver != 0 {
				stay = append(stay, g.ids[tc.lastLeaver])
			}
			g.awaitNodes(stay...)
			quiet(t, early, 100*time.Millisecond, "Leave")
			lastLeaving.Store(true)
			left2 := g.call(leave, tc.lastLeaver)
			awaitResults(t, left, tc.n-1, 10*time.Second, "Leave")
			awaitResults(t, left2, 1, 10*time.Second, "Leave")
			quiet(t, early, 0, "Leave")
			g.awaitNodes() // the ready node too
			t.Logf("%d participants: enter and leave in %v", tc.n, time.Since(start))

			// The path serves another round.
			all := make([]int, tc.n)
			for i := range all {
				all[i] = i
			}
			awaitResults(t, g.enter(ctx, all...), tc.n, 10*time.Second, "Enter again")
			awaitResults(t, g.leave(ctx, all...), tc.n, 10*time.Second, "Leave again")
			g.awaitNodes()
		})
	}
}

func TestBarrierCancelledParticipantLeavesNoNode(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	g := newBarrierGroup(t, 4, 3, "/b", root)
	ctx := testCtx(t)
	waiting := g.enter(ctx, 0)
	cctx, cancel := context.WithCancel(ctx)
	cancelled := g.enter(cctx, 1)
	g.awaitNodes("p00", "p01")
	cancel()
	select {
	case r := <-cancelled:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Enter after cancel: %v, want context.Canceled", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Enter did not return after its context was cancelled")
	}
	g.awaitNodes("p00")
	quiet(t, waiting, 100*time.Millisecond, "Enter")

	// p01 no longer counts: two more are needed.
	others := g.enter(ctx, 2)
	g.awaitNodes("p00", "p02")
	quiet(t, waiting, 100*time.Millisecond, "Enter")
	awaitResults(t, g.enter(ctx, 3), 1, 10*time.Second, "Enter")
	awaitResults(t, waiting, 1, 10*time.Second, "Enter")
	awaitResults(t, others, 1, 10*time.Second, "Enter")

	// Cancelled while leaving: the others see it as gone.
	lctx, lcancel := context.WithCancel(ctx)
	leaving := g.leave(lctx, 0) // the lowest: waits for the others
	g.awaitNodes(readyName, "p00", "p02", "p03")
	lcancel()
	select {
	case r := <-leaving:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Leave after cancel: %v, want context.Canceled", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Leave did not return after its context was cancelled")
	}
	awaitResults(t, g.leave(ctx, 2, 3), 2, 10*time.Second, "Leave")
	g.awaitNodes()

	// The cancelled participant can take part in a new round.
	awaitResults(t, g.enter(ctx, 0, 1, 2), 3, 10*time.Second, "Enter")
	awaitResults(t, g.leave(ctx, 0, 1, 2), 3, 10*time.Second, "Leave")
}

func TestBarrierSessionExpiresWhileWaiting(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	// p00 goes through the proxy, the others straight to the server.
	g := newBarrierGroup(t, 3, 3, "/b", proxy.Addr()+chrootOf(root), root)
	ctx := testCtx(t)
	expiring := g.enter(ctx, 0)
	waiting := g.enter(ctx, 1)
	g.awaitNodes("p00", "p01")
	// The server answers a session in order: once this read is answered,
	// p00 has the reply to its create. (Expired before that, the reply is
	// lost, p00 cannot know it had a node, and rightly enters again.)
	if _, _, err := g.sess[0].Exists(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	if err := proxy.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-expiring:
		if !errors.Is(r.err, ErrSessionExpired) {
			t.Fatalf("Enter of an expired participant: %v, want ErrSessionExpired", r.err)
		}
		t.Logf("Enter: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("Enter hangs after its session expired")
	}
	g.awaitNodes("p01")
	quiet(t, waiting, 100*time.Millisecond, "Enter")

	// It enters again on its new session and completes the count.
	again := g.enter(ctx, 0)
	g.awaitNodes("p00", "p01")
	awaitResults(t, g.enter(ctx, 2), 1, 10*time.Second, "Enter")
	awaitResults(t, again, 1, 10*time.Second, "Enter")
	awaitResults(t, waiting, 1, 10*time.Second, "Enter")

	// Expiry while leaving: p00, the lowest, waits for the others.
	leaving := g.leave(ctx, 0)
	g.awaitNodes(readyName, "p00", "p01", "p02")
	if err := proxy.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-leaving:
		if !errors.Is(r.err, ErrSessionExpired) {
			t.Fatalf("Leave of an expired participant: %v, want ErrSessionExpired", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Leave hangs after its session expired")
	}
	// The others leave without it; the last deletes the ready node.
	awaitResults(t, g.leave(ctx, 1, 2), 2, 10*time.Second, "Leave")
	g.awaitNodes()
}

func TestBarrierReadyNodeOfADeadRound(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	ctx := testCtx(t)
	dead := newBarrierGroup(t, 2, 2, "/b", root)
	awaitResults(t, dead.enter(ctx, 0, 1), 2, 10*time.Second, "Enter")
	for _, s := range dead.sess {
		s.Close() // die without leaving
	}
	dead.awaitNodes(readyName)

	// The next round's first participant finds nobody of that round and
	// deletes the ready node; the round still waits for everyone.
	g := newBarrierGroup(t, 2, 2, "/b", root)
	first := g.enter(ctx, 1)
	g.awaitNodes("p01")
	quiet(t, first, 100*time.Millisecond, "Enter")
	awaitResults(t, g.enter(ctx, 0), 1, 10*time.Second, "Enter")
	awaitResults(t, first, 1, 10*time.Second, "Enter")
	awaitResults(t, g.leave(ctx, 0, 1), 2, 10*time.Second, "Leave")
	g.awaitNodes()
}

func TestBarrierThroughConnectionLoss(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	g := newBarrierGroup(t, 3, 3, "/b", proxy.Addr()+chrootOf(root), root)
	ctx := testCtx(t)
	events := g.sess[0].Events(ctx)

	// p00 waits, loses its connection, and the barrier opens meanwhile.
	cut := g.enter(ctx, 0)
	g.awaitNodes("p00")
	proxy.Cut()
	awaitEvent(t, events, EventSuspended, 10*time.Second)
	others := g.enter(ctx, 1, 2)
	awaitResults(t, others, 2, 10*time.Second, "Enter")
	quiet(t, cut, 100*time.Millisecond, "Enter while cut off")
	proxy.Heal()
	awaitResults(t, cut, 1, 15*time.Second, "Enter after the connection is back")

	// p00 loses it again as it leaves; the others wait for it.
	proxy.Cut()
	awaitEvent(t, events, EventSuspended, 10*time.Second)
	leaving := g.leave(ctx, 0)
	left := g.leave(ctx, 1, 2)
	g.awaitNodes(readyName, "p00")
	quiet(t, left, 100*time.Millisecond, "Leave while p00 is cut off")
	proxy.Heal()
	awaitResults(t, leaving, 1, 15*time.Second, "Leave after the connection is back")
	awaitResults(t, left, 2, 10*time.Second, "Leave")
	g.awaitNodes()
}

func TestBarrierSessionClosedWhileWaiting(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	g := newBarrierGroup(t, 2, 2, "/b", root)
	ctx := testCtx(t)
	entering := g.enter(ctx, 0)
	g.awaitNodes("p00")
	g.sess[0].Close()
	select {
	case r := <-entering:
		if !errors.Is(r.err, ErrClosed) {
			t.Fatalf("Enter on a closed session: %v, want ErrClosed", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Enter hangs after Close")
	}
	g.awaitNodes()
	if err := g.b[0].Enter(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enter after Close: %v, want ErrClosed", err)
	}
}

func TestBarrierBadInput(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root)
	ctx := testCtx(t)
	for _, tc := range []struct {
		name  string
		path  string
		count int
		opts  []RecipeOption
		want  error
	}{
		{"zero count", "/b", 0, nil, ErrInvalidCount},
		{"negative count", "/b", -3, nil, ErrInvalidCount},
		{"empty path", "", 2, nil, ErrInvalidPath},
		{"relative path", "b", 2, nil, ErrInvalidPath},
		{"trailing slash", "/b/", 2, nil, ErrInvalidPath},
		{"root", "/", 2, nil, ErrInvalidPath},
		{"ID with slash", "/b", 2, []RecipeOption{WithID("a/b")}, ErrInvalidID},
		{"ID with NUL", "/b", 2, []RecipeOption{WithID("a\x00")}, ErrInvalidID},
		{"ID dot", "/b", 2, []RecipeOption{WithID("..")}, ErrInvalidID},
		{"ID ready", "/b", 2, []RecipeOption{WithID("ready")}, ErrInvalidID},
		{"data too large", "/b", 2, []RecipeOption{WithID("a"), WithData(make([]byte, MaxDataSize+1))}, ErrDataTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.Barrier(ctx, tc.path, tc.count, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Barrier(%q, %d) = %v, %v; want %v", tc.path, tc.count, b, err, tc.want)
			}
			t.Log(err)
		})
	}

	b, err := s.Barrier(ctx, "/b", 2, WithID("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Leave(ctx); !errors.Is(err, ErrNotEntered) {
		t.Fatalf("Leave before Enter: %v, want ErrNotEntered", err)
	}
}

func TestBarrierDuplicateID(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	ctx := testCtx(t)
	s1, s2 := connect(t, root), connect(t, root)
	b1, err := s1.Barrier(ctx, "/b", 2, WithID("w"))
	if err != nil {
		t.Fatal(err)
	}
	// Made before the ID is taken: Enter finds out.
	late, err := s2.Barrier(ctx, "/b", 2, WithID("w"))
	if err != nil {
		t.Fatal(err)
	}
	same, err := s1.Barrier(ctx, "/b", 2, WithID("w"))
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waiting := make(chan error, 1)
	go func() { waiting <- b1.Enter(wctx) }()
	g := &barrierGroup{t: t, path: "/b", watch: s2}
	g.awaitNodes("w")

	if _, err := s2.Barrier(ctx, "/b", 2, WithID("w")); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("Barrier with a taken ID on another session: %v, want ErrIDTaken", err)
	}
	if err := late.Enter(ctx); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("Enter with a taken ID on another session: %v, want ErrIDTaken", err)
	}
	if _, err := s1.Barrier(ctx, "/b", 2, WithID("w")); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("Barrier with a taken ID in this process: %v, want ErrIDTaken", err)
	}
	if err := same.Enter(ctx); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("Enter with a taken ID in this process: %v, want ErrIDTaken", err)
	}
	g.awaitNodes("w") // the failed attempts did not touch the first one's node
	select {
	case err := <-waiting:
		t.Fatalf("the first participant's Enter returned: %v", err)
	default:
	}
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	g.awaitNodes()
	// The ID is free again.
	if err := late.Enter(wctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enter with a cancelled context: %v", err)
	}
	ectx, ecancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer ecancel()
	if err := late.Enter(ectx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enter of the freed ID: %v, want to wait until DeadlineExceeded", err)
	}
	g.awaitNodes()
}

func TestBarrierLostCreateReply(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	g := newBarrierGroup(t, 2, 2, "/b", proxy.Addr()+chrootOf(root), root)
	ctx := testCtx(t)
	// The server creates p00's node but the reply never comes: p00 must find
	// it as its own on the retry, not report a duplicate or make another.
	proxy.LoseReplyTo(zktest.OpCreate2)
	first := g.enter(ctx, 0)
	g.awaitNodes("p00")
	quiet(t, first, 100*time.Millisecond, "Enter")
	awaitResults(t, g.enter(ctx, 1), 1, 10*time.Second, "Enter")
	awaitResults(t, first, 1, 15*time.Second, "Enter after a lost reply")
	g.awaitNodes(readyName, "p00", "p01")
	awaitResults(t, g.leave(ctx, 0, 1), 2, 10*time.Second, "Leave")
	g.awaitNodes()
}
