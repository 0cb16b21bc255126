package lighthouse

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// electionMetrics records one participant's view of its election. It
// belongs to the participant's goroutine.
//
// lighthouse.election.handover is measured by each participant on its own
// clock: it starts when the participant learns that the election's leader
// is gone (its own leadership ended: Release, connection loss, expiry,
// node deleted; or the node of its predecessor, which led, was deleted) and
// stops when it next knows of a leader (it leads, or reads who does). A
// participant further back in the queue watches only its predecessor and
// sees no handover. One that leaves the election while no leader is known
// records nothing.
type electionMetrics struct {
	m       *metrics
	hist    []metric.RecordOption
	add     []metric.AddOption
	leading atomic.Bool // read by lighthouse.election.leader's callback
	since   time.Time   // when the leader was learned gone; zero while one is known
	stop    func()      // ends the reporting of lighthouse.election.leader
}

func (em *electionMetrics) init(e *election) {
	if em.m != nil {
		return
	}
	set := attribute.NewSet(attrElection.String(e.path), attrParticipant.String(e.id))
	em.m, em.hist, em.add = e.s.metrics, []metric.RecordOption{metric.WithAttributeSet(set)}, []metric.AddOption{metric.WithAttributeSet(set)}
	em.stop = em.m.observe(func(o metric.Observer) {
		v := int64(0)
		if em.leading.Load() {
			v = 1
		}
		o.ObserveInt64(em.m.leader, v, metric.WithAttributeSet(set))
	}, em.m.leader)
}

// end stops reporting the participant, which has left the election.
func (em *electionMetrics) end() {
	if em.stop != nil {
		em.stop()
	}
}

// published records a Leadership the participant publishes.
func (em *electionMetrics) published(e *election, l Leadership) {
	em.init(e)
	ctx := context.Background()
	if l.IsLeader && !em.leading.Load() {
		em.m.electionChanges.Add(ctx, 1, em.add...)
	}
	em.leading.Store(l.IsLeader)
	switch {
	case l.IsLeader || l.Leader != "":
		if !em.since.IsZero() {
			em.m.handover.Record(ctx, time.Since(em.since).Seconds(), em.hist...)
			em.since = time.Time{}
		}
	case em.since.IsZero():
		em.since = time.Now()
	}
}

// predecessorGone notes that the watch on the predecessor fired: if it led
// and was deleted, the handover starts.
func (em *electionMetrics) predecessorGone(e *election, ev zkclient.WatchEvent) {
	if ev.Type == zkclient.EventNodeDeleted && e.predLead && em.since.IsZero() {
		em.since = time.Now()
	}
}

// memberMetrics records the member set of one service as a memberSet (of a
// Members or a Balancer) reads it. It belongs to the goroutine that owns the
// set, but for n, which lighthouse.members' callback reads.
type memberMetrics struct {
	m    *metrics
	add  []metric.AddOption
	n    atomic.Int64
	stop func() // ends the reporting of lighthouse.members
}

// synced records a read of the set: n members, changed since the last
// read, ready if there was a last read.
func (mm *memberMetrics) synced(f *memberSet, n int, changed, ready bool) {
	if !changed {
		return
	}
	mm.n.Store(int64(n))
	if mm.m == nil {
		set := metric.WithAttributeSet(attribute.NewSet(attrService.String(serviceOf(f.path))))
		mm.m, mm.add = f.s.metrics, []metric.AddOption{set}
		mm.stop = mm.m.observe(func(o metric.Observer) { o.ObserveInt64(mm.m.members, mm.n.Load(), set) }, mm.m.members)
	}
	if ready {
		mm.m.memberChanges.Add(context.Background(), 1, mm.add...)
	}
}

// end stops reporting the set, which nobody follows any more.
func (mm *memberMetrics) end() {
	if mm.stop != nil {
		mm.stop()
	}
}

// serviceOf returns the service name of a service's path, its last segment.
func serviceOf(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

// balancerMetrics are a Balancer's counts, read by an observable
// instrument's callback, so that Pick pays one atomic add and nothing else.
type balancerMetrics struct {
	counting bool // false with a no-op provider: nobody reads picks
	_        [56]byte
	picks    atomic.Int64 // on a cache line of its own: Pick writes it from every goroutine
	_        [56]byte
	reported atomic.Int64
	excluded atomic.Int64
}

// observeBalancer reports bm under service for as long as the balancer's
// goroutine runs; call the function it returns when it ends.
func (m *metrics) observeBalancer(bm *balancerMetrics, service string) (stop func()) {
	set := metric.WithAttributeSet(attribute.NewSet(attrService.String(service)))
	return m.observe(func(o metric.Observer) {
		o.ObserveInt64(m.picks, bm.picks.Load(), set)
		o.ObserveInt64(m.reported, bm.reported.Load(), set)
		o.ObserveInt64(m.excluded, bm.excluded.Load(), set)
	}, m.picks, m.reported, m.excluded)
}

// observe has report called at each collection of instruments until the
// function it returns is called: a recipe's observable instruments are
// reported while it runs, and not left at their last value once it ends.
func (m *metrics) observe(report func(metric.Observer), instruments ...metric.Observable) (stop func()) {
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		report(o)
		return nil
	}, instruments...)
	if err != nil {
		return func() {}
	}
	return func() { reg.Unregister() }
}
