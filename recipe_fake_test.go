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

// fakeRegister registers id in service on fs until the test ends.
func fakeRegister(t testing.TB, fs *fakeSession, service, id string) *Registration {
	t.Helper()
	r, err := fs.Register(context.Background(), service, Node{ID: id, Data: []byte(id + ":80")})
	if err != nil {
		t.Fatalf("Register(%s, %s): %v", service, id, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// owner returns the session that owns path's node, 0 if there is none.
func (z *fakeZK) owner(path string) int64 {
	_, st, _ := z.Node(path)
	return st.EphemeralOwner
}

func TestFakeRegisterCreatesAndRemoves(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	r := fakeRegister(t, fs, "svc", "a")
	data, st, ok := z.Node("/services/svc/a")
	if !ok || string(data) != "a:80" || st.EphemeralOwner != fs.zk.SessionID() {
		t.Fatalf("node: %q %+v %v", data, st, ok)
	}
	if e := fs.await(t, EventRegistered); e.Path != "/services/svc/a" || e.SessionID != fs.zk.SessionID() {
		t.Fatalf("registered event: %v", e)
	}
	// A suspension changes nothing.
	fs.zk.Disconnect()
	fs.await(t, EventSuspended)
	fs.zk.Reconnect()
	fs.await(t, EventReconnected)
	if _, now, _ := z.Node("/services/svc/a"); now.Czxid != st.Czxid {
		t.Fatal("node made again after a suspension")
	}
	r.Close()
	if _, _, ok := z.Node("/services/svc/a"); ok {
		t.Fatal("node still there after Close")
	}
}

func TestFakeRegisterRecreatedAfterExpiry(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	fakeRegister(t, fs, "svc", "a")
	fs.await(t, EventRegistered)
	_, first, _ := z.Node("/services/svc/a")

	fs.zk.Expire()
	fs.await(t, EventExpired)
	e := fs.await(t, EventRegistered)
	_, st, ok := z.Node("/services/svc/a")
	if !ok || st.EphemeralOwner != fs.zk.SessionID() || e.SessionID != fs.zk.SessionID() || st.Czxid <= first.Czxid {
		t.Fatalf("after expiry: node %+v (%v), event %v, session 0x%x", st, ok, e, fs.zk.SessionID())
	}
}

func TestFakeRegisterRecreatedAfterExternalDelete(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	fakeRegister(t, fs, "svc", "a")
	fs.await(t, EventRegistered)
	_, first, _ := z.Node("/services/svc/a")

	if err := z.admin().Delete(context.Background(), "/services/svc/a", -1); err != nil {
		t.Fatal(err)
	}
	fs.await(t, EventRegistered)
	if _, st, ok := z.Node("/services/svc/a"); !ok || st.Czxid <= first.Czxid || st.EphemeralOwner != fs.zk.SessionID() {
		t.Fatalf("node after delete: %+v %v", st, ok)
	}
}

func TestFakeRegisterIDTakenWaitsThenTakesBack(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	fakeRegister(t, fs, "svc", "a")
	fs.await(t, EventRegistered)

	// Another session swaps our node for its own, in one transaction.
	other := z.admin()
	_, err := other.Multi(context.Background(),
		zkclient.DeleteOp("/services/svc/a", -1),
		zkclient.CreateOp("/services/svc/a", []byte("theirs"), zkclient.WorldACL(zkclient.PermAll), zkclient.Ephemeral))
	if err != nil {
		t.Fatal(err)
	}
	if e := fs.await(t, EventError); !errors.Is(e.Err, ErrIDTaken) {
		t.Fatalf("error event: %v, want ErrIDTaken", e)
	}
	if z.owner("/services/svc/a") != other.SessionID() {
		t.Fatal("the other session's node was touched")
	}
	// Its session ends: the ID is ours again.
	other.Expire()
	fs.await(t, EventRegistered)
	if data, st, _ := z.Node("/services/svc/a"); st.EphemeralOwner != fs.zk.SessionID() || string(data) != "a:80" {
		t.Fatalf("node after the other session: %q %+v", data, st)
	}
}

func TestFakeRegisterIDTakenAtStart(t *testing.T) {
	z := newFakeZK()
	other := z.admin()
	mustCreate(t, other, "/services", nil, zkclient.Container)
	mustCreate(t, other, "/services/svc", nil, zkclient.Container)
	mustCreate(t, other, "/services/svc/a", nil, zkclient.Ephemeral)
	fs := newFakeSession(t, z)
	if _, err := fs.Register(context.Background(), "svc", Node{ID: "a"}); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("Register over another session's node: %v, want ErrIDTaken", err)
	}
	if z.owner("/services/svc/a") != other.SessionID() {
		t.Fatal("the other session's node was touched")
	}
}

func TestFakeRegisterLostCreateReply(t *testing.T) {
	z := newFakeZK()
	admin := z.admin()
	mustCreate(t, admin, "/services", nil, zkclient.Container)
	mustCreate(t, admin, "/services/svc", nil, zkclient.Container)
	fs := newFakeSession(t, z)
	fs.zk.LoseNextReply("create")
	done := make(chan error, 1)
	go func() {
		r, err := fs.Register(context.Background(), "svc", Node{ID: "a"})
		if err == nil {
			t.Cleanup(func() { r.Close() })
		}
		done <- err
	}()
	fs.await(t, EventSuspended)
	_, st, ok := z.Node("/services/svc/a")
	if !ok || st.EphemeralOwner != fs.zk.SessionID() {
		t.Fatalf("the lost create: %+v %v", st, ok)
	}
	fs.zk.Reconnect()
	if err := recv(t, done, "Register"); err != nil {
		t.Fatalf("Register after a lost reply: %v (its own node must not count as taken)", err)
	}
	if _, now, _ := z.Node("/services/svc/a"); now.Czxid != st.Czxid {
		t.Fatal("node made again")
	}
}

// fakeMembers follows service on fs until the test ends.
func fakeMembers(t testing.TB, fs *fakeSession, service string) <-chan []Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := fs.Members(ctx, service)
	if err != nil {
		t.Fatalf("Members(%s): %v", service, err)
	}
	return ch
}

func TestFakeMembersSeeJoinsAndLeaves(t *testing.T) {
	z := newFakeZK()
	w, r := newFakeSession(t, z), newFakeSession(t, z)
	ch := fakeMembers(t, w, "svc")
	if got := recv(t, ch, "first set"); len(got) != 0 {
		t.Fatalf("first set %v, want empty", ids(got))
	}
	a := fakeRegister(t, r, "svc", "a")
	awaitIDs(t, ch, fakeWait, "a")
	fakeRegister(t, r, "svc", "b")
	nodes := awaitIDs(t, ch, fakeWait, "a", "b")
	if string(nodes[1].Data) != "b:80" {
		t.Fatalf("data %q", nodes[1].Data)
	}
	a.Close()
	awaitIDs(t, ch, fakeWait, "b")
}

func TestFakeMembersSeeReregistrationBetweenReads(t *testing.T) {
	z := newFakeZK()
	w, r := newFakeSession(t, z), newFakeSession(t, z)
	ch := fakeMembers(t, w, "svc")
	a := fakeRegister(t, r, "svc", "a")
	awaitIDs(t, ch, fakeWait, "a")
	// While the watcher is away, a leaves and comes back with a new node:
	// the names alone do not show it, the child version does.
	w.zk.Disconnect()
	a.Close()
	fakeRegister(t, r, "svc", "a")
	w.zk.Reconnect()
	nodes := recv(t, ch, "the set after a registered again")
	if len(nodes) != 1 || nodes[0].ID != "a" {
		t.Fatalf("set %v", ids(nodes))
	}
}

func TestFakeMembersExpiryRereads(t *testing.T) {
	z := newFakeZK()
	w, r := newFakeSession(t, z), newFakeSession(t, z)
	ch := fakeMembers(t, w, "svc")
	a := fakeRegister(t, r, "svc", "a")
	fakeRegister(t, r, "svc", "b")
	awaitIDs(t, ch, fakeWait, "a", "b")

	// Changes made while the watcher's session expires: its watch is lost,
	// so only a fresh read on the new session can show them.
	w.zk.Disconnect()
	a.Close()
	fakeRegister(t, r, "svc", "c")
	reads := w.zk.Calls("children")
	w.zk.Expire()
	awaitIDs(t, ch, fakeWait, "b", "c")
	if w.zk.Calls("children") == reads {
		t.Fatal("no read after expiry")
	}
	// And the new session's watch works.
	fakeRegister(t, r, "svc", "d")
	awaitIDs(t, ch, fakeWait, "b", "c", "d")
}

func TestFakeMembersRetryAfterFailure(t *testing.T) {
	z := newFakeZK()
	w, r := newFakeSession(t, z), newFakeSession(t, z)
	ch := fakeMembers(t, w, "svc")
	recv(t, ch, "first set")
	w.zk.FailNext("children", 1, zkclient.ErrOperationTimeout)
	fakeRegister(t, r, "svc", "a")
	if e := w.await(t, EventError); !errors.Is(e.Err, zkclient.ErrOperationTimeout) {
		t.Fatalf("error event %v", e)
	}
	awaitIDs(t, ch, fakeWait, "a")
}

func TestFakeBalancerFollowsMembers(t *testing.T) {
	z := newFakeZK()
	w, r := newFakeSession(t, z), newFakeSession(t, z)
	b, err := w.Balancer(context.Background(), "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if _, ok := b.Pick("k"); ok {
		t.Fatal("picked from an empty service")
	}
	a := fakeRegister(t, r, "svc", "a")
	fakeRegister(t, r, "svc", "b")
	awaitPicks(t, b, "a", "b")
	a.Close()
	awaitPicks(t, b, "b")

	// The last set stands while disconnected; expiry reads it afresh.
	w.zk.Disconnect()
	awaitPicks(t, b, "b")
	w.zk.Expire()
	fakeRegister(t, r, "svc", "c")
	awaitPicks(t, b, "b", "c")
	// Two errors leave a node out (the default down policy).
	b.ReportError("c")
	b.ReportError("c")
	awaitPicks(t, b, "b")
	// A failed read is retried.
	w.zk.FailNext("children", 1, zkclient.ErrOperationTimeout)
	fakeRegister(t, r, "svc", "d")
	awaitPicks(t, b, "b", "d")
	b.Close()
	if n, ok := b.Pick("k"); !ok || (n.ID != "b" && n.ID != "d") {
		t.Fatalf("Pick after Close: %v %v", n, ok)
	}
}

// enter runs Enter in a goroutine and returns its outcome's channel.
func enter(b *Barrier) <-chan error {
	done := make(chan error, 1)
	go func() { done <- b.Enter(context.Background()) }()
	return done
}

func leave(b *Barrier) <-chan error {
	done := make(chan error, 1)
	go func() { done <- b.Leave(context.Background()) }()
	return done
}

func fakeBarrier(t testing.TB, fs *fakeSession, path string, count int, id string) *Barrier {
	t.Helper()
	b, err := fs.Barrier(context.Background(), path, count, WithID(id))
	if err != nil {
		t.Fatalf("Barrier(%s, %s): %v", path, id, err)
	}
	return b
}

// awaitNode polls until path exists (the fake says nothing when it changes).
func (z *fakeZK) awaitNode(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(fakeWait)
	for {
		if _, _, ok := z.Node(path); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not created", path)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFakeBarrierTwoEnterAndLeave(t *testing.T) {
	z := newFakeZK()
	s1, s2 := newFakeSession(t, z), newFakeSession(t, z)
	b1, b2 := fakeBarrier(t, s1, "/b", 2, "p1"), fakeBarrier(t, s2, "/b", 2, "p2")
	e1 := enter(b1)
	z.awaitNode(t, "/b/p1")
	quietFor(t, e1, 30*time.Millisecond, "p1 entering alone")

	// p2 completes the count while p1 is disconnected: p1 learns of it on
	// reconnect.
	s1.zk.Disconnect()
	if err := recv(t, enter(b2), "p2 enters"); err != nil {
		t.Fatal(err)
	}
	quietFor(t, e1, 10*time.Millisecond, "p1 while disconnected")
	s1.zk.Reconnect()
	if err := recv(t, e1, "p1 enters"); err != nil {
		t.Fatal(err)
	}
	if got := z.Children("/b"); len(got) != 3 {
		t.Fatalf("children of an open barrier: %v", got)
	}

	l1, l2 := leave(b1), leave(b2)
	for _, l := range []<-chan error{l1, l2} {
		if err := recv(t, l, "leave"); err != nil {
			t.Fatal(err)
		}
	}
	if got := z.Children("/b"); len(got) != 0 {
		t.Fatalf("children after leaving: %v", got)
	}
}

func TestFakeBarrierExpiryWhileWaiting(t *testing.T) {
	z := newFakeZK()
	s1, s2 := newFakeSession(t, z), newFakeSession(t, z)
	b1, b2 := fakeBarrier(t, s1, "/b", 2, "p1"), fakeBarrier(t, s2, "/b", 2, "p2")
	e1 := enter(b1)
	z.awaitNode(t, "/b/p1")
	s1.zk.Expire()
	if err := recv(t, e1, "p1 after expiry"); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("Enter after its session expired: %v, want ErrSessionExpired", err)
	}
	if _, _, ok := z.Node("/b/p1"); ok {
		t.Fatal("p1's node outlived its session")
	}
	// p2 alone does not pass; p1 enters again on its new session and both do.
	e2 := enter(b2)
	z.awaitNode(t, "/b/p2")
	quietFor(t, e2, 30*time.Millisecond, "p2 alone")
	if err := recv(t, enter(b1), "p1 again"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, e2, "p2"); err != nil {
		t.Fatal(err)
	}
}

func TestFakeBarrierLostCreateReply(t *testing.T) {
	z := newFakeZK()
	s1, s2 := newFakeSession(t, z), newFakeSession(t, z)
	b1, b2 := fakeBarrier(t, s1, "/b", 2, "p1"), fakeBarrier(t, s2, "/b", 2, "p2")
	s1.zk.LoseNextReply("create")
	e1 := enter(b1)
	s1.await(t, EventSuspended)
	z.awaitNode(t, "/b/p1")
	s1.zk.Reconnect()
	if err := recv(t, enter(b2), "p2 enters"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, e1, "p1 enters"); err != nil {
		t.Fatalf("Enter after a lost create reply: %v", err)
	}
	if z.owner("/b/p1") != s1.zk.SessionID() {
		t.Fatal("p1's node is not its session's")
	}
}

func TestFakeElectFollowerNodeDeletedRejoinsAtTheBack(t *testing.T) {
	z := newFakeZK()
	a, b, c := newFakeSession(t, z), newFakeSession(t, z), newFakeSession(t, z)
	cha, _ := fakeElect(t, a, "/e", "a")
	until(t, cha, "a leads", isLeader)
	chb, _ := fakeElect(t, b, "/e", "b")
	until(t, chb, "b follows", func(l Leadership) bool { return !l.IsLeader })
	bNode, _ := onlyOwned(t, z, "/e", b.zk.SessionID())
	chc, cancelC := fakeElect(t, c, "/e", "c")
	until(t, chc, "c follows", func(l Leadership) bool { return !l.IsLeader })

	if err := z.admin().Delete(context.Background(), "/e/"+bNode, -1); err != nil {
		t.Fatal(err)
	}
	// b joins again behind c: when a and then c leave, b leads last.
	deadline := time.Now().Add(fakeWait)
	for {
		names := electionNodes(z.Children("/e"))
		if len(names) == 3 && z.owner("/e/"+names[2]) == b.zk.SessionID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue after b's node was deleted: %v", names)
		}
		time.Sleep(time.Millisecond)
	}
	quietFor(t, cha, 10*time.Millisecond, "the leader")
	a.Close()
	until(t, chc, "c leads", isLeader)
	cancelC()
	until(t, chb, "b leads", isLeader)
}

