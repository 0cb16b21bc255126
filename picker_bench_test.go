package lighthouse

import (
	"fmt"
	"slices"
	"testing"
)

var benchSizes = []int{10, 1000}

// benchKeys are the keys the Pick benchmarks cycle through: more than fit a
// core's L1 cache once hashed into a large ring, as in a real service.
var benchKeys = testKeys(1 << 14)

// BenchmarkPick measures one Pick from one goroutine.
func BenchmarkPick(b *testing.B) {
	for _, st := range strategies {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/n=%d", st.name, n), func(b *testing.B) {
				p := st.new().Picker(testNodes(n))
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					p.Pick(benchKeys[i&(len(benchKeys)-1)])
					i++
				}
			})
		}
	}
}

// BenchmarkPickParallel measures Pick from GOMAXPROCS goroutines sharing one
// Picker, as the handlers of a service share their balancer's.
func BenchmarkPickParallel(b *testing.B) {
	for _, st := range strategies {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/n=%d", st.name, n), func(b *testing.B) {
				p := st.new().Picker(testNodes(n))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						p.Pick(benchKeys[i&(len(benchKeys)-1)])
						i++
					}
				})
			})
		}
	}
}

// BenchmarkPicker measures building a Picker, which a balancer does on every
// membership change.
func BenchmarkPicker(b *testing.B) {
	for _, st := range strategies {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/n=%d", st.name, n), func(b *testing.B) {
				s, nodes := st.new(), testNodes(n)
				b.ReportAllocs()
				for b.Loop() {
					s.Picker(nodes)
				}
			})
		}
	}
}

// BenchmarkHashMovement measures how many of 100k keys move when one of 100
// nodes leaves, for each of the 100 nodes in turn. moved/ideal is the worst
// of them as a ratio to the ideal 1/N; moved-elsewhere counts keys that moved
// though their node stayed (0 for a consistent hash). The time is that of
// building the Picker over the 99 nodes left.
func BenchmarkHashMovement(b *testing.B) {
	const n = 100
	nodes := testNodes(n)
	keys := testKeys(100_000)
	before := mapping(ConsistentHash().Picker(nodes), keys)
	worst, elsewhere := 0.0, 0
	for leaving := range nodes {
		rest := slices.Delete(slices.Clone(nodes), leaving, leaving+1)
		after := mapping(ConsistentHash().Picker(rest), keys)
		moved := 0
		for i := range keys {
			if after[i] != before[i] {
				moved++
				if before[i] != nodes[leaving].ID {
					elsewhere++
				}
			}
		}
		worst = max(worst, float64(moved)/float64(len(keys))*n)
	}
	rest := nodes[1:]
	for b.Loop() {
		ConsistentHash().Picker(rest)
	}
	b.ReportMetric(worst, "moved/ideal")
	b.ReportMetric(float64(elsewhere), "moved-elsewhere")
}
