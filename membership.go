package lighthouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"

	"github.com/lighthouse-zk/lighthouse/internal/actor"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// Membership events.
const (
	// EventRegistered: a registration's node was created, at Register and
	// again after each session expiry (Path: the node).
	EventRegistered EventType = iota + 200
)

func init() {
	eventNames[EventRegistered] = "registered"
}

// servicesPath holds one node per service, each with one ephemeral child per
// registered instance, named by its ID and holding its data:
// /services/<service>/<id>. It is relative to the session's chroot, which is
// how applications keep their services apart.
const servicesPath = "/services"

// Registration is this process's registration of one instance of a service,
// made by Register.
type Registration struct {
	id   string
	stop context.CancelFunc
	done chan struct{}
}

// ID returns the registered instance's ID (the host name if Register was
// given none).
func (r *Registration) ID() string { return r.id }

// Close removes the registration: its node is deleted at once (or, while
// the connection is down, as soon as it is back, unless the session ends
// first). It waits until that is under way and returns nil. It is
// idempotent, and does the same as cancelling Register's ctx.
func (r *Registration) Close() error {
	r.stop()
	<-r.done
	return nil
}

// Register registers n as an instance of service: an ephemeral node
// /services/<service>/<n.ID> holding n.Data, under the session's chroot. It
// returns once the node exists.
//
// An empty n.ID means the host name. IDs and service names follow
// ZooKeeper's path rules for one segment (ErrInvalidID, ErrInvalidPath); data
// over MaxDataSize gives ErrDataTooLarge. If a live registration with the
// same ID exists, on this session or another one, Register fails with
// ErrIDTaken.
//
// After a session expiry the node is created again on the new session
// without the caller doing anything (EventRegistered each time; failures are
// EventError and retried). Should another session have taken the ID
// meanwhile, the registration waits (EventError with ErrIDTaken)
// for that node to go and then takes the ID back. The node is also created
// again if someone deletes it.
//
// Cancelling ctx or calling Close deletes the node at once. Closing the
// session ends the registration too; the server then deletes the node with
// the session.
//
// With CuratorFormat the node is in Curator's registry and n.Data must be a
// Curator ServiceInstance; see there.
func (s *Session) Register(ctx context.Context, service string, n Node, opts ...RegistryOption) (*Registration, error) {
	o, err := newRegistryOptions(opts)
	if err != nil {
		return nil, opError("register", "", err)
	}
	dir, err := o.servicePath(service)
	if err != nil {
		return nil, opError("register", "", err)
	}
	if n.ID == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, opError("register", service, fmt.Errorf("%w: no ID and no host name: %v", ErrInvalidID, err))
		}
		n.ID = host
	}
	if err := validateID(n.ID); err != nil {
		return nil, opError("register", service, err)
	}
	if err := validateName("id", n.ID); err != nil {
		return nil, opError("register", service, fmt.Errorf("%w: %w", ErrInvalidID, err))
	}
	if n.Data, err = o.encode(service, n.ID, n.Data); err != nil {
		return nil, opError("register", service+"/"+n.ID, err)
	}
	path := joinPath(dir, n.ID)
	if err := s.checkWrite(path, n.Data, s.acl); err != nil {
		return nil, opError("register", service, err)
	}
	if _, taken := s.claims.LoadOrStore(path, struct{}{}); taken {
		return nil, opError("register", path, fmt.Errorf("%w in this process", ErrIDTaken))
	}
	r := &registration{s: s, path: path, data: slices.Clone(n.Data)}
	runCtx, stop := context.WithCancel(ctx)
	unregister := s.onClose(stop)
	reg := &Registration{id: n.ID, stop: stop, done: make(chan struct{})}
	created := make(chan error, 1)
	started := s.recipes.Go(func() {
		defer close(reg.done)
		defer s.claims.Delete(path)
		defer unregister()
		defer stop()
		r.run(runCtx, created)
	})
	if !started {
		stop()
		s.claims.Delete(path)
		return nil, opError("register", path, ErrClosed)
	}
	select {
	case err := <-created:
		if err != nil {
			reg.Close()
			return nil, opError("register", path, err)
		}
	case <-ctx.Done():
		reg.Close()
		return nil, opError("register", path, ctx.Err())
	case <-s.closing:
		reg.Close()
		return nil, opError("register", path, ErrClosed)
	}
	return reg, nil
}

