package lighthouse

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// Register, Members and Balancer against the fake (fake_test.go).

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

// A registration whose ID another session took (it waits for that node to
// go) still counts the node as its own: Close deletes the other session's
// node.
func TestFakeRegisterCloseWhileIDTakenLeavesTheOtherNode(t *testing.T) {
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

// Update changes the node's data, which fires the registration's own watch:
// re-arming it costs one Exists, not a Create that fails.
func TestFakeRegisterUpdateRearmsWithoutCreate(t *testing.T) {
	z := newFakeZK()
	fs := newFakeSession(t, z)
	r := fakeRegister(t, fs, "svc", "a")
	creates, exists := fs.zk.Calls("create"), fs.zk.Calls("exists")
	if err := r.Update(context.Background(), []byte("a:81")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(fakeWait)
	for fs.zk.Calls("exists") == exists { // the watch is re-armed by an Exists
		if time.Now().After(deadline) {
			t.Fatal("the registration's watch was not re-armed")
		}
		time.Sleep(time.Millisecond)
	}
	if n := fs.zk.Calls("create") - creates; n != 0 {
		t.Fatalf("an Update cost %d creates", n)
	}
	if data, _, _ := z.Node("/services/svc/a"); string(data) != "a:81" {
		t.Fatalf("data %q after Update", data)
	}
}
