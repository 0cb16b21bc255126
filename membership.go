package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

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

// Registration is this process's registration of one instance of a service,
// made by Register.
type Registration struct {
	id      string
	path    string
	stop    context.CancelFunc
	done    chan struct{}
	encode  func(data []byte) ([]byte, error) // checks Update's data as Register does
	updates *actor.Mailbox[update]            // to the registration's goroutine
}

// update is one Update for the registration's goroutine.
type update struct {
	ctx   context.Context
	data  []byte
	reply chan error // buffer 1
}

// ID returns the registered instance's ID (the host name if Register was
// given none).
func (r *Registration) ID() string {
	if r == nil {
		return ""
	}
	return r.id
}

// Close removes the registration: its node is deleted at once (or, while
// the connection is down, as soon as it is back, unless the session ends
// first), if it is still this session's: one that another session made
// after ours went is left alone. It waits until that is under way, at most
// half a second if the server does not answer, and returns nil. It is
// idempotent, and does the same as cancelling Register's ctx.
func (r *Registration) Close() error {
	if r == nil || r.done == nil {
		return nil // made by no Register: nothing to remove
	}
	r.stop()
	awaitEnd(r.done)
	return nil
}

// Update sets the registered instance's data, as Curator's updateService
// does: Members and Balancers following the service deliver the new data in
// their next set, and the node is created with it should the session
// expire. It returns once the server has it. data is checked as Register
// checks n.Data (ErrDataTooLarge; with CuratorFormat, a ServiceInstance,
// completed the same way).
//
// It fails with ErrClosed once the registration has ended (Close, its ctx,
// the session's Close), and with ErrNoNode while its node is not there: after
// a session expiry until the node is created again, or while another
// session holds the ID. ctx bounds this call only.
func (r *Registration) Update(ctx context.Context, data []byte) error {
	if r == nil || r.done == nil {
		return opError("update", "", errNotMade)
	}
	if ctx == nil {
		return opError("update", r.path, errNilCtx)
	}
	data, err := r.encode(data)
	if err != nil {
		return opError("update", r.path, err)
	}
	select {
	case <-r.done:
		return opError("update", r.path, ErrClosed)
	default:
	}
	reply := make(chan error, 1)
	r.updates.Put(update{ctx: ctx, data: slices.Clone(data), reply: reply})
	select {
	case err := <-reply:
		return err
	case <-r.done:
		select {
		case err := <-reply: // done just after it
			return err
		default:
			return opError("update", r.path, ErrClosed)
		}
	case <-ctx.Done():
		return opError("update", r.path, ctx.Err())
	}
}

