package lighthouse

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// A Session records its metrics through the OpenTelemetry metric API. Its
// instruments are made here, once per Session; recipes record through the
// small helpers in metrics_recipes.go, the client through its Hooks.

// MeterName is the name of the Meter a Session takes from its
// MeterProvider (the instrumentation scope of its metrics).
const MeterName = "github.com/lighthouse-zk/lighthouse"

// WithMeterProvider records the session's metrics through mp (default:
// otel.GetMeterProvider(), the global provider, which records nothing until
// the application installs an SDK). The instruments are created once, in
// Connect, under the meter MeterName. A nil mp is ErrInvalidOption.
//
// The instruments (the README's "Metrics" section tabulates them):
// lighthouse.session.state, lighthouse.session.state_changes and
// lighthouse.session.connects; lighthouse.op.duration (every ZooKeeper
// request, by operation and result) and lighthouse.watch.fired;
// lighthouse.election.leader, lighthouse.election.changes and
// lighthouse.election.handover, per election path and participant ID;
// lighthouse.members and lighthouse.members.changes per service; and
// lighthouse.balancer.picks, lighthouse.balancer.errors and
// lighthouse.balancer.excluded per service. A participant's, a followed
// service's and a balancer's series are reported only while the recipe
// runs, not left at their last value. Attribute values are bounded:
// operation names, result kinds, states, and the paths, service names and
// IDs the application chose, never node names with sequence numbers.
//
// The handover is measured by each participant on its own clock: from
// learning that the leader is gone (its own leadership ended, or the node
// of its predecessor, which led, was deleted) to knowing of a leader again
// (it leads, or has read who does). Balancer.Pick adds to an atomic counter
// that the SDK reads when it collects, so it stays lock-free and
// allocation-free; with a noop.MeterProvider it does not even count.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider, o.meterSet = mp, true }
}

// Attribute keys.
const (
	attrOp          = attribute.Key("lighthouse.operation")
	attrResult      = attribute.Key("lighthouse.result")
	attrState       = attribute.Key("lighthouse.session.state")
	attrWatch       = attribute.Key("lighthouse.watch.type")
	attrElection    = attribute.Key("lighthouse.election.path")
	attrParticipant = attribute.Key("lighthouse.participant.id")
	attrService     = attribute.Key("lighthouse.service.name")
	attrServer      = attribute.Key("server.address")
	attrPort        = attribute.Key("server.port")
)

// results are the values of lighthouse.result: "ok" or the kind of error.
var results = [...]string{"ok", "no_node", "node_exists", "bad_version", "not_empty", "no_auth",
	"connection_loss", "session_expired", "closed", "canceled", "deadline_exceeded", "other"}

const (
	resultOK = iota
	resultNoNode
	resultNodeExists
	resultBadVersion
	resultNotEmpty
	resultNoAuth
	resultConnectionLoss
	resultSessionExpired
	resultClosed
	resultCanceled
	resultDeadline
	resultOther
)

// resultOf returns the index in results of a client call's outcome.
func resultOf(err error) int {
	if err == nil {
		return resultOK
	}
	code, ok := err.(zkclient.Code)
	if !ok && !errors.As(err, &code) {
		switch {
		case errors.Is(err, zkclient.ErrClosed):
			return resultClosed
		case errors.Is(err, context.Canceled):
			return resultCanceled
		case errors.Is(err, context.DeadlineExceeded):
			return resultDeadline
		}
		return resultOther
	}
	switch code {
	case zkclient.ErrNoNode:
		return resultNoNode
	case zkclient.ErrNodeExists:
		return resultNodeExists
	case zkclient.ErrBadVersion:
		return resultBadVersion
	case zkclient.ErrNotEmpty:
		return resultNotEmpty
	case zkclient.ErrNoAuth:
		return resultNoAuth
	case zkclient.ErrConnectionLoss, zkclient.ErrSessionMoved:
		return resultConnectionLoss
	case zkclient.ErrSessionExpired:
		return resultSessionExpired
	}
	return resultOther
}

