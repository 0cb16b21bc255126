package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// readyName is the node the last participant to enter creates, as in
// ZooKeeper's recipe and Apache Curator's DistributedDoubleBarrier.
const readyName = "ready"

// Barrier is one participant of a double barrier: Enter returns once count
// participants have entered, Leave once all of them have left, so a group of
// processes starts a computation together and finishes it together.
//
// A Barrier is made by Session.Barrier. Enter and Leave run in the calling
// goroutine: they block it, waiting on the session's state, ZooKeeper
// watches and ctx together. The only goroutines they start that can outlive
// them belong to the Session, which waits for them on Close: one finishing
// the create of our node when ctx ends during it (it deletes the node), and
// one deleting our node once the connection is back if it was down when we
// gave up. Calls on one Barrier are serialised; after Leave returns, Enter
// may be called again for another round.
type Barrier struct {
	s     *Session
	path  string // the barrier's node
	node  string // our node: path/id
	id    string
	data  []byte
	count int

	turn chan struct{} // held by the Enter or Leave in progress

	// Owned by the holder of turn.
	entered bool  // Enter succeeded and Leave has not run
	hasNode bool  // our node exists, as far as we know
	owner   int64 // the session that owns our node
	czxid   int64 // our node's creation zxid
	claimed bool  // we hold our entry in the session's claims

	tried atomic.Int64 // the session of the last create, whose reply may have been lost
}

// Barrier returns this process's participant in the double barrier at path,
// which opens once count participants have entered. It validates its input
// (ErrInvalidCount, ErrInvalidPath, ErrInvalidID, ErrDataTooLarge), creates
// the barrier's node if missing (as a container, with missing parents, so
// the server removes it once unused) and fails with ErrIDTaken if a live
// participant already uses this ID; ctx bounds that work.
//
// Participants are named by their ID (WithID; default: the host name, which
// fits one participant per host). Each has an ephemeral node
// path/<id> holding WithData's data, so IDs must be unique within the
// barrier and may not be "ready", the name of the node the last participant
// to enter creates. All participants must agree on count; more than count
// may enter, as with Apache Curator: count is a threshold, not a limit.
// Every child of path but the ready node counts as a participant, as with
// Curator, whose participants may share the barrier: put no other nodes
// under path (one would open the barrier early and hold Leave).
//
// A path serves one round at a time: the last participant to leave deletes
// the ready node, and the path can be used again once every Leave of the
// round has returned. A round whose participants all die without leaving
// leaves its ready node behind; the next participant to enter alone deletes
// it, but while a dead participant's session has not yet expired, its node
// still counts. Rounds kept apart by path ("/jobs/reindex/round-42") need no
// such care.
func (s *Session) Barrier(ctx context.Context, path string, count int, opts ...RecipeOption) (*Barrier, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opError("barrier", path, err)
	}
	if count < 1 {
		return nil, opError("barrier", path, fmt.Errorf("%w: %d", ErrInvalidCount, count))
	}
	if err := validatePath(path); err != nil {
		return nil, opError("barrier", "", err)
	}
	if path == "/" {
		return nil, opError("barrier", "", fmt.Errorf("%w \"/\": the root has other children", ErrInvalidPath))
	}
	o, err := newRecipeOptions(opts)
	if err != nil {
		return nil, opError("barrier", path, err)
	}
	if err := validateName("id", o.id); err != nil {
		return nil, opError("barrier", path, fmt.Errorf("%w: %w", ErrInvalidID, err))
	}
	if o.id == readyName {
		return nil, opError("barrier", path, fmt.Errorf("%w %s: reserved for the ready node", ErrInvalidID, quote(o.id)))
	}
	if err := s.checkWrite(joinPath(path, o.id), o.data, s.acl); err != nil {
		return nil, opError("barrier", path, err)
	}
	b := &Barrier{
		s:     s,
		path:  path,
		node:  joinPath(path, o.id),
		id:    o.id,
		data:  slices.Clone(o.data),
		count: count,
		turn:  make(chan struct{}, 1),
	}
	if _, err := s.Create(ctx, path, nil, Container, CreateParents(), withACL(s.parentACL)); err != nil && !errors.Is(err, ErrNodeExists) {
		return nil, opError("barrier", path, err)
	}
	// Fail early on a taken ID; Enter checks again when it creates our node.
	if _, taken := s.claims.Load(b.node); taken {
		return nil, opError("barrier", path, fmt.Errorf("%w: %s in this process", ErrIDTaken, quote(b.id)))
	}
	ok, st, err := s.Exists(ctx, b.node)
	if err != nil {
		return nil, opError("barrier", path, err)
	}
	if ok && st.EphemeralOwner != s.SessionID() {
		return nil, opError("barrier", path, duplicateID(b.id, st.EphemeralOwner))
	}
	return b, nil
}

