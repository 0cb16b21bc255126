package lighthouse

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/internal/testzk"
)

// BenchmarkFailover measures how long the next participant takes to learn
// it leads after the leader resigns (cancels Elect's ctx) or closes its
// session, with 3, 10 and 50 participants, side by side in one run with:
//
//   - floor: the protocol's least possible cost, a bare delete of a node on
//     one session and the arrival of the watch on it at another;
//   - zk-lock: go-zookeeper's own Lock used as an election, the hand-over
//     from one holder's Unlock to the next holder's Lock returning.
//
// Latencies are reported as p50/p90/max in ms and p50 as a ratio to the
// floor's p50; the election also reports watches fired per change.
//
//	go test -run '^$' -bench BenchmarkFailover -benchtime 200x .
func BenchmarkFailover(b *testing.B) {
	zkc := testzk.Shared(b)
	var floor float64
	b.Run("floor", func(b *testing.B) {
		floor = p50(report(b, benchFloor(b, zkc)))
	})
	for _, n := range []int{3, 10, 50} {
		for _, how := range []string{"resign", "close"} {
			b.Run(fmt.Sprintf("%s/n=%d", how, n), func(b *testing.B) {
				lat, watches := benchElection(b, zkc, n, how == "close")
				reportRatio(b, report(b, lat), floor)
				b.ReportMetric(watches, "watches/change")
			})
		}
		b.Run(fmt.Sprintf("zk-lock/n=%d", n), func(b *testing.B) {
			reportRatio(b, report(b, benchZKLock(b, zkc, n)), floor)
		})
	}
}

func report(b *testing.B, lat []time.Duration) []time.Duration {
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return float64(lat[min(int(q*float64(len(lat))), len(lat)-1)]) / 1e6
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.9), "p90-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
	b.ReportMetric(0, "ns/op")
	return lat
}

func p50(lat []time.Duration) float64 { return float64(lat[len(lat)/2]) }

func reportRatio(b *testing.B, lat []time.Duration, floor float64) {
	if floor > 0 {
		b.ReportMetric(p50(lat)/floor, "p50/floor")
	}
}

func benchFloor(b *testing.B, zkc *testzk.Cluster) []time.Duration {
	a, w := zkConnect(b, zkc.Addr(0)), zkConnect(b, zkc.Addr(0))
	path := fmt.Sprintf("/bench-floor-%d", time.Now().UnixNano())
	var lat []time.Duration
	for b.Loop() {
		if _, err := a.Create(path, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		_, _, ch, err := w.ExistsW(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := a.Delete(path, -1); err != nil {
			b.Fatal(err)
		}
		<-ch
		lat = append(lat, time.Since(start))
	}
	return lat
}

type benchParticipant struct {
	sess   *Session
	cancel context.CancelFunc
	id     string
}

func benchElection(b *testing.B, zkc *testzk.Cluster, n int, byClose bool) (lat []time.Duration, watchesPerChange float64) {
	root := zkc.Root(b)
	grants := make(chan string, 1024)
	var wg sync.WaitGroup
	defer wg.Wait()
	var sessions []*Session
	start := func(id string) *benchParticipant {
		s := connect(b, root)
		sessions = append(sessions, s)
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := s.Elect(ctx, "/leader", WithID(id))
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range ch {
				if l.IsLeader {
					grants <- l.ID
				}
			}
		}()
		return &benchParticipant{sess: s, cancel: cancel, id: id}
	}
	var queue []*benchParticipant
	for i := range n {
		queue = append(queue, start(fmt.Sprintf("p%d", i)))
	}
	defer func() {
		for _, p := range queue {
			p.cancel()
			p.sess.Close()
		}
	}()
	if id := <-grants; id != queue[0].id {
		b.Fatalf("%s leads, want %s", id, queue[0].id)
	}
	watches := func() (total int64) {
		for _, s := range sessions {
			total += s.stats.predWatches.Load()
		}
		return total
	}
	before := watches()
	next := n
	for b.Loop() {
		leader := queue[0]
		t0 := time.Now()
		if byClose {
			leader.sess.Close()
		} else {
			leader.cancel()
		}
		if id := <-grants; id != queue[1].id {
			b.Fatalf("%s leads, want %s", id, queue[1].id)
		}
		lat = append(lat, time.Since(t0))
		// Keep n participants: the one that left comes back at the end.
		leader.cancel()
		leader.sess.Close()
		queue = append(queue[1:], start(fmt.Sprintf("p%d", next)))
		next++
	}
	return lat, float64(watches()-before) / float64(len(lat))
}

// benchZKLock runs go-zookeeper's Lock as an election: n holders on n
// connections queue for the lock, and each hands it over on request.
func benchZKLock(b *testing.B, zkc *testzk.Cluster, n int) []time.Duration {
	path := fmt.Sprintf("/bench-lock-%d", time.Now().UnixNano())
	acquired := make(chan int, n)
	release := make([]chan struct{}, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var conns []*zk.Conn
	for i := range n {
		release[i] = make(chan struct{})
		conn := zkConnect(b, zkc.Addr(0))
		conns = append(conns, conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := zk.NewLock(conn, path, zk.WorldACL(zk.PermAll))
			for {
				if err := l.Lock(); err != nil {
					return
				}
				acquired <- i
				select {
				case <-release[i]:
					l.Unlock()
				case <-stop:
					l.Unlock()
					return
				}
			}
		}()
	}
	holder := <-acquired
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		release[holder] <- struct{}{}
		holder = <-acquired
		lat = append(lat, time.Since(t0))
	}
	close(stop)
	// The holder returns now; those still waiting in Lock return when their
	// connections close.
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return lat
}

// BenchmarkParticipantCost reports the goroutines and heap bytes each
// participant adds, for 50 participants on one session.
//
//	go test -run '^$' -bench BenchmarkParticipantCost -benchtime 1x .
func BenchmarkParticipantCost(b *testing.B) {
	zkc := testzk.Shared(b)
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
