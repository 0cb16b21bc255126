package lighthouse

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/actor"
)

// BalancerOption configures Balancer.
type BalancerOption func(*balancerOptions)

type balancerOptions struct {
	threshold        int
	window, duration time.Duration
	registry         []RegistryOption
}

// WithRegistry makes the Balancer follow the registry the options choose,
// as Members does (for example CuratorFormat("/discovery")). With
// CuratorFormat it leaves out the instances whose "enabled" flag is false,
// as Curator's ServiceProvider does: a service being drained gets no calls.
func WithRegistry(opts ...RegistryOption) BalancerOption {
	return func(o *balancerOptions) { o.registry = opts }
}

// WithDownPolicy sets when a Balancer leaves a node out: once threshold
// errors were reported for it (ReportError) within window, it is left out
// for duration. The default, as Apache Curator's DownInstancePolicy: 2
// errors within 30 s leave it out for 30 s. A duration of 0 never leaves a
// node out.
func WithDownPolicy(threshold int, window, duration time.Duration) BalancerOption {
	return func(o *balancerOptions) { o.threshold, o.window, o.duration = threshold, window, duration }
}

// Balancer picks a live instance of a service for each call, with a Picker
// that it rebuilds from the service's members each time they change,
// leaving out the nodes reported failing. Its methods are safe for
// concurrent use.
type Balancer struct {
	picker atomic.Pointer[pickerBox]
	errs   actor.Mailbox[string]
	stop   context.CancelFunc
	done   chan struct{}
	m      balancerMetrics
}

type pickerBox struct{ Picker }

