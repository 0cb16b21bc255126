package lighthouse

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// memberSet keeps the member set of one service current for the goroutine
// that owns it (a Members or a Balancer), whose loop it drives.
//
// It follows the service with one persistent recursive watch on the
// service node (ZooKeeper 3.6 and later). Each event names the member it is
// about: a join or an Update costs one read of that member's node, a leave
// costs none, and the names are never listed again. The server sends no
// events for changes made while the connection is down, so after a
// reconnect every member is read again once (as after a new session), and
// only what differs from the cache makes a new set.
//
// Without persistent watches (a server before 3.6 answers ErrUnimplemented)
// it falls back to one-shot children watches: each change lists the names
// (one read) and reads the nodes of names not seen before. The parent's
// child version (Cversion) tells whether the names alone explain every
// change since the last list; when they do not (a member left and
// registered again in between) every cached member is checked (Exists). A
// member's data is then read once per node: an Update is not seen. Each new
// session tries persistent watches again.
//
// The set is a MemberSet, changed in place of a chunk per change, so a
// change costs no work over all members: MemberSets delivers it as it is,
// Members copies it into the new slice it delivers.
type memberSet struct {
	s     *Session
	path  string
	check func([]byte) error // nil, or why a member's data is left out
	l     *loop
	ready bool // read at least once

	cache   map[string]member // every member read, the bad ones included
	set     MemberSet         // the good members
	changed bool              // the set differs from the one last returned by sync
	// renewed, if not nil, is told of each member that left or registered
	// again (its node is new).
	renewed func(id string)

	// With a persistent watch.
	w       *zkclient.Watcher
	oneShot bool                // no persistent watches: follow with ChildrenW
	resync  bool                // the watch may have missed changes: read every member
	gen     uint64              // the session state's Gen when w was last in step
	pending map[string]struct{} // members an event said to read, not read yet

	// With one-shot watches.
	names    map[string]bool // children at the last list
	cversion int32           // the service node's Cversion at the last list
	pczxid   int64           // the service node's Czxid, 0 if it did not exist

	m memberMetrics
}

// member is one instance as a memberSet knows it.
type member struct {
	Node
	czxid   int64 // the zxid that created its node: new when it registers again
	version int32 // its data's version: new after each Update
	bad     bool  // its data does not decode: left out of the set
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
	return &memberSet{s: s, path: path, cache: make(map[string]member), pending: make(map[string]struct{})}
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
		if next.ID != prev.ID && next.ID != 0 {
			// A new session lost every watch: read the whole set again.
			m.w, l.events, l.watch[0] = nil, nil, nil
			m.oneShot, m.pczxid = false, 0
			return true, nil
		}
		if next.Connected && next.Gen != m.gen && m.w != nil {
			// The same session is back; its persistent watch heard nothing
			// while the connection was down. (One-shot watches are told
			// what they missed when the client sets them again.)
			m.resync = true
			return true, nil
		}
		return false, nil
	}
	l.end = func(why error) {
		m.m.end()
		if m.w != nil && why != ErrClosed { // closing the client ends its watches
			// Else the server would keep sending and the client queueing.
			ctx, cancel := context.WithTimeout(bg, endWait) // it unregisters at once
			defer cancel()
			m.w.Remove(ctx)
		}
	}
	return l
}

// sync brings the set up to date and reports whether it differs from the
// one it last returned (always true on the first success).
func (m *memberSet) sync() (changed bool, err error) {
	if m.oneShot {
		err = m.relist()
	} else {
		err = m.follow()
	}
	if err != nil {
		return false, err
	}
	changed = !m.ready || m.changed
	m.m.synced(m, m.set.Len(), changed, m.ready)
	m.ready, m.changed = true, false
	return changed, nil
}

// follow applies the events of the persistent watch, setting it first.
func (m *memberSet) follow() error {
	if m.w == nil {
		m.gen = m.l.st.Gen
		w, err := m.s.zk.AddWatch(bg, m.path, true)
		if errors.Is(err, zkclient.ErrUnimplemented) {
			m.oneShot = true
			return m.relist()
		}
		if err != nil {
			return err
		}
		m.w, m.l.events, m.resync = w, w.Events(), true
	}
	if m.resync {
		m.gen = m.l.st.Gen
		m.w.Take() // the reads below see all they report
		clear(m.pending)
		if err := m.readAll(); err != nil {
			return err
		}
		m.resync = false
		return nil
	}
	prefix := m.path + "/"
	for _, ev := range m.w.Take() {
		switch {
		case ev.Type == zkclient.EventLost:
			// The session ended, the client closed, or the server refused
			// to take the watch back on a reconnect: set it again and read
			// the members afresh (on a new session, AddWatch fails until
			// the state hook's look).
			m.w, m.l.events = nil, nil
			return m.follow()
		case ev.Path == m.path:
			// The service node itself: created (its members come with
			// their own events) or, a container, removed once empty.
			if ev.Type == zkclient.EventNodeDeleted {
				m.dropAll()
			}
		case strings.HasPrefix(ev.Path, prefix) && !strings.Contains(ev.Path[len(prefix):], "/"):
			id := ev.Path[len(prefix):]
			switch ev.Type {
			case zkclient.EventNodeCreated, zkclient.EventNodeDataChanged:
				m.pending[id] = struct{}{}
			case zkclient.EventNodeDeleted:
				delete(m.pending, id)
				m.drop(id)
			}
		}
		// Deeper nodes are not members.
	}
	if len(m.pending) == 0 {
		return nil
	}
	ids := make([]string, 0, len(m.pending))
	for id := range m.pending {
		ids = append(ids, id)
	}
	return m.get(ids)
}

