package lighthouse

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// Recipe state machines against the fake (fake_test.go): each recipe's
// reactions to suspend, reconnect, expiry, a watch firing, a lost reply and
// a retry, in milliseconds and without a server. Run them alone with
// -run Fake.

// fakeWait bounds every wait of these tests: the fake answers in
// microseconds, so a second means something is stuck.
const fakeWait = time.Second

// recv returns the next value from ch.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return v
	case <-time.After(fakeWait):
		t.Fatalf("%s: nothing within %v", what, fakeWait)
	}
	panic("unreachable")
}

// until reads ch until a value satisfies ok, and returns it.
func until[T any](t testing.TB, ch <-chan T, what string, ok func(T) bool) T {
	t.Helper()
	timer := time.NewTimer(fakeWait)
	defer timer.Stop()
	var last T
	for {
		select {
		case v, open := <-ch:
			if !open {
				t.Fatalf("%s: channel closed (last %+v)", what, last)
			}
			if ok(v) {
				return v
			}
			last = v
		case <-timer.C:
			t.Fatalf("%s: not within %v (last %+v)", what, fakeWait, last)
		}
	}
}

// quietFor fails if ch delivers a value within d.
func quietFor[T any](t testing.TB, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v, ok := <-ch:
		t.Fatalf("%s: got %+v (open %v), want nothing", what, v, ok)
	case <-time.After(d):
	}
}

// closedWithin fails unless ch is closed (after any values) within a second.
func closedWithin[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	timer := time.NewTimer(fakeWait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("%s: channel not closed", what)
		}
	}
}

// admin returns a client of z with a session of its own, for changes made
// by "someone else".
func (z *fakeZK) admin() *fakeClient {
	c := z.newClient()
	c.connect()
	return c
}

// mustCreate creates path (a persistent node) with c, failing the test on
// error.
func mustCreate(t testing.TB, c *fakeClient, path string, data []byte, mode zkclient.CreateMode) string {
	t.Helper()
	p, _, err := c.Create(context.Background(), path, data, zkclient.WorldACL(zkclient.PermAll), mode, 0)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	return p
}

func isLeader(l Leadership) bool { return l.IsLeader }

// fakeElect joins the election at path as id, until the test ends or the
// returned cancel is called.
func fakeElect(t testing.TB, fs *fakeSession, path, id string) (<-chan Leadership, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := fs.Elect(ctx, path, WithID(id))
	if err != nil {
		t.Fatalf("Elect(%s, %s): %v", path, id, err)
	}
	return ch, cancel
}

// onlyNode returns the one child of path, failing the test if there is not
// exactly one.
func onlyNode(t testing.TB, z *fakeZK, path string) (name string, st zkclient.Stat) {
	t.Helper()
	names := z.Children(path)
	if len(names) != 1 {
		t.Fatalf("children of %s: %v, want one", path, names)
	}
	_, st, _ = z.Node(joinPath(path, names[0]))
	return names[0], st
}

func TestFakeElectAloneLeadsAndLeaves(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	ch, cancel := fakeElect(t, fs, "/e", "a")
	l := recv(t, ch, "first leadership")
	if !l.IsLeader || l.Leader != "a" || l.ID != "a" || l.Context.Err() != nil {
		t.Fatalf("alone: %+v, want to lead", l)
	}
	name, st := onlyNode(t, z, "/e")
	if l.Token != st.Czxid || st.EphemeralOwner != fs.zk.SessionID() {
		t.Fatalf("token %d, node %s %+v", l.Token, name, st)
	}
	if e := fs.await(t, EventElected); e.Path != "/e" {
		t.Fatalf("elected event: %v", e)
	}
	cancel()
	if l.Context.Err() == nil {
		t.Fatal("leadership context not done at once when ctx is cancelled")
	}
	closedWithin(t, ch, "after cancel")
	if names := z.Children("/e"); len(names) != 0 {
		t.Fatalf("node left behind: %v", names)
	}
}

func TestFakeElectFollowerWaitsOnPredecessor(t *testing.T) {
	z := newFakeZK()
	a, b, c := newFakeSession(t, z), newFakeSession(t, z), newFakeSession(t, z)
	cha, cancelA := fakeElect(t, a, "/e", "a")
	la := until(t, cha, "a leads", isLeader)
	chb, cancelB := fakeElect(t, b, "/e", "b")
	lb := until(t, chb, "b follows a", func(l Leadership) bool { return !l.IsLeader && l.Leader == "a" })
	if lb.Token != 0 || lb.Context.Err() == nil {
		t.Fatalf("a follower's leadership: %+v", lb)
	}
	chc, _ := fakeElect(t, c, "/e", "c")
	until(t, chc, "c follows", func(l Leadership) bool { return !l.IsLeader && l.Leader == "a" })

	// Each follower watches only the node before its own: b leaving wakes c
	// alone, which then waits on a.
	reads := a.zk.Calls("children")
	cancelB()
	closedWithin(t, chb, "b after cancel")
	quietFor(t, chc, 30*time.Millisecond, "c when b leaves")
	if a.zk.Calls("children") != reads {
		t.Fatal("the leader looked at the election when a follower left")
	}

	// The leader goes: c, whose predecessor it now is, leads at once.
	reads = c.zk.Calls("children")
	cancelA()
	lc := until(t, chc, "c leads", isLeader)
	if lc.Token <= la.Token {
		t.Fatalf("tokens: c %d after a %d, want larger", lc.Token, la.Token)
	}
	if c.zk.Calls("children") != reads {
		t.Fatal("the handover from the leader took a read of the election")
	}
	if _, st := onlyNode(t, z, "/e"); st.Czxid != lc.Token {
		t.Fatalf("c's node %+v, token %d", st, lc.Token)
	}
}

