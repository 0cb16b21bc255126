package lighthouse

import (
	"context"
	"errors"
	"strings"

	"github.com/lighthouse-zk/lighthouse/internal/actor"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// Election events.
const (
	EventElected EventType = iota + 100 // this participant leads (Path: the election)
	EventRevoked                        // this participant's leadership ended
)

func init() {
	eventNames[EventElected] = "elected"
	eventNames[EventRevoked] = "revoked"
}

// Leadership is one participant's view of an election, delivered by Elect
// each time it changes.
//
// Three ways to act only while leading, from cheapest to strongest: Valid
// is local (no round trip) and holds within its stated assumptions about
// pauses and clocks; Token is for external storage that checks it against
// the newest token it has seen; Guard is for writes to ZooKeeper itself:
// a transaction with it commits only if this leader's node still exists,
// in ZooKeeper's own order, however long this process was paused.
type Leadership struct {
	ID       string // this participant
	IsLeader bool
	// Leader is the leader's ID as this participant last learned it ("" if
	// unknown). A participant is told when its own position changes and,
	// once second in line, when the leader ahead of it leaves; further back
	// it can be stale. Use Observe to follow the leader.
	Leader string
	// Token is the fencing token of this leadership, 0 when not leading: the
	// zxid that created the leader's node. ZooKeeper's zxids increase with
	// every write, and a node can only lead once every node created before it
	// in the election is gone, so each new leadership of a path has a larger
	// token than every earlier one. Pass it to storage that must reject a
	// deposed leader's writes.
	Token int64
	// Context is done the moment this leadership ends: on Release, when the
	// connection is lost (Suspended), on expiry, when Elect's ctx ends or
	// the session closes. It is already done when IsLeader is false.
	Context context.Context

	e     *election
	grant uint64 // which grant of e this is: a Leadership names one grant, not one token
	node  string // the leader's node (its path, as the caller's), "" when not leading
}

// Release gives up this leadership but stays in the election: the
// participant re-enters at the back of the queue (and leads again at once,
// with a new token, if it is alone). It does nothing if this leadership has
// already ended.
func (l Leadership) Release() {
	if l.e != nil && l.IsLeader {
		l.e.releases.Put(l.grant)
	}
}

// Valid reports whether this leadership still holds as far as this process
// can tell without a round trip: it has not ended, and the server has been
// heard from within two thirds of the session timeout.
//
// The guarantee: the server expires a silent session only after the session
// timeout, and only then can another participant be elected; the client
// declares the connection lost after two thirds of it. So, if clocks run at
// roughly the same rate, a leader stops being Valid before anyone else can
// lead. A process paused longer than that (a long GC pause, SIGSTOP) wakes
// with Valid false even before its Context is cancelled; check Valid right
// before acting on leadership, and pass Token along to storage.
func (l Leadership) Valid() bool {
	if !l.IsLeader || l.Context.Err() != nil || l.e == nil {
		return false
	}
	return l.e.s.heardWithin(l.e.s.SessionTimeout() * 2 / 3)
}

// doneCtx is the Context of a Leadership that does not lead.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Elect joins the election at path (created, with its parents, if missing)
// and returns once this participant's node exists. The channel delivers this
// participant's Leadership each time it changes, first value at once.
//
// It carries only the newest state: a slow reader never blocks the session,
// and skips states it was too slow to see (a skipped leadership's Context is
// already done). Cancelling ctx leaves the election (the participant's node
// is deleted at once) and then closes the channel; so does closing the
// session.
//
// Each participant watches only the two nodes before its own, so a change
// of leader wakes at most two participants however many wait, and the next
// leader learns it leads from its predecessor's deletion alone, without a
// read. On connection loss a leader is revoked at once; if the same session
// comes back while its node still leads, it leads again with the same
// Token. After expiry the participant rejoins, at the back, on the new
// session.
func (s *Session) Elect(ctx context.Context, path string, opts ...RecipeOption) (<-chan Leadership, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opError("elect", path, err)
	}
	o, err := newRecipeOptions(opts)
	if err != nil {
		return nil, opError("elect", path, err)
	}
	if err := validatePath(path); err != nil {
		return nil, opError("elect", "", err)
	}
	data := encodeParticipant(o.id, o.data)
	// The node's name as the server makes it: a UUID and 10 digits added.
	node := joinPath(path, protectedPrefix+newUUID()+"-"+latchName+"0000000000")
	if err := s.checkWrite(node, data, s.acl); err != nil {
		return nil, opError("elect", path, err)
	}
	e := &election{
		s:    s,
		path: path,
		id:   o.id,
		data: data,
		out:  actor.NewOutbox[Leadership](1, nil),
	}
	// The participant's goroutine joins, so that it alone owns the node,
	// also when ctx ends while the node is being created.
	runCtx, stop := context.WithCancel(ctx)
	unregister := s.onClose(stop, &e.held)
	err = s.startRecipe(ctx, func(joined chan<- error) {
		defer unregister()
		defer stop()
		e.run(runCtx, joined)
	})
	if err != nil {
		stop()
		unregister()
		return nil, opError("elect", path, err)
	}
	return e.out.C(), nil
}

