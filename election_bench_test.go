package lighthouse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// BenchmarkFailover measures how long the next participant takes to learn
// it leads after the leader resigns (cancels Elect's ctx) or closes its
// session, with 3, 10 and 50 participants, beside two baselines:
//
//   - floor: the protocol's least possible cost, a bare delete of a node on
//     one session and the arrival of the watch on it at another;
//   - floor3: the same delete firing the three watches that the deletion of
//     an election's leader fires (the successor's data watch, the next
//     one's child watch and the leader's own), timed to the first: what
//     the server charges for the watches the recipe needs;
//   - zk-lock: go-zookeeper's own Lock used as an election, the hand-over
//     from one holder's Unlock to the next holder's Lock returning.
//
// Each iteration takes one sample of each of the five, in an order drawn
// at random each time, so drift and noise on a shared machine hit them
// alike, and so does what a sample leaves behind or how idle the machine
// was before it. It reports p50/p90 in ms for
// each, the p50 ratios to the floor and to zk-lock, and per change of
// leader (resign and close together): participants woken (watches fired on
// a predecessor or grand-predecessor), children reads by anyone (the
// rejoining participant's own included), and handover reads: grants that a
// children read decided rather than a watch alone.
//
//	go test -run '^$' -bench BenchmarkFailover -benchtime 300x .
func BenchmarkFailover(b *testing.B) {
	zkc := zktest.Shared(b)
	for _, n := range []int{3, 10, 50} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			floor := newFloorSampler(b, zkc)
			floor3 := newFloor3Sampler(b, zkc)
			resign := newElectionSampler(b, zkc, n, false)
			closing := newElectionSampler(b, zkc, n, true)
			lock := newLockSampler(b, zkc, n)
			defer resign.stop()
			defer closing.stop()
			defer lock.stop()
			var fl, f3, rs, cl, cr, lk []time.Duration
			columns := []func(){
				func() { fl = append(fl, floor.sample()) },
				func() {
					r, _ := resign.sample()
					rs = append(rs, r)
				},
				func() {
					c, ret := closing.sample()
					cl, cr = append(cl, c), append(cr, ret)
				},
				func() { f3 = append(f3, floor3.sample()) },
				func() { lk = append(lk, lock.sample()) },
			}
			for b.Loop() {
				// A new order each iteration: a sample is slower after some
				// columns than after others (right after the lock's, by
				// 0.2-0.3x the floor; more after a pause), so an order that
				// only turns, keeping each column after the same one,
				// favours some columns for good.
				for _, k := range rand.Perm(len(columns)) {
					columns[k]()
				}
			}
			for _, m := range []struct {
				name string
				lat  []time.Duration
			}{{"floor", fl}, {"resign", rs}, {"close", cl}, {"close-return", cr}, {"floor3", f3}, {"zk-lock", lk}} {
				slices.Sort(m.lat)
				b.ReportMetric(ms(m.lat, 0.5), m.name+"-p50-ms")
				b.ReportMetric(ms(m.lat, 0.9), m.name+"-p90-ms")
			}
			b.ReportMetric(p50(rs)/p50(fl), "resign/floor")
			b.ReportMetric(p50(cl)/p50(fl), "close/floor")
			b.ReportMetric(p50(f3)/p50(fl), "floor3/floor")
			b.ReportMetric(p50(rs)/p50(f3), "resign/floor3")
			b.ReportMetric(p50(cl)/p50(f3), "close/floor3")
			b.ReportMetric(p50(lk)/p50(fl), "zk-lock/floor")
			b.ReportMetric(p50(rs)/p50(lk), "resign/zk-lock")
			b.ReportMetric(p50(cl)/p50(lk), "close/zk-lock")
			c := resign.counts().sub(resign.base)
			c2 := closing.counts().sub(closing.base)
			changes := float64(max(resign.changes+closing.changes, 1))
			b.ReportMetric(float64(c.pred+c.gp+c2.pred+c2.gp)/changes, "woken/change")
			b.ReportMetric(float64(c.reads+c2.reads)/changes, "reads/change")
			b.ReportMetric(float64(c.readGrants+c2.readGrants)/changes, "handover-reads/change")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func ms(sorted []time.Duration, q float64) float64 {
	return float64(sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]) / 1e6
}

func p50(sorted []time.Duration) float64 { return float64(sorted[len(sorted)/2]) }