// Register registers n as an instance of service: an ephemeral node
// /services/<service>/<n.ID> holding n.Data, under the session's chroot. It
// returns once the node exists.
//
// An empty n.ID means the host name. IDs and service names follow
// ZooKeeper's path rules for one segment (ErrInvalidID, ErrInvalidPath); data
// over MaxDataSize gives ErrDataTooLarge. If a live registration with the
// same ID exists, on this session or another one, Register fails with
// ErrIDTaken; one of this session that is ending (closed, or its ctx ended,
// while its node is still being deleted) is waited for, while ctx allows.
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
	if err := s.usable(ctx); err != nil {
		return nil, opError("register", service, err)
	}
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
	runCtx, stop := context.WithCancel(ctx)
	reg := &Registration{id: n.ID, path: path, stop: stop, done: make(chan struct{}), updates: new(actor.Mailbox[update])}
	c := &claim{s: s, path: path, ctx: runCtx, done: make(chan struct{})}
	if err := s.claim(ctx, path, c); err != nil {
		stop()
		return nil, opError("register", path, err)
	}
	id := n.ID
	reg.encode = func(data []byte) ([]byte, error) {
		data, err := o.encode(service, id, data)
		if err != nil {
			return nil, err
		}
		return data, s.checkWrite(path, data, s.acl)
	}
	r := &registration{s: s, ctx: runCtx, path: path, data: slices.Clone(n.Data), updates: reg.updates, claim: c}
	unregister := s.onClose(stop, &r.held)
	created := make(chan error, 1)
	started := s.recipes.Go(func() {
		defer close(reg.done)
		defer r.releaseClaim()
		defer unregister()
		defer stop()
		r.run(runCtx, created)
	})
	if !started {
		stop()
		c.release()
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

// claim is a Register's hold on its path in this process. It is let go
// once the registration's node is known gone, or its session ended: a
// delete still being retried would otherwise take the node of the next
// registration of the path.
type claim struct {
	s    *Session
	path string
	ctx  context.Context // the registration's: once it ends, the claim is being let go
	done chan struct{}   // closed once it has been let go
	once sync.Once
}

// release lets the claim go; it may be called more than once.
func (c *claim) release() {
	c.once.Do(func() {
		c.s.claims.CompareAndDelete(c.path, c)
		close(c.done)
	})
}

// claim takes path for c. A claim being let go (its registration ended
// while its goroutine still deletes the node, or waits for an answer to
// know whether it made one) is waited for, while ctx allows; a live one
// is ErrIDTaken.
func (s *Session) claim(ctx context.Context, path string, c *claim) error {
	for {
		prev, taken := s.claims.LoadOrStore(path, c)
		if !taken {
			return nil
		}
		p, ok := prev.(*claim)
		if !ok || p.ctx.Err() == nil {
			return fmt.Errorf("%w in this process", ErrIDTaken)
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		}
	}
}

// registration is the state of one Register, owned by its goroutine.
type registration struct {
	s       *Session
	ctx     context.Context // its life
	path    string
	data    []byte
	updates *actor.Mailbox[update]

	l     *loop  // run's; its watch is on our node (or on a node in the way)
	owner int64  // the session our node belongs to, 0 if we have none
	prev  int64  // the session of our last node, maybe still being removed
	czxid int64  // our node's creation zxid
	tried int64  // the session of a look that did not learn whose node is at our path
	claim *claim // ours, until a delete we leave running takes it over (nil then)
	rearm bool   // our node's data changed: the next look only re-arms its watch
	held  heldNode
}

// errWaiting: the node of an earlier session of ours is still there.
var errWaiting = fmt.Errorf("%w: for the node of an expired session to go", errWatching)

// run is the registration's goroutine. It reports the outcome of its first
// attempt to create the node on created; a lasting error there ends it.
func (r *registration) run(ctx context.Context, created chan<- error) {
	defer r.updates.Close() // an Update after the end gets ErrClosed
	l := &loop{s: r.s, op: "register", path: r.path}
	r.l = l
	l.poke = r.updates.Ready
	l.poked = func() bool {
		for _, u := range r.updates.Take() {
			u.reply <- r.update(u)
		}
		return false
	}
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
			r.prev, l.watch[0] = r.owner, nil // our node went with the old session
			r.own(0, 0)
		}
		return r.owner == 0, nil
	}
	l.fired = func(_ int, ev zkclient.WatchEvent) bool {
		// A data change (Update, or another writer) leaves the node ours:
		// re-arm the watch without trying to create the node first.
		r.rearm = ev.Type == zkclient.EventNodeDataChanged && r.owner != 0
		return true
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
	if r.s.isClosing() {
		return ErrClosed // Close deletes our node: make none
	}
	rearm := r.rearm
	r.rearm = false
	r.tried = r.s.zk.SessionID() // until we know whose node is at our path
	for i := range 5 {
		var err error
		if !rearm || i > 0 {
			_, _, err = r.s.zk.Create(bg, r.path, r.data, r.s.acl, zkclient.Ephemeral, 0)
		}
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
				r.own(owner, stat.Czxid)
				r.s.emit(Event{Type: EventRegistered, SessionID: owner, Path: r.path})
			}
			r.tried = 0
			return nil
		}
		// Not ours: whatever node we had is gone, and leave must not
		// delete the one at our path now.
		r.own(0, 0)
		r.tried = 0
		if owner != 0 && owner == r.prev {
			return errWaiting
		}
		if owner == 0 {
			return fmt.Errorf("%w (by a persistent node)", ErrIDTaken)
		}
		return fmt.Errorf("%w (by session 0x%x)", ErrIDTaken, owner)
	}
	return zkclient.ErrNoNode
}

// update sets our node's data, if we have a node, and keeps the data for
// the nodes we create later.
func (r *registration) update(u update) error {
	if r.owner == 0 || r.owner != r.l.st.ID {
		return opError("update", r.path, fmt.Errorf("%w: the registration's node is not there yet", ErrNoNode))
	}
	ctx, cancel := context.WithCancel(u.ctx)
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)() // Close does not wait for a lost connection
	if _, err := r.s.zk.Set(ctx, r.path, u.data, AnyVersion); err != nil {
		if r.ctx.Err() != nil && u.ctx.Err() == nil {
			err = ErrClosed // Close cut the call short, not the caller's ctx
		}
		return r.s.opErr("update", r.path, err)
	}
	r.data = u.data
	return nil
}

