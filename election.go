package lighthouse

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
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

// MaxIDLength bounds participant and node IDs, in bytes.
const MaxIDLength = 1024

// Node names follow Apache Curator's LeaderLatch with protection:
// "_c_" + a random UUID + "-latch-" + ZooKeeper's 10-digit sequence, the
// node's data being the participant's ID. Participants sort by sequence.
const (
	protectedPrefix = "_c_"
	latchName       = "latch-"
)

// RecipeOption configures a recipe's participant (Elect).
type RecipeOption func(*recipeOptions)

type recipeOptions struct {
	id    string
	idSet bool
	data  []byte
}

// WithID sets this participant's ID, which peers see (default: the host
// name). It is stored in the participant's node. An empty ID is
// ErrInvalidID.
func WithID(id string) RecipeOption {
	return func(o *recipeOptions) { o.id, o.idSet = id, true }
}

// WithData stores data in the participant's node beside its ID (Elect).
// Apache Curator peers read the whole node as the ID, so leave it out where
// Go and Java share an election.
func WithData(data []byte) RecipeOption {
	return func(o *recipeOptions) { o.data = data }
}

func newRecipeOptions(opts []RecipeOption) (recipeOptions, error) {
	var o recipeOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !o.idSet {
		host, err := os.Hostname()
		if err != nil {
			return o, fmt.Errorf("%w: no WithID and no host name: %v", ErrInvalidID, err)
		}
		o.id = host
	}
	if err := validateID(o.id); err != nil {
		return o, err
	}
	return o, nil
}

func validateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidID)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(id), MaxIDLength)
	case strings.ContainsAny(id, "\x00/"):
		return fmt.Errorf("%w %s: contains NUL or '/'", ErrInvalidID, quote(id))
	}
	return nil
}

// encodeParticipant and decodeParticipant give a participant node's data:
// the ID, then, if there is any, a NUL byte and the participant's data.
func encodeParticipant(id string, data []byte) []byte {
	if data == nil {
		return []byte(id)
	}
	return append(append([]byte(id), 0), data...)
}

func decodeParticipant(b []byte) (id string, data []byte) {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i]), b[i+1:]
	}
	return string(b), nil
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
	// unknown). A participant is told only when its own position changes,
	// so behind other followers it can be stale; use Observe to follow the
	// leader.
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
// Each participant watches only the node before its own, so a change of
// leader wakes one participant however many wait. On connection loss a
// leader is revoked at once; if the same session comes back while its node
// still leads, it leads again with the same Token. After expiry the
// participant rejoins, at the back, on the new session.
func (s *Session) Elect(ctx context.Context, path string, opts ...RecipeOption) (<-chan Leadership, error) {
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
	unregister := s.onClose(stop)
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

	node     string // our node's name, "" when we have none
	guid     string // the UUID of a create not yet known to have worked
	session  int64  // the session our node belongs to
	czxid    int64  // our node's creation zxid: the token when leading
	orphans  []string
	l        *loop // run's: its watches are ours (watchSelf, watchPred)
	predLead bool  // our predecessor is the leader

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
// watches it, so that we learn at once if someone else deletes it.
func (e *election) adopt(name string) error {
	st, ch, err := e.s.zk.ExistsW(bg, joinPath(e.path, name))
	if err == nil && st == nil {
		err = zkclient.ErrNoNode
	}
	if err == nil && st.EphemeralOwner != e.l.st.ID {
		return errNotOurs
	}
	if err != nil {
		e.orphans = append(e.orphans, name)
		e.guid = ""
		return err
	}
	e.node, e.czxid, e.session, e.guid = name, st.Czxid, st.EphemeralOwner, ""
	e.l.watch[watchSelf] = ch
	return nil
}

// run is the participant's goroutine. It reports the outcome of its first
// attempt to join on joined; a lasting error there ends it.
func (e *election) run(ctx context.Context, joined chan<- error) {
	e.ctx = ctx
	defer e.out.Close()
	defer e.releases.Close()
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
		e.revoke()
		if why != ErrClosed { // the session's close deletes our node
			e.leave()
		}
	}
	l.run(ctx, joined)
}

