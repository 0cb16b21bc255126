package zkclient

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// The benchmarks compare this client with go-zookeeper on the same server,
// interleaving the two in every iteration (alternating which goes first)
// so that both see the same conditions.

// benchClients returns our client and a go-zookeeper one, both connected to
// the shared server, and a root path of the benchmark's own.
func benchClients(b *testing.B) (*Client, *zk.Conn, string) {
	b.Helper()
	cl := zktest.Shared(b)
	root := "/" + strings.SplitN(cl.Root(b), "/", 2)[1]
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	ours, err := Connect(ctx, Config{Servers: []string{cl.Addr(0)}, Logger: benchLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ours.Close(context.Background()) })
	theirs, events, err := zk.Connect([]string{cl.Addr(0)}, 10*time.Second, zk.WithLogger(nopLogger{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		theirs.Close()
		for range events {
		}
	})
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for ev := range events {
		if ev.State == zk.StateHasSession {
			break
		}
		select {
		case <-timer.C:
			b.Fatal("go-zookeeper: no session")
		default:
		}
	}
	return ours, theirs, root
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// pair runs ours and theirs once each, in an order that alternates with i,
// and records their durations.
func pair(i int, ours, theirs func(), dOurs, dTheirs *[]time.Duration) {
	timeIt := func(f func(), into *[]time.Duration) {
		start := time.Now()
		f()
		*into = append(*into, time.Since(start))
	}
	if i%2 == 0 {
		timeIt(ours, dOurs)
		timeIt(theirs, dTheirs)
	} else {
		timeIt(theirs, dTheirs)
		timeIt(ours, dOurs)
	}
}

func p50(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// report reports each client's p50 latency, their ratio, and allocations
// per op measured apart from the timed loop.
func report(b *testing.B, dOurs, dTheirs []time.Duration, ours, theirs func()) {
	b.Helper()
	po, pt := p50(dOurs), p50(dTheirs)
	b.ReportMetric(float64(po.Microseconds()), "p50-ours-µs")
	b.ReportMetric(float64(pt.Microseconds()), "p50-gozk-µs")
	if pt > 0 {
		b.ReportMetric(float64(po)/float64(pt), "p50-ratio")
	}
	b.ReportMetric(testing.AllocsPerRun(200, ours), "allocs-ours/op")
	b.ReportMetric(testing.AllocsPerRun(200, theirs), "allocs-gozk/op")
}

func BenchmarkGet(b *testing.B) {
	ours, theirs, root := benchClients(b)
	ctx := context.Background()
	path := root + "/node"
	if _, _, err := ours.Create(ctx, path, make([]byte, 100), all, Persistent, 0); err != nil {
		b.Fatal(err)
	}
	getOurs := func() {
		if _, _, err := ours.Get(ctx, path); err != nil {
			b.Fatal(err)
		}
	}
	getTheirs := func() {
		if _, _, err := theirs.Get(path); err != nil {
			b.Fatal(err)
		}
	}
	var dOurs, dTheirs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		pair(i, getOurs, getTheirs, &dOurs, &dTheirs)
	}
	b.StopTimer()
	report(b, dOurs, dTheirs, getOurs, getTheirs)
}

func BenchmarkCreateDelete(b *testing.B) {
	ours, theirs, root := benchClients(b)
	ctx := context.Background()
	pOurs, pTheirs := root+"/ours", root+"/theirs"
	cdOurs := func() {
		if _, _, err := ours.Create(ctx, pOurs, []byte("x"), all, Persistent, 0); err != nil {
			b.Fatal(err)
		}
		if err := ours.Delete(ctx, pOurs, -1); err != nil {
			b.Fatal(err)
		}
	}
	cdTheirs := func() {
		if _, err := theirs.Create(pTheirs, []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		if err := theirs.Delete(pTheirs, -1); err != nil {
			b.Fatal(err)
		}
	}
	var dOurs, dTheirs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		pair(i, cdOurs, cdTheirs, &dOurs, &dTheirs)
	}
	b.StopTimer()
	report(b, dOurs, dTheirs, cdOurs, cdTheirs)
}

// BenchmarkGetParallel64 compares throughput with 64 goroutines each doing
// getsPerWorker Gets at once, per client per iteration.
func BenchmarkGetParallel64(b *testing.B) {
	const workers, getsPerWorker = 64, 16
	ours, theirs, root := benchClients(b)
	ctx := context.Background()
	path := root + "/node"
	if _, _, err := ours.Create(ctx, path, make([]byte, 100), all, Persistent, 0); err != nil {
		b.Fatal(err)
	}
	burst := func(get func() error) func() {
		return func() {
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Go(func() {
					for range getsPerWorker {
						if err := get(); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		}
	}
	bOurs := burst(func() error {
		_, _, err := ours.Get(ctx, path)
		if err != nil {
			return fmt.Errorf("ours: %w", err)
		}
		return nil
	})
	bTheirs := burst(func() error {
		_, _, err := theirs.Get(path)
		if err != nil {
			return fmt.Errorf("go-zookeeper: %w", err)
		}
		return nil
	})
	var dOurs, dTheirs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		pair(i, bOurs, bTheirs, &dOurs, &dTheirs)
	}
	b.StopTimer()
	perBurst := float64(workers * getsPerWorker)
	sum := func(d []time.Duration) (t time.Duration) {
		for _, x := range d {
			t += x
		}
		return t
	}
	tOurs := perBurst * float64(len(dOurs)) / sum(dOurs).Seconds()
	tTheirs := perBurst * float64(len(dTheirs)) / sum(dTheirs).Seconds()
	b.ReportMetric(tOurs, "gets/s-ours")
	b.ReportMetric(tTheirs, "gets/s-gozk")
	b.ReportMetric(tOurs/tTheirs, "throughput-ratio")
}

// benchLogger logs warnings and worse to b.
func benchLogger(b *testing.B) *slog.Logger {
	return slog.New(slog.NewTextHandler(bWriter{b}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type bWriter struct{ b *testing.B }

func (w bWriter) Write(p []byte) (int, error) {
	w.b.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// BenchmarkDeleteToWatch compares the floor of every handover: one session
// deletes a node and another learns it from its exists watch. For each
// client (ours, go-zookeeper's) it times from the Delete call to the
// watch's arrival, the two alternating within every iteration.
func BenchmarkDeleteToWatch(b *testing.B) {
	ours, theirs, root := benchClients(b)
	ours2, theirs2, _ := benchClients(b)
	ctx := context.Background()
	pOurs, pTheirs := root+"/ours", root+"/theirs"
	sampleOurs := func() time.Duration {
		if _, _, err := ours.Create(ctx, pOurs, nil, all, Ephemeral, 0); err != nil {
			b.Fatal(err)
		}
		_, ch, err := ours2.ExistsW(ctx, pOurs)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := ours.Delete(ctx, pOurs, -1); err != nil {
			b.Fatal(err)
		}
		<-ch
		return time.Since(start)
	}
	sampleTheirs := func() time.Duration {
		if _, err := theirs.Create(pTheirs, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
		_, _, ch, err := theirs2.ExistsW(pTheirs)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := theirs.Delete(pTheirs, -1); err != nil {
			b.Fatal(err)
		}
		<-ch
		return time.Since(start)
	}
	var dOurs, dTheirs []time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			dOurs = append(dOurs, sampleOurs())
			dTheirs = append(dTheirs, sampleTheirs())
		} else {
			dTheirs = append(dTheirs, sampleTheirs())
			dOurs = append(dOurs, sampleOurs())
		}
	}
	po, pt := p50(dOurs), p50(dTheirs)
	b.ReportMetric(float64(po.Microseconds()), "p50-ours-µs")
	b.ReportMetric(float64(pt.Microseconds()), "p50-gozk-µs")
	b.ReportMetric(float64(po)/float64(pt), "p50-ratio")
	b.ReportMetric(0, "ns/op")
}