// Balancer follows the live instances of service (as Members does) and
// picks among them with strategy (nil means RoundRobin). It returns once the
// instances have been read; the error of that first read is returned.
//
// ReportError leaves a failing node out for a while (see WithDownPolicy); a
// node comes back when that time is over, or at once if it registers again
// (its node is created anew). While the connection is down the last set
// stands. The Balancer stops when ctx ends, Close is called or the session
// closes; Pick then keeps returning from the last set.
//
// It runs one goroutine, which reads membership changes as Members does and
// never blocks the session.
func (s *Session) Balancer(ctx context.Context, service string, strategy Strategy, opts ...BalancerOption) (*Balancer, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opError("balancer", service, err)
	}
	o := balancerOptions{threshold: defaultDownThreshold, window: defaultDownWindow, duration: defaultDownDuration}
	for _, opt := range opts {
		if opt == nil {
			return nil, opError("balancer", service, fmt.Errorf("%w: nil option", ErrInvalidOption))
		}
		opt(&o)
	}
	switch {
	case o.threshold < 1:
		return nil, opError("balancer", "", fmt.Errorf("%w: down threshold %d is below 1", ErrInvalidOption, o.threshold))
	case o.window <= 0:
		return nil, opError("balancer", "", fmt.Errorf("%w: down window %v is not positive", ErrInvalidOption, o.window))
	case o.duration < 0:
		return nil, opError("balancer", "", fmt.Errorf("%w: down duration %v is negative", ErrInvalidOption, o.duration))
	}
	if strategy == nil {
		strategy = RoundRobin()
	}
	ro, err := newRegistryOptions(o.registry)
	if err != nil {
		return nil, opError("balancer", "", err)
	}
	m, err := ro.memberSet(s, service)
	if err != nil {
		return nil, opError("balancer", "", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	b := &Balancer{stop: stop, done: make(chan struct{}), m: balancerMetrics{counting: s.metrics.counting}}
	b.picker.Store(&pickerBox{emptyPicker{}})
	l := &balancer{
		b:        b,
		m:        m,
		strategy: strategy,
		policy:   newDownPolicy(o.threshold, o.window, o.duration),
		curator:  ro.curator,
	}
	err = s.startRecipe(ctx, func(first chan<- error) {
		defer close(b.done)
		defer s.metrics.observeBalancer(&b.m, service)()
		defer b.errs.Close() // ReportError after the end keeps nothing
		defer stop()
		l.run(runCtx, first)
	})
	if err != nil {
		stop() // its goroutine, if any, ends on its own
		return nil, opError("balancer", service, err)
	}
	return b, nil
}

// Pick returns a node for a call with key (which only ConsistentHash uses),
// ok=false when no node is available, so the caller can fall back to a
// default. It takes no lock. The node's Data is shared: do not modify it.
func (b *Balancer) Pick(key string) (Node, bool) {
	if b == nil {
		return Node{}, false
	}
	if b.m.counting {
		b.m.picks.Add(1)
	}
	p := b.picker.Load()
	if p == nil { // a zero Balancer: made by no Session
		return Node{}, false
	}
	return p.Pick(key)
}

// ReportError tells the balancer that a call to node id failed. It never
// blocks; the node is left out once the down policy says so (see
// WithDownPolicy). IDs of nodes that are not members are ignored.
func (b *Balancer) ReportError(id string) {
	if b == nil || b.done == nil {
		return
	}
	b.m.reported.Add(1)
	b.errs.Put(id)
}

// Close stops the balancer and waits for its goroutine to end, at most half
// a second (it may be called from the Strategy, on that goroutine). Pick
// keeps returning from the last set. It is idempotent and returns nil.
func (b *Balancer) Close() error {
	if b == nil || b.done == nil {
		return nil
	}
	b.stop()
	awaitEnd(b.done)
	return nil
}

// balancer is the state of a Balancer, owned by its goroutine.
type balancer struct {
	ctx      context.Context // run's: once it ends, no Picker is made
	b        *Balancer
	m        *memberSet
	strategy Strategy
	policy   *downPolicy
	curator  bool        // members are Curator instances: leave out the disabled
	down     *time.Timer // brings back the next node whose exclusion ends
	downC    <-chan time.Time
}

func (l *balancer) run(ctx context.Context, first chan<- error) {
	l.ctx = ctx
	defer l.stopTimer()
	// The policy forgets the nodes that left and those that registered
	// again (their node is new).
	l.m.renewed = l.policy.forget
	lp := l.m.loop("balancer", l.rebuild)
	lp.poke = l.b.errs.Ready
	lp.poked = func() bool {
		now, rebuild := time.Now(), false
		for _, id := range l.b.errs.Take() {
			if l.m.has(id) && l.policy.reportError(id, now) {
				rebuild = true
			}
		}
		if rebuild {
			l.rebuild()
		}
		return false
	}
	lp.alarm = func() <-chan time.Time { return l.downC }
	lp.alarms = func() bool {
		l.downC = nil
		l.rebuild()
		return false
	}
	lp.run(ctx, first)
}

// rebuild publishes a Picker over the members that are not down and sets
// the timer for the next one to come back. Once Close has been called, it
// calls no Strategy and keeps the last Picker.
func (l *balancer) rebuild() {
	if l.ctx.Err() != nil {
		return
	}
	now := time.Now()
	nodes := make([]Node, 0, l.m.set.Len())
	for n := range l.m.set.All() {
		if !l.policy.isDown(n.ID, now) && !(l.curator && disabled(n.Data)) {
			nodes = append(nodes, n)
		}
	}
	p := l.strategy.Picker(nodes)
	if p == nil {
		p = emptyPicker{}
	}
	if l.ctx.Err() != nil {
		return // closed meanwhile
	}
	l.b.picker.Store(&pickerBox{p})
	l.b.m.excluded.Store(int64(l.m.set.Len() - len(nodes)))
	l.stopTimer()
	if t, ok := l.policy.nextExpiry(now); ok {
		l.down = time.NewTimer(t.Sub(now))
		l.downC = l.down.C
	}
}

func (l *balancer) stopTimer() {
	if l.down != nil {
		l.down.Stop()
		l.down, l.downC = nil, nil
	}
}

// downPolicy decides which nodes a balancer leaves out for a while because
// calls to them failed, like Apache Curator's DownInstancePolicy: threshold
// errors reported within window put a node down for duration. It is pure
// and deterministic: time comes only from the now its callers pass. It is
// owned by one goroutine (the balancer's) and takes no lock.
type downPolicy struct {
	threshold        int
	window, duration time.Duration
	nodes            map[string]*downRecord
}

// downRecord is one node's recent errors (at most threshold of them, within
// window of the latest) and the end of its exclusion, if any.
type downRecord struct {
	errors []time.Time
	until  time.Time
}

// newDownPolicy returns a policy that excludes a node for duration once
// threshold errors were reported within window. A threshold below 1 counts
// as 1; a duration of 0 or less never excludes anyone.
func newDownPolicy(threshold int, window, duration time.Duration) *downPolicy {
	return &downPolicy{
		threshold: max(threshold, 1),
		window:    window,
		duration:  duration,
		nodes:     make(map[string]*downRecord),
	}
}

// reportError records an error from node id at now, and reports whether
// this error put the node down. An error counts towards the threshold while
// it is less than window old. Errors reported while the node is down are
// ignored: its exclusion is not extended, and it starts afresh when the
// exclusion ends.
func (d *downPolicy) reportError(id string, now time.Time) (nowDown bool) {
	if d.duration <= 0 {
		return false
	}
	r := d.nodes[id]
	if r == nil {
		r = &downRecord{errors: make([]time.Time, 0, min(d.threshold, 8))} // grows as errors come
		d.nodes[id] = r
	}
	if now.Before(r.until) {
		return false
	}
	r.errors = slices.DeleteFunc(r.errors, func(t time.Time) bool { return now.Sub(t) >= d.window })
	if len(r.errors) == d.threshold { // only the newest threshold-1 can still matter
		r.errors = slices.Delete(r.errors, 0, 1)
	}
	r.errors = append(r.errors, now)
	if len(r.errors) < d.threshold {
		return false
	}
	r.errors = r.errors[:0]
	r.until = now.Add(d.duration)
	return true
}

// isDown reports whether node id is excluded at now.
func (d *downPolicy) isDown(id string, now time.Time) bool {
	r := d.nodes[id]
	return r != nil && now.Before(r.until)
}

// forget clears what the policy knows of node id: its errors and its
// exclusion. Call it when the node leaves or registers again.
func (d *downPolicy) forget(id string) { delete(d.nodes, id) }

// nextExpiry returns when the earliest exclusion in force at now ends, for a
// timer to bring that node back; ok=false when no node is down. It also
// drops the records of nodes that have nothing left to remember.
func (d *downPolicy) nextExpiry(now time.Time) (t time.Time, ok bool) {
	for id, r := range d.nodes {
		if now.Before(r.until) {
			if !ok || r.until.Before(t) {
				t, ok = r.until, true
			}
			continue
		}
		if len(r.errors) == 0 || now.Sub(r.errors[len(r.errors)-1]) >= d.window {
			delete(d.nodes, id)
		}
	}
	return t, ok
}

// disabled reports whether a Curator instance's "enabled" flag is false (or
// null, which Curator reads as false). Most instances carry no flag and no
// escape that could spell one: they are not decoded.
func disabled(instance []byte) bool {
	if !bytes.Contains(instance, []byte(`enabled`)) && !bytes.Contains(instance, []byte(`\u`)) {
		return false
	}
	i, err := decodeServiceInstance(instance)
	return err == nil && i.Enabled != nil && !*i.Enabled
}