func TestFakeElectLeaderAndFollowerDeletedTogether(t *testing.T) {
	// The follower's predecessor and its own node go in one transaction: it
	// must not lead on its deleted node, however the two watches are read.
	for _, order := range []string{"leader first", "follower first"} {
		t.Run(order, func(t *testing.T) {
			z := newFakeZK()
			a, b := newFakeSession(t, z), newFakeSession(t, z)
			cha, _ := fakeElect(t, a, "/e", "a")
			until(t, cha, "a leads", isLeader)
			chb, _ := fakeElect(t, b, "/e", "b")
			until(t, chb, "b follows", func(l Leadership) bool { return !l.IsLeader })
			q := electionNodes(z.Children("/e"))
			ops := []zkclient.Op{zkclient.DeleteOp("/e/"+q[0], -1), zkclient.DeleteOp("/e/"+q[1], -1)}
			if order == "follower first" {
				ops[0], ops[1] = ops[1], ops[0]
			}
			if _, err := z.admin().Multi(context.Background(), ops...); err != nil {
				t.Fatal(err)
			}
			// Both rejoin; whoever leads, leads on a node that exists.
			deadline := time.Now().Add(fakeWait)
			for {
				names := electionNodes(z.Children("/e"))
				if len(names) == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("queue after both were deleted: %v", names)
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(10 * time.Millisecond)
			// Leading on the deleted node would show as a grant revoked
			// when its deletion is noticed; leading on its new node is fine.
			for e := range drain(b.events) {
				if e.Type == EventRevoked {
					t.Fatalf("b: %v: it led on its deleted node", e)
				}
			}
			var last Leadership
			for l := range drain(chb) {
				last = l
			}
			if _, st := onlyOwned(t, z, "/e", b.zk.SessionID()); last.IsLeader && last.Token != st.Czxid {
				t.Fatalf("b leads with token %d, its node has czxid %d", last.Token, st.Czxid)
			}
		})
	}
}

// drain yields the values ch holds now.
func drain[T any](ch <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for {
			select {
			case v, ok := <-ch:
				if !ok || !yield(v) {
					return
				}
			default:
				return
			}
		}
	}
}

