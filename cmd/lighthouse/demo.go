package main

import (
	"context"
	"fmt"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

const (
	demoService  = "demo-workers"
	demoElection = "/demo/leader"
	demoTimeout  = 2 * time.Second // session timeout: short, so expiry shows quickly
)

// demo runs a small cluster of workers that elect a leader and register
// under a service, a client that balances calls over them, and a scenario
// of faults, printing what happens as it happens and a summary at the end.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", demoUsage, stderr)
	zkFlag := fs.String("zk", os.Getenv("LIGHTHOUSE_ZK"), "ZooKeeper ensemble `host:port,...[/chroot]` to use instead of a local server (env LIGHTHOUSE_ZK)")
	workers := fs.Int("workers", 3, "how many workers")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for ZooKeeper to answer at the start")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("demo takes no arguments, got %q", fs.Args())
	case *workers < 2:
		return usagef("--workers must be at least 2")
	case *timeout <= 0:
		return usagef("--timeout must be positive, not %v", *timeout)
	}
	d := &demoRun{out: newConsole(stdout), ctx: ctx, timeout: *timeout, byID: map[string]*worker{}, metrics: newDemoMetrics()}
	// Ctrl-C at any point is a clean end.
	interrupted := func(err error) error {
		if err != nil && ctx.Err() != nil {
			d.out.say("", "interrupted: cleaning up")
			return nil
		}
		return err
	}

	target := *zkFlag
	if target == "" {
		d.out.say("", "starting a local ZooKeeper (Debian's package) in a temp dir")
		c, err := zktest.Start(ctx, zktest.Options{})
		if err != nil {
			return interrupted(fmt.Errorf("start ZooKeeper: %w", err))
		}
		defer func() {
			c.Close()
			d.out.say("", "local ZooKeeper stopped and its directory removed")
		}()
		d.cluster, target = c, c.ConnectString()
		d.out.say("", "ZooKeeper is serving on %s", target)
	}
	defer d.stop()
	d.out.say("", "connecting to %s", target)
	client, err := connect(ctx, target, d.timeout, lighthouse.WithSessionTimeout(demoTimeout), d.metrics.option())
	if err != nil {
		return err // interrupted too: it says ZooKeeper was not reached (exit 3)
	}
	d.client = client
	d.hosts, d.chroot, _ = zkclient.ParseConnectString(target) // Connect has parsed it
	err = d.play(*workers)
	d.summary()
	return interrupted(err)
}

const demoUsage = `Runs workers that elect a leader and register as a service, and a client
that balances calls over them, through a scenario of faults (a release, a
crash, a server restart or a cut), printing what happens as it happens.

With no --zk it starts a local ZooKeeper in a temporary directory. With
--zk, each worker reaches each server of the ensemble through a proxy of its
own (so that it can be cut off alone), under the chroot if there is one.`

type demoRun struct {
	ctx     context.Context
	out     *console
	timeout time.Duration
	cluster *zktest.Cluster // nil with --zk
	hosts   []string        // the servers: each worker has a proxy to each
	chroot  string          // "" or the chroot of --zk
	metrics *demoMetrics    // every session's

	mu        sync.Mutex
	workers   []*worker
	byID      map[string]*worker
	leaderAt  time.Time // when leadership was last given up or lost
	failovers []failover

	client    *lighthouse.Session
	balancer  *lighthouse.Balancer
	calls     atomic.Int64
	errors    atomic.Int64
	wg        sync.WaitGroup
	stopCalls context.CancelFunc
	callsDone chan struct{} // closed when the calling goroutine has ended
}

type failover struct {
	what string
	took time.Duration
}

// worker is one member of the cluster, with its own session behind its own
// fault proxy, so that it can be cut off alone.
type worker struct {
	id      string
	proxies []*zktest.Proxy // one to each server
	sess    *lighthouse.Session
	cancel  context.CancelFunc
	alive   atomic.Bool
	served  atomic.Int64
	lead    atomic.Pointer[lighthouse.Leadership]
}

