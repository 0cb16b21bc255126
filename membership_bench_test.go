package lighthouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// BenchmarkMembershipJoin measures how long a join takes to reach each of
// 10 watchers while n members are registered (n = 10, 1,000 and 10,000).
// Its columns are sampled in every iteration, in an order drawn at random
// each time, each on its own service of n members with its own 10 watcher
// sessions:
//
//   - floor: a bare persistent recursive watch (lighthouse's zkclient)
//     firing at another session, followed by one read of the new node;
//   - members: Members;
//   - sets: MemberSets (service "sets": a join, a leave and an update, each
//     timed apart);
//   - oneshot: Members forced onto its fallback for servers without
//     persistent watches (one-shot children watches and a re-list).
//
// An iteration, for each column: a join (timed, per watcher), a leave and
// an update of another member's data (Members columns; timed, not in the
// ratio). Latencies are p50/p90 in ms, with p50 as a ratio to the floor's.
// The Members columns report ZooKeeper reads per watcher for a join, a
// leave and an update, and the heap the 10 watchers hold per member and
// watcher (Go heap after GC, taken before and after the first sets).
//
//	go test -run '^$' -bench BenchmarkMembershipJoin -benchtime 100x .
func BenchmarkMembershipJoin(b *testing.B) {
	zkc := zktest.Shared(b)
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { benchJoin(b, zkc, n, 10) })
	}
}

func benchJoin(b *testing.B, zkc *zktest.Cluster, n, watchers int) {
	root := zkc.Root(b)
	a := zkConnect(b, zkc.Addr(0))
	chroot := chrootOf(root)
	for _, p := range []string{"/floor", "/services"} {
		if _, err := a.Create(chroot+p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
	}
	floorDir, membersDir, setsDir, oneShotDir := "/floor/svc", "/services/svc", "/services/sets", "/services/oneshot"
	for _, d := range []string{floorDir, membersDir, setsDir, oneShotDir} {
		populate(b, a, chroot+d, n)
	}

	floor := newFloorWatchers(b, zkc.Addr(0)+chroot, floorDir, watchers)
	heap0 := heapInUse()
	members := newMemberWatchers(b, root, "svc", watchers, false, n)
	heap := float64(heapInUse()-heap0) / float64(n*watchers)
	sets := newMemberWatchers(b, root, "sets", watchers, false, n)
	oneShot := newMemberWatchers(b, root, "oneshot", watchers, true, n)

	var floorLat, membersLat, setsLat, setsUpdateLat, oneShotLat, updateLat []time.Duration
	i := 0
	columns := []func(){
		func() { floorLat = append(floorLat, floor.join(b, a, chroot, i)...) },
		func() {
			membersLat = append(membersLat, members.join(b, a, chroot, i)...)
			updateLat = append(updateLat, members.update(b, a, chroot, i)...)
		},
		func() {
			setsLat = append(setsLat, sets.join(b, a, chroot, i)...)
			setsUpdateLat = append(setsUpdateLat, sets.update(b, a, chroot, i)...)
		},
		func() {
			oneShotLat = append(oneShotLat, oneShot.join(b, a, chroot, i)...)
			oneShot.update(b, a, chroot, i)
		},
	}
	for b.Loop() {
		b.StopTimer() // the columns time themselves
		// In a new order each iteration, as in BenchmarkFailover: a sample
		// is slower after some columns than after others.
		for _, k := range rand.Perm(len(columns)) {
			columns[k]()
		}
		i++
		b.StartTimer()
	}
	f := reportColumn(b, "floor", floorLat, 0)
	reportColumn(b, "members", membersLat, f)
	reportColumn(b, "update", updateLat, f)
	reportColumn(b, "sets", setsLat, f)
	reportColumn(b, "sets-update", setsUpdateLat, f)
	reportColumn(b, "oneshot", oneShotLat, f)
	members.reportReads(b, "members")
	sets.reportReads(b, "sets")
	oneShot.reportReads(b, "oneshot")
	b.ReportMetric(heap, "members-B/member/watcher")
	b.ReportMetric(0, "ns/op")
}

// benchCtx is a ctx for the benchmark's lifetime (testCtx ends after 30 s,
// ending the recipes it started).
func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

// reportColumn reports a column's p50 and p90 in ms, and its p50 over
// floor's (when floor is not 0). It returns its p50.
func reportColumn(b *testing.B, name string, lat []time.Duration, floor float64) float64 {
	slices.Sort(lat)
	b.ReportMetric(ms(lat, 0.5), name+"-p50-ms")
	b.ReportMetric(ms(lat, 0.9), name+"-p90-ms")
	if floor > 0 {
		b.ReportMetric(p50(lat)/floor, name+"-p50/floor")
	}
	return p50(lat)
}

// heapInUse returns the Go heap in use after a GC.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// populate creates the service node dir (the parent must exist) on conn,
// with n ephemeral members, 100 creates per Multi.
func populate(b *testing.B, conn *zk.Conn, dir string, n int) {
	acl := zk.WorldACL(zk.PermAll)
	if _, err := conn.Create(dir, nil, 0, acl); err != nil && err != zk.ErrNodeExists {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 100 {
		var ops []any
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, &zk.CreateRequest{Path: fmt.Sprintf("%s/member-%05d", dir, j), Data: []byte("10.0.0.1:8080"), Acl: acl, Flags: zk.FlagEphemeral})
		}
		if _, err := conn.Multi(ops...); err != nil {
			b.Fatal(err)
		}
	}
}

