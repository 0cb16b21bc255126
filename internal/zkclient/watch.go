package zkclient

import (
	"context"
	"strings"
	"sync"
)

// watchKind is the kind of a one-shot watch, as setWatches names them.
type watchKind uint8

const (
	kindData  watchKind = iota // GetW, or ExistsW on an existing node
	kindExist                  // ExistsW on a missing node
	kindChild                  // ChildrenW
)

// watchReg asks the owner to register a one-shot watch when its request
// succeeds. path is the server's path (chroot included).
type watchReg struct {
	kind watchKind
	path string
	ch   chan WatchEvent
}

// registry holds every watch of the session, keyed by server path, and the
// persistent mode the server holds for each path. Only code holding the
// owner's mu touches it.
//
// A server before 3.9 keeps one mode per path and connection: a one-shot
// watch set on a path with a persistent watch replaces it, and a recursive
// and a plain persistent watch on one path replace each other. So the
// client keeps at most one persistent registration per path (recursive
// wins), sets one-shot watches on such a path locally only (the persistent
// registration already reports every event they need), and derives
// NodeChildrenChanged from child creation and deletion where the server
// holds a recursive watch.
type registry struct {
	oneShot   [3]map[string][]chan WatchEvent // by watchKind
	persist   map[string][]*Watcher
	recursive map[string][]*Watcher
	srv       map[string]int32 // addWatch mode the server holds, by path
}

func newRegistry() registry {
	var r registry
	for i := range r.oneShot {
		r.oneShot[i] = make(map[string][]chan WatchEvent)
	}
	r.persist = make(map[string][]*Watcher)
	r.recursive = make(map[string][]*Watcher)
	r.srv = make(map[string]int32)
	return r
}

func (r *registry) addOneShot(kind watchKind, path string, ch chan WatchEvent) {
	r.oneShot[kind][path] = append(r.oneShot[kind][path], ch)
}

func (r *registry) addWatcher(w *Watcher) {
	m := r.persist
	if w.recursive {
		m = r.recursive
	}
	m[w.path] = append(m[w.path], w)
}

// modeNeeded returns the addWatch mode the server must hold for path, or
// -1 for none.
func (r *registry) modeNeeded(path string) int32 {
	switch {
	case len(r.recursive[path]) > 0:
		return addWatchPersistentRecursive
	case len(r.persist[path]) > 0:
		return addWatchPersistent
	}
	return -1
}

// removeWatcher drops w.
func (r *registry) removeWatcher(w *Watcher) {
	m := r.persist
	if w.recursive {
		m = r.recursive
	}
	ws := m[w.path]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(m, w.path)
	} else {
		m[w.path] = ws
	}
}

// hasOneShot reports whether a one-shot watch is set on path.
func (r *registry) hasOneShot(path string) bool {
	for _, m := range r.oneShot {
		if len(m[path]) > 0 {
			return true
		}
	}
	return false
}

// dispatch delivers a notification to the watches it triggers, as the
// server's WatchManager does: one-shot watches fire once and are dropped;
// persistent watches on the path, and recursive ones on it or an ancestor
// (except for child events), keep receiving.
func (r *registry) dispatch(typ EventType, path string, ev WatchEvent, strip func(string) string) {
	fire := func(kind watchKind, path string, ev WatchEvent) {
		for _, ch := range r.oneShot[kind][path] {
			ch <- ev // buffer 1, the only value it ever gets
			close(ch)
		}
		delete(r.oneShot[kind], path)
	}
	switch typ {
	case EventNodeCreated, EventNodeDataChanged:
		fire(kindData, path, ev)
		fire(kindExist, path, ev)
	case EventNodeDeleted:
		fire(kindData, path, ev)
		fire(kindExist, path, ev)
		fire(kindChild, path, ev)
	case EventNodeChildrenChanged:
		fire(kindChild, path, ev)
	default:
		return
	}
	if typ != EventNodeChildrenChanged || r.srv[path] != addWatchPersistentRecursive {
		for _, w := range r.persist[path] {
			w.push(ev)
		}
	}
	if typ == EventNodeChildrenChanged {
		return
	}
	if typ != EventNodeDataChanged && path != "/" {
		// A recursive registration on the parent hides its child events.
		if parent := parentPath(path); r.srv[parent] == addWatchPersistentRecursive {
			cev := WatchEvent{Type: EventNodeChildrenChanged, Path: strip(parent), Zxid: ev.Zxid}
			fire(kindChild, parent, cev)
			for _, w := range r.persist[parent] {
				w.push(cev)
			}
		}
	}
	for p := path; ; p = parentPath(p) {
		for _, w := range r.recursive[p] {
			w.push(ev)
		}
		if p == "/" {
			return
		}
	}
}

