package lighthouse

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Barrier against the fake (fake_test.go).

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

// A lost create reply across an expiry whose ephemeral nodes the server has
// not yet deleted (the case Register handles with errWaiting): the node is
// this participant's own, not another's (ErrIDTaken).
func TestFakeBarrierLostCreateThenExpiryIsNotIDTaken(t *testing.T) {
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
