package zkclient

import "testing"

func TestFifoKeepsOrderAndReusesItsArray(t *testing.T) {
	var f fifo
	reqs := make([]*request, 200)
	for i := range reqs {
		reqs[i] = &request{xid: int32(i)}
	}
	// Never empty: push two, pop one, so the queue grows and moves.
	next, pushed := 0, 0
	for pushed < len(reqs) {
		f.push(reqs[pushed])
		pushed++
		if pushed < len(reqs) {
			f.push(reqs[pushed])
			pushed++
		}
		if r := f.front(); r != reqs[next] {
			t.Fatalf("front %v, want xid %d", r, next)
		}
		f.pop()
		next++
	}
	for ; next < len(reqs); next++ {
		if r := f.front(); r != reqs[next] {
			t.Fatalf("front %v, want xid %d", r, next)
		}
		f.pop()
	}
	if f.front() != nil {
		t.Fatal("empty queue has a front")
	}
	if cap(f.q) > 4*101+64 {
		t.Fatalf("array of %d for at most 101 queued", cap(f.q))
	}
	// Never empty, at a steady 10: the spent front is reclaimed.
	f = fifo{}
	for i := range 10 {
		f.push(reqs[i])
	}
	for i := range 100000 {
		f.push(reqs[i%len(reqs)])
		f.pop()
	}
	if cap(f.q) > 4*11+64 {
		t.Fatalf("array of %d for 10 queued", cap(f.q))
	}
	for f.front() != nil {
		f.pop()
	}
	if n := testing.AllocsPerRun(100, func() { f.push(reqs[0]); f.pop() }); n != 0 {
		t.Fatalf("one request at a time: %v allocations", n)
	}
}