type floorSampler struct {
	a, w  *zk.Conn
	other *zk.Conn // if not nil, a third session with a child watch on the node
	self  bool     // the deleting session has a child watch on it too
	path  string
}

func newFloorSampler(b *testing.B, zkc *zktest.Cluster) *floorSampler {
	return &floorSampler{a: zkConnect(b, zkc.Addr(0)), w: zkConnect(b, zkc.Addr(0)),
		path: fmt.Sprintf("/bench-floor-%d", rand.Int64())}
}

// newFloor3Sampler adds the two child watches that the deletion of an
// election's leader fires besides its successor's: the next participant's
// (other) and the leader's own (self).
func newFloor3Sampler(b *testing.B, zkc *zktest.Cluster) *floorSampler {
	f := newFloorSampler(b, zkc)
	f.other, f.self = zkConnect(b, zkc.Addr(0)), true
	return f
}

func (f *floorSampler) sample() time.Duration {
	if _, err := f.a.Create(f.path, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		panic(err)
	}
	_, _, ch, err := f.w.ExistsW(f.path)
	if err != nil {
		panic(err)
	}
	if f.other != nil {
		if _, _, _, err := f.other.ChildrenW(f.path); err != nil {
			panic(err)
		}
	}
	if f.self {
		if _, _, _, err := f.a.ChildrenW(f.path); err != nil {
			panic(err)
		}
	}
	start := time.Now()
	if err := f.a.Delete(f.path, -1); err != nil {
		panic(err)
	}
	<-ch
	return time.Since(start)
}

// BenchmarkWatchCost prices, against the floor, each watch besides the
// successor's that the deletion of an election's leader fires: "self", the
// leader's own child watch; "other", the next participant's, on a third
// session; "both", which is BenchmarkFailover's floor3. "stopped" is other
// held by a session of a child process that is stopped (SIGSTOP) while the
// benchmark runs: the server still sends the notification, but no client
// spends anything on it, so what it adds is the server's cost alone. The
// five are sampled in a random order each iteration. Any election in which
// the next leader learns it leads from the deletion alone (no read) must
// fire "other": only a watch tells the participant after the successor
// that the successor now leads, and the successor's hand-over does not
// wait for it.
//
//	go test -run '^$' -bench BenchmarkWatchCost -benchtime 1000x .
func BenchmarkWatchCost(b *testing.B) {
	zkc := zktest.Shared(b)
	floor, self, other, both := newFloorSampler(b, zkc), newFloorSampler(b, zkc), newFloorSampler(b, zkc), newFloor3Sampler(b, zkc)
	self.self, other.other = true, zkConnect(b, zkc.Addr(0))
	stopped := newStoppedSampler(b, zkc, 4000)
	columns := []func() time.Duration{floor.sample, self.sample, other.sample, both.sample, stopped.sample}
	lat := make([][]time.Duration, len(columns))
	for b.Loop() {
		for _, k := range rand.Perm(len(columns)) {
			lat[k] = append(lat[k], columns[k]())
		}
	}
	for i, name := range []string{"floor", "self", "other", "both", "stopped"} {
		slices.Sort(lat[i])
		b.ReportMetric(ms(lat[i], 0.5), name+"-p50-ms")
		if i > 0 {
			b.ReportMetric(p50(lat[i])/p50(lat[0]), name+"/floor")
		}
	}
	b.ReportMetric(0, "ns/op")
}

// stoppedSampler is the floor with one more child watch on the node, held
// by a session of a child process (this test binary, see benchWatcher)
// that is stopped while the benchmark runs. Each sample uses a node of its
// own, on which the child set its watch before it was stopped.
type stoppedSampler struct {
	b     *testing.B
	a, w  *zk.Conn
	paths []string
	next  int
}

// benchWatcherEnv names, for a child process, the server, the node prefix
// and the number of nodes to watch.
const benchWatcherEnv = "LIGHTHOUSE_BENCH_WATCHER"

func newStoppedSampler(b *testing.B, zkc *zktest.Cluster, n int) *stoppedSampler {
	s := &stoppedSampler{b: b, a: zkConnect(b, zkc.Addr(0)), w: zkConnect(b, zkc.Addr(0))}
	prefix := fmt.Sprintf("/bench-stopped-%d", rand.Int64())
	for i := range n {
		p := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := s.a.Create(p, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		s.paths = append(s.paths, p)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", benchWatcherEnv, zkc.Addr(0), prefix, n))
	stdin, err := cmd.StdinPipe() // closing it ends the child
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		cmd.Wait()
	})
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		b.Fatalf("watcher process: %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		b.Fatal(err)
	}
	return s
}