// leave deletes our node, if we have one.
func (r *registration) leave() {
	switch {
	case r.s.isClosing(): // the session's close deletes our node
	case r.owner != 0:
		// Ours unless it was deleted and another session took the ID before
		// we heard of it.
		r.s.deleteIfOurs(r.path, r.owner, r.handClaim())
	case r.tried != 0:
		// A create whose answer was lost (or an ExistsW after it) may have
		// made our node: delete it if it is there and ours.
		r.s.deleteIfOurs(r.path, r.tried, r.handClaim())
	}
	r.own(0, 0)
	r.tried = 0
}

// handClaim hands our claim to the delete that leave starts, which lets it
// go once done.
func (r *registration) handClaim() func() {
	c := r.claim
	if c == nil {
		return nil
	}
	r.claim = nil
	return c.release
}

// releaseClaim lets our claim go when the goroutine ends, unless a delete
// has taken it over.
func (r *registration) releaseClaim() {
	if r.claim != nil {
		r.claim.release()
	}
}

// own records the session of our node and its creation zxid (0, 0: we
// have no node), for Close too.
func (r *registration) own(owner, czxid int64) {
	r.owner, r.czxid = owner, czxid
	if owner == 0 {
		r.held.clear()
	} else {
		r.held.set(r.path, owner)
	}
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
// Members follows data changes too: an instance's Update (or Curator's
// updateService) delivers a set in which its Node.Data is new.
//
// On ZooKeeper 3.6 and later one persistent recursive watch on the service
// node says what changed: a join or an Update costs one read (the
// instance's node), a leave none, whatever the number of instances. The
// server sends no events while the connection is down, so after a reconnect
// or a session expiry every instance is read again once. A server before 3.6
// has no persistent watches: Members then lists the names with a one-shot
// watch on each change (one read, plus one for the node of a new instance)
// and reads an instance's data once, when it joins, so Updates are not seen.
//
// With CuratorFormat it follows Curator's registry; see there.
//
// Each set is a new slice: for a large service that copy is most of what a
// change costs (40 bytes per member; 400 KB per change with 10,000
// members). MemberSets delivers the same sets without it.
func (s *Session) Members(ctx context.Context, service string, opts ...RegistryOption) (<-chan []Node, error) {
	return follow(ctx, s, "members", service, opts, (*memberSet).nodes)
}

// MemberSets follows service as Members does and delivers each set as a
// MemberSet: immutable, so it can be kept and shared, and made from the set
// before it at a cost that does not grow with the number of members. Prefer
// it to Members for services of thousands of members.
func (s *Session) MemberSets(ctx context.Context, service string, opts ...RegistryOption) (<-chan MemberSet, error) {
	return follow(ctx, s, "membersets", service, opts, func(m *memberSet) MemberSet { return m.set })
}

// follow runs the goroutine of Members and MemberSets, which deliver
// value(m) each time the set changes.
func follow[T any](ctx context.Context, s *Session, op, service string, opts []RegistryOption, value func(*memberSet) T) (<-chan T, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opError(op, service, err)
	}
	o, err := newRegistryOptions(opts)
	if err != nil {
		return nil, opError(op, "", err)
	}
	m, err := o.memberSet(s, service)
	if err != nil {
		return nil, opError(op, "", err)
	}
	out := actor.NewOutbox[T](1, nil)
	err = s.startRecipe(ctx, func(first chan<- error) {
		defer out.Close()
		m.loop(op, func() { out.Put(value(m)) }).run(ctx, first)
	})
	if err != nil {
		return nil, opError(op, service, err)
	}
	return out.C(), nil
}

// Services returns the names of the services with registered instances,
// sorted (none if nothing was ever registered). A service whose last
// instance left may stay listed until the server removes its node.
func (s *Session) Services(ctx context.Context, opts ...RegistryOption) ([]string, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opError("services", "", err)
	}
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
	if err := s.usable(ctx); err != nil {
		return nil, opError("instances", service, err)
	}
	o, err := newRegistryOptions(opts)
	if err != nil {
		return nil, opError("instances", "", err)
	}
	path, err := o.servicePath(service)
	if err != nil {
		return nil, opError("instances", "", err)
	}
	if err := s.check(ctx, "instances", path); err != nil {
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
