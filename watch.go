package lighthouse

import (
	"context"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
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
func watchEvent(ev zkclient.WatchEvent) WatchEvent {
	w := WatchEvent{Path: ev.Path}
	switch ev.Type {
	case zkclient.EventNodeCreated:
		w.Type = NodeCreated
	case zkclient.EventNodeDeleted:
		w.Type = NodeDeleted
	case zkclient.EventNodeDataChanged:
		w.Type = NodeDataChanged
	case zkclient.EventNodeChildrenChanged:
		w.Type = NodeChildrenChanged
	default:
		w.Type, w.Err = WatchLost, opError("watch", ev.Path, mapErr(ev.Err))
	}
	return w
}

// forward turns a client watch channel into ours. The goroutine ends when the
// watch fires; the client fires every watch at the latest when the session
// expires or closes, so none outlives the Session.
func (s *Session) forward(zch <-chan zkclient.WatchEvent) <-chan WatchEvent {
	ch := make(chan WatchEvent, 1)
	started := s.recipes.Go(func() {
		defer close(ch)
		ev, ok := <-zch
		if !ok {
			ev = zkclient.WatchEvent{Type: zkclient.EventLost, Err: ErrClosed}
		}
		ch <- watchEvent(ev)
	})
	if !started {
		ch <- WatchEvent{Type: WatchLost, Err: opError("watch", "", ErrClosed)}
		close(ch)
	}
	return ch
}

// GetW is Get plus a one-shot watch on the node's data: the channel delivers
// one WatchEvent (NodeDataChanged, NodeDeleted or WatchLost) and is closed.
// A watch cannot be removed; it ends when it fires or the session ends.
func (s *Session) GetW(ctx context.Context, path string) ([]byte, *Stat, <-chan WatchEvent, error) {
	if err := s.check(ctx, "get", path); err != nil {
		return nil, nil, nil, err
	}
	data, st, ch, err := s.zk.GetW(ctx, path)
	if err != nil {
		return nil, nil, nil, s.opErr("get", path, err)
	}
	return data, stat(st), s.forward(ch), nil
}

// ExistsW is Exists plus a one-shot watch: the channel delivers NodeCreated,
// NodeDataChanged, NodeDeleted or WatchLost once and is closed.
func (s *Session) ExistsW(ctx context.Context, path string) (bool, *Stat, <-chan WatchEvent, error) {
	if err := s.check(ctx, "exists", path); err != nil {
		return false, nil, nil, err
	}
	st, ch, err := s.zk.ExistsW(ctx, path)
	if err != nil {
		return false, nil, nil, s.opErr("exists", path, err)
	}
	return st != nil, stat(st), s.forward(ch), nil
}

// ChildrenW is Children plus a one-shot watch: the channel delivers
// NodeChildrenChanged, NodeDeleted or WatchLost once and is closed.
func (s *Session) ChildrenW(ctx context.Context, path string) ([]string, <-chan WatchEvent, error) {
	if err := s.check(ctx, "children", path); err != nil {
		return nil, nil, err
	}
	c, _, ch, err := s.zk.ChildrenW(ctx, path)
	if err != nil {
		return nil, nil, s.opErr("children", path, err)
	}
	return c, s.forward(ch), nil
}