// opNames are the operations lighthouse.op.duration knows (zkclient.OpName).
var opNames = []string{"create", "delete", "exists", "get_data", "set_data", "get_acl", "set_acl",
	"get_children", "sync", "check", "multi", "add_watch", "remove_watches", "whoami", "other"}

// sessionStates are the values of lighthouse.session.state, by the event
// that enters them.
var sessionStates = map[EventType]string{
	EventConnected:   "connected",
	EventSuspended:   "suspended",
	EventReconnected: "reconnected",
	EventExpired:     "expired",
	EventClosed:      "closed",
}

// Buckets, in seconds: ZooKeeper answers within a millisecond on a LAN, a
// handover takes up to a session timeout.
var (
	opBuckets       = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	handoverBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
)

// metrics holds a Session's instruments and the attribute sets it uses on
// busy paths, made once so that recording allocates nothing.
type metrics struct {
	meter    metric.Meter
	counting bool // false with a no-op provider: Pick does not even count

	opDuration metric.Float64Histogram
	opOpts     map[string]*[len(results)][]metric.RecordOption
	watchFired metric.Int64Counter
	watchOpts  map[zkclient.EventType][]metric.AddOption
	attempts   metric.Int64Counter
	stateCount metric.Int64Counter
	stateOpts  map[EventType][]metric.AddOption
	stateGauge metric.Int64ObservableGauge
	state      atomic.Value // string: the current session state
	stateReg   metric.Registration

	leader          metric.Int64ObservableGauge
	electionChanges metric.Int64Counter
	handover        metric.Float64Histogram
	members         metric.Int64ObservableGauge
	memberChanges   metric.Int64Counter
	picks           metric.Int64ObservableCounter
	reported        metric.Int64ObservableCounter
	excluded        metric.Int64ObservableGauge
}

// newMetrics makes the instruments. If the provider refuses one, the
// session records nothing and says why in log.
func newMetrics(mp metric.MeterProvider, log *slog.Logger) *metrics {
	m, err := makeMetrics(mp)
	if err != nil {
		log.Warn("lighthouse: metrics disabled", "err", err)
		m, _ = makeMetrics(noop.NewMeterProvider())
	}
	return m
}

func makeMetrics(mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	_, isNoop := mp.(noop.MeterProvider)
	meter := mp.Meter(MeterName)
	m := &metrics{meter: meter, counting: !isNoop}
	m.state.Store("")
	var errs []error
	check := func(err error) { errs = append(errs, err) }
	var err error
	d, u := metric.WithDescription, metric.WithUnit

	m.opDuration, err = meter.Float64Histogram("lighthouse.op.duration", u("s"),
		d("Duration of ZooKeeper requests, by operation and result."),
		metric.WithExplicitBucketBoundaries(opBuckets...))
	check(err)
	m.watchFired, err = meter.Int64Counter("lighthouse.watch.fired", u("{event}"),
		d("Watch notifications received from ZooKeeper, by type."))
	check(err)
	m.attempts, err = meter.Int64Counter("lighthouse.session.connects", u("{attempt}"),
		d("Attempts to reach a ZooKeeper server, by server and result (ok or error)."))
	check(err)
	m.stateCount, err = meter.Int64Counter("lighthouse.session.state_changes", u("{event}"),
		d("Changes of the session's state, by the state entered."))
	check(err)
	m.stateGauge, err = meter.Int64ObservableGauge("lighthouse.session.state", u("{state}"),
		d("1 for the session's current state, 0 for the others."))
	check(err)
	m.leader, err = meter.Int64ObservableGauge("lighthouse.election.leader", u("{leader}"),
		d("1 while the participant leads the election, 0 while it does not."))
	check(err)
	m.electionChanges, err = meter.Int64Counter("lighthouse.election.changes", u("{change}"),
		d("Leaderships this participant gained; summed over participants, the changes of leader."))
	check(err)
	m.handover, err = meter.Float64Histogram("lighthouse.election.handover", u("s"),
		d("Time from this participant learning the leader is gone to it knowing of a leader again."),
		metric.WithExplicitBucketBoundaries(handoverBuckets...))
	check(err)
	m.members, err = meter.Int64ObservableGauge("lighthouse.members", u("{member}"),
		d("Live members of the service, as last read."))
	check(err)
	m.memberChanges, err = meter.Int64Counter("lighthouse.members.changes", u("{change}"),
		d("Changes of the service's member set after the first read."))
	check(err)
	m.picks, err = meter.Int64ObservableCounter("lighthouse.balancer.picks", u("{pick}"),
		d("Picks made by the balancers of the service."))
	check(err)
	m.reported, err = meter.Int64ObservableCounter("lighthouse.balancer.errors", u("{error}"),
		d("Errors reported to the balancers of the service (ReportError)."))
	check(err)
	m.excluded, err = meter.Int64ObservableGauge("lighthouse.balancer.excluded", u("{member}"),
		d("Members the balancer leaves out because errors were reported for them."))
	check(err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	m.opOpts = make(map[string]*[len(results)][]metric.RecordOption, len(opNames))
	for _, op := range opNames {
		var opts [len(results)][]metric.RecordOption
		for i, r := range results {
			opts[i] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrOp.String(op), attrResult.String(r)))}
		}
		m.opOpts[op] = &opts
	}
	m.watchOpts = make(map[zkclient.EventType][]metric.AddOption)
	for typ, name := range map[zkclient.EventType]string{
		zkclient.EventNodeCreated: "node_created", zkclient.EventNodeDeleted: "node_deleted",
		zkclient.EventNodeDataChanged: "node_data_changed", zkclient.EventNodeChildrenChanged: "node_children_changed",
	} {
		m.watchOpts[typ] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrWatch.String(name)))}
	}
	m.stateOpts = make(map[EventType][]metric.AddOption)
	for typ, name := range sessionStates {
		m.stateOpts[typ] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrState.String(name)))}
	}
	m.stateReg, err = meter.RegisterCallback(m.observeState, m.stateGauge)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// hooks returns the client hooks that feed the wire-level instruments.