// onlyOwned returns the one child of path owned by session id.
func onlyOwned(t testing.TB, z *fakeZK, path string, id int64) (string, zkclient.Stat) {
	t.Helper()
	for _, n := range z.Children(path) {
		if _, st, _ := z.Node(joinPath(path, n)); st.EphemeralOwner == id {
			return n, st
		}
	}
	t.Fatalf("no child of %s owned by 0x%x", path, id)
	return "", zkclient.Stat{}
}

func TestFakeElectLeaveWhileDisconnectedDeletesOnReconnect(t *testing.T) {
	z := newFakeZK()
	a, b := newFakeSession(t, z), newFakeSession(t, z)
	cha, cancelA := fakeElect(t, a, "/e", "a")
	until(t, cha, "a leads", isLeader)
	chb, _ := fakeElect(t, b, "/e", "b")
	until(t, chb, "b follows", func(l Leadership) bool { return !l.IsLeader })

	a.zk.Disconnect()
	cancelA()
	closedWithin(t, cha, "a after cancel")
	if len(z.Children("/e")) != 2 {
		t.Fatal("a's node deleted while disconnected?")
	}
	quietFor(t, chb, 20*time.Millisecond, "b while a's node stays")
	a.zk.Reconnect() // a's node is deleted now, not at its session's end
	until(t, chb, "b leads", isLeader)
}

