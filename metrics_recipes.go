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
	gauge   []metric.RecordOption
	add     []metric.AddOption
	leading bool
	since   time.Time // when the leader was learned gone; zero while one is known
}

func (em *electionMetrics) init(e *election) {
	if em.m != nil {
		return
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrElection.String(e.path), attrParticipant.String(e.id)))
	em.m, em.gauge, em.add = e.s.metrics, []metric.RecordOption{set}, []metric.AddOption{set}
}

// published records a Leadership the participant publishes.
func (em *electionMetrics) published(e *election, l Leadership) {
	em.init(e)
	ctx := context.Background()
	v := int64(0)
	if l.IsLeader {
		v = 1
		if !em.leading {
			em.m.electionChanges.Add(ctx, 1, em.add...)
		}
	}
	em.leading = l.IsLeader
	em.m.leader.Record(ctx, v, em.gauge...)
	switch {
	case l.IsLeader || l.Leader != "":
		if !em.since.IsZero() {
			em.m.handover.Record(ctx, time.Since(em.since).Seconds(), em.gauge...)
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
// Members or a Balancer) reads it. It belongs to the goroutine that owns the set.
type memberMetrics struct {
	m     *metrics
	gauge []metric.RecordOption
	add   []metric.AddOption
}

// synced records a read of the set: n members, changed since the last
// read, ready if there was a last read.
func (mm *memberMetrics) synced(f *memberSet, n int, changed, ready bool) {
	if !changed {
		return
	}
	if mm.m == nil {
		set := metric.WithAttributeSet(attribute.NewSet(attrService.String(serviceOf(f.path))))
		mm.m, mm.gauge, mm.add = f.s.metrics, []metric.RecordOption{set}, []metric.AddOption{set}
	}
	mm.m.members.Record(context.Background(), int64(n), mm.gauge...)
	if ready {
		mm.m.memberChanges.Add(context.Background(), 1, mm.add...)
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
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(m.picks, bm.picks.Load(), set)
		o.ObserveInt64(m.reported, bm.reported.Load(), set)
		o.ObserveInt64(m.excluded, bm.excluded.Load(), set)
		return nil
	}, m.picks, m.reported, m.excluded)
	if err != nil {
		return func() {}
	}
	return func() { reg.Unregister() }
}
