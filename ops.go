package lighthouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-zookeeper/zk"
)

// MaxDataSize is the most data a node can hold with ZooKeeper's default
// jute.maxbuffer (1 MiB, less room for the request around it). The whole
// request must fit too: a long path leaves less room for data.
const MaxDataSize = 1<<20 - 1024

// maxPacket is the largest request ZooKeeper accepts with its default
// jute.maxbuffer. The server drops the connection on a larger one, so one is
// never sent.
const maxPacket = 0xfffff

// checkWrite checks that a create or set of data at path (the caller's,
// without the chroot) is valid and fits in one request. Over the limit the
// error is ErrDataTooLarge, naming it.
func (s *Session) checkWrite(path string, data []byte, acl []zk.ACL) error {
	if err := validatePath(path); err != nil {
		return err
	}
	if len(data) > MaxDataSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrDataTooLarge, len(data), MaxDataSize)
	}
	// A create is the larger: header, path, data, ACL, flags.
	n := 8 + 4 + len(s.chroot) + len(path) + 4 + len(data) + 4 + 4
	for _, a := range acl {
		n += 4 + 4 + len(a.Scheme) + 4 + len(a.ID)
	}
	if n > maxPacket {
		return fmt.Errorf("%w: a request of %d bytes (path %d, data %d), over ZooKeeper's limit of %d (jute.maxbuffer)",
			ErrDataTooLarge, n, len(s.chroot)+len(path), len(data), maxPacket)
	}
	return nil
}

// AnyVersion matches every version in Set and Delete.
const AnyVersion int32 = -1

// abs turns a caller's path into the server's (with the chroot).
func (s *Session) abs(p string) string {
	if s.chroot == "" {
		return p
	}
	if p == "/" {
		return s.chroot
	}
	return s.chroot + p
}

// rel turns a server path into the caller's (without the chroot).
func (s *Session) rel(p string) string {
	if s.chroot == "" {
		return p
	}
	p = strings.TrimPrefix(p, s.chroot)
	if p == "" {
		return "/"
	}
	return p
}

// do runs one blocking client call so that it returns as soon as ctx ends
// (the call itself goes on in the background until the client answers).
func do[T any](ctx context.Context, s *Session, op, path string, f func() (T, error)) (T, error) {
	var zero T
	if err := validatePath(path); err != nil {
		return zero, &OpError{Op: op, Path: path, Err: err}
	}
	select {
	case <-s.closing:
		return zero, &OpError{Op: op, Path: path, Err: ErrClosed}
	default:
	}
	if ctx.Done() == nil { // cannot be cancelled: no goroutine needed
		v, err := f()
		return v, s.opErr(op, path, err)
	}
	if err := ctx.Err(); err != nil {
		return zero, &OpError{Op: op, Path: path, Err: err}
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, s.opErr(op, path, r.err)
	case <-ctx.Done():
		return zero, &OpError{Op: op, Path: path, Err: ctx.Err()}
	}
}

// CreateMode is the kind of node Create makes.
type CreateMode int

// Create modes.
const (
	Persistent           CreateMode = iota // stays until deleted
	Ephemeral                              // deleted when the session ends
	PersistentSequential                   // Persistent, with a counter appended to its name
	EphemeralSequential                    // Ephemeral, with a counter appended to its name
	Container                              // deleted by the server once its last child is gone
)

func (m CreateMode) flags() (int32, error) {
	switch m {
	case Persistent:
		return zk.FlagPersistent, nil
	case Ephemeral:
		return zk.FlagEphemeral, nil
	case PersistentSequential:
		return zk.FlagSequence, nil
	case EphemeralSequential:
		return zk.FlagEphemeralSequential, nil
	case Container:
		return zk.FlagContainer, nil
	}
	return 0, fmt.Errorf("%w: create mode %d", ErrInvalidOption, int(m))
}

// CreateOption modifies Create.
type CreateOption func(*createOptions)

type createOptions struct {
	parents bool
	acl     []zk.ACL
}

// CreateParents makes Create create missing ancestors first, as persistent
// nodes without data (containers if the node itself is a Container).
func CreateParents() CreateOption { return func(o *createOptions) { o.parents = true } }

// CreateACL sets the new node's ACL instead of the session's (see WithACL).
func CreateACL(acl ...zk.ACL) CreateOption { return func(o *createOptions) { o.acl = acl } }

// Create makes a node at path with data and returns its path (for
// sequential modes, the name with the counter ZooKeeper appended).
func (s *Session) Create(ctx context.Context, path string, data []byte, mode CreateMode, opts ...CreateOption) (string, error) {
	o := createOptions{acl: s.acl}
	for _, opt := range opts {
		opt(&o)
	}
	flags, err := mode.flags()
	if err != nil {
		return "", &OpError{Op: "create", Path: path, Err: err}
	}
	if err := s.checkWrite(path, data, o.acl); err != nil {
		return "", &OpError{Op: "create", Path: path, Err: err}
	}
	if path == "/" {
		return "", &OpError{Op: "create", Path: path, Err: ErrNodeExists}
	}
	return do(ctx, s, "create", path, func() (string, error) {
		p, err := s.create(path, data, flags, o.acl)
		if err == zk.ErrNoNode && o.parents {
			parentFlags := int32(zk.FlagPersistent)
			if mode == Container {
				parentFlags = zk.FlagContainer
			}
			if err = s.createParents(path, parentFlags, o.acl); err == nil {
				p, err = s.create(path, data, flags, o.acl)
			}
		}
		return s.rel(p), err
	})
}