func (d *demoRun) play(n int) error {
	d.out.say("", "starting %d workers: each joins the election %s and registers under %q", n, demoElection, demoService)
	for i := 1; i <= n; i++ {
		if err := d.startWorker(fmt.Sprintf("worker-%d", i)); err != nil {
			return err
		}
	}
	if err := d.startClient(); err != nil {
		return err
	}
	first, err := d.awaitLeader(nil)
	if err != nil {
		return err
	}

	d.out.step("the leader releases leadership but stays in the queue")
	d.markLeaderGone()
	first.lead.Load().Release()
	second, err := d.awaitLeader(first)
	if err != nil {
		return err
	}
	d.recordFailover("release")

	d.out.step("%s is killed hard: cut off, its session left to expire", second.id)
	d.markLeaderGone()
	d.kill(second)
	third, err := d.awaitLeader(second)
	if err != nil {
		return err
	}
	d.recordFailover("crash (session expiry)")
	if err := d.awaitMembers(n - 1); err != nil {
		return err
	}

	d.out.step("%s comes back", second.id)
	if err := d.startWorker(second.id); err != nil {
		return err
	}
	if err := d.awaitMembers(n); err != nil {
		return err
	}

	if d.cluster != nil {
		d.out.step("the ZooKeeper server restarts")
		if err := d.cluster.Stop(0); err != nil {
			return err
		}
		if err := d.awaitNoLeader(); err != nil {
			return err
		}
		if err := d.cluster.Restart(0); err != nil {
			return err
		}
	} else {
		d.out.step("every worker's connection is cut for a moment")
		for _, w := range d.liveWorkers() {
			w.each((*zktest.Proxy).Cut)
		}
		if err := d.awaitNoLeader(); err != nil {
			return err
		}
		for _, w := range d.liveWorkers() {
			w.each((*zktest.Proxy).Heal)
		}
	}
	if _, err := d.awaitLeader(nil); err != nil {
		return err
	}
	_ = third
	d.out.step("scenario done")
	return nil
}

func (d *demoRun) startWorker(id string) error {
	w := &worker{id: id}
	addrs := make([]string, len(d.hosts))
	for i, h := range d.hosts {
		p, err := zktest.NewProxy(h)
		if err != nil {
			w.each(func(p *zktest.Proxy) { p.Close() })
			return err
		}
		w.proxies, addrs[i] = append(w.proxies, p), p.Addr()
	}
	sess, err := connect(d.ctx, strings.Join(addrs, ",")+d.chroot, d.timeout, lighthouse.WithSessionTimeout(demoTimeout), d.metrics.option())
	if err != nil {
		w.each(func(p *zktest.Proxy) { p.Close() })
		return err
	}
	ctx, cancel := context.WithCancel(d.ctx)
	w.sess, w.cancel = sess, cancel
	w.alive.Store(true)
	d.mu.Lock()
	d.workers = append(d.workers, w)
	d.byID[id] = w
	d.mu.Unlock()

	events := sess.Events(ctx)
	leadership, err := sess.Elect(ctx, demoElection, lighthouse.WithID(id))
	if err != nil {
		return err
	}
	if _, err := sess.Register(ctx, demoService, lighthouse.Node{ID: id, Data: []byte(addrs[0])}); err != nil {
		return err
	}
	d.out.say(id, "joined (session 0x%x)", sess.SessionID())
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		// Events, unlike the leadership channel, queue every change, so
		// each one is printed even when several come close together.
		for e := range events {
			if !w.alive.Load() {
				continue
			}
			switch e.Type {
			case lighthouse.EventSuspended, lighthouse.EventReconnected, lighthouse.EventExpired, lighthouse.EventConnected:
				d.out.say(id, "session %s (0x%x)", e.Type, e.SessionID)
			case lighthouse.EventElected:
				token := ""
				if l := w.lead.Load(); l != nil && l.IsLeader {
					token = fmt.Sprintf(" (token %d)", l.Token)
				}
				d.out.say(id, "%s%s", d.out.green("leads"), token)
			case lighthouse.EventRevoked:
				d.out.say(id, "%s", d.out.yellow("no longer leads"))
			}
		}
	}()
	go func() {
		defer d.wg.Done()
		for l := range leadership {
			w.lead.Store(&l)
		}
	}()
	return nil
}

// each applies f to each of the worker's proxies.
func (w *worker) each(f func(*zktest.Proxy)) {
	for _, p := range w.proxies {
		f(p)
	}
}

// kill cuts a worker off without a goodbye: the server only learns it is
// gone when its session expires.
func (d *demoRun) kill(w *worker) {
	w.alive.Store(false)
	w.each((*zktest.Proxy).Stall)
	d.mu.Lock()
	d.workers = slices.DeleteFunc(d.workers, func(x *worker) bool { return x == w })
	d.mu.Unlock()
	w.cancel()
	w.sess.Close() // cannot reach the server: returns within a second
	w.each(func(p *zktest.Proxy) { p.Close() })
	d.out.say(w.id, "%s", d.out.red("killed"))
}

func (d *demoRun) liveWorkers() []*worker {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.workers)
}