// floorWatchers are bare persistent recursive watches on dir, one per
// session, each reading the node an event names.
type floorWatchers struct {
	dir  string
	seen chan time.Time
}

func newFloorWatchers(b *testing.B, connectString, dir string, watchers int) *floorWatchers {
	f := &floorWatchers{dir: dir, seen: make(chan time.Time, watchers)}
	addr, chroot, _ := strings.Cut(connectString, "/")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	for range watchers {
		c, err := zkclient.Connect(testCtx(b), zkclient.Config{Servers: []string{addr}, Chroot: "/" + chroot, SessionTimeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(context.Background()) })
		w, err := c.AddWatch(testCtx(b), dir, true)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-w.Events():
				}
				for _, ev := range w.Take() {
					if ev.Type != zkclient.EventNodeCreated {
						continue
					}
					if _, _, err := c.Get(ctx, ev.Path); err != nil && ctx.Err() == nil {
						b.Error(err)
					}
					f.seen <- time.Now()
				}
			}
		}()
	}
	return f
}

// join creates a node in the floor's service and returns when each watcher
// has read it, after each.
func (f *floorWatchers) join(b *testing.B, a *zk.Conn, chroot string, i int) []time.Duration {
	node := fmt.Sprintf("%s%s/new-%d", chroot, f.dir, i)
	start := time.Now()
	if _, err := a.Create(node, []byte("10.0.0.2:8080"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, cap(f.seen))
	for range cap(f.seen) {
		select {
		case at := <-f.seen:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatal("floor watchers did not see the join")
		}
	}
	if err := a.Delete(node, -1); err != nil {
		b.Fatal(err)
	}
	return lat
}

// memberWatchers are Members of one service, one per session.
type memberWatchers struct {
	service  string
	n        int
	sessions []*Session
	seen     chan memberSeen

	events                 chan string // the watchers' session events, for a failure
	joins, leaves, updates int         // changes made, each seen by every watcher
	joinR, leaveR, updateR int64       // reads they cost
}

type memberSeen struct {
	who  int
	size int
	data string // of member-00000
	at   time.Time
}

func newMemberWatchers(b *testing.B, root, service string, watchers int, oneShot bool, n int) *memberWatchers {
	m := &memberWatchers{service: service, n: n, seen: make(chan memberSeen, 16*watchers), events: make(chan string, 1000)}
	for i := range watchers {
		s := connect(b, root, WithSessionTimeout(10*time.Second))
		evs := s.Events(testCtx(b))
		go func() {
			for e := range evs {
				select {
				case m.events <- fmt.Sprintf("watcher %d: %v", i, e):
				default:
				}
			}
		}()
		if oneShot {
			withoutPersistentWatches(s)
		}
		m.sessions = append(m.sessions, s)
		if service == "sets" {
			ch, err := s.MemberSets(benchCtx(b), service)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for set := range ch {
					d := ""
					if set.Len() > 0 {
						d = string(set.At(0).Data)
					}
					m.seen <- memberSeen{i, set.Len(), d, time.Now()}
				}
			}()
			continue
		}
		ch, err := s.Members(benchCtx(b), service)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for nodes := range ch {
				d := ""
				if len(nodes) > 0 {
					d = string(nodes[0].Data)
				}
				m.seen <- memberSeen{i, len(nodes), d, time.Now()}
			}
		}()
	}
	m.await(b, func(s memberSeen) bool { return s.size == n }, time.Time{})
	return m
}