func TestFakeRegisterCloseWhileDisconnected(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	r := fakeRegister(t, fs, "svc", "a")
	fs.zk.Disconnect()
	r.Close()
	if _, _, ok := z.Node("/services/svc/a"); !ok {
		t.Fatal("node deleted while disconnected?")
	}
	fs.zk.Reconnect()
	deadline := time.Now().Add(fakeWait)
	for {
		if _, _, ok := z.Node("/services/svc/a"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node not deleted on reconnect after Close")
		}
		time.Sleep(time.Millisecond)
	}
	// The ID is free for a new registration on the same session.
	fakeRegister(t, fs, "svc", "a")
}

func TestFakeMembersServiceRemovedAndCreatedAgain(t *testing.T) {
	z := newFakeZK()
	w, r := newFakeSession(t, z), newFakeSession(t, z)
	ch := fakeMembers(t, w, "svc")
	a := fakeRegister(t, r, "svc", "a")
	awaitIDs(t, ch, fakeWait, "a")
	a.Close()
	awaitIDs(t, ch, fakeWait)
	// The server removes the empty container; the watcher follows its
	// return.
	if err := z.admin().Delete(context.Background(), "/services/svc", -1); err != nil {
		t.Fatal(err)
	}
	fakeRegister(t, r, "svc", "b")
	awaitIDs(t, ch, fakeWait, "b")
}