// Watches of a participant.
const (
	watchSelf = iota // our own node
	watchPred        // our predecessor
)

// fired takes the firing of a watch and reports whether to look again.
func (e *election) fired(i int, ev zkclient.WatchEvent) bool {
	if i == watchSelf {
		switch ev.Type {
		case zkclient.EventNodeDeleted:
			// Someone else deleted our node: whoever is next may lead now,
			// so we must not. Join again at the back.
			e.revoke()
			e.drop()
			return true
		case zkclient.EventNodeDataChanged:
			return true // re-arm the watch
		}
		// The session ended: its state change tells us what to do, and a
		// look now would block on a connection being rebuilt.
		return false
	}
	e.s.stats.predWatches.Add(1)
	e.m.predecessorGone(e, ev)
	if ev.Type == zkclient.EventNodeDeleted && e.predLead && e.l.st.Connected && e.selfIntact() {
		// Our predecessor led; nothing can have come in between, so we lead
		// now, without another read.
		e.lead(e.id)
		return false
	}
	return true
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
		if err := e.join(); err != nil {
			return err
		}
	}
	if e.l.watch[watchSelf] == nil { // re-arm the watch on our node (its data changed)
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
			e.lead(e.id)
			return nil
		}
		e.revoke()
		pred := queue[me-1]
		pst, ch, err := e.s.zk.ExistsW(bg, joinPath(e.path, pred))
		if err != nil {
			return err
		}
		if pst == nil {
			continue // gone meanwhile; look again
		}
		e.l.watch[watchPred], e.predLead = ch, me == 1
		leader, err := e.participantID(queue[0])
		if err != nil && !errors.Is(err, zkclient.ErrNoNode) {
			return err
		}
		e.publish(Leadership{ID: e.id, Leader: leader, Context: doneCtx, e: e})
		return nil
	}
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
	id, _ := decodeParticipant(data)
	if e.names == nil || len(e.names) > 64 {
		e.names = make(map[string]string)
	}
	e.names[name] = id
	return id, nil
}

// lead grants leadership if we do not hold it already.
func (e *election) lead(leader string) {
	if e.leading {
		return
	}
	// Derived from run's context, so cancelling Elect's ctx ends the
	// leadership at that instant, before the node is deleted.
	ctx, cancel := context.WithCancel(e.ctx)
	e.grant++
	e.leading, e.cancel = true, cancel
	e.publish(Leadership{ID: e.id, IsLeader: true, Leader: leader, Token: e.czxid, Context: ctx, e: e, grant: e.grant, node: joinPath(e.path, e.node)})
	e.s.emit(Event{Type: EventElected, SessionID: e.session, Path: e.path})
}

// revoke ends our leadership, if any, at once.
func (e *election) revoke() {
	if !e.leading {
		return
	}
	e.cancel()
	e.leading = false
	e.publish(Leadership{ID: e.id, Context: doneCtx, e: e})
	e.s.emit(Event{Type: EventRevoked, SessionID: e.session, Path: e.path})
}

// drop forgets our node and the watches that go with it.
func (e *election) drop() {
	e.node, e.l.watch = "", [2]<-chan zkclient.WatchEvent{}
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
		e.s.deleteEphemeral(joinPath(e.path, n), e.session)
	}
	e.orphans = nil
}

// electionNodes returns the election's participant nodes in queue order,
// leaving out children that are not LeaderLatch nodes.
func electionNodes(children []string) []string {
	queue := children[:0:0]
	for _, c := range children {
		if prefix, _, ok := ParseSequence(c); ok && strings.HasSuffix(prefix, latchName) {
			queue = append(queue, c)
		}
	}
	SortSequential(queue)
	return queue
}

// bg is the context of an election's calls: they are not abandoned
// half-way, lest a create that happened be lost track of.
var bg = context.Background()

// newUUID returns a random (version 4) UUID in canonical form, as Curator's
// protected names use.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Participant is one participant of an election, as Participants, Leader
// and Observe report it.
type Participant struct {
	ID       string
	Data     []byte // set with WithData, nil otherwise
	IsLeader bool
	Node     string // the name of its node under the election path
	Token    int64  // the zxid that created its node: its token when it leads
}