// registration is the state of one Register, owned by its goroutine.
type registration struct {
	s    *Session
	path string
	data []byte

	l     *loop // run's; its watch is on our node (or on a node in the way)
	owner int64 // the session our node belongs to, 0 if we have none
	prev  int64 // the session of our last node, maybe still being removed
	czxid int64 // our node's creation zxid
}

// errWaiting: the node of an earlier session of ours is still there.
var errWaiting = fmt.Errorf("%w: for the node of an expired session to go", errWatching)

// run is the registration's goroutine. It reports the outcome of its first
// attempt to create the node on created; a lasting error there ends it.
func (r *registration) run(ctx context.Context, created chan<- error) {
	l := &loop{s: r.s, op: "register", path: r.path}
	r.l = l
	l.look = func() error {
		err := r.ensure(l.st)
		if errors.Is(err, ErrIDTaken) && l.started {
			// Another session holds the ID: the watch on its node tells us
			// when it is gone.
			r.s.emit(Event{Type: EventError, SessionID: l.st.ID, Path: r.path, Err: r.s.opErr("register", r.path, err)})
			return errWatching
		}
		return err
	}
	l.state = func(prev, next sessionState) (bool, error) {
		if next.ID != r.owner && next.ID != 0 && r.owner != 0 {
			r.prev, r.owner, l.watch[0] = r.owner, 0, nil // our node went with the old session
		}
		return r.owner == 0, nil
	}
	l.fatal = func(err error, started bool) bool {
		return !started && (errors.Is(err, ErrIDTaken) || lasting(err))
	}
	l.end = func(why error) {
		if why != ErrClosed { // the session's close deletes our node
			r.leave()
		}
	}
	l.run(ctx, created)
}

// ensure makes sure our node exists in the current session and is watched.
func (r *registration) ensure(st sessionState) error {
	for range 5 {
		_, _, err := r.s.zk.Create(bg, r.path, r.data, r.s.acl, zkclient.Ephemeral, 0)
		if errors.Is(err, zkclient.ErrNoNode) {
			// Containers: the server removes a service's node once its last
			// instance is gone, so Services lists live services only.
			if err = r.s.createParents(bg, r.path, zkclient.Container, r.s.parentACL); err == nil {
				_, _, err = r.s.zk.Create(bg, r.path, r.data, r.s.acl, zkclient.Ephemeral, 0)
			}
		}
		if errors.Is(err, zkclient.ErrNoNode) {
			continue // a parent container was removed meanwhile
		}
		if err != nil && !errors.Is(err, zkclient.ErrNodeExists) {
			return err
		}
		stat, ch, err := r.s.zk.ExistsW(bg, r.path)
		if err != nil {
			return err
		}
		if stat == nil {
			continue // gone meanwhile: create it again
		}
		r.l.watch[0] = ch
		owner := stat.EphemeralOwner
		switch {
		case owner != 0 && (owner == st.ID || owner == r.s.zk.SessionID()):
			// Ours: just created, or created by a request whose reply was
			// lost (no one else in this process may hold this path).
			if r.owner != owner || r.czxid != stat.Czxid {
				r.owner, r.czxid = owner, stat.Czxid
				r.s.emit(Event{Type: EventRegistered, SessionID: owner, Path: r.path})
			}
			return nil
		}
		// Not ours: whatever node we had is gone, and leave must not
		// delete the one at our path now.
		r.owner, r.czxid = 0, 0
		if owner != 0 && owner == r.prev {
			return errWaiting
		}
		return fmt.Errorf("%w (by session 0x%x)", ErrIDTaken, owner)
	}
	return zkclient.ErrNoNode
}

// leave deletes our node, if we have one.
func (r *registration) leave() {
	if r.owner != 0 && !r.s.isClosing() {
		r.s.deleteEphemeral(r.path, r.owner)
	}
	r.owner = 0
}

// memberReads counts the ZooKeeper reads made by every Members and
// Balancer of the process, for tests and benchmarks.
var memberReads atomic.Int64

// member is one instance as a memberSet knows it.
type member struct {
	Node
	czxid int64 // the zxid that created its node: new when it registers again
	bad   bool  // its data does not decode: left out of the set
}