func TestFakeBarrierSessionClosedWhileWaiting(t *testing.T) {
	z := newFakeZK()
	s1 := newFakeSession(t, z)
	b1 := fakeBarrier(t, s1, "/b", 2, "p1")
	e1 := enter(b1)
	z.awaitNode(t, "/b/p1")
	s1.Close()
	if err := recv(t, e1, "p1 after Close"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enter when the session closed: %v, want ErrClosed", err)
	}
	if _, _, ok := z.Node("/b/p1"); ok {
		t.Fatal("node outlived the closed session")
	}
}

// The recipe loop promises that a reconnect ends any retry wait at once.
// When the connection drops and comes back while a look is in flight, the
// loop sees only the newest session state (connected, as before the look)
// and waits out its backoff instead. Remove the Skip to see it.
func TestFakeReconnectDuringALookEndsTheRetryWait(t *testing.T) {
	t.Skip("known: recipe.go misses a reconnect that happens during a look (see the comment)")
	z := newFakeZK()
	mustCreate(t, z.admin(), "/e", nil, zkclient.Persistent)
	fs := newFakeSession(t, z)
	fs.zk.BlipNextReply("create")
	start := time.Now()
	ch, _ := fakeElect(t, fs, "/e", "a")
	until(t, ch, "leads", isLeader)
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Fatalf("joined %v after the connection came back; the first retry waits 25-75 ms", d)
	}
}