// readAll lists the members and reads each of them: the set afresh, with
// only what changed reported.
func (m *memberSet) readAll() error {
	m.s.memberReads.Add(1)
	names, _, err := m.s.zk.Children(bg, m.path)
	if errors.Is(err, zkclient.ErrNoNode) {
		m.dropAll()
		return nil
	}
	if err != nil {
		return err
	}
	now := make(map[string]bool, len(names))
	for _, id := range names {
		now[id] = true
	}
	for id := range m.cache {
		if !now[id] {
			m.drop(id)
		}
	}
	return m.get(names)
}

// relist lists the names with a one-shot watch and reads what is new.
func (m *memberSet) relist() error {
	for {
		m.s.memberReads.Add(1)
		children, stat, ch, err := m.s.zk.ChildrenW(bg, m.path)
		if errors.Is(err, zkclient.ErrNoNode) {
			m.s.memberReads.Add(1)
			st, ech, err := m.s.zk.ExistsW(bg, m.path)
			if err != nil {
				return err
			}
			if st != nil {
				continue // created meanwhile
			}
			m.l.watch[0] = ech // follow the service once it is created
			m.dropAll()
			m.names, m.pczxid, m.cversion = nil, 0, 0
			return nil
		}
		if err != nil {
			return err
		}
		m.l.watch[0] = ch
		now := make(map[string]bool, len(children))
		for _, c := range children {
			now[c] = true
		}
		var read []string
		if stat.Czxid != m.pczxid || stat.Cversion < m.cversion {
			// A new service node or a new session: read every member.
			read = children
		} else {
			diff := 0
			for c := range now {
				if !m.names[c] {
					diff++
				}
			}
			for c := range m.names {
				if !now[c] {
					diff++
				}
			}
			if int(stat.Cversion-m.cversion) > diff {
				// More changes than the names show: someone left and came
				// back in between. Find who by their nodes' czxid.
				for id, c := range m.cache {
					if !now[id] {
						continue
					}
					m.s.memberReads.Add(1)
					st, err := m.s.zk.Exists(bg, joinPath(m.path, id))
					if err != nil {
						return err
					}
					if st == nil || st.Czxid != c.czxid {
						m.drop(id)
					}
				}
			}
			for _, id := range children {
				if _, ok := m.cache[id]; !ok {
					read = append(read, id)
				}
			}
		}
		for id := range m.cache {
			if !now[id] {
				m.drop(id)
			}
		}
		if err := m.get(read); err != nil {
			return err
		}
		m.pczxid, m.cversion, m.names = stat.Czxid, stat.Cversion, now
		return nil
	}
}

// getters bounds the reads get keeps in flight.
const getters = 32

// get reads the nodes of ids, several at a time, and puts (or drops) each.
// Those read are no longer pending; on an error the others stay so.
func (m *memberSet) get(ids []string) error {
	type result struct {
		data []byte
		st   *zkclient.Stat
		err  error
	}
	res := make([]result, len(ids))
	read := func(i int) {
		res[i].data, res[i].st, res[i].err = m.s.zk.Get(bg, joinPath(m.path, ids[i]))
	}
	if len(ids) == 1 {
		read(0)
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(len(ids), getters) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < len(ids); i = int(next.Add(1) - 1) {
					read(i)
				}
			}()
		}
		wg.Wait()
	}
	m.s.memberReads.Add(int64(len(ids)))
	var first error
	for i, r := range res {
		id := ids[i]
		switch {
		case errors.Is(r.err, zkclient.ErrNoNode):
			m.drop(id) // left meanwhile
		case r.err != nil:
			first = cmp.Or(first, r.err)
			continue
		default:
			// A copy: the reply's buffer, stat and all, is several times
			// the size of a typical member's data.
			m.put(member{Node: Node{ID: id, Data: bytes.Clone(r.data)}, czxid: r.st.Czxid, version: r.st.Version})
		}
		delete(m.pending, id)
	}
	return first
}

// put takes a member as read, changing the set if it is new or differs.
func (m *memberSet) put(n member) {
	old, had := m.cache[n.ID]
	if had && old.czxid == n.czxid && old.version == n.version {
		return
	}
	if had && old.czxid != n.czxid && m.renewed != nil {
		m.renewed(n.ID)
	}
	if m.check != nil {
		if err := m.check(n.Data); err != nil {
			// Reported once for each version of a node's data.
			n.bad = true
			m.s.skip(joinPath(m.path, n.ID), err)
		}
	}
	m.cache[n.ID] = n
	switch _, found := m.set.Get(n.ID); {
	case n.bad && found:
		m.set = m.set.without(n.ID)
	case n.bad:
		return
	default:
		m.set = m.set.with(n.Node)
	}
	m.changed = true
}

// drop removes a member, if it is there.
func (m *memberSet) drop(id string) {
	if _, ok := m.cache[id]; !ok {
		return
	}
	delete(m.cache, id)
	if m.renewed != nil {
		m.renewed(id)
	}
	if _, found := m.set.Get(id); found {
		m.set = m.set.without(id)
		m.changed = true
	}
}

// dropAll removes every member.
func (m *memberSet) dropAll() {
	if m.renewed != nil {
		for id := range m.cache {
			m.renewed(id)
		}
	}
	clear(m.cache)
	clear(m.pending)
	if m.set.Len() > 0 {
		m.set = MemberSet{}
		m.changed = true
	}
}

func byID(n Node, id string) int { return strings.Compare(n.ID, id) }

// nodes returns a new slice of the set's nodes, sorted by ID.
func (m *memberSet) nodes() []Node { return m.set.Nodes() }

// has reports whether id is a member (good or bad).
func (m *memberSet) has(id string) bool {
	_, ok := m.cache[id]
	return ok
}
