package lighthouse_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"

	"github.com/lighthouse-zk/lighthouse"
	"golang.org/x/sync/errgroup"
)

// Three workers, each with its own session (in a service, each its own
// process), start a job together and finish it together: no worker starts
// before all three have arrived, and none moves on before all three are done.
func ExampleSession_Barrier() {
	ctx := context.Background()
	const workers = 3
	var arrived, finished atomic.Int32
	var startedEarly, leftEarly atomic.Bool

	var g errgroup.Group
	for i := range workers {
		g.Go(func() error {
			sess, err := lighthouse.Connect(ctx, zkAddress())
			if err != nil {
				return err
			}
			defer sess.Close()
			b, err := sess.Barrier(ctx, "/examples/reindex/barrier", workers,
				lighthouse.WithID(fmt.Sprintf("worker-%d", i)))
			if err != nil {
				return err
			}
			arrived.Add(1)
			if err := b.Enter(ctx); err != nil { // returns when all have entered
				return err
			}
			if arrived.Load() != workers {
				startedEarly.Store(true)
			}
			// The work, done by all three at once.
			finished.Add(1)
			if err := b.Leave(ctx); err != nil { // returns when all have left
				return err
			}
			if finished.Load() != workers {
				leftEarly.Store(true)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("a worker started before all arrived:", startedEarly.Load())
	fmt.Println("a worker left before all finished:", leftEarly.Load())
	// Output:
	// a worker started before all arrived: false
	// a worker left before all finished: false
}

// Typed node data: a JSON configuration updated with compare-and-set, and a
// counter stored as decimal text, as zkCli shows it.
func ExampleGetAs() {
	ctx := context.Background()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	type Config struct {
		Replicas int    `json:"replicas"`
		Region   string `json:"region"`
	}
	config := lighthouse.JSON[Config]()
	path := "/examples/typed/config"
	if _, err := lighthouse.CreateAs(ctx, sess, path, Config{Replicas: 3, Region: "eu-west"},
		lighthouse.Ephemeral, config, lighthouse.CreateParents()); err != nil {
		log.Fatal(err)
	}
	c, stat, err := lighthouse.GetAs(ctx, sess, path, config)
	if err != nil {
		log.Fatal(err)
	}
	c.Replicas++
	// Fails with ErrBadVersion if someone changed it since we read it.
	if _, err := lighthouse.SetAs(ctx, sess, path, c, stat.Version, config); err != nil {
		log.Fatal(err)
	}
	c, _, _ = lighthouse.GetAs(ctx, sess, path, config)
	fmt.Printf("%+v\n", c)

	counter := "/examples/typed/next-id"
	if _, err := lighthouse.CreateAs(ctx, sess, counter, 41, lighthouse.Ephemeral, lighthouse.Int()); err != nil {
		log.Fatal(err)
	}
	n, _, _ := lighthouse.GetAs(ctx, sess, counter, lighthouse.Int())
	raw, _, _ := sess.Get(ctx, counter)
	fmt.Printf("%d stored as %q\n", n, raw)
	// Output:
	// {Replicas:4 Region:eu-west}
	// 41 stored as "41"
}
