// Command leaderjob runs a job only while it leads: start several instances
// against one ZooKeeper ensemble and at most one of them runs the job at a
// time. The job here prints a line a second; a real one would do work no
// two instances may do at once, passing the fencing token to the storage it
// writes to.
//
//	go run . --zk 127.0.0.1:2181 --id a
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"golang.org/x/sync/errgroup"
)

func main() {
	zk := flag.String("zk", "127.0.0.1:2181", "ZooKeeper connect string `host:port,...[/chroot]`")
	id := flag.String("id", "", "this instance's name in the election (default: the host name)")
	path := flag.String("path", "/leaderjob/leader", "the election's znode")
	flag.Parse()
	if *id == "" {
		*id, _ = os.Hostname()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	sess, err := lighthouse.Connect(ctx, *zk)
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	if err := runWhileLeader(ctx, sess, *path, *id, tick); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// runWhileLeader joins the election at path as id and runs job each time
// this instance becomes leader, with a context that ends the moment the
// leadership does (on connection loss, expiry or shutdown) and the
// leadership's fencing token. It returns once ctx ends or the session
// closes and every run of job has returned; if job fails, it leaves the
// election and returns job's error.
func runWhileLeader(ctx context.Context, sess *lighthouse.Session, path, id string,
	job func(ctx context.Context, token int64) error) error {
	g, ctx := errgroup.WithContext(ctx)
	leadership, err := sess.Elect(ctx, path, lighthouse.WithID(id))
	if err != nil {
		return err
	}
	for l := range leadership { // closed once ctx ends or the session closes
		if l.IsLeader {
			g.Go(func() error { return job(l.Context, l.Token) })
		}
	}
	return g.Wait()
}

// tick is the leader-only job: a line a second until leadership ends.
func tick(ctx context.Context, token int64) error {
	fmt.Printf("leading (token %d)\n", token)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("no longer leading")
			return nil
		case <-t.C:
			fmt.Println("working")
		}
	}
}