func TestFakeElectSuspendRevokesReconnectRegrants(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	ch, _ := fakeElect(t, fs, "/e", "a")
	l1 := until(t, ch, "leads", isLeader)

	fs.zk.Disconnect()
	fs.await(t, EventSuspended)
	until(t, ch, "revoked", func(l Leadership) bool { return !l.IsLeader })
	if l1.Context.Err() == nil || l1.Valid() {
		t.Fatal("leadership still valid while suspended")
	}
	fs.await(t, EventRevoked)

	fs.zk.Reconnect()
	l2 := until(t, ch, "leads again", isLeader)
	if l2.Token != l1.Token {
		t.Fatalf("token after reconnect %d, want the same %d", l2.Token, l1.Token)
	}
	if l2.Context.Err() != nil || !l2.Valid() {
		t.Fatal("new leadership not valid")
	}
	if name, st := onlyNode(t, z, "/e"); st.Czxid != l1.Token {
		t.Fatalf("node %s %+v: not the same node", name, st)
	}
	// The old grant stays ended, and its Release does nothing.
	if l1.Context.Err() == nil {
		t.Fatal("old leadership came back to life")
	}
	l1.Release()
	quietFor(t, ch, 30*time.Millisecond, "after a stale Release")
}

func TestFakeElectExpiryRejoinsWithANewNode(t *testing.T) {
	z := newFakeZK()
	a, b := newFakeSession(t, z), newFakeSession(t, z)
	cha, _ := fakeElect(t, a, "/e", "a")
	la := until(t, cha, "a leads", isLeader)
	old, _ := onlyNode(t, z, "/e")
	chb, _ := fakeElect(t, b, "/e", "b")
	until(t, chb, "b follows", func(l Leadership) bool { return !l.IsLeader && l.Leader == "a" })

	// The leader's session expires: its node goes, b leads, a rejoins at
	// the back on its new session.
	a.zk.Expire()
	if la.Context.Err() == nil {
		// Not yet, maybe: the revocation comes through the session's state.
		until(t, cha, "a revoked", func(l Leadership) bool { return !l.IsLeader })
	}
	lb := until(t, chb, "b leads", isLeader)
	lafter := until(t, cha, "a follows b", func(l Leadership) bool { return !l.IsLeader && l.Leader == "b" })
	if la.Context.Err() == nil || lafter.Token != 0 || lb.Token <= la.Token {
		t.Fatalf("after expiry: a %+v, b %+v", lafter, lb)
	}
	names := z.Children("/e")
	if len(names) != 2 || names[0] == old && names[1] == old {
		t.Fatalf("nodes after expiry %v (a's old one %s)", names, old)
	}
	for _, n := range names {
		if _, st, _ := z.Node("/e/" + n); st.EphemeralOwner != a.zk.SessionID() && st.EphemeralOwner != b.zk.SessionID() {
			t.Fatalf("node %s owned by session %d, neither a's nor b's", n, st.EphemeralOwner)
		}
	}
}

func TestFakeElectOwnNodeDeletedByAnotherRevokes(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	ch, _ := fakeElect(t, fs, "/e", "a")
	l1 := until(t, ch, "leads", isLeader)
	old, _ := onlyNode(t, z, "/e")

	if err := z.admin().Delete(context.Background(), "/e/"+old, -1); err != nil {
		t.Fatal(err)
	}
	l2 := until(t, ch, "leads on a new node", func(l Leadership) bool { return l.IsLeader && l.Token != l1.Token })
	if l1.Context.Err() == nil {
		t.Fatal("leadership on the deleted node not ended")
	}
	if name, st := onlyNode(t, z, "/e"); name == old || st.Czxid != l2.Token {
		t.Fatalf("node %s %+v after rejoining, token %d", name, st, l2.Token)
	}
}

