package lighthouse

import (
	"cmp"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Picker chooses one node of a fixed set of nodes.
//
// Pick returns ok=false only when the set is empty, so the caller can fall
// back to a default. The key matters only to ConsistentHash; other pickers
// ignore it. A Picker works over an immutable snapshot: it is safe for
// concurrent use, takes no lock and does not allocate. The Data of the node
// it returns is shared with other callers and must not be modified.
type Picker interface {
	Pick(key string) (n Node, ok bool)
}

// Strategy builds a Picker over one snapshot of a service's nodes.
//
// A Strategy value carries state from one snapshot to the next (the
// round-robin position, the sticky choice), so a balancer keeps one Strategy
// and calls Picker with each new snapshot when membership changes. Picker
// copies what it keeps of nodes, so the caller may reuse the slice and the
// nodes' Data afterwards. Of several nodes with the same ID, the first one
// is kept. Picker is safe for concurrent use. A Balancer calls it on its own
// goroutine; a nil Picker picks nothing.
type Strategy interface {
	Picker(nodes []Node) Picker
}

// RoundRobin returns a Strategy that hands out the nodes in turn, in order of
// their IDs: over k*N picks from N nodes each node is picked exactly k times,
// also when the picks come from many goroutines. Its position is shared by
// all the Pickers it builds, so a new snapshot continues the rotation instead
// of starting again at the first node.
func RoundRobin() Strategy { return &roundRobin{next: new(atomic.Uint64)} }

// Random returns a Strategy that picks each node with equal probability,
// independently on every Pick, from math/rand/v2's lock-free generator.
func Random() Strategy { return random{source: rand.Uint64} }

// ConsistentHash returns a Strategy that maps each key to a node by
// consistent hashing, so a key keeps its node while the set is unchanged and
// few keys move when it changes.
//
// It is a Ketama-style ring: every node owns ringPoints points on a 64-bit
// ring, placed by a hash of its ID, and a key belongs to the first point at
// or after the hash of the key (FNV-1a with a murmur3 finalizer). The mapping
// depends only on the IDs in the set and the key, so it is the same in every
// snapshot and every process that holds the same nodes, whatever their
// order. When one of N nodes leaves, only its keys move (about 1/N of them),
// each to the next point on the ring; when a node joins, only the keys it
// now owns move, to it. A lookup table over the ring makes Pick take near
// constant time, whatever the number of nodes; building a Picker takes time
// and memory linear in the number of nodes, about 4 KB per node.
func ConsistentHash() Strategy { return consistentHash{} }

// Sticky returns a Strategy whose Pickers return the same node on every Pick
// for as long as that node is in the snapshots it is given. When a snapshot
// no longer holds it (the node left, or a balancer dropped it as failing),
// Sticky picks another node at random and sticks to that one. After an
// empty snapshot it picks afresh.
func Sticky() Strategy { return &sticky{} }

// emptyPicker is the Picker over an empty set.
type emptyPicker struct{}

func (emptyPicker) Pick(string) (Node, bool) { return Node{}, false }

// snapshot returns a copy of nodes sorted by ID, one node per ID (the first
// given), with Data copied so that the caller may reuse its buffers.
func snapshot(nodes []Node) []Node {
	if len(nodes) == 0 {
		return nil
	}
	s := slices.Clone(nodes)
	slices.SortStableFunc(s, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	s = slices.CompactFunc(s, func(a, b Node) bool { return a.ID == b.ID })
	size := 0
	for _, n := range s {
		size += len(n.Data)
	}
	buf := make([]byte, 0, size)
	for i, n := range s {
		if n.Data == nil {
			continue
		}
		start := len(buf)
		buf = append(buf, n.Data...)
		s[i].Data = buf[start:len(buf):len(buf)] // an append by a user cannot spill into the next node's data
	}
	return slices.Clip(s)
}

// roundRobin is the Strategy of RoundRobin.
type roundRobin struct{ next *atomic.Uint64 }

func (r *roundRobin) Picker(nodes []Node) Picker {
	s := snapshot(nodes)
	if len(s) == 0 {
		return emptyPicker{}
	}
	return &roundRobinPicker{nodes: s, n: uint64(len(s)), next: r.next}
}

type roundRobinPicker struct {
	nodes []Node
	n     uint64
	next  *atomic.Uint64
}

func (p *roundRobinPicker) Pick(string) (Node, bool) {
	return p.nodes[(p.next.Add(1)-1)%p.n], true
}

// random is the Strategy of Random. source is its source of randomness,
// replaced by a seeded one in tests.
type random struct{ source func() uint64 }

func (r random) Picker(nodes []Node) Picker {
	s := snapshot(nodes)
	if len(s) == 0 {
		return emptyPicker{}
	}
	return &randomPicker{nodes: s, n: uint64(len(s)), source: r.source}
}

type randomPicker struct {
	nodes  []Node
	n      uint64
	source func() uint64
}

func (p *randomPicker) Pick(string) (Node, bool) {
	// Lemire's multiply-shift: the bias, n/2^64, is far below anything measurable.
	hi, _ := bits.Mul64(p.source(), p.n)
	return p.nodes[hi], true
}

// sticky is the Strategy of Sticky: id is the node its last Picker returns.
type sticky struct {
	mu  sync.Mutex
	id  string
	set bool
}

func (st *sticky) Picker(nodes []Node) Picker {
	s := snapshot(nodes)
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(s) == 0 {
		st.set = false
		return emptyPicker{}
	}
	i, found := 0, false
	if st.set {
		i, found = slices.BinarySearchFunc(s, st.id, func(n Node, id string) int { return cmp.Compare(n.ID, id) })
	}
	if !found {
		// At random, so that many clients that lose the same node do not all
		// move to the same one.
		i = rand.IntN(len(s))
		st.id, st.set = s[i].ID, true
	}
	return &stickyPicker{node: s[i]}
}

type stickyPicker struct{ node Node }

func (p *stickyPicker) Pick(string) (Node, bool) { return p.node, true }

// ringPoints is how many points each node owns on a consistent hash ring.
// More points spread keys more evenly (the spread of a node's share is about
// 1/sqrt(ringPoints)) at the cost of memory and build time.
const ringPoints = 256

// consistentHash is the Strategy of ConsistentHash; it keeps no state.
type consistentHash struct{}

func (consistentHash) Picker(nodes []Node) Picker {
	s := snapshot(nodes)
	if len(s) == 0 {
		return emptyPicker{}
	}
	return newRing(s, ringPoints)
}

// ring is a consistent hash ring over nodes, which are sorted by ID.
// points[i], sorted, belongs to nodes[owners[i]]. table[b] is the index of
// the first point in bucket b or after it, where the bucket of a hash is its
// top bits (hash >> shift).
type ring struct {
	nodes  []Node
	points []uint64
	owners []uint32
	table  []uint32
	shift  uint
}

func newRing(nodes []Node, perNode int) *ring {
	total := len(nodes) * perNode
	// About one bucket per point, so a lookup scans one or two points.
	b := bits.Len(uint(total - 1))
	r := &ring{
		nodes:  nodes,
		points: make([]uint64, total),
		owners: make([]uint32, total),
		table:  make([]uint32, 1<<b),
		shift:  uint(64 - b),
	}
	// Each node's points are a splitmix64 sequence seeded by its ID's hash:
	// independent of the other nodes, so a node's arrival or departure moves
	// no other node's points.
	each := func(f func(owner uint32, h uint64)) {
		for i, n := range nodes {
			state := hashString(n.ID)
			for range perNode {
				state += 0x9e3779b97f4a7c15
				f(uint32(i), mix64(state))
			}
		}
	}
	// A counting sort by bucket, which leaves table[b] at the end of
	// bucket b, then an insertion sort within each bucket: linear time, as
	// the points are uniform. Both are stable, so the rare points of equal
	// hash stay in the order of their nodes' IDs, whatever the input order.
	each(func(_ uint32, h uint64) { r.table[h>>r.shift]++ })
	sum := uint32(0)
	for i, c := range r.table {
		r.table[i] = sum
		sum += c
	}
	each(func(owner uint32, h uint64) {
		i := &r.table[h>>r.shift]
		r.points[*i], r.owners[*i] = h, owner
		*i++
	})
	copy(r.table[1:], r.table)
	r.table[0] = 0
	for bucket, lo := range r.table {
		hi := uint32(total)
		if bucket+1 < len(r.table) {
			hi = r.table[bucket+1]
		}
		for i := lo + 1; i < hi; i++ {
			for j := i; j > lo && r.points[j] < r.points[j-1]; j-- {
				r.points[j], r.points[j-1] = r.points[j-1], r.points[j]
				r.owners[j], r.owners[j-1] = r.owners[j-1], r.owners[j]
			}
		}
	}
	return r
}

func (r *ring) Pick(key string) (Node, bool) {
	h := mix64(hashString(key))
	i := int(r.table[h>>r.shift])
	for i < len(r.points) && r.points[i] < h {
		i++
	}
	if i == len(r.points) {
		i = 0 // past the last point: the ring wraps to the first
	}
	return r.nodes[r.owners[i]], true
}

// hashString is 64-bit FNV-1a: stable across processes and versions, unlike
// hash/maphash, so every client maps a key to the same node.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is murmur3's 64-bit finalizer: it spreads FNV's weak high bits over
// the whole ring.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Defaults of the down-node policy, as in Apache Curator's
// DownInstancePolicy: two errors within 30 s exclude a node for 30 s.
const (
	defaultDownThreshold = 2
	defaultDownWindow    = 30 * time.Second
	defaultDownDuration  = 30 * time.Second
)