func duplicateID(id string, owner int64) error {
	if owner == 0 {
		return fmt.Errorf("%w: %s is a persistent node", ErrIDTaken, quote(id))
	}
	return fmt.Errorf("%w: %s belongs to session 0x%x", ErrIDTaken, quote(id), owner)
}

// ID returns this participant's ID.
func (b *Barrier) ID() string {
	if b == nil {
		return ""
	}
	return b.id
}

// Enter joins the barrier and returns nil once count participants have
// entered (at once if the barrier is already open, or if this participant
// has entered and not left). Following ZooKeeper's recipe, it watches the
// ready node, creates this participant's ephemeral node and counts the
// participants; the one that completes the count creates the ready node,
// which wakes the others. Waiting participants are woken once, however many
// enter.
//
// Enter survives connection loss (it waits for the connection to come back).
// On error this participant is out of the barrier, its node deleted, and
// Enter may be called again:
//   - ctx ends: ctx's error.
//   - the session expires after our node was created: an error wrapping
//     ErrSessionExpired (the node went with the session; the others go on
//     waiting for count participants).
//   - the session is closed: ErrClosed.
//   - another live session has a node with our ID: ErrIDTaken.
func (b *Barrier) Enter(ctx context.Context) error {
	if b == nil || b.s == nil {
		return opError("barrier enter", "", errNotMade)
	}
	if err := b.take(ctx); err != nil {
		return opError("barrier enter", b.path, err)
	}
	defer b.give()
	if b.entered {
		return nil
	}
	if _, taken := b.s.claims.LoadOrStore(b.node, struct{}{}); taken {
		return opError("barrier enter", b.path, fmt.Errorf("%w: %s in this process", ErrIDTaken, quote(b.id)))
	}
	b.claimed = true
	if err := b.wait(ctx, b.enterStep); err != nil {
		b.abandon()
		return opError("barrier enter", b.path, err)
	}
	b.entered = true
	return nil
}

// Leave leaves the barrier and returns nil once every participant has left
// (their nodes are gone). Following ZooKeeper's recipe, the participant with
// the lowest ID waits for the one with the highest to go, one at a time, and
// leaves last (deleting the ready node first); every other participant
// deletes its node and waits for the lowest. Each waits on one node only.
//
// Leave without a successful Enter gives ErrNotEntered. Whatever Leave
// returns, this participant is out of the barrier afterwards (Enter starts a
// new round):
//   - ctx ends: ctx's error; our node is deleted if it was still there.
//   - the session expires while our node exists: an error wrapping
//     ErrSessionExpired. After our node is deleted (every participant but
//     the last is soon in that state) an expiry does not matter and Leave
//     waits on in the new session.
//   - the session is closed: ErrClosed.
func (b *Barrier) Leave(ctx context.Context) error {
	if b == nil || b.s == nil {
		return opError("barrier leave", "", errNotMade)
	}
	if err := b.take(ctx); err != nil {
		return opError("barrier leave", b.path, err)
	}
	defer b.give()
	if !b.entered {
		return opError("barrier leave", b.path, ErrNotEntered)
	}
	b.entered = false
	err := b.wait(ctx, b.leaveStep)
	b.abandon()
	if err != nil {
		return opError("barrier leave", b.path, err)
	}
	return nil
}

