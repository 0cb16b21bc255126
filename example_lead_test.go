package lighthouse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"

	"github.com/lighthouse-zk/lighthouse"
	"golang.org/x/sync/errgroup"
)

// A guarded write: the leader changes a node only while it still leads. If
// leadership has moved on (this process paused, its session expired), the
// transaction fails with ErrNotLeader and nothing is written.
func ExampleLeadership_Guard() {
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	_, err = sess.Create(ctx, "/examples/guard/config", []byte("v0"), lighthouse.Persistent, lighthouse.CreateParents())
	if err != nil && !errors.Is(err, lighthouse.ErrNodeExists) {
		log.Fatal(err)
	}

	leadership, err := sess.Elect(ctx, "/examples/guard/leader", lighthouse.WithID("node-1"))
	if err != nil {
		log.Fatal(err)
	}
	for l := range leadership {
		if !l.IsLeader {
			continue
		}
		res, err := sess.Txn(ctx, l.Guard(), lighthouse.SetOp("/examples/guard/config", []byte("v1"), lighthouse.AnyVersion))
		if errors.Is(err, lighthouse.ErrNotLeader) {
			continue // deposed meanwhile: wait to lead again
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("written by the leader:", res[1].Path)
		break
	}
	// Output: written by the leader: /examples/guard/config
}

// Lead in an errgroup: only the leader serves HTTP. A signal (or an error
// anywhere in the group) cancels ctx; the server shuts down, and Lead leaves
// the election only after that, so the next leader starts after this one
// has stopped serving.
func ExampleSession_Lead() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sess, err := lighthouse.Connect(ctx, zkAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return sess.Lead(ctx, "/examples/web/leader", func(ctx context.Context, l lighthouse.Leadership) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err // ends Lead and the group
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "hello from the leader %s", l.ID)
			})}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			fmt.Println(l.ID, "leads and serves")

			// Here the example asks itself a question, then shuts down as
			// a signal would.
			resp, err := http.Get("http://" + ln.Addr().String())
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Println(string(body))
			stop()

			<-ctx.Done() // leadership lost, or shutting down
			srv.Shutdown(context.WithoutCancel(ctx))
			if err := <-served; err != http.ErrServerClosed {
				return err
			}
			fmt.Println("stopped serving")
			return nil
		}, lighthouse.WithID("web-1"))
	})
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("left the election")
	// Output:
	// web-1 leads and serves
	// hello from the leader web-1
	// stopped serving
	// left the election
}
