package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// meterT returns a manual reader and an SDK provider that feeds it, shut
// down when t ends.
func meterT(t testing.TB) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return r, mp
}

// point is one data point as a test reads it: the value of a sum or gauge,
// or the count and sum of a histogram.
type point struct {
	value float64
	count uint64
}

// read collects r and returns the point of metric name whose attributes
// include attrs, and whether there is one.
func read(t testing.TB, r *sdkmetric.ManualReader, name string, attrs ...attribute.KeyValue) (point, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	has := func(set attribute.Set) bool {
		for _, kv := range attrs {
			if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes) {
						return point{value: float64(p.Value)}, true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes) {
						return point{value: float64(p.Value)}, true
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes) {
						return point{value: p.Sum, count: p.Count}, true
					}
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", name, m.Data)
			}
		}
	}
	return point{}, false
}

// want fails t unless metric name's point with attrs has value v (for a
// histogram: count v).
func want(t testing.TB, r *sdkmetric.ManualReader, name string, v float64, attrs ...attribute.KeyValue) {
	t.Helper()
	p, ok := read(t, r, name, attrs...)
	got := p.value
	if p.count > 0 {
		got = float64(p.count)
	}
	if !ok || got != v {
		t.Errorf("%s%v = %v (found %v), want %v", name, attrs, got, ok, v)
	}
}