// parentPath returns the parent of an absolute path; "/" for "/".
func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// lostAll delivers EventLost with err to every watch and clears the
// registry. path is mapped by strip.
func (r *registry) lostAll(err error, strip func(string) string) {
	for kind := range r.oneShot {
		for path, chs := range r.oneShot[kind] {
			for _, ch := range chs {
				ch <- WatchEvent{Type: EventLost, Path: strip(path), Err: err}
				close(ch)
			}
		}
	}
	for _, m := range []map[string][]*Watcher{r.persist, r.recursive} {
		for path, ws := range m {
			for _, w := range ws {
				w.push(WatchEvent{Type: EventLost, Path: strip(path), Err: err})
			}
		}
	}
	*r = newRegistry()
}

// lists returns the paths of each kind of watch, for setWatches.
func (r *registry) lists() (data, exist, child, persist, recursive []string) {
	keys := func(m map[string][]chan WatchEvent) []string {
		var v []string
		for k := range m {
			v = append(v, k)
		}
		return v
	}
	wkeys := func(m map[string][]*Watcher) []string {
		var v []string
		for k := range m {
			v = append(v, k)
		}
		return v
	}
	for k := range r.persist {
		if len(r.recursive[k]) == 0 { // the recursive registration covers it
			persist = append(persist, k)
		}
	}
	return keys(r.oneShot[kindData]), keys(r.oneShot[kindExist]), keys(r.oneShot[kindChild]),
		persist, wkeys(r.recursive)
}

// Watcher is a persistent watch made by AddWatch. Its events queue without
// bound (the client never waits for a slow reader): Events signals that
// there are some, Take returns them. It survives reconnects; it ends with a
// final EventLost when the session expires or the client closes, and with
// nothing more after Remove.
type Watcher struct {
	c         *Client
	path      string // server path
	recursive bool

	mu    sync.Mutex
	queue []WatchEvent
	ended bool
	ready chan struct{} // buffer 1: "queue may be non-empty"
}

func (w *Watcher) push(ev WatchEvent) {
	w.mu.Lock()
	if w.ended {
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, ev)
	if ev.Type == EventLost {
		w.ended = true
	}
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// end stops w receiving events.
func (w *Watcher) end() {
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
}

// Events returns a channel that receives a value when events may be waiting
// for Take. One value may stand for many events; it never blocks the client.
func (w *Watcher) Events() <-chan struct{} { return w.ready }

// Take returns the queued events, oldest first, and empties the queue. The
// last event of a watcher that ended is EventLost.
func (w *Watcher) Take() []WatchEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// Remove ends the watch: no event is queued after it returns (Take still
// returns those queued before). The server's watch on the path is removed
// too, unless another watch of this client uses the path.
func (w *Watcher) Remove(ctx context.Context) error {
	r := w.c.newRequest(opRemoveWatches)
	e := enc{r.buf}
	e.string(w.path)
	e.int32(watcherTypeAny)
	r.buf = e.b
	r.remove = w
	rep, err := w.c.do(ctx, r)
	if err == nil {
		err = rep.err
	}
	w.end()
	if err == ErrNoWatcher {
		return nil // gone already, e.g. not re-registered
	}
	return err
}
