package zktest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// Start a standalone server of one's own and use it from a lighthouse
// Session. In a test, StartT or Shared does the same and cleans up.
func ExampleStart() {
	ctx := context.Background()
	zk, err := zktest.Start(ctx, zktest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer zk.Close()

	sess, err := lighthouse.Connect(ctx, zk.ConnectString())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	path, err := sess.Create(ctx, "/hello", []byte("world"), lighthouse.Persistent)
	if err != nil {
		log.Fatal(err)
	}
	data, _, err := sess.Get(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s\n", path, data)
	// Output: /hello = world
}

// Cut a session's connection through a Proxy and heal it: the session is
// suspended, then reconnected with its session intact.
func ExampleProxy() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	zk, err := zktest.SharedCluster()
	if err != nil {
		log.Fatal(err)
	}
	proxy, err := zktest.NewProxy(zk.Addr(0))
	if err != nil {
		log.Fatal(err)
	}
	defer proxy.Close()

	sess, err := lighthouse.Connect(ctx, proxy.Addr(), lighthouse.WithSessionTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	events := sess.Events(ctx)
	id := sess.SessionID()

	proxy.Cut()
	fmt.Println(next(events, lighthouse.EventSuspended))
	proxy.Heal()
	fmt.Println(next(events, lighthouse.EventReconnected))
	fmt.Println("same session:", sess.SessionID() == id)
	// Output:
	// suspended
	// reconnected
	// same session: true
}

// next waits for the first event of type want, skipping others; the
// example's context bounds the wait.
func next(events <-chan lighthouse.Event, want lighthouse.EventType) lighthouse.EventType {
	for ev := range events {
		if ev.Type == want {
			return ev.Type
		}
	}
	log.Fatalf("no %v event", want)
	return 0
}
