package lighthouse

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// BenchmarkMembershipJoin measures how long a join takes to reach 10
// watchers while n members are registered (n = 10 and 1000), side by side
// in one run with the floor: bare go-zookeeper children watches on 10 other
// sessions firing, each followed by one read of the new node, with the same
// n members. floor+list adds the read of the n names that a children
// watch needs to find which child joined (go-zookeeper v1.0.4 has no
// persistent watches that would name it).
// Each op is one join (timed) and one leave (not timed); latencies are
// per watcher, as p50/p90 in ms and p50 as a ratio to the floor's p50 at the
// same n. Members also reports ZooKeeper reads per membership change and
// watcher (a join and a leave are two changes).
//
//	go test -run '^$' -bench BenchmarkMembershipJoin -benchtime 100x .
func BenchmarkMembershipJoin(b *testing.B) {
	zkc := zktest.Shared(b)
	for _, n := range []int{10, 1000} {
		var floor float64
		b.Run(fmt.Sprintf("floor/n=%d", n), func(b *testing.B) {
			floor = p50(report(b, benchJoinFloor(b, zkc, n, 10, false)))
		})
		b.Run(fmt.Sprintf("floor+list/n=%d", n), func(b *testing.B) {
			reportRatio(b, report(b, benchJoinFloor(b, zkc, n, 10, true)), floor)
		})
		b.Run(fmt.Sprintf("members/n=%d", n), func(b *testing.B) {
			lat, reads := benchJoin(b, zkc, n, 10)
			reportRatio(b, report(b, lat), floor)
			b.ReportMetric(reads, "reads/change")
		})
	}
}

// populate creates the service node of svc under chroot on conn, with n
// ephemeral members, 100 creates per Multi.
func populate(b *testing.B, conn *zk.Conn, dir string, n int) {
	acl := zk.WorldACL(zk.PermAll)
	if _, err := conn.Create(dir, nil, 0, acl); err != nil && err != zk.ErrNodeExists {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 100 {
		var ops []any
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, &zk.CreateRequest{Path: fmt.Sprintf("%s/member-%04d", dir, j), Data: []byte("10.0.0.1:8080"), Acl: acl, Flags: zk.FlagEphemeral})
		}
		if _, err := conn.Multi(ops...); err != nil {
			b.Fatal(err)
		}
	}
}

func benchJoinFloor(b *testing.B, zkc *zktest.Cluster, n, watchers int, relist bool) []time.Duration {
	dir := chrootOf(zkc.Root(b))
	a := zkConnect(b, zkc.Addr(0))
	ws := make([]*zk.Conn, watchers)
	for i := range ws {
		ws[i] = zkConnect(b, zkc.Addr(0))
	}
	if _, err := a.Create(dir+"/services", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		b.Fatal(err)
	}
	dir += "/services/svc"
	populate(b, a, dir, n)
	var lat []time.Duration
	done := make(chan time.Duration, watchers)
	i := 0
	for b.Loop() {
		node := fmt.Sprintf("%s/new-%d", dir, i)
		i++
		b.StopTimer()
		chans := make([]<-chan zk.Event, watchers)
		for j, w := range ws {
			_, _, ch, err := w.ChildrenW(dir)
			if err != nil {
				b.Fatal(err)
			}
			chans[j] = ch
		}
		b.StartTimer()
		start := time.Now()
		for j, w := range ws {
			go func() {
				<-chans[j]
				if relist {
					if _, _, err := w.Children(dir); err != nil {
						b.Error(err)
					}
				}
				if _, _, err := w.Get(node); err != nil {
					b.Error(err)
				}
				done <- time.Since(start)
			}()
		}
		if _, err := a.Create(node, []byte("10.0.0.2:8080"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		for range watchers {
			lat = append(lat, <-done)
		}
		b.StopTimer()
		if err := a.Delete(node, -1); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	return lat
}

func benchJoin(b *testing.B, zkc *zktest.Cluster, n, watchers int) (lat []time.Duration, readsPerChange float64) {
	root := zkc.Root(b)
	dir := chrootOf(root)
	a := zkConnect(b, zkc.Addr(0))
	if _, err := a.Create(dir+"/services", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		b.Fatal(err)
	}
	dir += "/services/svc"
	populate(b, a, dir, n)

	type seen struct {
		size int
		at   time.Time
	}
	sizes := make(chan seen, 16*watchers)
	var sessions []*Session
	reads := func() (n int64) {
		for _, s := range sessions {
			n += s.memberReads.Load()
		}
		return n
	}
	for range watchers {
		s := connect(b, root)
		sessions = append(sessions, s)
		ch, err := s.Members(testCtx(b), "svc")
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for nodes := range ch {
				sizes <- seen{len(nodes), time.Now()}
			}
		}()
	}
	// await waits until every watcher has seen size members.
	await := func(size int, start time.Time) {
		for got := 0; got < watchers; {
			select {
			case s := <-sizes:
				if s.size == size {
					got++
					if !start.IsZero() {
						lat = append(lat, s.at.Sub(start))
					}
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("%d of %d watchers saw %d members", got, watchers, size)
			}
		}
	}
	await(n, time.Time{})
	before := reads()
	changes := 0
	i := 0
	for b.Loop() {
		node := fmt.Sprintf("%s/new-%d", dir, i)
		i++
		start := time.Now()
		if _, err := a.Create(node, []byte("10.0.0.2:8080"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		await(n+1, start)
		b.StopTimer()
		if err := a.Delete(node, -1); err != nil {
			b.Fatal(err)
		}
		await(n, time.Time{})
		changes += 2
		b.StartTimer()
	}
	readsPerChange = float64(reads()-before) / float64(changes*watchers)
	slices.Sort(lat)
	return lat, readsPerChange
}