// awaitMetric polls until metric name's point with attrs has value v: a
// value set by a goroutine after the event the test can see.
func awaitMetric(t testing.TB, r *sdkmetric.ManualReader, name string, v float64, attrs ...attribute.KeyValue) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, ok := read(t, r, name, attrs...); ok && p.value == v {
			return
		}
		if time.Now().After(deadline) {
			want(t, r, name, v, attrs...)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMetricFailover(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	r, mp := meterT(t)
	ctx := testCtx(t)
	const path = "/election"
	a := connect(t, root, WithMeterProvider(mp))
	b := connect(t, root, WithMeterProvider(mp))
	la, err := a.Elect(ctx, path, WithID("a"))
	if err != nil {
		t.Fatal(err)
	}
	lead := awaitLeadership(t, la, func(l Leadership) bool { return l.IsLeader })
	lb, err := b.Elect(ctx, path, WithID("b"))
	if err != nil {
		t.Fatal(err)
	}
	awaitLeadership(t, lb, func(l Leadership) bool { return l.Leader == "a" })
	el, idA, idB := attrElection.String(path), attrParticipant.String("a"), attrParticipant.String("b")
	want(t, r, "lighthouse.election.leader", 1, el, idA)
	want(t, r, "lighthouse.election.leader", 0, el, idB)
	want(t, r, "lighthouse.election.changes", 1, el, idA)

	lead.Release()
	awaitLeadership(t, lb, func(l Leadership) bool { return l.IsLeader })
	awaitLeadership(t, la, func(l Leadership) bool { return !l.IsLeader && l.Leader == "b" })
	want(t, r, "lighthouse.election.leader", 0, el, idA)
	want(t, r, "lighthouse.election.leader", 1, el, idB)
	want(t, r, "lighthouse.election.changes", 1, el, idA)
	want(t, r, "lighthouse.election.changes", 1, el, idB)
	// a from its release to reading b's ID; b from its predecessor's
	// deletion to leading.
	want(t, r, "lighthouse.election.handover", 1, el, idA)
	want(t, r, "lighthouse.election.handover", 1, el, idB)

	// The wire: requests by operation and result, watch notifications.
	if p, _ := read(t, r, "lighthouse.op.duration", attrOp.String("create"), attrResult.String("ok")); p.count < 2 {
		t.Errorf("creates recorded: %d, want at least 2 (one per participant)", p.count)
	}
	if p, _ := read(t, r, "lighthouse.watch.fired", attrWatch.String("node_deleted")); p.value < 1 {
		t.Errorf("node_deleted notifications: %v, want at least 1", p.value)
	}
	if _, _, err := a.Get(ctx, "/missing"); !errors.Is(err, ErrNoNode) {
		t.Fatal(err)
	}
	want(t, r, "lighthouse.op.duration", 1, attrOp.String("get_data"), attrResult.String("no_node"))
}

func TestMetricReconnectAndExpiry(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	r, mp := meterT(t)
	s := connect(t, proxy.Addr()+zktest.Chroot(root), WithMeterProvider(mp), WithSessionTimeout(4*time.Second))
	events := s.Events(testCtx(t))
	state := func(st string) attribute.KeyValue { return attrState.String(st) }
	want(t, r, "lighthouse.session.state_changes", 1, state("connected"))
	want(t, r, "lighthouse.session.state", 1, state("connected"))

	proxy.Cut()
	awaitEvent(t, events, EventSuspended, 10*time.Second)
	want(t, r, "lighthouse.session.state", 1, state("suspended"))
	want(t, r, "lighthouse.session.state", 0, state("connected"))
	proxy.Heal()
	awaitEvent(t, events, EventReconnected, 10*time.Second)
	want(t, r, "lighthouse.session.state_changes", 1, state("suspended"))
	want(t, r, "lighthouse.session.state_changes", 1, state("reconnected"))
	want(t, r, "lighthouse.session.state", 1, state("connected"))
	host := attrServer.String("127.0.0.1")
	if p, _ := read(t, r, "lighthouse.session.connects", host, attrResult.String("ok")); p.value != 2 {
		t.Errorf("successful attempts: %v, want 2", p.value)
	}

	if err := proxy.Expire(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventExpired, 10*time.Second)
	awaitEvent(t, events, EventConnected, 10*time.Second)
	want(t, r, "lighthouse.session.state_changes", 1, state("expired"))
	want(t, r, "lighthouse.session.state_changes", 2, state("connected"))
	want(t, r, "lighthouse.session.state", 1, state("connected"))

	s.Close()
	if _, ok := read(t, r, "lighthouse.session.state", state("connected")); ok {
		t.Error("a closed session still reports its state")
	}
	want(t, r, "lighthouse.session.state_changes", 1, state("closed"))
}

func TestMetricMembers(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	r, mp := meterT(t)
	ctx := testCtx(t)
	s := connect(t, root, WithMeterProvider(mp))
	peer := connect(t, root)
	members, err := s.Members(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	await := func(ids ...string) {
		t.Helper()
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		for {
			select {
			case nodes := <-members:
				got := make([]string, len(nodes))
				for i, n := range nodes {
					got[i] = n.ID
				}
				if slices.Equal(got, ids) {
					return
				}
			case <-timer.C:
				t.Fatalf("members never became %v", ids)
			}
		}
	}
	svc := attrService.String("svc")
	await()
	want(t, r, "lighthouse.members", 0, svc)
	ra, err := peer.Register(ctx, "svc", Node{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	await("a")
	want(t, r, "lighthouse.members", 1, svc)
	if _, err := peer.Register(ctx, "svc", Node{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	await("a", "b")
	want(t, r, "lighthouse.members", 2, svc)
	ra.Close()
	await("b")
	want(t, r, "lighthouse.members", 1, svc)
	want(t, r, "lighthouse.members.changes", 3, svc)
}

// TestMetricGaugesEndWithTheirRecipe: a participant or a member set that
// has ended is no longer reported, rather than left at its last value.
func TestMetricGaugesEndWithTheirRecipe(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	r, mp := meterT(t)
	s := connect(t, root, WithMeterProvider(mp))
	ctx, cancel := context.WithCancel(testCtx(t))
	leaderships, err := s.Elect(ctx, "/election", WithID("a"))
	if err != nil {
		t.Fatal(err)
	}
	awaitLeadership(t, leaderships, func(l Leadership) bool { return l.IsLeader })
	if _, err := s.Register(testCtx(t), "svc", Node{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	members, err := s.Members(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	for nodes := range members {
		if len(nodes) == 1 {
			break
		}
	}
	b, err := s.Balancer(testCtx(t), "svc", RoundRobin())
	if err != nil {
		t.Fatal(err)
	}
	el, id, svc := attrElection.String("/election"), attrParticipant.String("a"), attrService.String("svc")
	want(t, r, "lighthouse.election.leader", 1, el, id)
	want(t, r, "lighthouse.members", 1, svc)

	cancel()
	for range leaderships {
	}
	for range members {
	}
	if p, ok := read(t, r, "lighthouse.election.leader", el, id); ok {
		t.Errorf("a participant that left is still reported: leader = %v", p.value)
	}
	want(t, r, "lighthouse.members", 1, svc) // the balancer's
	b.Close()
	if p, ok := read(t, r, "lighthouse.members", svc); ok {
		t.Errorf("a service nobody follows is still reported: members = %v", p.value)
	}
}

func TestMetricBalancer(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	r, mp := meterT(t)
	ctx := testCtx(t)
	s := connect(t, root, WithMeterProvider(mp))
	for _, id := range []string{"a", "b"} {
		if _, err := s.Register(ctx, "svc", Node{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Balancer(ctx, "svc", RoundRobin(), WithDownPolicy(1, time.Minute, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	svc := attrService.String("svc")
	if allocs := testing.AllocsPerRun(100, func() { b.Pick("") }); allocs != 0 {
		t.Errorf("Pick with metrics allocates %v times", allocs)
	}
	picks := float64(101) // AllocsPerRun runs once more to warm up
	want(t, r, "lighthouse.balancer.picks", picks, svc)
	want(t, r, "lighthouse.balancer.excluded", 0, svc)
	want(t, r, "lighthouse.members", 2, svc)

	b.ReportError("a")
	want(t, r, "lighthouse.balancer.errors", 1, svc)
	awaitMetric(t, r, "lighthouse.balancer.excluded", 1, svc)
	for range 4 {
		if n, ok := b.Pick(""); !ok || n.ID != "b" {
			t.Fatalf("Pick after a was reported: %v %v", n.ID, ok)
		}
	}
	want(t, r, "lighthouse.balancer.picks", picks+4, svc)

	b.Close()
	if _, ok := read(t, r, "lighthouse.balancer.picks", svc); ok {
		t.Error("a closed balancer is still observed")
	}
}

func TestMetricNilMeterProvider(t *testing.T) {
	_, err := Connect(context.Background(), "127.0.0.1:1", WithMeterProvider(nil))
	if !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("Connect with a nil meter provider: %v, want ErrInvalidOption", err)
	}
}

// TestMetricResultKinds: lighthouse.result takes its values from a
// bounded set, whatever the error.
func TestMetricResultKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{zkclient.ErrNoNode, "no_node"},
		{fmt.Errorf("multi: %w", zkclient.ErrBadVersion), "bad_version"},
		{zkclient.ErrSessionMoved, "connection_loss"},
		{zkclient.ErrClosed, "closed"},
		{zkclient.ErrQuotaExceeded, "other"},
		{context.Canceled, "canceled"},
		{errors.New("something else"), "other"},
	} {
		if got := results[resultOf(tc.err)]; got != tc.want {
			t.Errorf("resultOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