func (s *stoppedSampler) sample() time.Duration {
	if s.next == len(s.paths) {
		s.b.Fatalf("BenchmarkWatchCost takes at most %d samples", len(s.paths))
	}
	p := s.paths[s.next]
	s.next++
	_, _, ch, err := s.w.ExistsW(p)
	if err != nil {
		panic(err)
	}
	start := time.Now()
	if err := s.a.Delete(p, -1); err != nil {
		panic(err)
	}
	<-ch
	return time.Since(start)
}

// benchWatcher is a child process of BenchmarkWatchCost: it sets a child
// watch on each node that spec names, says "ready", and exits when its
// stdin closes. Its session timeout outlasts the benchmark (the server's
// maximum in zktest is 60 s), as a stopped process sends no pings.
func benchWatcher(spec string) int {
	var addr, prefix string
	var n int
	if _, err := fmt.Sscan(spec, &addr, &prefix, &n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, _, err := zk.Connect([]string{addr}, time.Minute, zk.WithLogInfo(false))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	for i := range n {
		if _, _, _, err := c.ChildrenW(fmt.Sprintf("%s-%d", prefix, i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

type benchParticipant struct {
	sess   *Session
	cancel context.CancelFunc
	id     string
	ch     <-chan Leadership
}

// electionSampler keeps n participants in one election; a sample makes the
// leader leave and times the next one's grant, and the one that left joins
// again at the back.
type electionSampler struct {
	b        *testing.B
	root     string
	byClose  bool
	queue    []*benchParticipant
	sessions []*Session
	next     int
	changes  int
	base     electionCounts // the counters once the first leader leads
	closes   chan *Session  // to closer
	closed   chan closeTimes
}

type closeTimes struct{ start, end time.Time }

func newElectionSampler(b *testing.B, zkc *zktest.Cluster, n int, byClose bool) *electionSampler {
	e := &electionSampler{b: b, root: zkc.Root(b), byClose: byClose}
	if byClose {
		e.closes, e.closed = make(chan *Session), make(chan closeTimes, 1)
		go e.closer()
	}
	for range n {
		e.join()
	}
	e.awaitGrant(e.queue[0])
	e.base = e.counts()
	return e
}

func (e *electionSampler) join() {
	s := connect(e.b, e.root)
	e.sessions = append(e.sessions, s)
	ctx, cancel := context.WithCancel(context.Background())
	id := fmt.Sprintf("p%d", e.next)
	e.next++
	ch, err := s.Elect(ctx, "/leader", WithID(id))
	if err != nil {
		e.b.Fatal(err)
	}
	e.queue = append(e.queue, &benchParticipant{sess: s, cancel: cancel, id: id, ch: ch})
}

// awaitGrant reads p's Leadership channel, as its user would, until p
// leads, and returns when it learned it.
func (e *electionSampler) awaitGrant(p *benchParticipant) time.Time {
	for l := range p.ch {
		if l.IsLeader {
			return time.Now()
		}
	}
	e.b.Fatalf("%s: Elect's channel closed before it led", p.id)
	return time.Time{}
}

// sample returns how long the next participant took to learn it leads and,
// when the leader closes its session, how long Close took to return (the
// two overlap: Close waits for the server's reply to closeSession while
// the server tells the next participant).
func (e *electionSampler) sample() (took, closed time.Duration) {
	leader := e.queue[0]
	if e.byClose {
		// Close returns after the next leader knows: time both.
		e.closes <- leader.sess
		granted := e.awaitGrant(e.queue[1])
		c := <-e.closed
		took, closed = granted.Sub(c.start), c.end.Sub(c.start)
	} else {
		start := time.Now()
		leader.cancel()
		took = e.awaitGrant(e.queue[1]).Sub(start)
	}
	e.changes++
	leader.cancel()
	leader.sess.Close()
	e.queue = e.queue[1:]
	e.join()
	return took, closed
}

// closer closes the sessions it is given, timing each Close from its call.
// It is one goroutine for all, as a service closes its session from main or
// a shutdown goroutine: a goroutine started for the purpose would spend its
// first Close's first microseconds growing its stack (11-15 µs here, before
// the delete went out).
func (e *electionSampler) closer() {
	for s := range e.closes {
		start := time.Now()
		s.Close()
		e.closed <- closeTimes{start, time.Now()}
	}
}

func (e *electionSampler) counts() electionCounts { return countsOf(e.sessions...) }

func (e *electionSampler) stop() {
	for _, p := range e.queue {
		p.cancel()
		p.sess.Close()
	}
	if e.closes != nil {
		close(e.closes)
	}
}

// lockSampler runs go-zookeeper's Lock as an election: n holders on n
// connections queue for the lock, and each hands it over on request.
type lockSampler struct {
	acquired chan int
	release  []chan struct{}
	quit     chan struct{}
	conns    []*zk.Conn
	wg       sync.WaitGroup
	holder   int
}

func newLockSampler(b *testing.B, zkc *zktest.Cluster, n int) *lockSampler {
	path := fmt.Sprintf("/bench-lock-%d", time.Now().UnixNano())
	l := &lockSampler{acquired: make(chan int, n), quit: make(chan struct{})}
	for i := range n {
		release := make(chan struct{})
		l.release = append(l.release, release)
		conn := zkConnect(b, zkc.Addr(0))
		l.conns = append(l.conns, conn)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			lock := zk.NewLock(conn, path, zk.WorldACL(zk.PermAll))
			for {
				if err := lock.Lock(); err != nil {
					return
				}
				l.acquired <- i
				select {
				case <-release:
					lock.Unlock()
				case <-l.quit:
					lock.Unlock()
					return
				}
			}
		}()
	}
	l.holder = <-l.acquired
	return l
}

func (l *lockSampler) sample() time.Duration {
	start := time.Now()
	l.release[l.holder] <- struct{}{}
	l.holder = <-l.acquired
	return time.Since(start)
}

func (l *lockSampler) stop() {
	close(l.quit)
	// The holder returns now; those still waiting in Lock return when their
	// connections close.
	for _, c := range l.conns {
		c.Close()
	}
	l.wg.Wait()
}

// BenchmarkParticipantCost reports the goroutines and heap bytes each
// participant adds, for 50 participants on one session.
//
//	go test -run '^$' -bench BenchmarkParticipantCost -benchtime 1x .
func BenchmarkParticipantCost(b *testing.B) {
	zkc := zktest.Shared(b)
	s := connect(b, zkc.Root(b))
	const n = 50
	for b.Loop() {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		g0 := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(context.Background())
		var chans []<-chan Leadership
		for i := range n {
			ch, err := s.Elect(ctx, "/cost", WithID(fmt.Sprint(i)))
			if err != nil {
				b.Fatal(err)
			}
			chans = append(chans, ch)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/participant")
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/n, "bytes/participant")
		cancel()
		for _, ch := range chans {
			for range ch {
			}
		}
	}
}

// report sorts lat and reports its p50, p90 and max in ms.
func report(b *testing.B, lat []time.Duration) []time.Duration {
	slices.Sort(lat)
	b.ReportMetric(ms(lat, 0.5), "p50-ms")
	b.ReportMetric(ms(lat, 0.9), "p90-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	b.ReportMetric(0, "ns/op")
	return lat
}

// reportRatio reports the p50 of sorted lat over a floor's p50.
func reportRatio(b *testing.B, lat []time.Duration, floor float64) {
	if floor > 0 {
		b.ReportMetric(p50(lat)/floor, "p50/floor")
	}
}

// BenchmarkElectionScale runs one election of 1,000 participants on 50
// sessions (20 each) and reports: how long until the first leader is
// elected and until all have joined (joining in parallel, one goroutine per
// session); the client's heap for them (less the sessions' own); then, for
// b.N changes of leader in a steady rotation (the leader leaves and joins
// again at the back), the time from the leave to the next grant at p50 and
// p99, the requests sent to the server per change (every client call of
// every session: the leave's delete, the rejoin's create and reads, and the
// reads of any woken participant), participants woken, children reads and
// handover reads per change.
//
//	go test -run '^$' -bench BenchmarkElectionScale -benchtime 300x .
func BenchmarkElectionScale(b *testing.B) {
	const n, nsess = 1000, 50
	zkc := zktest.Shared(b)
	root := zkc.Root(b)
	var requests atomic.Int64
	var sessions []*Session
	for range nsess {
		s := connect(b, root)
		s.zk = countingClient{s.zk, &requests}
		sessions = append(sessions, s)
	}
	type member struct {
		id     string
		cancel context.CancelFunc
		sess   *Session
	}
	grants := make(chan string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	members := map[string]*member{}
	next := 0
	join := func(s *Session) {
		mu.Lock()
		id := fmt.Sprintf("p%04d", next)
		next++
		mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := s.Elect(ctx, "/leader", WithID(id))
		if err != nil {
			b.Error(err)
			cancel()
			return
		}
		mu.Lock()
		members[id] = &member{id: id, cancel: cancel, sess: s}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range ch {
				if l.IsLeader {
					grants <- l.ID
				}
			}
		}()
	}
	defer func() {
		for _, m := range members {
			m.cancel()
		}
		wg.Wait()
	}()

	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	var joining sync.WaitGroup
	for _, s := range sessions {
		joining.Add(1)
		go func() {
			defer joining.Done()
			for range n / nsess {
				join(s)
			}
		}()
	}
	leader := <-grants
	first := time.Since(start)
	joining.Wait()
	all := time.Since(start)
	if b.Failed() {
		b.FailNow()
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)

	before, req0 := countsOf(sessions...), requests.Load()
	var lat []time.Duration
	for b.Loop() {
		m := members[leader]
		t0 := time.Now()
		m.cancel()
		leader = <-grants
		lat = append(lat, time.Since(t0))
		delete(members, m.id)
		join(m.sess)
	}
	d := countsOf(sessions...).sub(before)
	changes := float64(len(lat))
	slices.Sort(lat)
	b.ReportMetric(first.Seconds()*1e3, "first-leader-ms")
	b.ReportMetric(all.Seconds()*1e3, "all-joined-ms")
	b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/n, "bytes/participant")
	b.ReportMetric(ms(lat, 0.5), "change-p50-ms")
	b.ReportMetric(ms(lat, 0.99), "change-p99-ms")
	b.ReportMetric(float64(requests.Load()-req0)/changes, "requests/change")
	b.ReportMetric(float64(d.pred+d.gp)/changes, "woken/change")
	b.ReportMetric(float64(d.reads)/changes, "reads/change")
	b.ReportMetric(float64(d.readGrants)/changes, "handover-reads/change")
	b.ReportMetric(0, "ns/op")
}

// countingClient counts the requests a session sends.
type countingClient struct {
	client
	n *atomic.Int64
}

func (c countingClient) Create(ctx context.Context, path string, data []byte, acl []zkclient.ACL, mode zkclient.CreateMode, ttl time.Duration) (string, *zkclient.Stat, error) {
	c.n.Add(1)
	return c.client.Create(ctx, path, data, acl, mode, ttl)
}

func (c countingClient) Delete(ctx context.Context, path string, version int32) error {
	c.n.Add(1)
	return c.client.Delete(ctx, path, version)
}

func (c countingClient) Exists(ctx context.Context, path string) (*zkclient.Stat, error) {
	c.n.Add(1)
	return c.client.Exists(ctx, path)
}

func (c countingClient) ExistsW(ctx context.Context, path string) (*zkclient.Stat, <-chan zkclient.WatchEvent, error) {
	c.n.Add(1)
	return c.client.ExistsW(ctx, path)
}

func (c countingClient) Get(ctx context.Context, path string) ([]byte, *zkclient.Stat, error) {
	c.n.Add(1)
	return c.client.Get(ctx, path)
}

func (c countingClient) GetW(ctx context.Context, path string) ([]byte, *zkclient.Stat, <-chan zkclient.WatchEvent, error) {
	c.n.Add(1)
	return c.client.GetW(ctx, path)
}

func (c countingClient) Set(ctx context.Context, path string, data []byte, version int32) (*zkclient.Stat, error) {
	c.n.Add(1)
	return c.client.Set(ctx, path, data, version)
}

func (c countingClient) Children(ctx context.Context, path string) ([]string, *zkclient.Stat, error) {
	c.n.Add(1)
	return c.client.Children(ctx, path)
}

func (c countingClient) ChildrenW(ctx context.Context, path string) ([]string, *zkclient.Stat, <-chan zkclient.WatchEvent, error) {
	c.n.Add(1)
	return c.client.ChildrenW(ctx, path)
}

func (c countingClient) Multi(ctx context.Context, ops ...zkclient.Op) ([]zkclient.OpResult, error) {
	c.n.Add(1)
	return c.client.Multi(ctx, ops...)
}
