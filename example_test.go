package lighthouse_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/zktest"
	"golang.org/x/sync/errgroup"
)

// zkAddress is the ensemble the examples use: here, the test suite's own
// local server. In a service it is something like "10.0.0.1:2181,10.0.0.2:2181/myapp".
func zkAddress() string {
	c, err := zktest.SharedCluster()
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

// Register an instance of a service; it stays registered, across session
// expiry too, until Close or the end of ctx.
func ExampleSession_Register() {
	ctx := context.Background()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	reg, err := sess.Register(ctx, "example-users", lighthouse.Node{ID: "node-1", Data: []byte("10.0.0.1:8080")})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close() // unregister

	nodes, err := sess.Instances(ctx, "example-users")
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range nodes {
		fmt.Printf("%s at %s\n", n.ID, n.Data)
	}
	// Output: node-1 at 10.0.0.1:8080
}

// Members delivers the live set of a service each time it changes.
func ExampleSession_Members() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	members, err := sess.Members(ctx, "example-orders")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(<-members), "members") // the first value comes at once

	reg, err := sess.Register(ctx, "example-orders", lighthouse.Node{ID: "orders-1", Data: []byte("10.0.0.2:9000")})
	if err != nil {
		log.Fatal(err)
	}
	nodes := <-members
	fmt.Println(len(nodes), "member:", nodes[0].ID)

	reg.Close()
	fmt.Println(len(<-members), "members")
	// Output:
	// 0 members
	// 1 member: orders-1
	// 0 members
}

// MemberSets delivers the same sets as Members as immutable MemberSets,
// which cost a change little however large the service is.
func ExampleSession_MemberSets() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	sets, err := sess.MemberSets(ctx, "example-search")
	if err != nil {
		log.Fatal(err)
	}
	before := <-sets
	for _, id := range []string{"search-2", "search-1"} {
		reg, err := sess.Register(ctx, "example-search", lighthouse.Node{ID: id, Data: []byte("10.0.0.3:7000")})
		if err != nil {
			log.Fatal(err)
		}
		defer reg.Close()
	}
	var set lighthouse.MemberSet
	for set = range sets {
		if set.Len() == 2 {
			break
		}
	}
	for n := range set.All() {
		fmt.Println(n.ID, "at", string(n.Data))
	}
	if n, ok := set.Get("search-2"); ok {
		fmt.Println("found", n.ID)
	}
	fmt.Println("the set from before still has", before.Len())
	// Output:
	// search-1 at 10.0.0.3:7000
	// search-2 at 10.0.0.3:7000
	// found search-2
	// the set from before still has 0
}

// A Balancer picks a live instance per call; ConsistentHash sends the same
// key to the same instance while the set is unchanged.
func ExampleSession_Balancer() {
	ctx := context.Background()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	for _, id := range []string{"a", "b", "c"} {
		reg, err := sess.Register(ctx, "example-cache", lighthouse.Node{ID: id})
		if err != nil {
			log.Fatal(err)
		}
		defer reg.Close()
	}

	b, err := sess.Balancer(ctx, "example-cache", lighthouse.ConsistentHash())
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	first, ok := b.Pick("user-42")
	if !ok {
		fmt.Println("no instance: use a default")
		return
	}
	again, _ := b.Pick("user-42")
	fmt.Println("same instance for the same key:", first.ID == again.ID)

	b.ReportError(first.ID) // a failing instance can be left out for a while
	// Output: same instance for the same key: true
}