func (m *memberWatchers) reads() (n int64) {
	for _, s := range m.sessions {
		n += s.memberReads.Load()
	}
	return n
}

// await waits until every watcher has seen a set ok accepts, returning the
// time each took since start (none if start is zero).
func (m *memberWatchers) await(b *testing.B, ok func(memberSeen) bool, start time.Time) []time.Duration {
	var lat []time.Duration
	last := map[int]memberSeen{}
	for got := 0; got < len(m.sessions); {
		select {
		case s := <-m.seen:
			last[s.who] = s
			if ok(s) {
				got++
				if !start.IsZero() {
					lat = append(lat, s.at.Sub(start))
				}
			}
		case <-time.After(20 * time.Second):
			var evs []string
			for len(m.events) > 0 {
				evs = append(evs, <-m.events)
			}
			b.Fatalf("%s: %d of %d watchers saw the change (last seen: %+v); events:\n%s",
				m.service, got, len(m.sessions), last, strings.Join(evs, "\n"))
		}
	}
	return lat
}

// join adds a member and times its arrival at each watcher; then it
// removes it again.
func (m *memberWatchers) join(b *testing.B, a *zk.Conn, chroot string, i int) []time.Duration {
	node := fmt.Sprintf("%s/services/%s/new-%d", chroot, m.service, i)
	before := m.reads()
	start := time.Now()
	if _, err := a.Create(node, []byte("10.0.0.2:8080"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		b.Fatal(err)
	}
	lat := m.await(b, func(s memberSeen) bool { return s.size == m.n+1 }, start)
	m.joins++
	m.joinR += m.reads() - before
	before = m.reads()
	if err := a.Delete(node, -1); err != nil {
		b.Fatal(err)
	}
	m.await(b, func(s memberSeen) bool { return s.size == m.n }, time.Time{})
	m.leaves++
	m.leaveR += m.reads() - before
	return lat
}

// update changes the data of the first member and times its arrival at
// each watcher. The one-shot fallback does not see updates: it is timed
// out of nothing and only its reads (none) are counted.
func (m *memberWatchers) update(b *testing.B, a *zk.Conn, chroot string, i int) []time.Duration {
	data := fmt.Sprintf("10.0.0.3:%d", i)
	before := m.reads()
	start := time.Now()
	if _, err := a.Set(fmt.Sprintf("%s/services/%s/member-00000", chroot, m.service), []byte(data), -1); err != nil {
		b.Fatal(err)
	}
	if m.service == "oneshot" {
		return nil
	}
	lat := m.await(b, func(s memberSeen) bool { return s.data == data }, start)
	m.updates++
	m.updateR += m.reads() - before
	return lat
}

func (m *memberWatchers) reportReads(b *testing.B, name string) {
	w := float64(len(m.sessions))
	b.ReportMetric(float64(m.joinR)/float64(m.joins)/w, name+"-reads/join")
	b.ReportMetric(float64(m.leaveR)/float64(m.leaves)/w, name+"-reads/leave")
	if m.updates > 0 {
		b.ReportMetric(float64(m.updateR)/float64(m.updates)/w, name+"-reads/update")
	}
}

// BenchmarkMembershipScale follows one service of 10,000 members from 100
// watcher sessions with MemberSets (#14 "Scale"). It reports the time until all 100 have
// their first set (all started at once), the time a join takes to reach
// each watcher (p50, p99), the ZooKeeper requests a join and a leave cost
// all watchers together (the reads they make, plus the write itself), and
// the client heap the watchers hold (Go heap after GC).
//
//	go test -run '^$' -bench BenchmarkMembershipScale -benchtime 20x .
func BenchmarkMembershipScale(b *testing.B) {
	const n, watchers = 10000, 100
	zkc := zktest.Shared(b)
	root := zkc.Root(b)
	a := zkConnect(b, zkc.Addr(0))
	if _, err := a.Create(chrootOf(root)+"/services", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		b.Fatal(err)
	}
	populate(b, a, chrootOf(root)+"/services/svc", n)

	m := &memberWatchers{service: "svc", n: n, seen: make(chan memberSeen, 16*watchers)}
	for range watchers {
		m.sessions = append(m.sessions, connect(b, root, WithSessionTimeout(30*time.Second)))
	}
	heap0 := heapInUse()
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range m.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := s.MemberSets(benchCtx(b), "svc")
			if err != nil {
				b.Error(err)
				return
			}
			go func() {
				for set := range ch {
					m.seen <- memberSeen{size: set.Len(), at: time.Now()}
				}
			}()
		}()
	}
	wg.Wait()
	first := m.await(b, func(s memberSeen) bool { return s.size == n }, start)
	heap := heapInUse() - heap0

	var lat []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		lat = append(lat, m.join(b, a, chrootOf(root), i)...)
		i++
		b.StartTimer()
	}
	slices.Sort(first)
	slices.Sort(lat)
	b.ReportMetric(first[len(first)-1].Seconds(), "first-set-s")
	b.ReportMetric(ms(lat, 0.5), "change-p50-ms")
	b.ReportMetric(ms(lat, 0.99), "change-p99-ms")
	b.ReportMetric(float64(m.joinR)/float64(m.joins)+1, "requests/join")
	b.ReportMetric(float64(m.leaveR)/float64(m.leaves)+1, "requests/leave")
	b.ReportMetric(float64(heap)/(1<<20), "client-heap-MB")
	b.ReportMetric(float64(heap)/float64(n*watchers), "B/member/watcher")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMemberSetChange measures a watcher's CPU per change without
// ZooKeeper: applying a join and a leave to a set of n members (a new
// MemberSet each, what MemberSets delivers), and the same with the copy of
// the set into the new slice that Members delivers after each.
//
//	go test -run '^$' -bench BenchmarkMemberSetChange .
func BenchmarkMemberSetChange(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		for _, deliver := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/deliver=%v", n, deliver), func(b *testing.B) {
				m := newMemberSet(nil, "/services/svc")
				for i := range n {
					m.put(member{Node: Node{ID: fmt.Sprintf("member-%05d", i), Data: []byte("10.0.0.1:8080")}, czxid: int64(i + 1)})
				}
				joiner := member{Node: Node{ID: "member-05000x", Data: []byte("10.0.0.2:8080")}, czxid: int64(n + 1)}
				var sink []Node
				for b.Loop() {
					m.put(joiner)
					if deliver {
						sink = m.nodes()
					}
					m.drop(joiner.ID)
					if deliver {
						sink = m.nodes()
					}
				}
				_ = sink
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/change")
			})
		}
	}
}
