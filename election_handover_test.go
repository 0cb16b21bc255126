package lighthouse

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// electionCounts sums the election counters of some sessions.
type electionCounts struct{ pred, gp, reads, readGrants int64 }

func countsOf(sessions ...*Session) (c electionCounts) {
	for _, s := range sessions {
		c.pred += s.stats.predWatches.Load()
		c.gp += s.stats.gpWatches.Load()
		c.reads += s.stats.childReads.Load()
		c.readGrants += s.stats.readGrants.Load()
	}
	return c
}

func (c electionCounts) sub(d electionCounts) electionCounts {
	return electionCounts{c.pred - d.pred, c.gp - d.gp, c.reads - d.reads, c.readGrants - d.readGrants}
}

// In a steady rotation (the leader leaves, and joins again at the back),
// every new leader leads from its predecessor's deletion alone: no children
// read between the deletion and the grant, and at most two participants
// woken per change.
func TestElectSteadyRotationLeadsWithoutReads(t *testing.T) {
	for _, n := range []int{3, 4, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			zkc := zktest.Shared(t)
			root := zkc.Root(t)
			r := newReferee(t)
			var queue []*participant
			var sessions []*Session
			for i := range n {
				p := join(t, r, root, nil, "/leader", fmt.Sprintf("p%d", i))
				queue = append(queue, p)
				sessions = append(sessions, p.sess)
			}
			r.awaitGrant("p0", 10*time.Second)
			var reads int64
			for i := range 3 * n {
				before := countsOf(sessions...)
				leader := queue[0]
				leader.cancel()
				r.awaitGrant(queue[1].id, 10*time.Second)
				awaitClosed(t, leader.done, leader.id)
				queue = append(queue[1:], join(t, r, "", leader.sess, "/leader", fmt.Sprintf("p%d", n+i)))
				// The one after the new leader learns who leads, from its
				// grand-predecessor's deletion (or a read it costs, off the
				// path of this handover and of the next).
				r.await(queue[1].id, func(l Leadership) bool { return l.Leader == queue[0].id })
				d := countsOf(sessions...).sub(before)
				if d.readGrants != 0 {
					t.Fatalf("change %d: %s read the children before leading (%+v)", i, queue[0].id, d)
				}
				if d.pred+d.gp > 2 {
					t.Fatalf("change %d woke %d participants (%+v), want at most 2", i, d.pred+d.gp, d)
				}
				reads += d.reads - 1 // less the rejoin's own read
			}
			t.Logf("%d participants: %.2f children reads per change besides the rejoin's, none by a new leader", n, float64(reads)/float64(3*n))
		})
	}
}

// A follower whose grand-predecessor leaves while the leader stays learns
// nothing about the leader from it: when its predecessor then leaves too,
// it must not lead before the leader has gone.
func TestElectGrandPredecessorLeavesNotTheLeader(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	r := newReferee(t)
	var ps []*participant
	for i := range 4 {
		ps = append(ps, join(t, r, root, nil, "/leader", fmt.Sprintf("p%d", i)))
	}
	r.awaitGrant("p0", 10*time.Second)
	// p3 saw p0 p1 p2 before it: p1 is its grand-predecessor.
	ps[1].cancel()
	awaitClosed(t, ps[1].done, "p1")
	awaitQueue(t, ps[0].sess, "/leader", func(q []Participant) bool { return len(q) == 3 })
	ps[2].cancel()
	awaitClosed(t, ps[2].done, "p2")
	awaitQueue(t, ps[0].sess, "/leader", func(q []Participant) bool {
		return len(q) == 2 && q[0].ID == "p0" && q[1].ID == "p3"
	})
	r.await("p3", func(l Leadership) bool { return !l.IsLeader && l.Leader == "p0" })
	select {
	case id := <-r.grants:
		t.Fatalf("%s was elected while p0 leads", id)
	default:
	}
	ps[0].cancel()
	r.awaitGrant("p3", 10*time.Second)
}

// Nodes deleted together, adjacent or not, by another session or by their
// participants leaving at once: one leader at a time (the referee), and
// leadership passes in queue order.
func TestElectConcurrentDeletions(t *testing.T) {
	deleteNodes := func(t *testing.T, op *Session, names ...string) {
		t.Helper()
		var ops []TxnOp
		for _, n := range names {
			ops = append(ops, DeleteOp("/leader/"+n, AnyVersion))
		}
		if _, err := op.Txn(testCtx(t), ops...); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		act  func(t *testing.T, ps []*participant, op *Session, nodes []string)
		// next: who leads after p0, in turn ("" for either of two that
		// joined again at once); maybe: who may lead once on the way.
		next  []string
		maybe []string
	}{
		{
			name: "grand-predecessor and predecessor of a follower, by another session",
			act: func(t *testing.T, ps []*participant, op *Session, nodes []string) {
				deleteNodes(t, op, nodes[1], nodes[2])
			},
			next: []string{"p3", "p4", "p5", "", ""},
		},
		{
			name: "a middle node, by another session",
			act: func(t *testing.T, ps []*participant, op *Session, nodes []string) {
				deleteNodes(t, op, nodes[2])
			},
			next: []string{"p1", "p3", "p4", "p5", "p2"},
		},
		{
			name: "two followers apart leave at once",
			act: func(t *testing.T, ps []*participant, op *Session, nodes []string) {
				ps[1].cancel()
				ps[3].cancel()
			},
			next: []string{"p2", "p4", "p5"},
		},
		{
			name: "the leader and its successor leave at once",
			act: func(t *testing.T, ps []*participant, op *Session, nodes []string) {
				ps[0].cancel()
				ps[1].cancel()
			},
			next:  []string{"p2", "p3", "p4", "p5"},
			maybe: []string{"p1"},
		},
		{
			name: "the leader and a node two behind it leave at once",
			act: func(t *testing.T, ps []*participant, op *Session, nodes []string) {
				ps[0].cancel()
				ps[2].cancel()
			},
			next: []string{"p1", "p3", "p4", "p5"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zkc := zktest.Shared(t)
			root := zkc.Root(t)
			op := connect(t, root)
			r := newReferee(t)
			byID := map[string]*participant{}
			var ps []*participant
			for i := range 6 {
				p := join(t, r, root, nil, "/leader", fmt.Sprintf("p%d", i))
				ps = append(ps, p)
				byID[p.id] = p
			}
			r.awaitGrant("p0", 10*time.Second)
			q, err := op.Participants(testCtx(t), "/leader")
			if err != nil || len(q) != 6 {
				t.Fatalf("participants: %+v %v", q, err)
			}
			var nodes []string
			for _, p := range q {
				nodes = append(nodes, p.Node)
			}
			tc.act(t, ps, op, nodes)
			leader := "p0"
			maybe := slices.Clone(tc.maybe)
			for _, want := range tc.next {
				byID[leader].cancel()
				for {
					leader = grantWithin(t, r, 10*time.Second)
					if k := slices.Index(maybe, leader); k >= 0 && leader != want {
						maybe = slices.Delete(maybe, k, k+1)
						byID[leader].cancel() // it leaves: it led on the way
						continue
					}
					break
				}
				if want != "" && leader != want {
					t.Fatalf("%s was elected, want %s", leader, want)
				}
			}
		})
	}
}

// grantWithin waits for the next grant and returns who got it.
func grantWithin(t *testing.T, r *referee, d time.Duration) string {
	t.Helper()
	select {
	case id := <-r.grants:
		return id
	case <-time.After(d):
		t.Fatalf("nobody elected within %v", d)
		return ""
	}
}

// awaitTrue polls ok, with a deadline, for a condition no event announces.
func awaitTrue(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