func (b *Barrier) take(ctx context.Context) error {
	if ctx == nil {
		return errNilCtx
	}
	select {
	case b.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Barrier) give() { <-b.turn }

// abandon deletes our node, if any, and gives up our claim on the ID.
func (b *Barrier) abandon() {
	if b.hasNode {
		b.s.deleteIfOurs(b.node, b.owner, nil)
		b.hasNode = false
	}
	if b.claimed {
		b.s.claims.Delete(b.node)
		b.claimed = false
	}
}

// step is one look at the barrier: done, or a watch to wait on before the
// next look.
type step func(ctx context.Context) (watch <-chan zkclient.WatchEvent, done bool, err error)

// wait runs step until it is done, waiting on the watches it returns. It
// retries after connection loss and fails when ctx ends, the session closes
// or, while our node exists, the session expires.
func (b *Barrier) wait(ctx context.Context, step step) error {
	l := &loop{s: b.s, op: "barrier", path: b.path, st: sessionState{ID: b.owner}}
	l.look = func() error {
		w, done, err := step(ctx)
		l.watch[0], l.done = w, done
		return err
	}
	l.state = func(prev, next sessionState) (bool, error) {
		// The session of our node ended: it is gone. (A state still naming
		// an older session than our node's says nothing.)
		if b.hasNode && next.ID != b.owner && (next.ID != 0 || prev.ID == b.owner) {
			return false, ErrSessionExpired
		}
		return next.ID != prev.ID || (next.Connected && !prev.Connected), nil
	}
	l.fatal = func(err error, _ bool) bool {
		err = mapErr(err)
		return !errors.Is(err, ErrConnectionLoss) && !(errors.Is(err, ErrSessionExpired) && !b.hasNode)
	}
	return l.run(ctx, nil)
}

// enterStep is ZooKeeper's enter: watch the ready node, make sure our node
// exists, count the participants; create the ready node if we complete the
// count, else wait for it.
func (b *Barrier) enterStep(ctx context.Context) (<-chan zkclient.WatchEvent, bool, error) {
	ready := joinPath(b.path, readyName)
	for {
		ok, rst, w, err := b.existsW(ctx, ready)
		if err != nil {
			return nil, false, err
		}
		if !b.hasNode {
			if err := b.join(ctx); err != nil {
				return nil, false, err
			}
		}
		names, err := b.participants(ctx)
		if err != nil {
			return nil, false, err
		}
		if !slices.Contains(names, b.id) {
			if b.s.zk.SessionID() != b.owner {
				return nil, false, ErrSessionExpired
			}
			b.hasNode = false // deleted by someone else: enter again
			continue
		}
		if len(names) >= b.count {
			_, _, err := b.s.zk.Create(ctx, ready, nil, b.s.acl, zkclient.Persistent, 0)
			if err != nil && !errors.Is(err, zkclient.ErrNodeExists) {
				return nil, false, err
			}
			return nil, true, nil
		}
		if ok {
			// Made after our node, for a round we are in; or we come late to
			// an open barrier and a participant of its round is still there.
			if rst.Czxid > b.czxid {
				return nil, true, nil
			}
			open, err := b.memberOf(ctx, names, rst.Czxid)
			if err != nil || open {
				return nil, open, err
			}
			// A ready node older than us with none of its round around was
			// left by participants that died: delete it, if it is still
			// that node, and wait for our round's.
			ok, now, err := b.exists(ctx, ready)
			if err != nil {
				return nil, false, err
			}
			if ok && now.Czxid == rst.Czxid {
				if err := b.s.zk.Delete(ctx, ready, AnyVersion); err != nil && !errors.Is(err, zkclient.ErrNoNode) {
					return nil, false, err
				}
			}
			continue
		}
		return w, false, nil
	}
}

// leaveStep is ZooKeeper's leave: if nobody is left, done; if we are alone,
// delete the ready node and ours, done; if we are the lowest, wait for the
// highest; else delete ours and wait for the lowest.
func (b *Barrier) leaveStep(ctx context.Context) (<-chan zkclient.WatchEvent, bool, error) {
	for {
		names, err := b.participants(ctx)
		if err != nil {
			return nil, false, err
		}
		slices.Sort(names)
		present := slices.Contains(names, b.id)
		if b.hasNode && !present {
			if b.s.zk.SessionID() != b.owner {
				return nil, false, ErrSessionExpired
			}
			b.hasNode = false // deleted by someone else: we are out
		}
		var target string
		switch {
		case len(names) == 0:
			return nil, true, nil
		case present && len(names) == 1:
			if err := b.delete(ctx, joinPath(b.path, readyName)); err != nil {
				return nil, false, err
			}
			if err := b.delete(ctx, b.node); err != nil {
				return nil, false, err
			}
			b.hasNode = false
			return nil, true, nil
		case present && names[0] == b.id:
			target = names[len(names)-1]
		default:
			if present {
				if err := b.delete(ctx, b.node); err != nil {
					return nil, false, err
				}
				b.hasNode = false
			}
			target = names[0]
		}
		ok, _, w, err := b.existsW(ctx, joinPath(b.path, target))
		if err != nil {
			return nil, false, err
		}
		if ok {
			return w, false, nil
		}
	}
}

// join creates our node. The create runs in a goroutine of the session that
// deletes the node should ctx end first, so that no node is left behind to
// count as a participant.
func (b *Barrier) join(ctx context.Context) error {
	type result struct {
		owner, czxid int64
		err          error
	}
	ch := make(chan result)
	gaveUp := make(chan struct{})
	started := b.s.recipes.Go(func() {
		owner, czxid, err := b.create()
		select {
		case ch <- result{owner, czxid, err}:
		case <-gaveUp:
			if err == nil {
				b.s.deleteIfOurs(b.node, owner, nil)
			}
		}
	})
	if !started {
		return ErrClosed
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return b.s.opErr("create", b.node, r.err)
		}
		b.owner, b.czxid, b.hasNode = r.owner, r.czxid, true
		return nil
	case <-ctx.Done():
		close(gaveUp)
		return ctx.Err()
	case <-b.s.closing:
		close(gaveUp)
		return ErrClosed
	}
}