func TestFakeElectLostCreateReplyLeavesNoGhost(t *testing.T) {
	z := newFakeZK()
	mustCreate(t, z.admin(), "/e", nil, zkclient.Persistent)
	fs := newFakeSession(t, z)
	fs.zk.LoseNextReply("create")

	type result struct {
		ch  <-chan Leadership
		err error
	}
	done := make(chan result, 1)
	go func() {
		ch, err := fs.Elect(context.Background(), "/e", WithID("a"))
		done <- result{ch, err}
	}()
	fs.await(t, EventSuspended)
	ghost, st := onlyNode(t, z, "/e") // made, though its reply was lost
	if st.EphemeralOwner != fs.zk.SessionID() {
		t.Fatalf("node %s %+v", ghost, st)
	}
	fs.zk.Reconnect()
	r := recv(t, done, "Elect")
	if r.err != nil {
		t.Fatal(r.err)
	}
	l := until(t, r.ch, "leads", isLeader)
	if name, _ := onlyNode(t, z, "/e"); name != ghost || l.Token != st.Czxid {
		t.Fatalf("leads with token %d on %s; the lost create made %s (czxid %d)", l.Token, name, ghost, st.Czxid)
	}
}

func TestFakeElectRetriesAFailedLook(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	fs.zk.FailNext("children", 2, zkclient.ErrOperationTimeout)
	ch, _ := fakeElect(t, fs, "/e", "a")
	l := until(t, ch, "leads", isLeader)
	for range 2 {
		if e := fs.await(t, EventError); !errors.Is(e.Err, zkclient.ErrOperationTimeout) || e.Path != "/e" {
			t.Fatalf("error event: %v", e)
		}
	}
	// The retries found the node made by the first attempt.
	if _, st := onlyNode(t, z, "/e"); st.Czxid != l.Token {
		t.Fatalf("node %+v, token %d", st, l.Token)
	}
}

func TestFakeElectStaleReleaseIgnored(t *testing.T) {
	z := newFakeZK()
	a, b := newFakeSession(t, z), newFakeSession(t, z)
	cha, _ := fakeElect(t, a, "/e", "a")
	l1 := until(t, cha, "leads", isLeader)
	old, _ := onlyNode(t, z, "/e")

	// Release alone: re-enter at the back, which is the front.
	l1.Release()
	l2 := until(t, cha, "leads again", func(l Leadership) bool { return l.IsLeader && l.Token != l1.Token })
	if l1.Context.Err() == nil || l2.Token <= l1.Token {
		t.Fatalf("release: old %+v, new %+v", l1, l2)
	}
	if name, _ := onlyNode(t, z, "/e"); name == old {
		t.Fatal("released node not deleted")
	}
	// Releasing the old grant again does nothing to the new one.
	l1.Release()
	quietFor(t, cha, 30*time.Millisecond, "after a stale Release")
	if l2.Context.Err() != nil {
		t.Fatal("a stale Release ended the current leadership")
	}
	// Nor does a follower's Release.
	chb, _ := fakeElect(t, b, "/e", "b")
	lb := until(t, chb, "b follows", func(l Leadership) bool { return !l.IsLeader && l.Leader == "a" })
	lb.Release()
	quietFor(t, chb, 30*time.Millisecond, "after a follower's Release")
	quietFor(t, cha, 0, "leader after a follower's Release")

	// With a follower, Release hands over.
	l2.Release()
	until(t, chb, "b leads", isLeader)
	until(t, cha, "a follows b", func(l Leadership) bool { return !l.IsLeader && l.Leader == "b" })
}

func TestFakeObserveFollowsTheLeader(t *testing.T) {
	z := newFakeZK()
	obs, a, b := newFakeSession(t, z), newFakeSession(t, z), newFakeSession(t, z)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := obs.Observe(ctx, "/e")
	if err != nil {
		t.Fatal(err)
	}
	if p := recv(t, ch, "no election yet"); p.Node != "" || p.IsLeader {
		t.Fatalf("first value %+v, want none", p)
	}
	cha, cancelA := fakeElect(t, a, "/e", "a")
	la := until(t, cha, "a leads", isLeader)
	p := recv(t, ch, "a leads")
	if p.ID != "a" || !p.IsLeader || p.Token != la.Token {
		t.Fatalf("observed %+v, a leads with token %d", p, la.Token)
	}
	chb, cancelB := fakeElect(t, b, "/e", "b")
	until(t, chb, "b follows", func(l Leadership) bool { return !l.IsLeader })
	quietFor(t, ch, 30*time.Millisecond, "observer when a follower joins")

	// The observer's session expires: it reads again, same leader, no news.
	obs.zk.Expire()
	obs.await(t, EventConnected)
	quietFor(t, ch, 30*time.Millisecond, "observer after its expiry")

	cancelA()
	lb := until(t, chb, "b leads", isLeader)
	if p := recv(t, ch, "b leads"); p.ID != "b" || p.Token != lb.Token {
		t.Fatalf("observed %+v, b leads with token %d", p, lb.Token)
	}
	// A change made while the observer is disconnected reaches it on reconnect.
	obs.zk.Disconnect()
	cancelB()
	closedWithin(t, chb, "b")
	obs.zk.Reconnect()
	if p := recv(t, ch, "nobody leads"); p.Node != "" || p.IsLeader {
		t.Fatalf("observed %+v, want none", p)
	}
	cancel()
	closedWithin(t, ch, "observer after cancel")
}
