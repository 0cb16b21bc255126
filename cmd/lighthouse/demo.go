package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/internal/testzk"
)

// demo connects a session and rides out a server restart and a session
// expiry, printing each session event as it happens.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	zkFlag := fs.String("zk", os.Getenv("LIGHTHOUSE_ZK"), "ZooKeeper ensemble `host:port,...` (default: start a local server; env LIGHTHOUSE_ZK)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p := &printer{w: stdout, start: time.Now()}

	target := *zkFlag
	var cluster *testzk.Cluster
	if target == "" {
		p.say("starting a local ZooKeeper (Debian's package) in a temp dir")
		c, err := testzk.Start(ctx, testzk.Options{})
		if err != nil {
			return fmt.Errorf("start ZooKeeper: %w", err)
		}
		defer c.Close()
		cluster, target = c, c.ConnectString()
		p.say("ZooKeeper is serving on %s", target)
	}
	// A fault proxy in front of the first server lets the demo expire the
	// session on demand, as the tests do.
	first := strings.Split(strings.SplitN(target, "/", 2)[0], ",")[0]
	proxy, err := testzk.NewProxy(first)
	if err != nil {
		return err
	}
	defer proxy.Close()

	sess, err := lighthouse.Connect(ctx, proxy.Addr(), lighthouse.WithSessionTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer sess.Close()
	events := sess.Events(ctx)
	p.say("connected, session 0x%x", sess.SessionID())

	node := fmt.Sprintf("/lighthouse-demo-%d", os.Getpid())
	if _, err := sess.Create(ctx, node, []byte("hello"), lighthouse.Ephemeral); err != nil {
		return err
	}
	p.say("created ephemeral node %s", node)

	if cluster != nil {
		p.say("stopping the ZooKeeper server")
		if err := cluster.Stop(0); err != nil {
			return err
		}
		if err := p.await(ctx, events, lighthouse.EventSuspended); err != nil {
			return err
		}
		p.say("starting it again")
		if err := cluster.Restart(0); err != nil {
			return err
		}
	} else {
		p.say("cutting the connection to %s", first)
		proxy.Cut()
		if err := p.await(ctx, events, lighthouse.EventSuspended); err != nil {
			return err
		}
		proxy.Heal()
	}
	if err := p.await(ctx, events, lighthouse.EventReconnected); err != nil {
		return err
	}
	ok, _, err := sess.Exists(ctx, node)
	if err != nil {
		return err
	}
	p.say("same session, so %s is still there: %v", node, ok)

	p.say("expiring the session on the server")
	if err := proxy.Expire(ctx); err != nil {
		return err
	}
	if err := p.await(ctx, events, lighthouse.EventConnected); err != nil {
		return err
	}
	ok, _, err = sess.Exists(ctx, node)
	if err != nil {
		return err
	}
	p.say("new session 0x%x; the old session's ephemeral node is gone: %v", sess.SessionID(), !ok)

	sess.Close()
	if err := p.await(ctx, events, lighthouse.EventClosed); err != nil {
		return err
	}
	p.say("done")
	return nil
}

type printer struct {
	w     io.Writer
	start time.Time
}

func (p *printer) say(format string, args ...any) {
	fmt.Fprintf(p.w, "%8.3fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// await prints events until one of type want arrives.
func (p *printer) await(ctx context.Context, events <-chan lighthouse.Event, want lighthouse.EventType) error {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return errors.New("event stream closed")
			}
			msg := "session event: " + e.Type.String()
			if e.SessionID != 0 {
				msg += fmt.Sprintf(" (session 0x%x)", e.SessionID)
			}
			p.say("%s", msg)
			if e.Type == want {
				return nil
			}
		case <-timeout.C:
			return fmt.Errorf("no %s event within 30s", want)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