// startClient starts the client calling the workers through a
// balancer. A call to a worker that does not answer is reported to the
// balancer and retried on another: the summary counts calls that failed
// even so.
func (d *demoRun) startClient() error {
	sess := d.client
	ctx, cancel := context.WithCancel(d.ctx)
	d.stopCalls = cancel
	b, err := sess.Balancer(ctx, demoService, lighthouse.RoundRobin(), lighthouse.WithDownPolicy(1, time.Minute, time.Minute))
	if err != nil {
		return err
	}
	d.balancer = b
	members, err := sess.Members(ctx, demoService)
	if err != nil {
		return err
	}
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		for nodes := range members {
			ids := make([]string, len(nodes))
			for i, n := range nodes {
				ids[i] = n.ID
			}
			d.out.say("client", "sees members [%s]", strings.Join(ids, " "))
		}
	}()
	d.callsDone = make(chan struct{})
	go func() {
		defer d.wg.Done()
		defer close(d.callsDone)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				d.call()
			}
		}
	}()
	return nil
}

// call serves one request on a live worker, trying each at most once.
func (d *demoRun) call() {
	d.calls.Add(1)
	for range 4 {
		n, ok := d.balancer.Pick("")
		if !ok {
			break
		}
		d.mu.Lock()
		w := d.byID[n.ID]
		d.mu.Unlock()
		if w != nil && w.alive.Load() {
			w.served.Add(1)
			return
		}
		d.balancer.ReportError(n.ID)
	}
	d.errors.Add(1)
}

func (d *demoRun) markLeaderGone() {
	d.mu.Lock()
	d.leaderAt = time.Now()
	d.mu.Unlock()
}

func (d *demoRun) recordFailover(what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	took := time.Since(d.leaderAt)
	d.failovers = append(d.failovers, failover{what, took})
	d.out.say("", "failover after %s took %v", what, took.Round(100*time.Microsecond))
}

// awaitLeader waits until a live worker other than not leads.
func (d *demoRun) awaitLeader(not *worker) (*worker, error) {
	var found *worker
	err := d.await(func() bool {
		for _, w := range d.liveWorkers() {
			if l := w.lead.Load(); w != not && l != nil && l.IsLeader && l.Context.Err() == nil {
				found = w
				return true
			}
		}
		return false
	}, "a new leader")
	return found, err
}

func (d *demoRun) awaitNoLeader() error {
	return d.await(func() bool {
		for _, w := range d.liveWorkers() {
			if l := w.lead.Load(); l != nil && l.IsLeader && l.Context.Err() == nil {
				return false
			}
		}
		return true
	}, "leadership to be revoked")
}

func (d *demoRun) awaitMembers(n int) error {
	return d.await(func() bool {
		ids, err := d.client.Instances(d.ctx, demoService)
		return err == nil && len(ids) == n
	}, fmt.Sprintf("%d members", n))
}

// await polls cond every few milliseconds for up to 30 s.
func (d *demoRun) await(cond func() bool, what string) error {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: no %s within 30s", what)
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-d.ctx.Done():
			return d.ctx.Err()
		}
	}
	return nil
}

// stop closes every worker and the client and waits for their goroutines.
func (d *demoRun) stop() {
	if d.stopCalls != nil {
		d.stopCalls()
	}
	if d.callsDone != nil {
		<-d.callsDone // a call in flight must not find the workers stopped
	}
	live := d.liveWorkers()
	for _, w := range live {
		w.alive.Store(false) // quiet: the scenario is over
	}
	for _, w := range live {
		w.cancel()
		w.sess.Close()
		w.each(func(p *zktest.Proxy) { p.Close() })
	}
	if d.client != nil {
		d.client.Close()
	}
	d.wg.Wait()
}

func (d *demoRun) summary() {
	recorded := d.metrics.collect() // before the sessions close and are no longer observed
	d.stop()
	w := tabwriter.NewWriter(d.out.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nsummary")
	fmt.Fprintln(w, "failover\ttook")
	for _, f := range d.failovers {
		fmt.Fprintf(w, "%s\t%v\n", f.what, f.took.Round(100*time.Microsecond))
	}
	fmt.Fprintln(w, "\nworker\tcalls served")
	d.mu.Lock()
	ids := make([]string, 0, len(d.byID))
	for id := range d.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "%s\t%d\n", id, d.byID[id].served.Load())
	}
	d.mu.Unlock()
	fmt.Fprintf(w, "\ncalls\t%d\nerrors\t%d\n", d.calls.Load(), d.errors.Load())
	w.Flush()
	recorded.print(d.out.w)
}
