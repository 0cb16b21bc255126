package lighthouse

import (
	"context"
	"github.com/cenkalti/backoff/v4"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// Recipe state machines against the fake (fake_test.go): each recipe's
// reactions to suspend, reconnect, expiry, a watch firing, a lost reply and
// a retry, in milliseconds and without a server, in election_fake_test.go,
// membership_fake_test.go and barrier_fake_test.go. Here are the helpers
// they share and the tests of the recipe loop itself. Run them all alone
// with -run Fake.

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

// owner returns the session that owns path's node, 0 if there is none.
func (z *fakeZK) owner(path string) int64 {
	_, st, _ := z.Node(path)
	return st.EphemeralOwner
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

// The recipe loop promises that a reconnect ends any retry wait at once,
// also when the connection drops and comes back while a look is in flight
// (the loop then sees only the newest state: connected, as before). Retries
// here wait a minute, so only the reconnect can let the participant join
// within the test's wait.
func TestFakeReconnectDuringALookEndsTheRetryWait(t *testing.T) {
	slow := func() *backoff.ExponentialBackOff {
		return backoff.NewExponentialBackOff(backoff.WithInitialInterval(time.Minute), backoff.WithMaxElapsedTime(0))
	}
	defer func(f func() *backoff.ExponentialBackOff) { newRetry = f }(newRetry)
	newRetry = slow
	z := newFakeZK()
	mustCreate(t, z.admin(), "/e", nil, zkclient.Persistent)
	fs := newFakeSession(t, z)
	fs.zk.BlipNextReply("create")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	joined := make(chan (<-chan Leadership), 1)
	go func() { // Elect returns once joined: within fakeWait, or the test fails
		ch, _ := fs.Elect(ctx, "/e", WithID("a"))
		joined <- ch
	}()
	until(t, recv(t, joined, "Elect"), "leads", isLeader)
}