func TestFakeRegisterWaitsForTheNodeOfItsExpiredSession(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	fakeRegister(t, fs, "svc", "a")
	fs.await(t, EventRegistered)
	old := fs.zk.SessionID()

	deleteThem := fs.zk.ExpireLeavingEphemerals()
	fs.await(t, EventConnected)
	time.Sleep(10 * time.Millisecond)
	if z.owner("/services/svc/a") != old {
		t.Fatal("the expired session's node was touched")
	}
	for e := range drain(fs.events) {
		if e.Type == EventError && errors.Is(e.Err, ErrIDTaken) {
			t.Fatalf("%v: its own old node taken for another's", e)
		}
	}
	deleteThem()
	e := fs.await(t, EventRegistered)
	if e.SessionID != fs.zk.SessionID() || z.owner("/services/svc/a") != fs.zk.SessionID() {
		t.Fatalf("registered %v; node owner 0x%x", e, z.owner("/services/svc/a"))
	}
}

func TestFakeElectCloseRevokesBeforeTheNodeGoes(t *testing.T) {
	z := newFakeZK()
	a, b := newFakeSession(t, z), newFakeSession(t, z)
	cha, _ := fakeElect(t, a, "/e", "a")
	la := until(t, cha, "a leads", isLeader)
	chb, _ := fakeElect(t, b, "/e", "b")
	until(t, chb, "b follows", func(l Leadership) bool { return !l.IsLeader })
	stillLed := make(chan bool, 1)
	a.zk.closing = func() { stillLed <- la.Context.Err() == nil }
	a.Close()
	if recv(t, stillLed, "close") {
		t.Fatal("a's node went while its leadership's context was not done")
	}
	until(t, chb, "b leads", isLeader)
	closedWithin(t, cha, "a after Close")
}