func (s *Session) create(path string, data []byte, flags int32, acl []zk.ACL) (string, error) {
	if flags == zk.FlagContainer {
		return s.conn.CreateContainer(s.abs(path), data, flags, acl)
	}
	return s.conn.Create(s.abs(path), data, flags, acl)
}

// createParents creates every missing ancestor of path, top down.
func (s *Session) createParents(path string, flags int32, acl []zk.ACL) error {
	for i := 1; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		_, err := s.create(path[:i], nil, flags, acl)
		if err != nil && err != zk.ErrNodeExists {
			return err
		}
	}
	return nil
}

// Get returns a node's data and stat.
func (s *Session) Get(ctx context.Context, path string) ([]byte, *Stat, error) {
	r, err := do(ctx, s, "get", path, func() (getResult, error) {
		data, stat, err := s.conn.Get(s.abs(path))
		return getResult{data, stat}, err
	})
	return r.data, r.stat, err
}

type getResult struct {
	data []byte
	stat *Stat
}

// Stat is a node's metadata, as ZooKeeper reports it.
type Stat = zk.Stat

// Set replaces a node's data if its version is version (AnyVersion for
// any), and returns the new stat. A mismatch gives ErrBadVersion: this is
// ZooKeeper's compare-and-set.
func (s *Session) Set(ctx context.Context, path string, data []byte, version int32) (*Stat, error) {
	if err := s.checkWrite(path, data, nil); err != nil {
		return nil, &OpError{Op: "set", Path: path, Err: err}
	}
	return do(ctx, s, "set", path, func() (*Stat, error) {
		st, err := s.conn.Set(s.abs(path), data, version)
		if err != nil {
			return nil, err
		}
		return st, nil
	})
}

// Delete deletes a node if its version is version (AnyVersion for any).
// A node with children gives ErrNotEmpty; see DeleteAll.
func (s *Session) Delete(ctx context.Context, path string, version int32) error {
	_, err := do(ctx, s, "delete", path, func() (struct{}, error) {
		return struct{}{}, s.conn.Delete(s.abs(path), version)
	})
	return err
}

// DeleteAll deletes a node and everything under it. A node already gone is
// not an error. Children created while it runs are deleted too.
func (s *Session) DeleteAll(ctx context.Context, path string) error {
	_, err := do(ctx, s, "delete", path, func() (struct{}, error) {
		return struct{}{}, s.deleteAll(ctx, s.abs(path))
	})
	return err
}

func (s *Session) deleteAll(ctx context.Context, abs string) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		children, _, err := s.conn.Children(abs)
		if err == zk.ErrNoNode {
			return nil
		}
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := s.deleteAll(ctx, joinPath(abs, c)); err != nil {
				return err
			}
		}
		switch err := s.conn.Delete(abs, AnyVersion); err {
		case nil, zk.ErrNoNode:
			return nil
		case zk.ErrNotEmpty: // a child appeared meanwhile: go again
		default:
			return err
		}
	}
}

// Exists reports whether a node exists, with its stat if it does.
func (s *Session) Exists(ctx context.Context, path string) (bool, *Stat, error) {
	st, err := do(ctx, s, "exists", path, func() (*Stat, error) {
		ok, st, err := s.conn.Exists(s.abs(path))
		if !ok {
			st = nil
		}
		return st, err
	})
	return st != nil, st, err
}

// Children returns the names of a node's children, in no particular order.
// SortSequential orders names of sequential nodes.
func (s *Session) Children(ctx context.Context, path string) ([]string, error) {
	return do(ctx, s, "children", path, func() ([]string, error) {
		c, _, err := s.conn.Children(s.abs(path))
		return c, err
	})
}

// deleteEphemeral deletes an ephemeral node of session owner that a recipe
// is done with. If the connection is down, a goroutine of the session keeps
// trying until the node is gone, its session has ended, or the Session
// closes, so that no recipe leaves a node behind that peers would wait on.
func (s *Session) deleteEphemeral(path string, owner int64) {
	err := s.conn.Delete(s.abs(path), AnyVersion)
	if err == nil || err == zk.ErrNoNode || err == zk.ErrClosing || s.isClosing() {
		return
	}
	s.recipes.Go(func() {
		states, unsubscribe := s.state.Subscribe()
		defer unsubscribe()
		retry := newBackoff()
		for st := range states {
			for st.Connected && st.ID == owner {
				err := s.conn.Delete(s.abs(path), AnyVersion)
				if err == nil || err == zk.ErrNoNode || err == zk.ErrClosing {
					return
				}
				s.emit(Event{Type: EventError, SessionID: owner, Path: path, Err: s.opErr("delete", path, err)})
				select {
				case <-time.After(retry.NextBackOff()):
				case next, ok := <-states:
					if !ok {
						return
					}
					st = next
				}
			}
			if st.Closed || (st.ID != owner && st.ID != 0) {
				return // the node went with its session
			}
		}
	})
}

// newBackoff is the retry schedule of recipes: from 50 ms up to 5 s, for
// as long as it takes.
func newBackoff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(0))
}
