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

// The job stops the moment its instance is cut off from ZooKeeper, and runs
// again when the connection comes back within the session timeout. This
// test is the README's, word for word.
func TestJobStopsWhenCutOff(t *testing.T) {
	zk := zktest.Shared(t)                // one server for the whole test binary
	root := zk.Root(t)                    // "127.0.0.1:port/TestJobStopsWhenCutOff-1"
	proxy := zktest.ProxyT(t, zk.Addr(0)) // faults between the session and the server
	sess, err := lighthouse.Connect(t.Context(), proxy.Addr()+zktest.Chroot(root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	runs := make(chan context.Context, 10) // each run of the job sends its context
	done := make(chan error, 1)
	go func() {
		done <- runWhileLeader(t.Context(), sess, "/leader", "a", func(ctx context.Context, _ int64) error {
			runs <- ctx
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() { <-done }) // t.Context() ends first, so the job stops

	job := await(t, runs) // leading: the job runs
	proxy.Cut()           // connection lost: the job must stop at once
	await(t, job.Done())
	proxy.Heal() // the session is back: the job runs again
	await(t, runs)
}

// await returns the next value from ch, or fails the test after 10s.
func await[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// When the leader's session expires, its job stops and another instance
// takes the job over.
func TestOtherInstanceTakesOverWhenSessionExpires(t *testing.T) {
	zk := zktest.Shared(t)
	root := zk.Root(t)
	proxy := zktest.ProxyT(t, zk.Addr(0))
	a := start(t, proxy.Addr()+zktest.Chroot(root), "a")
	job := await(t, a)
	b := start(t, root, "b") // straight to the server

	if err := proxy.Expire(t.Context()); err != nil {
		t.Fatal(err)
	}
	await(t, job.Done())
	await(t, b)
}

// start runs an instance of the program as id until the test ends, with a
// job that lasts as long as its leadership. Each run of the job sends its
// context on the channel returned.
func start(t *testing.T, connectString, id string) <-chan context.Context {
	t.Helper()
	sess, err := lighthouse.Connect(t.Context(), connectString)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	runs := make(chan context.Context, 10)
	done := make(chan error, 1)
	go func() {
		done <- runWhileLeader(t.Context(), sess, "/leader", id, func(ctx context.Context, _ int64) error {
			runs <- ctx
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("%s: %v", id, err)
		}
	})
	return runs
}