// election is one participant. Its fields belong to run.
type election struct {
	s    *Session
	path string
	id   string
	data []byte

	out      *actor.Outbox[Leadership]
	releases actor.Mailbox[uint64] // grants to release
	ctx      context.Context       // run's: leaderships derive from it

	node    string // our node's name, "" when we have none
	guid    string // the UUID of a create not yet known to have worked
	session int64  // the session our node belongs to
	czxid   int64  // our node's creation zxid: the token when leading
	orphans []string
	held    heldNode // node, for Close
	l       *loop    // run's: its watches are ours (watchSelf, watchPred, watchGP)

	// Our place, as our last children read found it and the watches since
	// have narrowed it: ahead is how many nodes were before ours; pred and gp
	// are the last two of them, which we watch. predLead: every node before
	// ours but pred is known gone, so pred leads while it exists.
	ahead    int
	pred, gp string
	predLead bool

	leading bool
	grant   uint64 // counts grants; the current one while leading
	cancel  context.CancelFunc
	last    Leadership
	names   map[string]string // node name -> participant ID, for Leader
	m       electionMetrics
}

// join creates our node (the client's goroutines may block; called from run
// only). Its name carries a UUID, kept until a create is known to have
// worked: a create whose reply was lost may have made the node all the same,
// so the next attempt looks for that UUID before creating another node,
// which would otherwise stay ahead of us in the queue as a ghost.
func (e *election) join() error {
	if e.guid == "" {
		e.guid = newUUID()
	} else if found, err := e.findPending(); err != nil || found {
		return err
	}
	node := joinPath(e.path, protectedPrefix+e.guid+"-"+latchName)
	created, _, err := e.s.zk.Create(bg, node, e.data, e.s.acl, zkclient.EphemeralSequential, 0)
	if errors.Is(err, zkclient.ErrNoNode) { // the election's node is missing: make it
		if err = e.s.createParents(bg, node, zkclient.Persistent, e.s.parentACL); err == nil {
			created, _, err = e.s.zk.Create(bg, node, e.data, e.s.acl, zkclient.EphemeralSequential, 0)
		}
	}
	if err != nil {
		return err // a retry looks for the node first
	}
	return e.adopt(created[strings.LastIndexByte(created, '/')+1:])
}

// findPending looks for the node of an earlier create whose reply was lost,
// and adopts it if it is there. (If the session has changed since, it went
// with the old session and is not found.)
func (e *election) findPending() (bool, error) {
	children, _, err := e.s.zk.Children(bg, e.path)
	if err != nil && !errors.Is(err, zkclient.ErrNoNode) {
		return false, err
	}
	prefix := protectedPrefix + e.guid + "-"
	for _, c := range children {
		if !strings.HasPrefix(c, prefix) {
			continue
		}
		err := e.adopt(c)
		if errors.Is(err, errNotOurs) {
			// Made, but by a session that has ended since: the server
			// deletes it with that session. Create our own anew.
			e.guid = newUUID()
			return false, nil
		}
		return true, err
	}
	return false, nil
}

// errNotOurs: the node belongs to another session than the current one.
var errNotOurs = errors.New("node of another session")

