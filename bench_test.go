package lighthouse

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// The benchmarks below compare lighthouse's Session with raw go-zookeeper
// (v1.0.4) on the shared server, in one run. Each iteration takes one sample
// of each column, in an order that swaps every iteration, so drift and noise
// on a shared machine hit both alike. Each reports per column the p50 in µs (-p50-us)
// and the heap allocations per op (counted around that column's call alone,
// since -benchmem would mix the columns), and the p50 ratio lighthouse/zk.
//
//	go test -run '^$' -bench 'BenchmarkGet|BenchmarkCreateDelete|BenchmarkPipelinedGet' -benchtime 3s -count 3 .

// column is one side of a comparison: a name and one operation.
type column struct {
	name string
	op   func() error
}

// columnStats is what interleave measured of one column.
type columnStats struct {
	lat     []time.Duration // sorted
	mallocs uint64          // heap allocations over all samples
}

// interleave runs b's loop, taking one sample of each column per iteration,
// in turn, reversing the order every other iteration. Allocations are read
// from runtime.MemStats around each call, outside its timing.
func interleave(b *testing.B, cols ...column) []columnStats {
	stats := make([]columnStats, len(cols))
	var before, after runtime.MemStats
	for i := 0; b.Loop(); i++ {
		for j := range cols {
			k := j
			if i%2 == 1 {
				k = len(cols) - 1 - j
			}
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := cols[k].op()
			d := time.Since(start)
			runtime.ReadMemStats(&after)
			if err != nil {
				b.Fatalf("%s: %v", cols[k].name, err)
			}
			stats[k].lat = append(stats[k].lat, d)
			stats[k].mallocs += after.Mallocs - before.Mallocs
		}
	}
	for j := range stats {
		slices.Sort(stats[j].lat)
	}
	// ns/op would be the sum of the columns; the metrics below say more.
	b.ReportMetric(0, "ns/op")
	return stats
}

// reportPair reports p50 and allocations per op of lighthouse (ours) and
// go-zookeeper (theirs), each op being perCall operations of one call, and
// the ratio of the p50s.
func reportPair(b *testing.B, ours, theirs columnStats, perCall int) {
	for _, c := range []struct {
		name string
		s    columnStats
	}{{"lighthouse", ours}, {"zk", theirs}} {
		b.ReportMetric(p50(c.s.lat)/1e3, c.name+"-p50-us")
		b.ReportMetric(float64(c.s.mallocs)/float64(len(c.s.lat)*perCall), c.name+"-allocs/op")
	}
	b.ReportMetric(p50(ours.lat)/p50(theirs.lat), "p50-ratio")
}

// benchConns returns a session and a raw go-zookeeper connection to the
// shared server, and a persistent node of 100 bytes to read.
func benchConns(b *testing.B) (*Session, *zk.Conn, string) {
	zkc := zktest.Shared(b)
	s := connect(b, zkc.ConnectString())
	raw := zkConnect(b, zkc.Addr(0))
	const path = "/lighthouse-bench-get"
	if _, err := s.Create(context.Background(), path, make([]byte, 100), Persistent); err != nil && !isExists(err) {
		b.Fatal(err)
	}
	return s, raw, path
}

// BenchmarkGet: one Get of a 100-byte node, lighthouse against go-zookeeper.
func BenchmarkGet(b *testing.B) {
	s, raw, path := benchConns(b)
	ctx := context.Background()
	st := interleave(b,
		column{"lighthouse", func() error { _, _, err := s.Get(ctx, path); return err }},
		column{"zk", func() error { _, _, err := raw.Get(path); return err }},
	)
	reportPair(b, st[0], st[1], 1)
}

// BenchmarkCreateDelete: Create then Delete of a persistent node, one op
// being the pair.
func BenchmarkCreateDelete(b *testing.B) {
	s, raw, _ := benchConns(b)
	ctx := context.Background()
	data := make([]byte, 100)
	ours, theirs := "/lighthouse-bench-cd-ours", "/lighthouse-bench-cd-zk"
	acl := zk.WorldACL(zk.PermAll)
	st := interleave(b,
		column{"lighthouse", func() error {
			if _, err := s.Create(ctx, ours, data, Persistent); err != nil {
				return err
			}
			return s.Delete(ctx, ours, -1)
		}},
		column{"zk", func() error {
			if _, err := raw.Create(theirs, data, 0, acl); err != nil {
				return err
			}
			return raw.Delete(theirs, -1)
		}},
	)
	reportPair(b, st[0], st[1], 1)
}

// pipelined is how many Gets BenchmarkPipelinedGet has in flight at once.
const pipelined = 64

// BenchmarkPipelinedGet: a round is 64 Gets issued at once from 64
// goroutines on one connection, timed until all have answered. It reports
// Gets per second of each (over all rounds), their ratio lighthouse/zk, and
// the p50 of a round. Both columns pay alike for starting the goroutines.
func BenchmarkPipelinedGet(b *testing.B) {
	s, raw, path := benchConns(b)
	ctx := context.Background()
	round := func(get func() error) func() error {
		return func() error {
			var wg sync.WaitGroup
			errs := make([]error, pipelined)
			for i := range pipelined {
				wg.Go(func() { errs[i] = get() })
			}
			wg.Wait()
			return errors.Join(errs...)
		}
	}
	st := interleave(b,
		column{"lighthouse", round(func() error { _, _, err := s.Get(ctx, path); return err })},
		column{"zk", round(func() error { _, _, err := raw.Get(path); return err })},
	)
	reportPair(b, st[0], st[1], pipelined)
	rate := func(c columnStats) float64 {
		var total time.Duration
		for _, d := range c.lat {
			total += d
		}
		return float64(len(c.lat)*pipelined) / total.Seconds()
	}
	b.ReportMetric(rate(st[0]), "lighthouse-gets/s")
	b.ReportMetric(rate(st[1]), "zk-gets/s")
	b.ReportMetric(rate(st[0])/rate(st[1]), "throughput-ratio")
}

func isExists(err error) bool { return err != nil && errors.Is(err, ErrNodeExists) }
