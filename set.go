package lighthouse

import (
	"iter"
	"slices"
	"strings"
)

// MemberSet is the members of a service at one moment, sorted by ID. It is
// immutable: keep it, share it between goroutines, compare it with a later
// one. Its Nodes' Data is shared with other readers: do not modify it. The
// zero MemberSet is empty.
//
// MemberSets delivers one per change. Each shares all but the changed part
// with the one before: the members are kept in sorted chunks of at most
// 128, and a change copies one chunk and the list of chunks, so its cost
// does not grow with the number of members the way a new slice's does
// (Nodes makes one).
type MemberSet struct {
	chunks [][]Node // each sorted and non-empty, in order
	ends   []int    // ends[i]: members in chunks[:i+1]
}

// Chunk sizes: a chunk splits above maxChunk and joins a neighbour below
// minChunk, so that deletions cannot leave many tiny chunks.
const (
	maxChunk = 128
	minChunk = 32
)

// Len returns the number of members.
func (s MemberSet) Len() int {
	if len(s.ends) == 0 {
		return 0
	}
	return s.ends[len(s.ends)-1]
}

// At returns the i-th member in ID order. It panics if i is out of range,
// as indexing a slice does.
func (s MemberSet) At(i int) Node {
	if i < 0 || i >= s.Len() {
		panic("lighthouse: MemberSet.At: index out of range")
	}
	c, _ := slices.BinarySearch(s.ends, i+1) // the first chunk ending past i
	start := 0
	if c > 0 {
		start = s.ends[c-1]
	}
	return s.chunks[c][i-start]
}

// Get returns the member with the given ID.
func (s MemberSet) Get(id string) (Node, bool) {
	c, i, found := s.find(id)
	if !found {
		return Node{}, false
	}
	return s.chunks[c][i], true
}

// All yields the members in ID order.
func (s MemberSet) All() iter.Seq[Node] {
	return func(yield func(Node) bool) {
		for _, chunk := range s.chunks {
			for _, n := range chunk {
				if !yield(n) {
					return
				}
			}
		}
	}
}

// Nodes returns the members in a new slice, sorted by ID.
func (s MemberSet) Nodes() []Node {
	out := make([]Node, 0, s.Len())
	for _, chunk := range s.chunks {
		out = append(out, chunk...)
	}
	return out
}

// find returns the chunk that holds id or would, and its place there.
func (s MemberSet) find(id string) (chunk, i int, found bool) {
	chunk, _ = slices.BinarySearchFunc(s.chunks, id, func(c []Node, id string) int {
		return strings.Compare(c[len(c)-1].ID, id)
	})
	if chunk == len(s.chunks) {
		if chunk == 0 {
			return 0, 0, false
		}
		chunk-- // after every member: the end of the last chunk
		return chunk, len(s.chunks[chunk]), false
	}
	i, found = slices.BinarySearchFunc(s.chunks[chunk], id, byID)
	return chunk, i, found
}

// with returns the set with n added, or replacing the member with its ID.
func (s MemberSet) with(n Node) MemberSet {
	if len(s.chunks) == 0 {
		return MemberSet{chunks: [][]Node{{n}}, ends: []int{1}}
	}
	c, i, found := s.find(n.ID)
	old := s.chunks[c]
	var chunk []Node
	if found {
		chunk = slices.Clone(old)
		chunk[i] = n
	} else {
		chunk = make([]Node, 0, len(old)+1)
		chunk = append(append(append(chunk, old[:i]...), n), old[i:]...)
	}
	if len(chunk) > maxChunk {
		half := len(chunk) / 2
		return s.replace(c, c+1, chunk[:half:half], chunk[half:])
	}
	return s.replace(c, c+1, chunk)
}

// without returns the set without the member with id.
func (s MemberSet) without(id string) MemberSet {
	c, i, found := s.find(id)
	if !found {
		return s
	}
	old := s.chunks[c]
	chunk := make([]Node, 0, len(old)-1)
	chunk = append(append(chunk, old[:i]...), old[i+1:]...)
	if len(chunk) >= minChunk || len(s.chunks) == 1 {
		if len(chunk) == 0 {
			return MemberSet{}
		}
		return s.replace(c, c+1, chunk)
	}
	// Too small: join a neighbour, splitting again if that is too big.
	lo, hi := c, c+1
	if c+1 < len(s.chunks) {
		chunk, hi = append(chunk, s.chunks[c+1]...), c+2
	} else {
		chunk, lo = append(slices.Clone(s.chunks[c-1]), chunk...), c-1
	}
	if len(chunk) > maxChunk {
		half := len(chunk) / 2
		return s.replace(lo, hi, chunk[:half:half], chunk[half:])
	}
	return s.replace(lo, hi, chunk)
}

// replace returns the set with chunks[lo:hi] replaced by with (non-empty
// chunks), in new slices of chunks and ends: the old set is not touched.
func (s MemberSet) replace(lo, hi int, with ...[]Node) MemberSet {
	chunks := make([][]Node, 0, len(s.chunks)-(hi-lo)+len(with))
	chunks = append(append(append(chunks, s.chunks[:lo]...), with...), s.chunks[hi:]...)
	ends := make([]int, len(chunks))
	total := 0
	if lo > 0 {
		total = s.ends[lo-1]
		copy(ends, s.ends[:lo])
	}
	for i := lo; i < len(chunks); i++ {
		total += len(chunks[i])
		ends[i] = total
	}
	return MemberSet{chunks: chunks, ends: ends}
}
