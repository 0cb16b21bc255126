package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
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
func (s *Session) checkWrite(path string, data []byte, acl []zkclient.ACL) error {
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

// check validates an operation's ctx and path, and that the session is
// open.
func (s *Session) check(ctx context.Context, op, path string) error {
	if err := validatePath(path); err != nil {
		return &OpError{Op: op, Path: path, Err: err}
	}
	if err := s.usable(ctx); err != nil {
		return &OpError{Op: op, Path: path, Err: err}
	}
	if s.isClosing() {
		return &OpError{Op: op, Path: path, Err: ErrClosed}
	}
	return nil
}

// CreateMode is the kind of node Create makes.
type CreateMode int

// Create modes, with ZooKeeper's numbers.
const (
	Persistent           CreateMode = iota // stays until deleted
	Ephemeral                              // deleted when the session ends
	PersistentSequential                   // Persistent, with a counter appended to its name
	EphemeralSequential                    // Ephemeral, with a counter appended to its name
	Container                              // deleted by the server once its last child is gone
	// PersistentWithTTL is deleted by the server once it has had no
	// children and no change for its TTL (CreateTTL); the server needs
	// extendedTypesEnabled=true.
	PersistentWithTTL
	PersistentSequentialWithTTL // PersistentWithTTL, with a counter appended to its name
)

func (m CreateMode) client() (zkclient.CreateMode, error) {
	if m < Persistent || m > PersistentSequentialWithTTL {
		return 0, fmt.Errorf("%w: create mode %d", ErrInvalidOption, int(m))
	}
	return zkclient.CreateMode(m), nil
}

func (m CreateMode) ttl() bool { return m == PersistentWithTTL || m == PersistentSequentialWithTTL }

// CreateOption modifies Create.
type CreateOption func(*createOptions)

type createOptions struct {
	parents bool
	acl     []zkclient.ACL
	ttl     time.Duration
}

// CreateParents makes Create create missing ancestors first, as persistent
// nodes without data (containers if the node itself is a Container).
func CreateParents() CreateOption { return func(o *createOptions) { o.parents = true } }

// CreateACL sets the new node's ACL instead of the session's (see WithACL).
func CreateACL(acl ...ACL) CreateOption {
	return func(o *createOptions) { o.acl = clientACL(acl) }
}

// CreateTTL sets the TTL of a node created with a TTL mode: from 1 ms to
// MaxTTL, counted in whole milliseconds.
func CreateTTL(d time.Duration) CreateOption { return func(o *createOptions) { o.ttl = d } }

func (s *Session) createOptions(mode CreateMode, opts []CreateOption) (createOptions, error) {
	o := createOptions{acl: s.acl}
	for _, opt := range opts {
		if opt == nil {
			return o, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		opt(&o)
	}
	switch {
	case len(o.acl) == 0:
		return o, fmt.Errorf("%w: empty ACL", ErrInvalidOption)
	}
	return o, checkTTL(mode, o.ttl)
}

// checkTTL checks CreateTTL's ttl against the mode, as ZooKeeper would.
func checkTTL(mode CreateMode, ttl time.Duration) error {
	switch {
	case mode.ttl() && ttl <= 0:
		return fmt.Errorf("%w: a TTL mode needs CreateTTL with a positive TTL", ErrInvalidOption)
	case mode.ttl() && (ttl < time.Millisecond || ttl > MaxTTL):
		return fmt.Errorf("%w: TTL %v: ZooKeeper takes whole milliseconds from 1 ms to MaxTTL", ErrInvalidOption, ttl)
	case !mode.ttl() && ttl != 0:
		return fmt.Errorf("%w: CreateTTL needs a TTL mode", ErrInvalidOption)
	}
	return nil
}

// MaxTTL is the longest TTL ZooKeeper takes: 2^40-1 ms, about 34.8 years.
const MaxTTL = (1<<40 - 1) * time.Millisecond

// Create makes a node at path with data and returns its path (for
// sequential modes, the name with the counter ZooKeeper appended).
func (s *Session) Create(ctx context.Context, path string, data []byte, mode CreateMode, opts ...CreateOption) (string, error) {
	if err := s.usable(ctx); err != nil {
		return "", opError("create", path, err)
	}
	cm, err := mode.client()
	if err != nil {
		return "", &OpError{Op: "create", Path: path, Err: err}
	}
	o, err := s.createOptions(mode, opts)
	if err != nil {
		return "", &OpError{Op: "create", Path: path, Err: err}
	}
	if err := s.checkWrite(path, data, o.acl); err != nil {
		return "", &OpError{Op: "create", Path: path, Err: err}
	}
	if path == "/" {
		return "", &OpError{Op: "create", Path: path, Err: ErrNodeExists}
	}
	if err := s.check(ctx, "create", path); err != nil {
		return "", err
	}
	p, _, err := s.zk.Create(ctx, path, data, o.acl, cm, o.ttl)
	if errors.Is(err, zkclient.ErrNoNode) && o.parents {
		parent := zkclient.Persistent
		if mode == Container {
			parent = zkclient.Container
		}
		if err = s.createParents(ctx, path, parent, o.acl); err == nil {
			p, _, err = s.zk.Create(ctx, path, data, o.acl, cm, o.ttl)
		}
	}
	return p, s.opErr("create", path, err)
}

// createParents creates every missing ancestor of path, top down.
func (s *Session) createParents(ctx context.Context, path string, mode zkclient.CreateMode, acl []zkclient.ACL) error {
	for i := 1; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		_, _, err := s.zk.Create(ctx, path[:i], nil, acl, mode, 0)
		if err != nil && !errors.Is(err, zkclient.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// Get returns a node's data and stat.
func (s *Session) Get(ctx context.Context, path string) ([]byte, *Stat, error) {
	if err := s.check(ctx, "get", path); err != nil {
		return nil, nil, err
	}
	data, st, err := s.zk.Get(ctx, path)
	if err != nil {
		return nil, nil, s.opErr("get", path, err)
	}
	return data, stat(st), nil
}

// Set replaces a node's data if its version is version (AnyVersion for
// any), and returns the new stat. A mismatch gives ErrBadVersion: this is
// ZooKeeper's compare-and-set.
func (s *Session) Set(ctx context.Context, path string, data []byte, version int32) (*Stat, error) {
	if err := s.usable(ctx); err != nil {
		return nil, opError("set", path, err)
	}
	if err := s.checkWrite(path, data, nil); err != nil {
		return nil, &OpError{Op: "set", Path: path, Err: err}
	}
	if err := s.check(ctx, "set", path); err != nil {
		return nil, err
	}
	st, err := s.zk.Set(ctx, path, data, version)
	if err != nil {
		return nil, s.opErr("set", path, err)
	}
	return stat(st), nil
}

// Delete deletes a node if its version is version (AnyVersion for any).
// A node with children gives ErrNotEmpty; see DeleteAll.
func (s *Session) Delete(ctx context.Context, path string, version int32) error {
	if err := s.check(ctx, "delete", path); err != nil {
		return err
	}
	return s.opErr("delete", path, s.zk.Delete(ctx, path, version))
}

// DeleteAll deletes a node and everything under it. A node already gone is
// not an error. Children created while it runs are deleted too. Under a
// chroot, "/" is the chroot's own node: DeleteAll(ctx, "/") deletes it as
// well, and the session's later calls fail with ErrNoNode until it is
// created again.
func (s *Session) DeleteAll(ctx context.Context, path string) error {
	if err := s.check(ctx, "delete", path); err != nil {
		return err
	}
	return s.opErr("delete", path, s.deleteAll(ctx, path))
}

func (s *Session) deleteAll(ctx context.Context, path string) error {
	for {
		children, _, err := s.zk.Children(ctx, path)
		if errors.Is(err, zkclient.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := s.deleteAll(ctx, joinPath(path, c)); err != nil {
				return err
			}
		}
		err = s.zk.Delete(ctx, path, AnyVersion)
		switch {
		case err == nil, errors.Is(err, zkclient.ErrNoNode):
			return nil
		case errors.Is(err, zkclient.ErrNotEmpty): // a child appeared meanwhile: go again
		default:
			return err
		}
	}
}

// Exists reports whether a node exists, with its stat if it does.
func (s *Session) Exists(ctx context.Context, path string) (bool, *Stat, error) {
	if err := s.check(ctx, "exists", path); err != nil {
		return false, nil, err
	}
	st, err := s.zk.Exists(ctx, path)
	if err != nil {
		return false, nil, s.opErr("exists", path, err)
	}
	return st != nil, stat(st), nil
}

// Children returns the names of a node's children, in no particular order.
// SortSequential orders names of sequential nodes.
func (s *Session) Children(ctx context.Context, path string) ([]string, error) {
	if err := s.check(ctx, "children", path); err != nil {
		return nil, err
	}
	c, _, err := s.zk.Children(ctx, path)
	return c, s.opErr("children", path, err)
}

// withACL is CreateACL for an ACL already converted for the client.
func withACL(acl []zkclient.ACL) CreateOption { return func(o *createOptions) { o.acl = acl } }