// adopt makes name our node, reads its creation zxid (the token) and
// watches it, so that we learn at once if someone else deletes it. The
// watch is a child watch (see watchSelf).
func (e *election) adopt(name string) error {
	_, st, ch, err := e.s.zk.ChildrenW(bg, joinPath(e.path, name))
	if err == nil && st.EphemeralOwner != e.l.st.ID {
		return errNotOurs
	}
	if err != nil {
		e.orphans = append(e.orphans, name)
		e.guid = ""
		return err
	}
	e.node, e.czxid, e.session, e.guid = name, st.Czxid, st.EphemeralOwner, ""
	e.held.set(joinPath(e.path, name), e.session)
	e.l.watch[watchSelf] = ch
	return nil
}

// run is the participant's goroutine. It reports the outcome of its first
// attempt to join on joined; a lasting error there ends it.
func (e *election) run(ctx context.Context, joined chan<- error) {
	e.ctx = ctx
	defer e.out.Close()
	defer e.releases.Close()
	defer e.m.end() // before the channel closes: its reader sees the metric gone
	l := &loop{s: e.s, op: "elect", path: e.path}
	e.l = l
	l.look = func() error { return e.check(l.st) }
	l.state = func(prev, next sessionState) (bool, error) {
		if !next.Connected || next.ID != e.session {
			e.revoke()
		}
		if next.ID != e.session && next.ID != 0 {
			e.drop() // our node died with the old session
		}
		return true, nil
	}
	l.fired = e.fired
	l.poke = e.releases.Ready
	l.poked = e.release
	l.end = func(why error) {
		// Our leadership's Context ends before our node goes; the delete
		// then goes before the rest of revoke, so the next leader is told
		// as soon as can be.
		if e.leading {
			e.cancel()
		}
		if why != ErrClosed { // the session's close deletes our node
			e.leave()
		}
		e.revoke()
	}
	l.run(ctx, joined)
}

// Watches of a participant. The deletion of a leader's node fires three:
// its successor's pred watch, the next one's gp watch and the leader's own
// self watch. Only the first is on the path of the handover, and the server
// sends them one after another: all the data watches on the node, then its
// child watches. So pred is a data watch and the other two child watches,
// which on participants' nodes (ephemeral, so childless) fire only when the
// node is deleted: the successor is told first. (With three data watches it
// was told last a third of the time, about 40 µs later in BenchmarkFailover.)
const (
	watchSelf = iota // our own node (child watch)
	watchPred        // our predecessor (data watch)
	watchGP          // our grand-predecessor, the node before pred (child watch)
)

// fired takes the firing of a watch and reports whether to look again.
//
// Why a participant may lead on a watch alone. Sequence numbers only grow,
// so once our node exists no node can join before it: the nodes before
// ours are those our last children read found (ahead of them), less those
// deleted since, and a node that was first stays first until it is
// deleted. We lead only once each of them is known gone. A NodeDeleted
// event proves that its node is gone and nothing more; the client delivers
// events in the server's order, so an earlier deletion's event is already
// waiting on its channel when a later one's arrives. So:
//
//   - gp deleted, and it was first in our read (ahead == 2): every node
//     before pred is gone, so pred leads now (predLead). We learn it from
//     the deletion, with no read; this is what keeps the next handover off
//     the read path, as our predecessor most often became leader after we
//     last looked.
//   - gp deleted, with nodes before it we do not watch (ahead > 2): it
//     proves nothing about them; look again. This read is not on the path
//     of a handover to us: pred is still there (if it goes meanwhile, its
//     own event comes, and the read sees it).
//   - pred deleted, and predLead, or gp was first and its deletion came
//     before pred's: nothing is left before our node, so we lead at once,
//     if our own node's deletion has not come first (selfIntact).
//   - pred deleted otherwise (a follower left, or nodes we do not watch may
//     remain): look again.
//
// Only our successor (pred watch) and the one after it (gp watch) watch
// a node, so a change wakes at most two participants.
func (e *election) fired(i int, ev zkclient.WatchEvent) bool {
	switch i {
	case watchGP:
		e.s.stats.gpWatches.Add(1)
		if ev.Type == zkclient.EventNodeDeleted && e.ahead == 2 {
			e.predLeads()
			return false
		}
		return true
	case watchSelf:
		switch ev.Type {
		case zkclient.EventNodeDeleted:
			// Someone else deleted our node: whoever is next may lead now,
			// so we must not. Join again at the back.
			e.revoke()
			e.drop()
			return true
		case zkclient.EventNodeChildrenChanged:
			return true // re-arm the watch (our node cannot have children)
		}
		// The session ended: its state change tells us what to do, and a
		// look now would block on a connection being rebuilt.
		return false
	}
	e.s.stats.predWatches.Add(1)
	e.m.predecessorGone(e, ev)
	if ev.Type == zkclient.EventNodeDeleted && e.l.st.Connected && (e.predLead || e.gpGone()) && e.selfIntact() {
		e.lead(e.id)
		return false
	}
	return true
}