// create makes our ephemeral node, or finds it made by an earlier attempt
// whose reply was lost, and returns its owner and creation zxid. It blocks;
// join calls it.
func (b *Barrier) create() (owner, czxid int64, err error) {
	ctx := context.Background() // join waits, or gives the node up
	for range 5 {
		sid := b.s.zk.SessionID()
		before := b.tried.Swap(sid)
		_, _, err := b.s.zk.Create(ctx, b.node, b.data, b.s.acl, zkclient.Ephemeral, 0)
		if errors.Is(err, zkclient.ErrNoNode) {
			// The barrier's container was removed after its last round.
			if err := b.s.createParents(ctx, b.node, zkclient.Container, b.s.parentACL); err != nil {
				return 0, 0, err
			}
			continue
		}
		if err != nil && !errors.Is(err, zkclient.ErrNodeExists) {
			return 0, 0, err
		}
		st, err := b.s.zk.Exists(ctx, b.node)
		if err != nil {
			return 0, 0, err
		}
		if st == nil {
			continue // its session just ended
		}
		if st.EphemeralOwner == before && before != 0 && before != sid {
			// Our own create, in a session that has ended since (its reply
			// was lost); the server has not deleted the node yet. It is
			// ours to remove.
			if err := b.s.zk.Delete(ctx, b.node, st.Version); err != nil && !errors.Is(err, zkclient.ErrNoNode) {
				return 0, 0, err
			}
			continue
		}
		if st.EphemeralOwner != sid && st.EphemeralOwner != b.s.zk.SessionID() {
			return 0, 0, duplicateID(b.id, st.EphemeralOwner)
		}
		return st.EphemeralOwner, st.Czxid, nil
	}
	return 0, 0, zkclient.ErrNoNode
}

// participants returns the names of the participants' nodes (ready left
// out); none if the barrier's node is gone.
func (b *Barrier) participants(ctx context.Context) ([]string, error) {
	children, err := b.s.Children(ctx, b.path)
	if errors.Is(err, ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(children, func(c string) bool { return c == readyName }), nil
}

// memberOf reports whether a participant other than us entered before the
// ready node made at zxid was created, i.e. took part in its round.
func (b *Barrier) memberOf(ctx context.Context, names []string, zxid int64) (bool, error) {
	for _, name := range names {
		if name == b.id {
			continue
		}
		ok, st, err := b.exists(ctx, joinPath(b.path, name))
		if err != nil {
			return false, err
		}
		if ok && st.Czxid < zxid {
			return true, nil
		}
	}
	return false, nil
}

func (b *Barrier) exists(ctx context.Context, path string) (bool, *Stat, error) {
	return b.s.Exists(ctx, path)
}

// existsW sets a raw watch, waited on directly by wait.
func (b *Barrier) existsW(ctx context.Context, path string) (bool, *Stat, <-chan zkclient.WatchEvent, error) {
	if err := b.s.check(ctx, "exists", path); err != nil {
		return false, nil, nil, err
	}
	st, ch, err := b.s.zk.ExistsW(ctx, path)
	if err != nil {
		return false, nil, nil, b.s.opErr("exists", path, err)
	}
	return st != nil, stat(st), ch, nil
}

// delete deletes a node; one already gone is no error.
func (b *Barrier) delete(ctx context.Context, path string) error {
	err := b.s.Delete(ctx, path, AnyVersion)
	if errors.Is(err, ErrNoNode) {
		return nil
	}
	return err
}