// memberSet keeps the member set of one service current for the goroutine
// that owns it (a Members or a Balancer), whose loop it drives.
//
// A change costs O(1) reads: the children watch fires, one ChildrenW lists
// the names (and sets the next watch), and only the nodes of names not seen
// before are read (Get); names that left are dropped. A member's data is
// read once per node: Register never changes it, so there are no data
// watches. The parent's child version (Cversion) tells whether the names
// alone explain every change since the last read; when they do not (a
// member left and registered again between two reads) every cached member
// is checked (Exists) and those with a new node are read again.
type memberSet struct {
	s     *Session
	path  string
	check func([]byte) error // nil, or why a member's data is left out
	l     *loop              // its watch is on the service node's children, or its existence
	ready bool               // read at least once

	names    map[string]bool   // children at the last read
	cache    map[string]member // members whose node we have read
	cversion int32             // the service node's Cversion at the last read
	pczxid   int64             // the service node's Czxid, 0 if it did not exist
	sorted   []member          // the set last returned by sync
	m        memberMetrics
}

// memberSet returns the member set of service in the registry o chooses.
func (o registryOptions) memberSet(s *Session, service string) (*memberSet, error) {
	path, err := o.servicePath(service)
	if err != nil {
		return nil, err
	}
	m := newMemberSet(s, path)
	if o.curator {
		m.check = o.check
	}
	return m, nil
}

func newMemberSet(s *Session, path string) *memberSet {
	return &memberSet{s: s, path: path, names: make(map[string]bool), cache: make(map[string]member)}
}

// loop returns the loop that keeps the set current for op, calling changed
// each time the set differs from the last one.
func (m *memberSet) loop(op string, changed func()) *loop {
	l := &loop{s: m.s, op: op, path: m.path}
	m.l = l
	l.look = func() error {
		c, err := m.sync()
		if err == nil && c {
			changed()
		}
		return err
	}
	l.state = func(prev, next sessionState) (bool, error) {
		// A new session lost every watch: read the whole set again. A
		// suspended session keeps the set; the client re-registers the
		// watch when the same session comes back.
		if next.ID != prev.ID && next.ID != 0 {
			m.pczxid = 0
			return true, nil
		}
		return false, nil
	}
	return l
}

// sync reads what changed and reports whether the set differs from the one
// it last returned (always true on the first success).
func (f *memberSet) sync() (changed bool, err error) {
	if err := f.read(); err != nil {
		return false, err
	}
	set := make([]member, 0, len(f.cache))
	for _, m := range f.cache {
		if !m.bad {
			set = append(set, m)
		}
	}
	slices.SortFunc(set, func(a, b member) int { return cmp.Compare(a.ID, b.ID) })
	changed = !f.ready || !slices.EqualFunc(set, f.sorted, func(a, b member) bool {
		return a.ID == b.ID && a.czxid == b.czxid
	})
	f.m.synced(f, len(set), changed, f.ready)
	f.ready = true
	if changed {
		f.sorted = set
	}
	return changed, nil
}

// read brings the cache up to date with as few reads as it can.
func (f *memberSet) read() error {
	for {
		memberReads.Add(1)
		children, stat, ch, err := f.s.zk.ChildrenW(bg, f.path)
		if errors.Is(err, zkclient.ErrNoNode) {
			memberReads.Add(1)
			st, ech, err := f.s.zk.ExistsW(bg, f.path)
			if err != nil {
				return err
			}
			if st != nil {
				continue // created meanwhile
			}
			f.l.watch[0] = ech // follow the service once it is created
			clear(f.cache)
			clear(f.names)
			f.pczxid, f.cversion = 0, 0
			return nil
		}
		if err != nil {
			return err
		}
		f.l.watch[0] = ch
		now := make(map[string]bool, len(children))
		for _, c := range children {
			now[c] = true
		}
		if stat.Czxid != f.pczxid || stat.Cversion < f.cversion {
			// A new service node or a new session: start afresh.
			clear(f.cache)
			clear(f.names)
		} else {
			diff := 0
			for c := range now {
				if !f.names[c] {
					diff++
				}
			}
			for c := range f.names {
				if !now[c] {
					diff++
				}
			}
			if int(stat.Cversion-f.cversion) > diff {
				// More changes than the names show: someone left and came
				// back in between. Find who by their nodes' czxid.
				for id, m := range f.cache {
					if !now[id] {
						continue
					}
					memberReads.Add(1)
					st, err := f.s.zk.Exists(bg, joinPath(f.path, id))
					if err != nil {
						return err
					}
					if st == nil || st.Czxid != m.czxid {
						delete(f.cache, id)
					}
				}
			}
		}
		f.pczxid, f.cversion = stat.Czxid, stat.Cversion
		f.names = now
		for id := range f.cache {
			if !now[id] {
				delete(f.cache, id)
			}
		}
		for _, id := range children {
			if _, ok := f.cache[id]; ok {
				continue
			}
			memberReads.Add(1)
			data, st, err := f.s.zk.Get(bg, joinPath(f.path, id))
			if errors.Is(err, zkclient.ErrNoNode) {
				continue // left meanwhile; the watch will tell
			}
			if err != nil {
				return err
			}
			m := member{Node: Node{ID: id, Data: data}, czxid: st.Czxid}
			if f.check != nil {
				if err := f.check(data); err != nil {
					// Read once per node, so reported once per node.
					m.bad = true
					f.s.skip(joinPath(f.path, id), err)
				}
			}
			f.cache[id] = m
		}
		return nil
	}
}

