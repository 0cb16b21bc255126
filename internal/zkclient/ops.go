package zkclient

import (
	"context"
	"fmt"
	"time"
)

// path validates a client path and returns the server's path.
func (c *Client) path(p string, sequential bool) (string, error) {
	if err := validatePath(p, sequential); err != nil {
		return "", err
	}
	return fullPath(c.chroot, p), nil
}

// Create makes a znode and returns its path (with the sequence number, for
// sequential modes) and its Stat. ttl is used only by the TTL modes, which
// need a server with extendedTypesEnabled.
func (c *Client) Create(ctx context.Context, path string, data []byte, acl []ACL, mode CreateMode, ttl time.Duration) (string, *Stat, error) {
	full, err := c.path(path, mode.sequential())
	if err != nil {
		return "", nil, err
	}
	if mode < Persistent || mode > PersistentSequentialWithTTL {
		return "", nil, fmt.Errorf("%w: create mode %d", ErrBadArguments, mode)
	}
	op := opCreate2
	switch {
	case mode == Container:
		op = opCreateContainer
	case mode.ttl():
		if ttl <= 0 {
			return "", nil, fmt.Errorf("%w: TTL mode needs a positive ttl", ErrBadArguments)
		}
		op = opCreateTTL
	}
	r := c.newRequest(op)
	e := enc{r.buf}
	e.string(full)
	e.buffer(data)
	e.acls(acl)
	e.int32(int32(mode))
	if op == opCreateTTL {
		e.int64(ttl.Milliseconds())
	}
	r.buf = e.b
	body, err := c.call(ctx, r)
	if err != nil {
		return "", nil, err
	}
	d := dec{b: body}
	p := d.string()
	st := d.stat()
	if d.err != nil {
		return "", nil, d.err
	}
	return stripChroot(c.chroot, p), st, nil
}

// Delete removes a znode if its version matches (-1: any).
func (c *Client) Delete(ctx context.Context, path string, version int32) error {
	full, err := c.path(path, false)
	if err != nil {
		return err
	}
	r := c.newRequest(opDelete)
	e := enc{r.buf}
	e.string(full)
	e.int32(version)
	r.buf = e.b
	_, err = c.call(ctx, r)
	return err
}

// read sends a read of path (op: exists, getData, getChildren2) with a
// one-shot watch of kind if watch is set, and returns the reply's body and
// the watch's channel (nil without a watch). A nil channel, not a typed nil,
// stands for no watch.
func (c *Client) read(ctx context.Context, op int32, kind watchKind, path string, watch bool) ([]byte, <-chan WatchEvent, error) {
	full, err := c.path(path, false)
	if err != nil {
		return nil, nil, err
	}
	r := c.newRequest(op)
	e := enc{r.buf}
	e.string(full)
	e.bool(watch)
	r.buf = e.b
	var ch chan WatchEvent
	if watch {
		ch = make(chan WatchEvent, 1)
		r.watch = watchReg{kind: kind, path: full, ch: ch}
	}
	body, err := c.call(ctx, r)
	if ch == nil {
		return body, nil, err
	}
	return body, ch, err
}

// Exists returns a znode's Stat, or nil and no error if it does not exist.
func (c *Client) Exists(ctx context.Context, path string) (*Stat, error) {
	st, _, err := c.exists(ctx, path, false)
	return st, err
}

// ExistsW is Exists that also sets a one-shot watch, whether or not the
// znode exists: it fires on creation, deletion or data change. The channel
// (buffer 1) receives exactly one WatchEvent and is then closed; EventLost
// if the session expires or the client closes first. No watch is set if the
// call fails.
func (c *Client) ExistsW(ctx context.Context, path string) (*Stat, <-chan WatchEvent, error) {
	return c.exists(ctx, path, true)
}

func (c *Client) exists(ctx context.Context, path string, watch bool) (*Stat, <-chan WatchEvent, error) {
	body, ch, err := c.read(ctx, opExists, kindExist, path, watch)
	if err == ErrNoNode {
		return nil, ch, nil // the watch stands: it fires on creation
	}
	if err != nil {
		return nil, nil, err
	}
	d := dec{b: body}
	st := d.stat()
	if d.err != nil {
		return nil, nil, d.err
	}
	return st, ch, nil
}

// Get returns a znode's data and Stat.
func (c *Client) Get(ctx context.Context, path string) ([]byte, *Stat, error) {
	data, st, _, err := c.get(ctx, path, false)
	return data, st, err
}

// GetW is Get that also sets a one-shot watch on the znode's data and
// deletion; see ExistsW for the channel. On a missing znode it returns
// ErrNoNode and sets no watch.
func (c *Client) GetW(ctx context.Context, path string) ([]byte, *Stat, <-chan WatchEvent, error) {
	return c.get(ctx, path, true)
}

