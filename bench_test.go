package lighthouse

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// BenchmarkGet compares a Get through the Session with the same Get on a raw
// go-zookeeper connection, on one server in the same run. The sub-benchmarks
// give ns/op and allocs/op of each; "interleaved" alternates the two in one
// loop so machine noise hits both alike, and reports their ratio.
//
//	go test -run '^$' -bench BenchmarkGet -benchmem -count 5 .
func BenchmarkGet(b *testing.B) {
	zkc := zktest.Shared(b)
	s := connect(b, zkc.ConnectString())
	raw := zkConnect(b, zkc.Addr(0))
	const path = "/lighthouse-bench-get"
	ctx := context.Background()
	if _, err := s.Create(ctx, path, make([]byte, 100), Persistent); err != nil && !isExists(err) {
		b.Fatal(err)
	}
	cancellable, cancel := context.WithCancel(ctx)
	defer cancel()

	b.Run("raw-zk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := raw.Get(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lighthouse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.Get(ctx, path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lighthouse-cancellable-ctx", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.Get(cancellable, path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		var rawNs, ourNs time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, _, err := raw.Get(path); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, _, err := s.Get(ctx, path); err != nil {
				b.Fatal(err)
			}
			ourNs += time.Since(t1)
			rawNs += t1.Sub(t0)
		}
		b.ReportMetric(float64(rawNs.Nanoseconds())/float64(b.N), "raw-ns/get")
		b.ReportMetric(float64(ourNs.Nanoseconds())/float64(b.N), "lighthouse-ns/get")
		b.ReportMetric(float64(ourNs)/float64(rawNs), "ratio")
	})
}

func isExists(err error) bool { return err != nil && errors.Is(err, ErrNodeExists) }