// nodes returns a new slice of the set's nodes, sorted by ID.
func (f *memberSet) nodes() []Node {
	out := make([]Node, len(f.sorted))
	for i, m := range f.sorted {
		out[i] = m.Node
	}
	return out
}

// Members follows the live instances of service. The channel delivers the
// set, sorted by ID, each time it changes; the first value is there when
// Members returns (an empty set if the service has no instance or does not
// exist yet), and an error from that first read is returned.
//
// It carries only the newest set: a slow reader skips sets it was too slow
// to see, never gets an older set after a newer one, and never blocks the
// session. The Nodes' Data is shared with other readers: do not modify it.
// While the connection is down the last set stands; after a session expiry
// the set is read afresh. The channel is closed when ctx ends or the session
// closes.
//
// One instance joining or leaving costs a constant number of reads, whatever
// the number of instances: a watch on the service's children, a read of the
// names and a read of the new instance's node. An instance's data is read
// when it registers (Register does not change it).
//
// With CuratorFormat it follows Curator's registry; see there.
func (s *Session) Members(ctx context.Context, service string, opts ...RegistryOption) (<-chan []Node, error) {
	o, err := newRegistryOptions(opts)
	if err != nil {
		return nil, opError("members", "", err)
	}
	m, err := o.memberSet(s, service)
	if err != nil {
		return nil, opError("members", "", err)
	}
	out := actor.NewOutbox[[]Node](1, nil)
	if err := s.startRecipe(ctx, func(first chan<- error) { s.members(ctx, m, out, first) }); err != nil {
		return nil, opError("members", service, err)
	}
	return out.C(), nil
}

// members is the goroutine of Members.
func (s *Session) members(ctx context.Context, m *memberSet, out *actor.Outbox[[]Node], first chan<- error) {
	defer out.Close()
	m.loop("members", func() { out.Put(m.nodes()) }).run(ctx, first)
}

// Services returns the names of the services with registered instances,
// sorted (none if nothing was ever registered). A service whose last
// instance left may stay listed until the server removes its node.
func (s *Session) Services(ctx context.Context, opts ...RegistryOption) ([]string, error) {
	o, err := newRegistryOptions(opts)
	if err != nil {
		return nil, opError("services", "", err)
	}
	names, err := s.Children(ctx, o.base)
	if errors.Is(err, ErrNoNode) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// Instances returns the live instances of service once, sorted by ID
// (none if the service does not exist). With CuratorFormat, instances
// that do not decode are left out, each with an EventError.
func (s *Session) Instances(ctx context.Context, service string, opts ...RegistryOption) ([]Node, error) {
	o, err := newRegistryOptions(opts)
	if err != nil {
		return nil, opError("instances", "", err)
	}
	path, err := o.servicePath(service)
	if err != nil {
		return nil, opError("instances", "", err)
	}
	if err := s.check("instances", path); err != nil {
		return nil, err
	}
	ids, _, err := s.zk.Children(ctx, path)
	if errors.Is(err, zkclient.ErrNoNode) {
		return []Node{}, nil
	}
	if err != nil {
		return nil, s.opErr("instances", path, err)
	}
	slices.Sort(ids)
	out := make([]Node, 0, len(ids))
	for _, id := range ids {
		data, _, err := s.zk.Get(ctx, joinPath(path, id))
		if errors.Is(err, zkclient.ErrNoNode) {
			continue // left meanwhile
		}
		if err != nil {
			return nil, s.opErr("instances", path, err)
		}
		if err := o.check(data); err != nil {
			s.skip(joinPath(path, id), err)
			continue
		}
		out = append(out, Node{ID: id, Data: data})
	}
	return out, nil
}