func (m *metrics) hooks() zkclient.Hooks {
	return zkclient.Hooks{
		OnAttempt: m.attempted,
		OnCall:    m.called,
		OnWatch:   m.watched,
	}
}

// called records one request (on the caller's goroutine).
func (m *metrics) called(ctx context.Context, op string, took time.Duration, err error) {
	opts, ok := m.opOpts[op]
	if !ok {
		opts = m.opOpts["other"]
	}
	m.opDuration.Record(ctx, took.Seconds(), opts[resultOf(err)]...)
}

// watched counts a watch notification (on the client's owner goroutine or
// its connection's reader, one at a time).
func (m *metrics) watched(typ zkclient.EventType) {
	if opts, ok := m.watchOpts[typ]; ok {
		m.watchFired.Add(context.Background(), 1, opts...)
	}
}

// attempted counts an attempt to reach a server (on the client's owner
// goroutine; attempts are rare, so the attributes are made here).
func (m *metrics) attempted(server string, err error) {
	result := "ok"
	if err != nil {
		result = "error" // refused, unresolvable, no answer in time: the log says which
	}
	host, port, _ := net.SplitHostPort(server)
	p, _ := strconv.Atoi(port)
	m.attempts.Add(context.Background(), 1, metric.WithAttributes(
		attrServer.String(host), attrPort.Int(p), attrResult.String(result)))
}

// event counts the session's state changes (called by emit).
func (m *metrics) event(e Event) {
	if opts, ok := m.stateOpts[e.Type]; ok {
		m.state.Store(sessionStates[e.Type])
		m.stateCount.Add(context.Background(), 1, opts...)
	}
}

// observeState reports the session's state for lighthouse.session.state:
// "reconnected" is reported as connected.
func (m *metrics) observeState(_ context.Context, o metric.Observer) error {
	cur := m.state.Load().(string)
	if cur == "reconnected" {
		cur = "connected"
	}
	if cur == "" {
		return nil
	}
	for _, st := range []string{"connected", "suspended", "expired"} {
		v := int64(0)
		if st == cur {
			v = 1
		}
		o.ObserveInt64(m.stateGauge, v, metric.WithAttributeSet(attribute.NewSet(attrState.String(st))))
	}
	return nil
}

// close ends the observation of the session's state: a closed session
// reports no state.
func (m *metrics) close() { m.stateReg.Unregister() }
