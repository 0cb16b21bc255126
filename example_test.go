package lighthouse_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/internal/testzk"
	"golang.org/x/sync/errgroup"
)

// zkAddress is the ensemble the examples use: here, the test suite's own
// local server. In a service it is something like "10.0.0.1:2181,10.0.0.2:2181/myapp".
func zkAddress() string {
	c, err := testzk.SharedCluster()
	if err != nil {
		log.Fatal(err)
	}
	return c.ConnectString()
}

func Example() {
	ctx := context.Background()
	sess, err := lighthouse.Connect(ctx, zkAddress(),
		lighthouse.WithSessionTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	path, err := sess.Create(ctx, "/examples/hello", []byte("world"), lighthouse.Ephemeral, lighthouse.CreateParents())
	if err != nil {
		log.Fatal(err)
	}
	data, _, err := sess.Get(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s\n", path, data)
	// Output: /examples/hello = world
}

// A leader loop: do the leader's work in an errgroup while leadership
// lasts, and leave the election on shutdown.
func ExampleSession_Elect() {
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	leadership, err := sess.Elect(ctx, "/examples/orders/leader", lighthouse.WithID("node-1"))
	if err != nil {
		log.Fatal(err)
	}
	shutdown := make(chan struct{})
	var g errgroup.Group
	for {
		select {
		case l, ok := <-leadership:
			if !ok { // left the election
				if err := g.Wait(); err != nil {
					log.Fatal(err)
				}
				fmt.Println("left the election")
				return
			}
			if l.IsLeader {
				fmt.Println(l.ID, "leads")
				g.Go(func() error {
					// The leader's duties: run until l.Context ends, passing
					// l.Token to storage so a deposed leader's writes are
					// refused. Here: one job, then ask to shut down.
					fmt.Println("job done with a fencing token:", l.Token > 0)
					close(shutdown)
					<-l.Context.Done()
					return nil
				})
			}
		case <-shutdown:
			shutdown = nil
			leave() // resign: our node is deleted, the next participant leads
		}
	}
	// Output:
	// node-1 leads
	// job done with a fencing token: true
	// left the election
}

// Release gives up leadership but stays in the election, at the back of
// the queue. Alone in the election, the participant leads again at once,
// with a newer token.
func ExampleLeadership_Release() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	leadership, err := sess.Elect(ctx, "/examples/release/leader", lighthouse.WithID("node-1"))
	if err != nil {
		log.Fatal(err)
	}
	var first int64
	for l := range leadership {
		if !l.IsLeader {
			continue
		}
		if first == 0 {
			first = l.Token
			fmt.Println("leads; releasing")
			l.Release()
			continue
		}
		fmt.Println("leads again with a newer token:", l.Token > first)
		cancel()
	}
	// Output:
	// leads; releasing
	// leads again with a newer token: true
}

// Events reports what happens to the session: connection loss, reconnects,
// expiry and the new session after it.
func ExampleSession_Events() {
	ctx := context.Background()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	events := sess.Events(ctx)
	sess.Close()
	for e := range events {
		fmt.Println(e.Type)
	}
	// Output: closed
}
