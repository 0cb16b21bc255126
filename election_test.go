package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// referee watches every participant of a test and fails the test if two
// lead at once or if tokens do not increase. A leadership is granted only
// after its predecessor's node is deleted, and a leader's Context is
// cancelled before its node is deleted, so when a grant is seen every other
// leadership must already be done.
type referee struct {
	t      testing.TB
	mu     sync.Mutex
	latest map[string]Leadership // participant -> newest value seen
	tokens []int64               // granted tokens, in order
	order  []string              // who was granted, in order
	grants chan string
}

func newReferee(t testing.TB) *referee {
	return &referee{t: t, latest: make(map[string]Leadership), grants: make(chan string, 1000)}
}

func (r *referee) see(l Leadership) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.latest[l.ID]
	r.latest[l.ID] = l
	if !l.IsLeader || (prev.IsLeader && prev.Token == l.Token) {
		return
	}
	for id, other := range r.latest {
		if id != l.ID && other.IsLeader && other.Context.Err() == nil {
			r.t.Errorf("%s leads (token %d) while %s still leads (token %d)", l.ID, l.Token, id, other.Token)
		}
	}
	if n := len(r.tokens); n > 0 && l.Token <= r.tokens[n-1] && !(r.order[n-1] == l.ID && l.Token == r.tokens[n-1]) {
		r.t.Errorf("token %d of %s does not increase on %d", l.Token, l.ID, r.tokens[n-1])
	}
	if l.Leader != l.ID {
		r.t.Errorf("leader %s says the leader is %q", l.ID, l.Leader)
	}
	r.tokens = append(r.tokens, l.Token)
	r.order = append(r.order, l.ID)
	r.grants <- l.ID
}

// follow reads a leadership channel into the referee until it is closed,
// and returns a channel closed at that point.
func (r *referee) follow(ch <-chan Leadership) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for l := range ch {
			r.see(l)
		}
	}()
	return done
}

// awaitGrant waits for the next grant and checks who got it.
func (r *referee) awaitGrant(want string, d time.Duration) {
	r.t.Helper()
	select {
	case id := <-r.grants:
		if want != "" && id != want {
			r.t.Fatalf("%s was elected, want %s", id, want)
		}
	case <-time.After(d):
		r.t.Fatalf("nobody elected within %v (want %s)", d, want)
	}
}

// await polls, with a deadline, until id's newest Leadership satisfies ok.
func (r *referee) await(id string, ok func(Leadership) bool) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(r.current(id)) {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: state not reached: %+v", id, r.current(id))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *referee) current(id string) Leadership {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest[id]
}

type participant struct {
	id     string
	sess   *Session
	cancel context.CancelFunc
	done   <-chan struct{}
}

// join elects id on its own session (or on sess if not nil).
func join(t *testing.T, r *referee, connectString string, sess *Session, path, id string) *participant {
	t.Helper()
	if sess == nil {
		sess = connect(t, connectString)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := sess.Elect(ctx, path, WithID(id))
	if err != nil {
		t.Fatalf("Elect %s: %v", id, err)
	}
	return &participant{id: id, sess: sess, cancel: cancel, done: r.follow(ch)}
}

func awaitClosed(t testing.TB, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: channel not closed", what)
	}
}

func TestElectAlone(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Elect(ctx, "/svc/leader", WithID("node-1"), WithData([]byte("10.0.0.1:80")))
	if err != nil {
		t.Fatal(err)
	}
	var l Leadership
	select {
	case l = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no leadership")
	}
	if !l.IsLeader || l.ID != "node-1" || l.Leader != "node-1" || l.Token <= 0 || l.Context.Err() != nil || !l.Valid() {
		t.Fatalf("alone in the election: %+v valid=%v", l, l.Valid())
	}
	ps, err := s.Participants(testCtx(t), "/svc/leader")
	if err != nil || len(ps) != 1 || ps[0].ID != "node-1" || !ps[0].IsLeader || ps[0].Token != l.Token || string(ps[0].Data) != "10.0.0.1:80" {
		t.Fatalf("Participants: %+v %v", ps, err)
	}
	cancel()
	if l.Context.Err() == nil {
		t.Fatal("leadership context not done at once when Elect's ctx is cancelled")
	}
	for range ch {
	}
	if _, err := s.Leader(testCtx(t), "/svc/leader"); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Leader after leaving: %v, want ErrNoLeader", err)
	}
	if _, err := s.Leader(testCtx(t), "/svc/never"); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Leader of an election never joined: %v, want ErrNoNode", err)
	}
}