func TestFakeBarrierExpiryAfterLeavingKeepsWaiting(t *testing.T) {
	z := newFakeZK()
	s1, s2 := newFakeSession(t, z), newFakeSession(t, z)
	b1, b2 := fakeBarrier(t, s1, "/b", 2, "p1"), fakeBarrier(t, s2, "/b", 2, "p2")
	e1 := enter(b1)
	if err := recv(t, enter(b2), "p2 enters"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, e1, "p1 enters"); err != nil {
		t.Fatal(err)
	}
	// p2 (not the lowest) deletes its node and waits for p1; its session
	// expiring then changes nothing.
	l2 := leave(b2)
	deadline := time.Now().Add(fakeWait)
	for _, _, ok := z.Node("/b/p2"); ok; _, _, ok = z.Node("/b/p2") {
		if time.Now().After(deadline) {
			t.Fatal("p2's node not deleted by Leave")
		}
		time.Sleep(time.Millisecond)
	}
	s2.zk.Expire()
	quietFor(t, l2, 20*time.Millisecond, "p2 leaving while p1 is in")
	if err := recv(t, leave(b1), "p1 leaves"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, l2, "p2 leaves"); err != nil {
		t.Fatalf("Leave after an expiry once its node was gone: %v", err)
	}
	if got := z.Children("/b"); len(got) != 0 {
		t.Fatalf("children after leaving: %v", got)
	}
}

func TestFakeGuardedWrites(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	mustCreate(t, z.admin(), "/data", []byte("0"), zkclient.Persistent)
	ch, _ := fakeElect(t, fs, "/e", "a")
	l1 := until(t, ch, "leads", isLeader)
	ctx := context.Background()
	if _, err := fs.Txn(ctx, l1.Guard(), SetOp("/data", []byte("1"), AnyVersion)); err != nil {
		t.Fatalf("guarded write while leading: %v", err)
	}
	// A guard names the node, not the grant: after a suspension the same
	// node leads again, and the first grant's guard still holds.
	fs.zk.Disconnect()
	until(t, ch, "revoked", func(l Leadership) bool { return !l.IsLeader })
	fs.zk.Reconnect()
	l2 := until(t, ch, "leads again", isLeader)
	if _, err := fs.Txn(ctx, l1.Guard(), SetOp("/data", []byte("2"), AnyVersion)); err != nil {
		t.Fatalf("guard of the same node after a reconnect: %v", err)
	}
	// The node goes: every guard of it fails, and nothing is applied.
	node, _ := onlyNode(t, z, "/e")
	if err := z.admin().Delete(ctx, "/e/"+node, -1); err != nil {
		t.Fatal(err)
	}
	_, err := fs.Txn(ctx, l2.Guard(), SetOp("/data", []byte("3"), AnyVersion))
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("guarded write after the node went: %v, want ErrNotLeader", err)
	}
	if data, _, _ := z.Node("/data"); string(data) != "2" {
		t.Fatalf("data %q after a failed guard", data)
	}
	// A follower's guard fails before any round trip.
	calls := fs.zk.Calls("multi")
	if _, err := fs.Txn(ctx, (Leadership{}).Guard()); !errors.Is(err, ErrNotLeader) || fs.zk.Calls("multi") != calls {
		t.Fatalf("a non-leader's guard: %v (multis %d -> %d)", err, calls, fs.zk.Calls("multi"))
	}
}

// Lost create replies across an expiry whose ephemeral nodes the server has
// not yet deleted (the case Register handles with errWaiting). Remove the
// Skip to see each.

func TestFakeElectLostCreateThenExpiryDoesNotAdoptTheOldSessionsNode(t *testing.T) {
	t.Skip("known: election.findPending adopts a node of the expired session and leads on it until the server deletes it")
	z := newFakeZK()
	mustCreate(t, z.admin(), "/e", nil, zkclient.Persistent)
	fs := newFakeSession(t, z)
	fs.zk.LoseNextReply("create")
	done := make(chan (<-chan Leadership), 1)
	go func() {
		ch, _ := fs.Elect(context.Background(), "/e", WithID("a"))
		done <- ch
	}()
	fs.await(t, EventSuspended)
	deleteThem := fs.zk.ExpireLeavingEphemerals()
	defer deleteThem()
	l := until(t, recv(t, done, "Elect"), "leads", isLeader)
	if name, st := onlyOwned(t, z, "/e", fs.zk.SessionID()); st.Czxid != l.Token {
		t.Fatalf("leads with token %d; its session's node %s has czxid %d", l.Token, name, st.Czxid)
	}
}

