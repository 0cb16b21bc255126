package lighthouse

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// BenchmarkMetrics compares Get and Pick on a session whose metrics go to
// an SDK provider ("on") with the same on a session with a no-op provider
// ("off"), in one run: each iteration samples both, in alternating order,
// so that machine noise hits both alike. It reports each one's time and
// their ratio (on/off).
//
//	go test -run '^$' -bench BenchmarkMetrics -benchmem -count 5 .
func BenchmarkMetrics(b *testing.B) {
	zkc := zktest.Shared(b)
	root := zkc.Root(b)
	_, mp := meterT(b)
	on := connect(b, root, WithMeterProvider(mp))
	off := connect(b, root, WithMeterProvider(noop.NewMeterProvider()))
	ctx := context.Background()
	const path = "/bench-get"
	if _, err := on.Create(ctx, path, make([]byte, 100), Persistent); err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		if _, err := on.Register(ctx, "svc", Node{ID: fmt.Sprintf("node-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	balancer := func(s *Session) *Balancer {
		bal, err := s.Balancer(ctx, "svc", RoundRobin())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bal.Close() })
		return bal
	}
	bOn, bOff := balancer(on), balancer(off)

	// interleave runs f(on) and f(off) once per iteration, in alternating
	// order, and reports the time of each per op (n ops per call).
	interleave := func(b *testing.B, n int, unit string, fOn, fOff func()) {
		var onNs, offNs time.Duration
		i := 0
		for b.Loop() {
			first, second := fOn, fOff
			if i%2 == 1 {
				first, second = fOff, fOn
			}
			t0 := time.Now()
			first()
			t1 := time.Now()
			second()
			t2 := time.Now()
			if i%2 == 0 {
				onNs, offNs = onNs+t1.Sub(t0), offNs+t2.Sub(t1)
			} else {
				offNs, onNs = offNs+t1.Sub(t0), onNs+t2.Sub(t1)
			}
			i++
		}
		ops := float64(b.N * n)
		b.ReportMetric(float64(onNs.Nanoseconds())/ops, "on-ns/"+unit)
		b.ReportMetric(float64(offNs.Nanoseconds())/ops, "off-ns/"+unit)
		b.ReportMetric(float64(onNs)/float64(offNs), "ratio")
	}
	b.Run("get", func(b *testing.B) {
		get := func(s *Session) func() {
			return func() {
				if _, _, err := s.Get(ctx, path); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportAllocs()
		interleave(b, 1, "get", get(on), get(off))
	})
	b.Run("pick", func(b *testing.B) {
		const block = 1000 // picks per sample: one Pick is too short to time alone
		pick := func(bal *Balancer) func() {
			return func() {
				for range block {
					bal.Pick("")
				}
			}
		}
		b.ReportAllocs()
		interleave(b, block, "pick", pick(bOn), pick(bOff))
	})
	// From every P at once, with Random, whose Pick shares nothing between
	// goroutines: the picks counter is then the only shared write.
	b.Run("pick-parallel", func(b *testing.B) {
		rOn, rOff := balancer2(b, on, ctx, Random()), balancer2(b, off, ctx, Random())
		const block = 100
		var onNs, offNs atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var mine [2]time.Duration
			i := 0
			for pb.Next() {
				for k := range 2 {
					bal, col := rOn, 0
					if (i+k)%2 == 1 {
						bal, col = rOff, 1
					}
					t0 := time.Now()
					for range block {
						bal.Pick("")
					}
					mine[col] += time.Since(t0)
				}
				i++
			}
			onNs.Add(int64(mine[0]))
			offNs.Add(int64(mine[1]))
		})
		ops := float64(b.N * block)
		b.ReportMetric(float64(onNs.Load())/ops, "on-ns/pick")
		b.ReportMetric(float64(offNs.Load())/ops, "off-ns/pick")
		b.ReportMetric(float64(onNs.Load())/float64(offNs.Load()), "ratio")
	})
	// What recording one request costs alone: the part of "get" that the
	// ratio above can hardly resolve.
	b.Run("record-get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			on.metrics.called(ctx, "get_data", 150*time.Microsecond, nil)
		}
	})
}

// balancer2 starts a balancer of "svc" on s with strategy, closed when b ends.
func balancer2(b *testing.B, s *Session, ctx context.Context, strategy Strategy) *Balancer {
	bal, err := s.Balancer(ctx, "svc", strategy)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bal.Close() })
	return bal
}