func TestFailoverInCreationOrder(t *testing.T) {
	for _, n := range []int{3, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			zkc := zktest.Shared(t)
			root := zkc.Root(t)
			r := newReferee(t)
			var ps []*participant
			for i := range n {
				ps = append(ps, join(t, r, root, nil, "/leader", fmt.Sprintf("p%d", i)))
			}
			for i, p := range ps {
				r.awaitGrant(p.id, 10*time.Second)
				// Alternate the ways to go: leave the election, close the session.
				if i%2 == 0 {
					p.cancel()
				} else {
					p.sess.Close()
				}
				awaitClosed(t, p.done, p.id)
			}
		})
	}
}

func TestReleaseRequeues(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	r := newReferee(t)
	a := join(t, r, root, nil, "/leader", "a")
	r.awaitGrant("a", 5*time.Second)
	first := r.current("a")
	b := join(t, r, root, nil, "/leader", "b")

	first.Release()
	if first.Context.Err() != nil {
		// Release is asynchronous, but must end the leadership promptly.
	}
	r.awaitGrant("b", 5*time.Second)
	if first.Context.Err() == nil {
		t.Fatal("released leadership's context not done")
	}
	// a stayed in the election, behind b: it says so once it has rejoined.
	r.await("a", func(l Leadership) bool { return !l.IsLeader && l.Leader == "b" })
	ps, err := a.sess.Participants(testCtx(t), "/leader")
	if err != nil || len(ps) != 2 || ps[0].ID != "b" || ps[1].ID != "a" {
		t.Fatalf("participants after release: %+v %v", ps, err)
	}
	b.cancel()
	r.awaitGrant("a", 5*time.Second)
	if again := r.current("a"); again.Token <= first.Token {
		t.Fatalf("token after requeue %d, want > %d", again.Token, first.Token)
	}

	// Alone, a participant that releases leads again, with a new token.
	second := r.current("a")
	second.Release()
	r.awaitGrant("a", 5*time.Second)
	if third := r.current("a"); third.Token <= second.Token {
		t.Fatalf("token after releasing alone %d, want > %d", third.Token, second.Token)
	}
	// Releasing a leadership that already ended does nothing.
	first.Release()
	a.cancel()
	awaitClosed(t, a.done, "a")
	select {
	case id := <-r.grants:
		t.Fatalf("unexpected grant to %s", id)
	default:
	}
}

func TestSuspendedRevokesAtOnceAndSameSessionLeadsAgain(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(8*time.Second))
	r := newReferee(t)
	join(t, r, "", s, "/leader", "a")
	r.awaitGrant("a", 5*time.Second)
	l := r.current("a")
	proxy.Cut()
	select {
	case <-l.Context.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("leadership not revoked on connection loss")
	}
	if l.Valid() {
		t.Fatal("revoked leadership still Valid")
	}
	proxy.Heal()
	r.awaitGrant("a", 10*time.Second)
	if again := r.current("a"); again.Token != l.Token {
		t.Fatalf("same session, same node: token %d, want %d", again.Token, l.Token)
	}
}

func TestExpiryRejoins(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root))
	r := newReferee(t)
	join(t, r, "", s, "/leader", "a")
	b := join(t, r, root, nil, "/leader", "b")
	r.awaitGrant("a", 5*time.Second)
	first := r.current("a")
	if err := proxy.Expire(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	r.awaitGrant("b", 10*time.Second)
	if first.Context.Err() == nil {
		t.Fatal("expired leader's context not done")
	}
	// a rejoined on its new session, behind b.
	b.cancel()
	r.awaitGrant("a", 10*time.Second)
	if l := r.current("a"); l.Token <= first.Token {
		t.Fatalf("token after rejoin %d, want > %d", l.Token, first.Token)
	}
}

func TestPartitionedLeaderIsRevokedBeforeAnotherIsElected(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	cut := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(2*time.Second))
	r := newReferee(t)
	join(t, r, "", cut, "/leader", "a")
	join(t, r, root, nil, "/leader", "b")
	r.awaitGrant("a", 5*time.Second)
	l := r.current("a")
	proxy.Stall() // a hears nothing and nobody hears a
	// b is elected only once a's session expires on the server; the referee
	// fails the test if a's leadership is not over by then.
	r.awaitGrant("b", 15*time.Second)
	if l.Context.Err() == nil || l.Valid() {
		t.Fatal("partitioned leader still leads")
	}
	proxy.Heal()
}

func TestLostCreateReplyLeavesNoGhost(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(5*time.Second))
	if _, err := s.Create(testCtx(t), "/leader", nil, Persistent); err != nil {
		t.Fatal(err)
	}
	r := newReferee(t)
	proxy.LoseReplyTo(zktest.OpCreate2)
	a := join(t, r, "", s, "/leader", "a")
	b := join(t, r, root, nil, "/leader", "b")
	r.awaitGrant("a", 10*time.Second)
	ps, err := b.sess.Participants(testCtx(t), "/leader")
	if err != nil || len(ps) != 2 {
		t.Fatalf("after a lost create reply: participants %+v %v, want a and b only", ps, err)
	}
	a.cancel()
	r.awaitGrant("b", 10*time.Second)
}

