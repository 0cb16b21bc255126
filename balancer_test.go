package lighthouse

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// picks returns how often each ID came up in n picks.
func picks(b *Balancer, n int) map[string]int {
	count := make(map[string]int)
	for range n {
		if node, ok := b.Pick("key"); ok {
			count[node.ID]++
		}
	}
	return count
}

// awaitPicks polls, with a deadline, until n picks hit exactly the IDs want
// (in any proportion). The balancer says nothing when it changes; polling is
// all there is.
func awaitPicks(t testing.TB, b *Balancer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for {
		got = got[:0]
		for id := range picks(b, 4*len(want)+4) {
			got = append(got, id)
		}
		slices.Sort(got)
		if slices.Equal(got, want) || (len(want) == 0 && len(got) == 0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("balancer picks %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newBalancer(t testing.TB, s *Session, service string, strategy Strategy, opts ...BalancerOption) *Balancer {
	t.Helper()
	b, err := s.Balancer(testCtx(t), service, strategy, opts...)
	if err != nil {
		t.Fatalf("Balancer(%s): %v", service, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBalancerRoundRobinOverLiveMembers(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s, c := connect(t, root), connect(t, root)
	b := newBalancer(t, c, "svc", RoundRobin())
	if n, ok := b.Pick("k"); ok {
		t.Fatalf("picked %v from an empty service", n)
	}
	register(t, s, "svc", "a")
	bReg := register(t, s, "svc", "b")
	register(t, s, "svc", "c")
	awaitPicks(t, b, "a", "b", "c")
	// Round-robin is exact over whole rounds.
	if got := picks(b, 300); got["a"] != 100 || got["b"] != 100 || got["c"] != 100 {
		t.Fatalf("300 picks: %v", got)
	}
	node, _ := b.Pick("k")
	if string(node.Data) != "addr-"+node.ID {
		t.Fatalf("picked %s with data %q", node.ID, node.Data)
	}
	bReg.Close()
	awaitPicks(t, b, "a", "c")
}

func TestBalancerDownPolicy(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s, c := connect(t, root), connect(t, root)
	register(t, s, "svc", "a")
	register(t, s, "svc", "b")
	const down = 300 * time.Millisecond
	b := newBalancer(t, c, "svc", RoundRobin(), WithDownPolicy(2, time.Minute, down))
	awaitPicks(t, b, "a", "b")

	b.ReportError("b")
	b.ReportError("nobody") // not a member: ignored
	if got := picks(b, 10); got["b"] != 5 {
		t.Fatalf("one error (threshold 2) changed the picks: %v", got)
	}
	start := time.Now()
	b.ReportError("b")
	awaitPicks(t, b, "a")
	awaitPicks(t, b, "a", "b") // back when the duration ends
	if d := time.Since(start); d < down {
		t.Fatalf("b back after %v, before its %v were over", d, down)
	}
}

// A huge threshold is a policy that never puts a node down. The first
// error's record was allocated to hold threshold errors: math.MaxInt made
// the balancer's goroutine panic (makeslice), taking the process down.
func TestDownPolicyHugeThreshold(t *testing.T) {
	d := newDownPolicy(math.MaxInt, time.Minute, time.Minute)
	now := time.Now()
	for i := range 100 {
		if d.reportError("a", now.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatal("node down after a few errors, with a threshold of math.MaxInt")
		}
	}
}

func TestBalancerNodeBackWhenItRegistersAgain(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s, c := connect(t, root), connect(t, root)
	register(t, s, "svc", "a")
	bReg := register(t, s, "svc", "b")
	b := newBalancer(t, c, "svc", Random(), WithDownPolicy(1, time.Minute, time.Hour))
	awaitPicks(t, b, "a", "b")
	b.ReportError("b")
	awaitPicks(t, b, "a")
	bReg.Close()
	register(t, s, "svc", "b")
	awaitPicks(t, b, "a", "b")
}

func TestBalancerEnds(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s, c := connect(t, root), connect(t, root)
	aReg := register(t, s, "svc", "a")

	ctx, cancel := context.WithCancel(testCtx(t))
	byCtx, err := c.Balancer(ctx, "svc", nil) // nil: round-robin
	if err != nil {
		t.Fatal(err)
	}
	bySession := newBalancer(t, c, "svc", ConsistentHash())
	awaitPicks(t, byCtx, "a")
	cancel()
	awaitClosed(t, byCtx.done, "balancer after ctx cancelled")
	if err := byCtx.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	awaitClosed(t, bySession.done, "balancer after session closed")
	// A stopped balancer keeps its last set.
	aReg.Close()
	if n, ok := byCtx.Pick("k"); !ok || n.ID != "a" {
		t.Fatalf("stopped balancer picked %v, %v", n, ok)
	}
	if _, err := c.Balancer(testCtx(t), "svc", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Balancer after Close: %v, want ErrClosed", err)
	}
}

// strategyFunc is a Strategy written by a user.
type strategyFunc func([]Node) Picker

func (f strategyFunc) Picker(nodes []Node) Picker { return f(nodes) }

// TestBalancerWithAUsersStrategy: a Strategy that returns a nil Picker
// picks nothing (Pick panicked), and Close called from Picker, on the
// balancer's own goroutine, returns (it waited for that goroutine for ever).
func TestBalancerWithAUsersStrategy(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	register(t, s, "svc", "a")
	b, err := s.Balancer(testCtx(t), "svc", strategyFunc(func([]Node) Picker { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, ok := b.Pick("k"); ok {
		t.Fatalf("a nil Picker picked %v", n)
	}

	var closing atomic.Pointer[Balancer]
	closed := make(chan struct{})
	b2, err := s.Balancer(testCtx(t), "svc", strategyFunc(func(nodes []Node) Picker {
		if b := closing.Load(); b != nil && len(nodes) == 2 {
			b.Close()
			close(closed)
		}
		return RoundRobin().Picker(nodes)
	}))
	if err != nil {
		t.Fatal(err)
	}
	closing.Store(b2)
	register(t, s, "svc", "b")
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close called from the balancer's Picker did not return")
	}
	awaitClosed(t, b2.done, "balancer closed from its Picker")
}

// TestBalancerCloseKeepsTheLastSet: a Picker that the Strategy returns after
// Close (here Close returned while the Strategy was busy with a change) is
// not used: Pick keeps returning from the last set, as Close says.
func TestBalancerCloseKeepsTheLastSet(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	register(t, s, "svc", "a")
	entered, release := make(chan struct{}), make(chan struct{})
	b, err := s.Balancer(testCtx(t), "svc", strategyFunc(func(nodes []Node) Picker {
		if len(nodes) == 2 {
			close(entered)
			<-release
		}
		return RoundRobin().Picker(nodes)
	}))
	if err != nil {
		t.Fatal(err)
	}
	register(t, s, "svc", "b")
	<-entered
	b.Close() // returns after endWait: the Strategy is still busy
	close(release)
	awaitClosed(t, b.done, "balancer")
	for range 10 {
		if n, ok := b.Pick(""); !ok || n.ID != "a" {
			t.Fatalf("Pick after Close: %v %v, want a (the set before Close)", n.ID, ok)
		}
	}
}

func TestBalancerBadOptions(t *testing.T) {
	s := connect(t, zktest.Shared(t).Root(t))
	for _, opt := range []BalancerOption{
		WithDownPolicy(0, time.Second, time.Second),
		WithDownPolicy(1, 0, time.Second),
		WithDownPolicy(1, time.Second, -time.Second),
	} {
		if _, err := s.Balancer(testCtx(t), "svc", RoundRobin(), opt); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("Balancer with a bad down policy: %v, want ErrInvalidOption", err)
		}
	}
}
