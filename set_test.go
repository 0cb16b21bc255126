package lighthouse

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkSet compares s with want (sorted) through every accessor, and checks
// the chunks' invariants.
func checkSet(t *testing.T, s MemberSet, want []Node) {
	t.Helper()
	if s.Len() != len(want) {
		t.Fatalf("Len %d, want %d", s.Len(), len(want))
	}
	if got := s.Nodes(); !slices.EqualFunc(got, want, sameNode) {
		t.Fatalf("Nodes %v, want %v", ids(got), ids(want))
	}
	i := 0
	for n := range s.All() {
		if !sameNode(n, want[i]) {
			t.Fatalf("All[%d] = %s, want %s", i, n.ID, want[i].ID)
		}
		i++
	}
	for i, w := range want {
		if n := s.At(i); !sameNode(n, w) {
			t.Fatalf("At(%d) = %s, want %s", i, n.ID, w.ID)
		}
		if n, ok := s.Get(w.ID); !ok || !sameNode(n, w) {
			t.Fatalf("Get(%s) = %v, %v", w.ID, n, ok)
		}
	}
	if _, ok := s.Get("absent"); ok {
		t.Fatal("Get found an absent member")
	}
	total := 0
	for c, chunk := range s.chunks {
		if len(chunk) == 0 || len(chunk) > maxChunk || len(s.chunks) > 1 && len(chunk) < minChunk {
			t.Fatalf("chunk %d of %d holds %d members", c, len(s.chunks), len(chunk))
		}
		total += len(chunk)
		if s.ends[c] != total {
			t.Fatalf("ends[%d] = %d, want %d", c, s.ends[c], total)
		}
	}
}

func sameNode(a, b Node) bool { return a.ID == b.ID && string(a.Data) == string(b.Data) }

// Random joins, updates and leaves against a sorted slice; every set made
// along the way is kept and checked again at the end, unchanged.
func TestMemberSetAgainstASlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s MemberSet
	var want []Node
	type kept struct {
		s    MemberSet
		want []Node
	}
	var history []kept
	for step := range 20000 {
		id := fmt.Sprintf("m%04d", rng.IntN(1500))
		i, found := slices.BinarySearchFunc(want, id, byID)
		if rng.IntN(3) == 0 { // leave
			s = s.without(id)
			if found {
				want = slices.Delete(slices.Clone(want), i, i+1)
			}
		} else { // join or update
			n := Node{ID: id, Data: []byte(fmt.Sprint(step))}
			s = s.with(n)
			want = slices.Clone(want)
			if found {
				want[i] = n
			} else {
				want = slices.Insert(want, i, n)
			}
		}
		if step%97 == 0 {
			checkSet(t, s, want)
			history = append(history, kept{s, want})
		}
	}
	for _, h := range history {
		checkSet(t, h.s, h.want)
	}
	// Everyone leaves.
	for _, n := range want {
		s = s.without(n.ID)
	}
	checkSet(t, s, nil)
	checkSet(t, MemberSet{}, nil)
}

func TestMemberSetAtOutOfRange(t *testing.T) {
	s := MemberSet{}.with(Node{ID: "a"})
	for _, i := range []int{-1, 1} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Fatalf("At(%d) did not panic", i)
				}
			}()
			s.At(i)
		}()
	}
}

// A change to a large set costs a chunk, not the set.
func TestMemberSetChangeIsSmall(t *testing.T) {
	var s MemberSet
	for i := range 10000 {
		s = s.with(Node{ID: fmt.Sprintf("m%05d", i)})
	}
	n := Node{ID: "m05000x"}
	if a := testing.AllocsPerRun(100, func() { _ = s.with(n).without(n.ID) }); a > 8 {
		t.Fatalf("%v allocations for a join and a leave", a)
	}
}