func TestZooKeeperLeaderKilled(t *testing.T) {
	zkc := zktest.StartT(t, 3)
	r := newReferee(t)
	var ps []*participant
	for i := range 3 {
		s := connect(t, zkc.ConnectString(), WithSessionTimeout(4*time.Second))
		ps = append(ps, join(t, r, "", s, "/leader", fmt.Sprintf("p%d", i)))
	}
	r.awaitGrant("p0", 10*time.Second)
	zkLeader, err := zkc.Leader()
	if err != nil {
		t.Fatal(err)
	}
	if err := zkc.Kill(zkLeader); err != nil {
		t.Fatal(err)
	}
	// Sessions move to the survivors. p0 may lose leadership while its
	// server is gone; then it must lead again (same session, same node).
	// Poll, with a deadline, until p0 leads on a live connection.
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := r.current("p0")
		if l.IsLeader && l.Valid() && ps[0].sess.zk.State() == zkclient.StateConnected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("p0 does not lead after the ZooKeeper leader died: %+v", l)
		}
		select {
		case <-r.grants:
		case <-time.After(50 * time.Millisecond):
		}
	}
	ps[0].cancel()
	r.awaitGrant("p1", 10*time.Second)
}

// A hundred participants on ten sessions: each change of leader wakes at
// most two of them (the next leader and the one after it), and, once the
// one after it has caught up, the next change is made from watches alone.
func TestHundredParticipantsAtMostTwoWatchesPerChange(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	r := newReferee(t)
	var sessions []*Session
	for range 10 {
		sessions = append(sessions, connect(t, root))
	}
	var ps []*participant
	for i := range 100 {
		ps = append(ps, join(t, r, "", sessions[i%10], "/leader", fmt.Sprintf("p%03d", i)))
	}
	r.awaitGrant("p000", 10*time.Second)
	for i := 0; i < 10; i++ {
		before := countsOf(sessions...)
		ps[i].cancel()
		r.awaitGrant(ps[i+1].id, 10*time.Second)
		awaitClosed(t, ps[i].done, ps[i].id)
		// The one after the new leader learns who leads: by a watch, or by
		// the read its grand-predecessor's deletion costs it.
		r.await(ps[i+2].id, func(l Leadership) bool { return l.Leader == ps[i+1].id })
		d := countsOf(sessions...).sub(before)
		if d.pred+d.gp > 2 {
			t.Fatalf("change %d woke %d participants (%+v), want at most 2", i, d.pred+d.gp, d)
		}
		if d.readGrants != 0 {
			t.Fatalf("change %d: the new leader read the children (%+v), want a grant from its watch alone", i, d)
		}
	}
}

func TestObserveAndLeader(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	watcher := connect(t, root)
	ctx := testCtx(t)
	obs, err := watcher.Observe(ctx, "/leader")
	if err != nil {
		t.Fatal(err)
	}
	next := func() Participant {
		t.Helper()
		select {
		case p := <-obs:
			return p
		case <-time.After(5 * time.Second):
			t.Fatal("Observe sent nothing")
		}
		return Participant{}
	}
	if p := next(); p.ID != "" {
		t.Fatalf("empty election observed as %+v", p)
	}
	r := newReferee(t)
	a := join(t, r, root, nil, "/leader", "a")
	if p := next(); p.ID != "a" || !p.IsLeader {
		t.Fatalf("observed %+v, want a", p)
	}
	join(t, r, root, nil, "/leader", "b")
	a.cancel()
	if p := next(); p.ID != "b" {
		t.Fatalf("observed %+v, want b", p)
	}
	if l, err := watcher.Leader(ctx, "/leader"); err != nil || l.ID != "b" {
		t.Fatalf("Leader: %+v %v", l, err)
	}
}

func TestElectBadInput(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)
	if _, err := s.Create(ctx, "/eph", nil, Ephemeral); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		opts []RecipeOption
		want error
	}{
		{"relative path", "leader", nil, ErrInvalidPath},
		{"trailing slash", "/leader/", nil, ErrInvalidPath},
		{"no id", "/leader", nil, nil}, // the host name
		{"empty id", "/leader", []RecipeOption{WithID("")}, ErrInvalidID},
		{"id with slash", "/leader", []RecipeOption{WithID("a/b")}, ErrInvalidID},
		{"id with NUL", "/leader", []RecipeOption{WithID("a\x00")}, ErrInvalidID},
		{"oversized id", "/leader", []RecipeOption{WithID(strings.Repeat("x", MaxIDLength+1))}, ErrInvalidID},
		{"under an ephemeral node", "/eph/leader", nil, ErrEphemeralChild},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch, err := s.Elect(ctx, tc.path, tc.opts...)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				cancel()
				for range ch {
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Elect: %v, want %v", err, tc.want)
			}
		})
	}
}