// Participants returns the participants of the election at path in queue
// order, the leader first. It does not join the election.
func (s *Session) Participants(ctx context.Context, path string) ([]Participant, error) {
	if err := s.check("participants", path); err != nil {
		return nil, err
	}
	children, _, err := s.zk.Children(ctx, path)
	if err != nil {
		return nil, s.opErr("participants", path, err)
	}
	var out []Participant
	for _, name := range electionNodes(children) {
		data, st, err := s.zk.Get(ctx, joinPath(path, name))
		if errors.Is(err, zkclient.ErrNoNode) {
			continue // left meanwhile
		}
		if err != nil {
			return nil, s.opErr("participants", path, err)
		}
		id, pdata := decodeParticipant(data)
		out = append(out, Participant{ID: id, Data: pdata, IsLeader: len(out) == 0, Node: name, Token: st.Czxid})
	}
	return out, nil
}

// Leader returns the leader of the election at path, or ErrNoLeader.
func (s *Session) Leader(ctx context.Context, path string) (Participant, error) {
	ps, err := s.Participants(ctx, path)
	if err != nil {
		return Participant{}, opError("leader", path, err)
	}
	if len(ps) == 0 {
		return Participant{}, &OpError{Op: "leader", Path: path, Err: ErrNoLeader}
	}
	return ps[0], nil
}

// Observe follows the leader of the election at path without joining it.
// The channel delivers the leader (IsLeader true) each time it changes, and
// a zero Participant while there is none; first value at once. It carries
// only the newest value and never blocks the session. It is closed when ctx
// ends or the session closes.
//
// An observer watches only the leader's node (or, with no participant, the
// election's children), so it is woken once per change of leader.
func (s *Session) Observe(ctx context.Context, path string) (<-chan Participant, error) {
	if err := validatePath(path); err != nil {
		return nil, opError("observe", "", err)
	}
	out := actor.NewOutbox[Participant](1, nil)
	if err := s.startRecipe(ctx, func(first chan<- error) { s.observe(ctx, path, out, first) }); err != nil {
		return nil, opError("observe", path, err)
	}
	return out.C(), nil
}

func (s *Session) observe(ctx context.Context, path string, out *actor.Outbox[Participant], first chan<- error) {
	defer out.Close()
	var last Participant
	started := false
	l := &loop{s: s, op: "observe", path: path}
	// With no participant, watch the children for the first; else the
	// leader alone (newcomers join at the back), with no children watch
	// left behind to fire for nothing.
	empty := false
	l.look = func() error {
		for {
			var children []string
			var ch <-chan zkclient.WatchEvent
			var err error
			if empty {
				children, _, ch, err = s.zk.ChildrenW(ctx, path)
			} else {
				children, _, err = s.zk.Children(ctx, path)
			}
			if errors.Is(err, zkclient.ErrNoNode) {
				var st *zkclient.Stat
				if st, ch, err = s.zk.ExistsW(ctx, path); err == nil && st != nil {
					continue // created meanwhile
				}
			}
			if err != nil {
				return err
			}
			queue := electionNodes(children)
			if len(queue) == 0 && ch == nil {
				empty = true // read again, with a watch
				continue
			}
			empty = len(queue) == 0
			if empty {
				l.watch[0] = ch
				s.publishLeader(out, &last, Participant{}, started)
				started = true
				return nil
			}
			// Watch the leader alone: newcomers join at the back.
			data, stat, lch, err := s.zk.GetW(ctx, joinPath(path, queue[0]))
			if errors.Is(err, zkclient.ErrNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			l.watch[0] = lch
			id, pdata := decodeParticipant(data)
			s.publishLeader(out, &last, Participant{ID: id, Data: pdata, IsLeader: true, Node: queue[0], Token: stat.Czxid}, started)
			started = true
			return nil
		}
	}
	l.run(ctx, first)
}

// publishLeader sends p if it differs from the last value sent.
func (s *Session) publishLeader(out *actor.Outbox[Participant], last *Participant, p Participant, started bool) {
	if started && p.Node == last.Node {
		return
	}
	*last = p
	out.Put(p)
}