// predLeads records that every node before ours but pred is gone (gp was
// first, and its deletion came), and tells the reader who leads if we know.
func (e *election) predLeads() {
	e.ahead, e.gp, e.predLead = 1, "", true
	if id, ok := e.names[e.pred]; ok && !e.leading {
		e.publish(Leadership{ID: e.id, Leader: id, Context: doneCtx, e: e})
	}
}

// gpGone reports, as pred's deletion arrives, whether the deletion of gp,
// first in our read, came before it. Events come in the server's order, so
// if it did, it is waiting on gp's channel now.
func (e *election) gpGone() bool {
	if e.ahead != 2 {
		return false
	}
	select {
	case ev := <-e.l.watch[watchGP]:
		e.l.watch[watchGP] = nil
		e.s.stats.gpWatches.Add(1)
		return ev.Type == zkclient.EventNodeDeleted
	default:
		return false
	}
}

// release takes Release calls: the current grant's steps down, a stale
// one's does nothing.
func (e *election) release() bool {
	due := false
	for _, grant := range e.releases.Take() {
		if e.leading && grant == e.grant {
			e.revoke()
			e.orphans = append(e.orphans, e.node)
			e.drop()
			due = true
		}
	}
	return due
}

// check makes sure we have a node in the current session and then finds our
// place: lead, or watch our predecessor.
func (e *election) check(st sessionState) error {
	for len(e.orphans) > 0 {
		err := e.s.zk.Delete(bg, joinPath(e.path, e.orphans[0]), AnyVersion)
		if err != nil && !errors.Is(err, zkclient.ErrNoNode) {
			return err
		}
		e.orphans = e.orphans[1:]
	}
	if e.node == "" || e.session != st.ID {
		if e.s.isClosing() {
			return ErrClosed // Close deletes nodes: make none
		}
		if err := e.join(); err != nil {
			return err
		}
	}
	if e.l.watch[watchSelf] == nil { // re-arm the watch on our node
		if err := e.adopt(e.node); err != nil {
			if errors.Is(err, zkclient.ErrNoNode) || errors.Is(err, errNotOurs) {
				e.drop()
				return e.check(st)
			}
			return err
		}
	}
	for {
		children, _, err := e.s.zk.Children(bg, e.path)
		if err != nil {
			return err
		}
		e.s.stats.childReads.Add(1)
		queue := electionNodes(children)
		me := -1
		for i, c := range queue {
			if c == e.node {
				me = i
			}
		}
		if me < 0 {
			e.drop() // deleted behind our back: join again
			return e.check(st)
		}
		if me == 0 {
			if !e.leading {
				e.s.stats.readGrants.Add(1)
			}
			e.unwatchAhead()
			e.lead(e.id)
			return nil
		}
		e.revoke()
		if ok, err := e.watchAhead(queue[:me]); err != nil || !ok {
			if err != nil {
				return err
			}
			continue // one went meanwhile; look again
		}
		leader, err := e.participantID(queue[0])
		if err != nil && !errors.Is(err, zkclient.ErrNoNode) {
			return err
		}
		e.publish(Leadership{ID: e.id, Leader: leader, Context: doneCtx, e: e})
		return nil
	}
}

