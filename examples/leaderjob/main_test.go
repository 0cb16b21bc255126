package main

import (
	"context"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/zktest"
	"go.uber.org/goleak"
)

// TestMain closes the shared ZooKeeper server after the tests, then checks
// that no goroutine was left behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Main(m)) }

// waitFor bounds every wait for an event.
const waitFor = 15 * time.Second

// instance is one running copy of the program under test.
type instance struct {
	runs chan context.Context // each run of the job sends its context
}

// start runs runWhileLeader as id at connectString until the test ends,
// with a job that reports each run and lasts as long as its leadership.
func start(t *testing.T, connectString, id string) *instance {
	t.Helper()
	sess, err := lighthouse.Connect(t.Context(), connectString, lighthouse.WithSessionTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	in := &instance{runs: make(chan context.Context, 10)}
	done := make(chan error, 1)
	go func() {
		done <- runWhileLeader(t.Context(), sess, "/leader", id, func(ctx context.Context, _ int64) error {
			in.runs <- ctx
			<-ctx.Done()
			return nil
		})
	}()
	// t.Context() is cancelled before cleanups run: wait for the instance
	// to leave the election before its session closes.
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("%s: runWhileLeader: %v", id, err)
		}
	})
	return in
}

// await returns the next value from ch, failing t after waitFor.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("no %s within %v", what, waitFor)
		panic("unreachable")
	}
}

// The job stops the moment its instance is cut off from ZooKeeper, and runs
// again when the connection comes back within the session timeout.
func TestJobStopsWhenCutOffAndResumesAfterHeal(t *testing.T) {
	t.Parallel()
	zk := zktest.Shared(t)
	root := zk.Root(t)
	proxy := zktest.ProxyT(t, zk.Addr(0))
	a := start(t, proxy.Addr()+zktest.Chroot(root), "a")

	job := await(t, a.runs, "run of the job")
	proxy.Cut()
	await(t, job.Done(), "end of the job after the cut")
	proxy.Heal()
	await(t, a.runs, "run of the job after the heal")
}

// When the leader's session expires, its job stops and another instance
// takes the job over.
func TestOtherInstanceTakesOverWhenSessionExpires(t *testing.T) {
	t.Parallel()
	zk := zktest.Shared(t)
	root := zk.Root(t)
	proxy := zktest.ProxyT(t, zk.Addr(0))
	a := start(t, proxy.Addr()+zktest.Chroot(root), "a")
	job := await(t, a.runs, "run of a's job")
	b := start(t, root, "b")

	if err := proxy.Expire(t.Context()); err != nil {
		t.Fatal(err)
	}
	await(t, job.Done(), "end of a's job after expiry")
	await(t, b.runs, "run of b's job")
}