func (c *Client) get(ctx context.Context, path string, watch bool) ([]byte, *Stat, <-chan WatchEvent, error) {
	body, ch, err := c.read(ctx, opGetData, kindData, path, watch)
	if err != nil {
		return nil, nil, nil, err
	}
	d := dec{b: body}
	data := d.bytes()
	st := d.stat()
	if d.err != nil {
		return nil, nil, nil, d.err
	}
	return data, st, ch, nil
}

// Set replaces a znode's data if its version matches (-1: any).
func (c *Client) Set(ctx context.Context, path string, data []byte, version int32) (*Stat, error) {
	full, err := c.path(path, false)
	if err != nil {
		return nil, err
	}
	r := c.newRequest(opSetData)
	e := enc{r.buf}
	e.string(full)
	e.buffer(data)
	e.int32(version)
	r.buf = e.b
	body, err := c.call(ctx, r)
	if err != nil {
		return nil, err
	}
	d := dec{b: body}
	st := d.stat()
	return st, d.err
}

// Children returns the names of a znode's children, unsorted, and its Stat.
func (c *Client) Children(ctx context.Context, path string) ([]string, *Stat, error) {
	names, st, _, err := c.children(ctx, path, false)
	return names, st, err
}

// ChildrenW is Children that also sets a one-shot watch on the children
// and deletion; see ExistsW for the channel. On a missing znode it returns
// ErrNoNode and sets no watch.
func (c *Client) ChildrenW(ctx context.Context, path string) ([]string, *Stat, <-chan WatchEvent, error) {
	return c.children(ctx, path, true)
}

func (c *Client) children(ctx context.Context, path string, watch bool) ([]string, *Stat, <-chan WatchEvent, error) {
	body, ch, err := c.read(ctx, opGetChildren2, kindChild, path, watch)
	if err != nil {
		return nil, nil, nil, err
	}
	d := dec{b: body}
	names := d.strings()
	st := d.stat()
	if d.err != nil {
		return nil, nil, nil, d.err
	}
	return names, st, ch, nil
}

// Sync waits until the server this client is connected to has caught up
// with the leader as of the call.
func (c *Client) Sync(ctx context.Context, path string) error {
	full, err := c.path(path, false)
	if err != nil {
		return err
	}
	r := c.newRequest(opSync)
	e := enc{r.buf}
	e.string(full)
	r.buf = e.b
	_, err = c.call(ctx, r)
	return err
}

// GetACL returns a znode's ACL and Stat.
func (c *Client) GetACL(ctx context.Context, path string) ([]ACL, *Stat, error) {
	full, err := c.path(path, false)
	if err != nil {
		return nil, nil, err
	}
	r := c.newRequest(opGetACL)
	e := enc{r.buf}
	e.string(full)
	r.buf = e.b
	body, err := c.call(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	d := dec{b: body}
	acl := d.acls()
	st := d.stat()
	if d.err != nil {
		return nil, nil, d.err
	}
	return acl, st, nil
}

// SetACL replaces a znode's ACL if its ACL version matches (-1: any).
func (c *Client) SetACL(ctx context.Context, path string, acl []ACL, version int32) (*Stat, error) {
	full, err := c.path(path, false)
	if err != nil {
		return nil, err
	}
	r := c.newRequest(opSetACL)
	e := enc{r.buf}
	e.string(full)
	e.acls(acl)
	e.int32(version)
	r.buf = e.b
	body, err := c.call(ctx, r)
	if err != nil {
		return nil, err
	}
	d := dec{b: body}
	st := d.stat()
	return st, d.err
}

// AddWatch sets a persistent watch on path (and, if recursive, on every
// znode under it). It lasts until Remove, expiry or Close, and is
// re-registered on every reconnect. A server before 3.6 answers
// ErrUnimplemented (or drops the connection: ErrConnectionLoss).
func (c *Client) AddWatch(ctx context.Context, path string, recursive bool) (*Watcher, error) {
	full, err := c.path(path, false)
	if err != nil {
		return nil, err
	}
	mode := addWatchPersistent
	if recursive {
		mode = addWatchPersistentRecursive
	}
	w := &Watcher{c: c, path: full, recursive: recursive, ready: make(chan struct{}, 1)}
	r := c.newRequest(opAddWatch)
	e := enc{r.buf}
	e.string(full)
	e.int32(mode)
	r.buf = e.b
	r.add = w
	if _, err := c.call(ctx, r); err != nil {
		return nil, err
	}
	return w, nil
}

// WhoAmI returns the identities the server has for this connection. A
// server before 3.7 answers ErrUnimplemented.
func (c *Client) WhoAmI(ctx context.Context) ([]ClientInfo, error) {
	r := c.newRequest(opWhoAmI)
	body, err := c.call(ctx, r)
	if err != nil {
		return nil, err
	}
	d := dec{b: body}
	n := d.count(8)
	infos := make([]ClientInfo, 0, n)
	for range n {
		infos = append(infos, ClientInfo{AuthScheme: d.string(), User: d.string()})
	}
	if d.err != nil {
		return nil, d.err
	}
	return infos, nil
}
