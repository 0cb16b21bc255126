package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// Elect, Observe, Guard and Lead against the fake (fake_test.go).

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
			// With the follower's node deleted first, its own deletion's
			// event is queued before its predecessor's: it never leads on
			// it. With the leader's first, the predecessor's event comes
			// first, and the follower may lead until the next event, its
			// own deletion, revokes it: a window as long as one event's
			// delivery, which no watch-based election closes without a read.
			for e := range drain(b.events) {
				if e.Type == EventRevoked && order == "follower first" {
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

func TestFakeElectCloseRevokesBeforeTheNodeGoes(t *testing.T) {
	z := newFakeZK()
	a, b := newFakeSession(t, z), newFakeSession(t, z)
	cha, _ := fakeElect(t, a, "/e", "a")
	la := until(t, cha, "a leads", isLeader)
	chb, _ := fakeElect(t, b, "/e", "b")
	until(t, chb, "b follows", func(l Leadership) bool { return !l.IsLeader })
	// Close deletes a's node itself, before it closes the session.
	stillLed := make(chan bool, 2)
	a.zk.deleting = func(string) { stillLed <- la.Context.Err() == nil }
	a.zk.closing = func() { stillLed <- la.Context.Err() == nil }
	a.Close()
	for _, when := range []string{"delete", "close"} {
		if recv(t, stillLed, when) {
			t.Fatalf("a's leadership's context was not done at the %s", when)
		}
	}
	until(t, chb, "b leads", isLeader)
	closedWithin(t, cha, "a after Close")
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

// A lost create reply across an expiry whose ephemeral nodes the server has
// not yet deleted (the case Register handles with errWaiting): the node of
// the ended session is not adopted; the participant queues on a node of its
// own behind it, and leads on that one once the old one is gone.
func TestFakeElectLostCreateThenExpiryDoesNotAdoptTheOldSessionsNode(t *testing.T) {
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
	ch := recv(t, done, "Elect")
	first := until(t, ch, "queued", func(l Leadership) bool { return l.ID == "a" })
	if first.IsLeader {
		t.Fatalf("leads on the ended session's node: %+v", first)
	}
	deleteThem()
	l := until(t, ch, "leads", isLeader)
	if name, st := onlyOwned(t, z, "/e", fs.zk.SessionID()); st.Czxid != l.Token {
		t.Fatalf("leads with token %d; its session's node %s has czxid %d", l.Token, name, st.Czxid)
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

// TestFakeLeadReleaseLostToASuspension: fn returns nil (Lead releases)
// just as the connection drops. If the suspension's revocation reaches the
// participant before the release, the release is stale and ignored, and on
// reconnect the same node leads again with a new grant and the same token:
// fn must run for it. Lead skipped every leadership with the released
// token, so it held the leadership forever without running fn.
func TestFakeLeadReleaseLostToASuspension(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := make(chan int64, 1)
	done := make(chan error, 1)
	go func() {
		done <- fs.Lead(ctx, "/e", func(ctx context.Context, l Leadership) error {
			runs <- l.Token
			fs.zk.Disconnect() // and return before the revocation lands
			return nil
		}, WithID("a"))
	}()
	for i := range 20 {
		recv(t, runs, fmt.Sprintf("fn, run %d", i+1))
		fs.await(t, EventSuspended)
		fs.zk.Reconnect()
	}
	recv(t, runs, "fn, run 21")
	cancel()
	if err := recv(t, done, "Lead"); err != nil {
		t.Fatalf("Lead: %v", err)
	}
}