func TestFakeBarrierLostCreateThenExpiryIsNotIDTaken(t *testing.T) {
	t.Skip("known: Barrier.create takes the expired session's own node for another participant's (ErrIDTaken)")
	z := newFakeZK()
	s1 := newFakeSession(t, z)
	b1 := fakeBarrier(t, s1, "/b", 2, "p1")
	s1.zk.LoseNextReply("create")
	e1 := enter(b1)
	s1.await(t, EventSuspended)
	deleteThem := s1.zk.ExpireLeavingEphemerals()
	select {
	case err := <-e1:
		t.Fatalf("Enter: %v; want it to wait for its old node to go", err)
	case <-time.After(30 * time.Millisecond):
	}
	deleteThem()
	z.awaitNode(t, "/b/p1")
	if z.owner("/b/p1") != s1.zk.SessionID() {
		t.Fatal("p1's node is not its new session's")
	}
	b2 := fakeBarrier(t, newFakeSession(t, z), "/b", 2, "p2")
	if err := recv(t, enter(b2), "p2"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, e1, "p1"); err != nil {
		t.Fatal(err)
	}
}

func TestFakeLeadRunsFnPerGrant(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type call struct {
		token int64
		ended chan struct{} // closed to let fn return
	}
	calls := make(chan call)
	fnCtxs := make(chan context.Context, 4)
	done := make(chan error, 1)
	go func() {
		done <- fs.Lead(ctx, "/e", func(ctx context.Context, l Leadership) error {
			c := call{l.Token, make(chan struct{})}
			fnCtxs <- ctx
			calls <- c
			<-c.ended
			return ctx.Err()
		}, WithID("a"))
	}()
	first := recv(t, calls, "fn")
	fnCtx := recv(t, fnCtxs, "fn's ctx")

	// A suspension cancels fn's ctx; fn returns; the same node leads again
	// on reconnect and fn runs again, with the same token.
	fs.zk.Disconnect()
	select {
	case <-fnCtx.Done():
	case <-time.After(fakeWait):
		t.Fatal("fn's ctx not cancelled on suspension")
	}
	close(first.ended)
	fs.zk.Reconnect()
	second := recv(t, calls, "fn again")
	if second.token != first.token {
		t.Fatalf("token %d after reconnect, want %d", second.token, first.token)
	}

	// Leaving: the node stays until fn has returned.
	cancel()
	<-recv(t, fnCtxs, "fn's ctx").Done()
	time.Sleep(5 * time.Millisecond)
	if len(z.Children("/e")) != 1 {
		t.Fatal("node deleted while fn still runs")
	}
	close(second.ended)
	if err := recv(t, done, "Lead"); err != nil {
		t.Fatalf("Lead: %v", err)
	}
	if names := z.Children("/e"); len(names) != 0 {
		t.Fatalf("node left behind: %v", names)
	}
}

// A registration whose ID another session took (it waits for that node to
// go) still counts the node as its own: Close deletes the other session's
// node.
func TestFakeRegisterCloseWhileIDTakenLeavesTheOtherNode(t *testing.T) {
	t.Skip("known: registration.leave deletes the node at its path with AnyVersion though another session owns it now")
	z := newFakeZK()
	fs := newFakeSession(t, z)
	r := fakeRegister(t, fs, "svc", "a")
	other := z.admin()
	_, err := other.Multi(context.Background(),
		zkclient.DeleteOp("/services/svc/a", -1),
		zkclient.CreateOp("/services/svc/a", nil, zkclient.WorldACL(zkclient.PermAll), zkclient.Ephemeral))
	if err != nil {
		t.Fatal(err)
	}
	fs.await(t, EventError)
	r.Close()
	time.Sleep(5 * time.Millisecond)
	if z.owner("/services/svc/a") != other.SessionID() {
		t.Fatal("Close deleted the node of the session that holds the ID")
	}
}
