package lighthouse

import (
	"context"

	"github.com/go-zookeeper/zk"
)

// WatchType says what a watch saw.
type WatchType int

// Watch outcomes.
const (
	NodeCreated         WatchType = iota + 1 // the node came into existence (ExistsW)
	NodeDeleted                              // the node was deleted
	NodeDataChanged                          // the node's data changed
	NodeChildrenChanged                      // a child was created or deleted (ChildrenW)
	// WatchLost: the watch will never fire; Err says why (the session
	// expired or was closed). Read the node again to find out where it is.
	WatchLost
)

func (t WatchType) String() string {
	switch t {
	case NodeCreated:
		return "created"
	case NodeDeleted:
		return "deleted"
	case NodeDataChanged:
		return "data changed"
	case NodeChildrenChanged:
		return "children changed"
	case WatchLost:
		return "watch lost"
	}
	return "unknown"
}

// WatchEvent is what a watch delivers, once.
type WatchEvent struct {
	Type WatchType
	Path string
	Err  error // for WatchLost
}

// watchEvent converts a client watch event for the caller.
func (s *Session) watchEvent(ev zk.Event) WatchEvent {
	w := WatchEvent{Path: s.rel(ev.Path)}
	switch ev.Type {
	case zk.EventNodeCreated:
		w.Type = NodeCreated
	case zk.EventNodeDeleted:
		w.Type = NodeDeleted
	case zk.EventNodeDataChanged:
		w.Type = NodeDataChanged
	case zk.EventNodeChildrenChanged:
		w.Type = NodeChildrenChanged
	default:
		w.Type, w.Err = WatchLost, ev.Err
		if mapped, ok := zkErrors[ev.Err]; ok {
			w.Err = mapped
		}
	}
	return w
}

// forward turns a client watch channel into ours. The goroutine ends when the
// watch fires; the client fires every watch at the latest when the session
// expires or closes, so none outlives the Session.
func (s *Session) forward(zch <-chan zk.Event) <-chan WatchEvent {
	ch := make(chan WatchEvent, 1)
	started := s.recipes.Go(func() {
		defer close(ch)
		ev, ok := <-zch
		if !ok {
			ev = zk.Event{Type: zk.EventNotWatching, Err: zk.ErrClosing}
		}
		ch <- s.watchEvent(ev)
	})
	if !started {
		ch <- WatchEvent{Type: WatchLost, Err: ErrClosed}
		close(ch)
	}
	return ch
}

// GetW is Get plus a one-shot watch on the node's data: the channel delivers
// one WatchEvent (NodeDataChanged, NodeDeleted or WatchLost) and is closed.
// A watch cannot be removed; it ends when it fires or the session ends.
func (s *Session) GetW(ctx context.Context, path string) ([]byte, *Stat, <-chan WatchEvent, error) {
	type res struct {
		data []byte
		stat *Stat
		ch   <-chan zk.Event
	}
	r, err := do(ctx, s, "get", path, func() (res, error) {
		data, stat, ch, err := s.conn.GetW(s.abs(path))
		return res{data, stat, ch}, err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return r.data, r.stat, s.forward(r.ch), nil
}

// ExistsW is Exists plus a one-shot watch: the channel delivers NodeCreated,
// NodeDataChanged, NodeDeleted or WatchLost once and is closed.
func (s *Session) ExistsW(ctx context.Context, path string) (bool, *Stat, <-chan WatchEvent, error) {
	type res struct {
		ok   bool
		stat *Stat
		ch   <-chan zk.Event
	}
	r, err := do(ctx, s, "exists", path, func() (res, error) {
		ok, stat, ch, err := s.conn.ExistsW(s.abs(path))
		return res{ok, stat, ch}, err
	})
	if err != nil {
		return false, nil, nil, err
	}
	if !r.ok {
		r.stat = nil
	}
	return r.ok, r.stat, s.forward(r.ch), nil
}

// ChildrenW is Children plus a one-shot watch: the channel delivers
// NodeChildrenChanged, NodeDeleted or WatchLost once and is closed.
func (s *Session) ChildrenW(ctx context.Context, path string) ([]string, <-chan WatchEvent, error) {
	type res struct {
		children []string
		ch       <-chan zk.Event
	}
	r, err := do(ctx, s, "children", path, func() (res, error) {
		c, _, ch, err := s.conn.ChildrenW(s.abs(path))
		return res{c, ch}, err
	})
	if err != nil {
		return nil, nil, err
	}
	return r.children, s.forward(r.ch), nil
}