// watchAhead watches pred and gp, the last two of ahead (the nodes before
// ours in the queue just read), keeping a watch already set on the same
// node. It reports false if one is gone already.
func (e *election) watchAhead(ahead []string) (bool, error) {
	n := len(ahead)
	// Until both watches are set, we know nothing: an error half-way must
	// not leave what we knew of the old pred paired with a new one.
	e.ahead, e.predLead = 0, false
	if pred := ahead[n-1]; pred != e.pred || e.l.watch[watchPred] == nil {
		// GetW, not ExistsW: the same request gives pred's ID, for Leader
		// when pred comes to lead.
		data, _, ch, err := e.s.zk.GetW(bg, joinPath(e.path, pred))
		if errors.Is(err, zkclient.ErrNoNode) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		e.remember(pred, data)
		e.pred, e.l.watch[watchPred] = pred, ch
	}
	if n == 1 {
		e.gp, e.l.watch[watchGP] = "", nil
	} else if gp := ahead[n-2]; gp != e.gp || e.l.watch[watchGP] == nil {
		_, _, ch, err := e.s.zk.ChildrenW(bg, joinPath(e.path, gp))
		if errors.Is(err, zkclient.ErrNoNode) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		e.gp, e.l.watch[watchGP] = gp, ch
	}
	e.ahead, e.predLead = n, n == 1
	return true, nil
}

// unwatchAhead forgets pred and gp (their watches, if still set, fire into
// channels nobody reads, and are dropped).
func (e *election) unwatchAhead() {
	e.pred, e.gp, e.ahead, e.predLead = "", "", 0, false
	e.l.watch[watchPred], e.l.watch[watchGP] = nil, nil
}

// participantID reads the ID in a participant's node, remembering it.
func (e *election) participantID(name string) (string, error) {
	if id, ok := e.names[name]; ok {
		return id, nil
	}
	data, _, err := e.s.zk.Get(bg, joinPath(e.path, name))
	if err != nil {
		return "", err
	}
	return e.remember(name, data), nil
}

// remember keeps the ID in a participant node's data, for Leader.
func (e *election) remember(name string, data []byte) string {
	id, _ := decodeParticipant(data)
	if e.names == nil || len(e.names) > 64 {
		e.names = make(map[string]string)
	}
	e.names[name] = id
	return id
}

// lead grants leadership if we do not hold it already.
func (e *election) lead(leader string) {
	if e.leading || e.s.isClosing() {
		return
	}
	// Derived from run's context, so cancelling Elect's ctx ends the
	// leadership at that instant, before the node is deleted.
	ctx, cancel := context.WithCancel(e.ctx)
	e.grant++
	e.leading, e.cancel = true, cancel
	e.held.leads(cancel)
	e.publish(Leadership{ID: e.id, IsLeader: true, Leader: leader, Token: e.czxid, Context: ctx, e: e, grant: e.grant, node: joinPath(e.path, e.node)})
	e.s.emit(Event{Type: EventElected, SessionID: e.session, Path: e.path})
}

// revoke ends our leadership, if any, at once.
func (e *election) revoke() {
	if !e.leading {
		return
	}
	e.cancel()
	e.held.leads(nil)
	e.leading = false
	e.publish(Leadership{ID: e.id, Context: doneCtx, e: e})
	e.s.emit(Event{Type: EventRevoked, SessionID: e.session, Path: e.path})
}

// drop forgets our node and the watches that go with it.
func (e *election) drop() {
	e.node = ""
	e.held.clear()
	e.l.watch[watchSelf] = nil
	e.unwatchAhead()
}

// selfIntact reports whether our node's watch has not fired. The client
// delivers watch events in the server's order, so if our node was deleted
// before our predecessor, that event is already waiting here when the
// predecessor's arrives.
func (e *election) selfIntact() bool {
	self := e.l.watch[watchSelf]
	select {
	case ev := <-self:
		e.l.watch[watchSelf] = nil
		if ev.Type == zkclient.EventNodeDeleted {
			e.revoke()
			e.drop()
		}
		return false // look again (and re-arm the watch)
	default:
		return self != nil
	}
}

func (e *election) publish(l Leadership) {
	if l.IsLeader == e.last.IsLeader && l.Leader == e.last.Leader && l.Token == e.last.Token && l.grant == e.last.grant && e.last.ID != "" {
		return
	}
	e.last = l
	e.m.published(e, l)
	e.out.Put(l)
}

// leave deletes our node so the next participant takes over at once.
func (e *election) leave() {
	if e.node != "" {
		e.orphans = append(e.orphans, e.node)
		e.drop()
	}
	for _, n := range e.orphans {
		e.s.deleteEphemeral(joinPath(e.path, n), e.session, nil)
	}
	e.orphans = nil
}
