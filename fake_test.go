package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/actor"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// fakeZK is an in-memory ZooKeeper ensemble for recipe tests: one node tree
// shared by the fakeClients of a test, with ZooKeeper's stats, sequential
// names, ephemeral nodes, one-shot watches and atomic multis. It starts no
// goroutine: every call and every fault runs on its caller's goroutine with
// the tree locked, and a fault's watch events and session events are out
// before it returns, so a test's steps happen in its order and take
// microseconds.
//
// It leaves out what the recipes do not need: ACLs are stored but not
// checked, containers and TTL nodes behave as persistent ones (a test
// deletes an empty container itself), there is no chroot, and persistent
// watches (AddWatch) are not part of the client interface. One difference
// from zkclient: a call made while disconnected fails at once with
// ErrConnectionLoss, where zkclient waits for the connection or ctx.
type fakeZK struct {
	mu       sync.Mutex
	zxid     int64
	nodes    map[string]*fakeNode
	sessions int64 // the last session id handed out
	clients  []*fakeClient
	fired    []fakeFire // notifications of the change being made, sent once it is applied
}

type fakeNode struct {
	data     []byte
	stat     zkclient.Stat
	acl      []zkclient.ACL
	children map[string]struct{}
}

// fakeFire is one notification: typ at path.
type fakeFire struct {
	typ  zkclient.EventType
	path string
	zxid int64
}

func newFakeZK() *fakeZK {
	return &fakeZK{nodes: map[string]*fakeNode{"/": {children: map[string]struct{}{}}}}
}

// Watch kinds, as the server keeps them.
const (
	fakeData  = iota // GetW, or ExistsW on an existing node
	fakeExist        // ExistsW on a missing node
	fakeChild        // ChildrenW
)

// fakeClient is one client of a fakeZK: a session, its watches and the
// faults armed on it. It implements client.
type fakeClient struct {
	z       *fakeZK
	timeout time.Duration
	onEvent func(zkclient.Event) // the session's events, as zkclient.Config.OnEvent
	heard   func()               // called on every reply (liveness)
	settled func()               // waits until the session has taken in the events so far
	closing func()               // if set, called as Close starts, before the session's nodes go
	// deleting, if set, is called as a Delete starts (not under the lock).
	deleting func(path string)

	// Guarded by z.mu.
	id         int64 // 0 before the first session and after Close
	connected  bool
	closed     bool
	watches    [3]map[string][]chan zkclient.WatchEvent
	pending    []fakePending // watches fired while disconnected, delivered on reconnect
	faults     []*fakeFault
	calls      map[string]int // calls that reached the server, by op
	reconnects int            // how many times the session came back
}

type fakePending struct {
	ch chan zkclient.WatchEvent
	ev zkclient.WatchEvent
}

// fakeFault is armed by FailNext and LoseNextReply.
type fakeFault struct {
	op   string
	n    int
	err  error
	lose bool // apply the op, then drop the connection before the reply
	blip bool // and reconnect before the reply is given up for lost
}

var _ client = (*fakeClient)(nil)

// newClient returns a client of z without a session; connect gives it one.
func (z *fakeZK) newClient() *fakeClient {
	c := &fakeClient{z: z, timeout: 10 * time.Second, calls: make(map[string]int)}
	c.resetWatches()
	z.mu.Lock()
	z.clients = append(z.clients, c)
	z.mu.Unlock()
	return c
}

// connect establishes the client's first session.
func (c *fakeClient) connect() {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	c.z.sessions++
	c.id, c.connected = c.z.sessions, true
	c.event(zkclient.Event{State: zkclient.StateConnected, SessionID: c.id, Timeout: c.timeout, Server: "fake:2181"})
}

func (c *fakeClient) resetWatches() {
	for i := range c.watches {
		c.watches[i] = make(map[string][]chan zkclient.WatchEvent)
	}
}

// event reports a session event. Called with z.mu held, so events come in
// the order of the changes; onEvent must not block (Session's inbox.Put
// does not).
func (c *fakeClient) event(ev zkclient.Event) {
	if c.onEvent != nil {
		c.onEvent(ev)
	}
}

// Faults.

// Disconnect drops the connection: calls fail with ErrConnectionLoss, and
// watches that fire meanwhile are delivered on Reconnect.
func (c *fakeClient) Disconnect() {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	c.disconnect()
}

func (c *fakeClient) disconnect() {
	if c.connected && !c.closed {
		c.connected = false
		c.event(zkclient.Event{State: zkclient.StateDisconnected, Err: zkclient.ErrConnectionLoss})
	}
}

// Reconnect restores the connection with the same session; then the
// watches that fired while it was down are delivered.
func (c *fakeClient) Reconnect() {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	c.reconnect()
}

func (c *fakeClient) reconnect() {
	if c.connected || c.closed {
		return
	}
	c.connected = true
	c.reconnects++
	// As zkclient: the session is back, then setWatches brings the events
	// the watches missed.
	c.event(zkclient.Event{State: zkclient.StateConnected, SessionID: c.id, Timeout: c.timeout, Server: "fake:2181"})
	for _, p := range c.pending {
		p.ch <- p.ev
		close(p.ch)
	}
	c.pending = nil
}

// Expire ends the session as the server does: every watch of the client
// gets EventLost with ErrSessionExpired, the session's ephemeral nodes are
// deleted (other clients' watches fire), and the client reports
// Disconnected (if it was connected), Expired and Connected with a new
// session id, as zkclient does.
func (c *fakeClient) Expire() {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	c.expire(true)
}

// ExpireLeavingEphemerals is Expire with the server late to delete the old
// session's ephemeral nodes: they go when the returned function is called.
func (c *fakeClient) ExpireLeavingEphemerals() (deleteThem func()) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	old := c.id
	c.expire(false)
	return func() {
		c.z.mu.Lock()
		defer c.z.mu.Unlock()
		c.z.endSession(old)
	}
}

func (c *fakeClient) expire(ephemerals bool) {
	if c.closed {
		return
	}
	old := c.id
	c.disconnect()
	c.loseWatches(zkclient.ErrSessionExpired)
	if ephemerals {
		c.z.endSession(old)
	}
	c.id = 0
	c.event(zkclient.Event{State: zkclient.StateExpired, Err: zkclient.ErrSessionExpired})
	c.z.sessions++
	c.id, c.connected = c.z.sessions, true
	c.event(zkclient.Event{State: zkclient.StateConnected, SessionID: c.id, Timeout: c.timeout, Server: "fake:2181"})
}

// FailNext makes the next n calls of op ("create", "delete", "exists",
// "get", "set", "children", "multi", "whoami"; the W forms count as their
// op) fail with err without being applied.
func (c *fakeClient) FailNext(op string, n int, err error) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	c.faults = append(c.faults, &fakeFault{op: op, n: n, err: err})
}

// LoseNextReply makes the next call of op be applied and its reply lost:
// the connection drops (as Disconnect) and the call fails with
// ErrConnectionLoss. Reconnect brings the same session back.
func (c *fakeClient) LoseNextReply(op string) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	c.faults = append(c.faults, &fakeFault{op: op, n: 1, lose: true})
}

// BlipNextReply is LoseNextReply with the connection back, same session,
// by the time the call fails: the caller's session has seen the connection
// drop and come back while the call was in flight.
func (c *fakeClient) BlipNextReply(op string) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	c.faults = append(c.faults, &fakeFault{op: op, n: 1, lose: true, blip: true})
}

// Calls returns how many calls of op reached the server.
func (c *fakeClient) Calls(op string) int {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	return c.calls[op]
}

// loseWatches ends every watch of the client, and those waiting for a
// reconnect, with EventLost.
func (c *fakeClient) loseWatches(err error) {
	for kind := range c.watches {
		for path, chs := range c.watches[kind] {
			for _, ch := range chs {
				ch <- zkclient.WatchEvent{Type: zkclient.EventLost, Path: path, Err: err}
				close(ch)
			}
		}
	}
	for _, p := range c.pending {
		p.ch <- zkclient.WatchEvent{Type: zkclient.EventLost, Path: p.ev.Path, Err: err}
		close(p.ch)
	}
	c.pending = nil
	c.resetWatches()
}

// do runs one call of op with z.mu held: it fails as the client's state
// and armed faults say, else applies it. apply's error is the call's.
func (c *fakeClient) do(ctx context.Context, op string, apply func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.closed {
		return zkclient.ErrClosed
	}
	if !c.connected {
		return zkclient.ErrConnectionLoss
	}
	c.calls[op]++
	for i, f := range c.faults {
		if f.op != op {
			continue
		}
		if f.n--; f.n <= 0 {
			c.faults = slices.Delete(c.faults, i, i+1)
		}
		if !f.lose {
			return f.err
		}
		c.z.apply(apply)
		c.disconnect()
		if f.blip {
			c.reconnect()
			if c.settled != nil {
				c.settled()
			}
		}
		return zkclient.ErrConnectionLoss
	}
	if c.heard != nil {
		c.heard()
	}
	return c.z.apply(apply)
}

// apply runs a change and then sends the notifications it made, so that
// a multi that fails half-way sends none.
func (z *fakeZK) apply(change func() error) error {
	z.fired = z.fired[:0]
	err := change()
	if err == nil {
		for _, f := range z.fired {
			z.notify(f)
		}
	}
	z.fired = z.fired[:0]
	return err
}

// notify fires the one-shot watches that f triggers, in every client, as
// the server's WatchManager does.
func (z *fakeZK) notify(f fakeFire) {
	var kinds []int
	switch f.typ {
	case zkclient.EventNodeCreated, zkclient.EventNodeDataChanged:
		kinds = []int{fakeData, fakeExist}
	case zkclient.EventNodeDeleted:
		kinds = []int{fakeData, fakeExist, fakeChild}
	case zkclient.EventNodeChildrenChanged:
		kinds = []int{fakeChild}
	}
	ev := zkclient.WatchEvent{Type: f.typ, Path: f.path, Zxid: f.zxid}
	for _, c := range z.clients {
		for _, k := range kinds {
			for _, ch := range c.watches[k][f.path] {
				if c.connected {
					ch <- ev // buffer 1, the only value it gets
					close(ch)
				} else {
					c.pending = append(c.pending, fakePending{ch, ev})
				}
			}
			delete(c.watches[k], f.path)
		}
	}
}

func (c *fakeClient) watch(kind int, path string) chan zkclient.WatchEvent {
	ch := make(chan zkclient.WatchEvent, 1)
	c.watches[kind][path] = append(c.watches[kind][path], ch)
	return ch
}

// endSession deletes the ephemeral nodes of session id.
func (z *fakeZK) endSession(id int64) {
	if id == 0 {
		return
	}
	var paths []string
	for p, n := range z.nodes {
		if n.stat.EphemeralOwner == id {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range slices.Backward(paths) {
		z.apply(func() error { return z.delete(p, -1) })
	}
}

// The tree. Each function runs with z.mu held and records the
// notifications of its change in z.fired.

func fakeParent(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "/"
	}
	return path[:i]
}

func fakeCheckPath(path string) error {
	if path == "" || path[0] != '/' || (len(path) > 1 && strings.HasSuffix(path, "/")) || strings.Contains(path, "//") {
		return zkclient.ErrBadArguments
	}
	return nil
}

func (z *fakeZK) create(path string, data []byte, acl []zkclient.ACL, mode zkclient.CreateMode, owner int64, zxid int64) (string, *zkclient.Stat, error) {
	if err := fakeCheckPath(path); err != nil {
		return "", nil, err
	}
	if path == "/" {
		return "", nil, zkclient.ErrNodeExists
	}
	parent, ok := z.nodes[fakeParent(path)]
	if !ok {
		return "", nil, zkclient.ErrNoNode
	}
	if parent.stat.EphemeralOwner != 0 {
		return "", nil, zkclient.ErrNoChildrenForEphemerals
	}
	switch mode {
	case zkclient.PersistentSequential, zkclient.EphemeralSequential, zkclient.PersistentSequentialWithTTL:
		// As ZooKeeper: the parent's child version, in ten digits.
		path += fmt.Sprintf("%010d", parent.stat.Cversion)
	}
	if _, ok := z.nodes[path]; ok {
		return "", nil, zkclient.ErrNodeExists
	}
	if zxid == 0 {
		z.zxid++
		zxid = z.zxid
	}
	now := time.Now().UnixMilli()
	n := &fakeNode{data: slices.Clone(data), acl: acl, children: map[string]struct{}{}}
	n.stat = zkclient.Stat{Czxid: zxid, Mzxid: zxid, Pzxid: zxid, Ctime: now, Mtime: now, DataLength: int32(len(data))}
	if mode == zkclient.Ephemeral || mode == zkclient.EphemeralSequential {
		n.stat.EphemeralOwner = owner
	}
	z.nodes[path] = n
	parent.children[path[strings.LastIndexByte(path, '/')+1:]] = struct{}{}
	parent.stat.Cversion++
	parent.stat.NumChildren++
	parent.stat.Pzxid = zxid
	z.fired = append(z.fired,
		fakeFire{zkclient.EventNodeCreated, path, zxid},
		fakeFire{zkclient.EventNodeChildrenChanged, fakeParent(path), zxid})
	st := n.stat
	return path, &st, nil
}

func (z *fakeZK) delete(path string, version int32) error {
	return z.deleteAt(path, version, 0)
}

func (z *fakeZK) deleteAt(path string, version int32, zxid int64) error {
	if err := fakeCheckPath(path); err != nil {
		return err
	}
	if path == "/" || path == "/zookeeper" {
		return zkclient.ErrBadArguments
	}
	n, ok := z.nodes[path]
	switch {
	case !ok:
		return zkclient.ErrNoNode
	case version != -1 && version != n.stat.Version:
		return zkclient.ErrBadVersion
	case len(n.children) > 0:
		return zkclient.ErrNotEmpty
	}
	if zxid == 0 {
		z.zxid++
		zxid = z.zxid
	}
	delete(z.nodes, path)
	parent := z.nodes[fakeParent(path)]
	delete(parent.children, path[strings.LastIndexByte(path, '/')+1:])
	parent.stat.Cversion++
	parent.stat.NumChildren--
	parent.stat.Pzxid = zxid
	z.fired = append(z.fired,
		fakeFire{zkclient.EventNodeDeleted, path, zxid},
		fakeFire{zkclient.EventNodeChildrenChanged, fakeParent(path), zxid})
	return nil
}

func (z *fakeZK) set(path string, data []byte, version int32, zxid int64) (*zkclient.Stat, error) {
	if err := fakeCheckPath(path); err != nil {
		return nil, err
	}
	n, ok := z.nodes[path]
	switch {
	case !ok:
		return nil, zkclient.ErrNoNode
	case version != -1 && version != n.stat.Version:
		return nil, zkclient.ErrBadVersion
	}
	if zxid == 0 {
		z.zxid++
		zxid = z.zxid
	}
	n.data = slices.Clone(data)
	n.stat.Version++
	n.stat.Mzxid = zxid
	n.stat.Mtime = time.Now().UnixMilli()
	n.stat.DataLength = int32(len(data))
	z.fired = append(z.fired, fakeFire{zkclient.EventNodeDataChanged, path, zxid})
	st := n.stat
	return &st, nil
}

func (z *fakeZK) statOf(path string) *zkclient.Stat {
	n, ok := z.nodes[path]
	if !ok {
		return nil
	}
	st := n.stat
	return &st
}

// The client interface.

func (c *fakeClient) Create(ctx context.Context, path string, data []byte, acl []zkclient.ACL, mode zkclient.CreateMode, ttl time.Duration) (created string, st *zkclient.Stat, err error) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	err = c.do(ctx, "create", func() (err error) {
		created, st, err = c.z.create(path, data, acl, mode, c.id, 0)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return created, st, nil
}

func (c *fakeClient) Delete(ctx context.Context, path string, version int32) error {
	if c.deleting != nil {
		c.deleting(path)
	}
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	return c.do(ctx, "delete", func() error { return c.z.delete(path, version) })
}

func (c *fakeClient) Exists(ctx context.Context, path string) (st *zkclient.Stat, err error) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	err = c.do(ctx, "exists", func() error {
		st = c.z.statOf(path)
		return fakeCheckPath(path)
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (c *fakeClient) ExistsW(ctx context.Context, path string) (st *zkclient.Stat, ch <-chan zkclient.WatchEvent, err error) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	err = c.do(ctx, "exists", func() error {
		if err := fakeCheckPath(path); err != nil {
			return err
		}
		st = c.z.statOf(path)
		if st != nil {
			ch = c.watch(fakeData, path)
		} else {
			ch = c.watch(fakeExist, path)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return st, ch, nil
}

func (c *fakeClient) Get(ctx context.Context, path string) ([]byte, *zkclient.Stat, error) {
	data, st, _, err := c.get(ctx, path, false)
	return data, st, err
}

func (c *fakeClient) GetW(ctx context.Context, path string) ([]byte, *zkclient.Stat, <-chan zkclient.WatchEvent, error) {
	return c.get(ctx, path, true)
}

func (c *fakeClient) get(ctx context.Context, path string, watch bool) (data []byte, st *zkclient.Stat, ch <-chan zkclient.WatchEvent, err error) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	err = c.do(ctx, "get", func() error {
		if err := fakeCheckPath(path); err != nil {
			return err
		}
		n, ok := c.z.nodes[path]
		if !ok {
			return zkclient.ErrNoNode // and no watch, as ZooKeeper
		}
		data, st = slices.Clone(n.data), c.z.statOf(path)
		if watch {
			ch = c.watch(fakeData, path)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return data, st, ch, nil
}

func (c *fakeClient) Set(ctx context.Context, path string, data []byte, version int32) (st *zkclient.Stat, err error) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	err = c.do(ctx, "set", func() (err error) {
		st, err = c.z.set(path, data, version, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (c *fakeClient) Children(ctx context.Context, path string) ([]string, *zkclient.Stat, error) {
	names, st, _, err := c.children(ctx, path, false)
	return names, st, err
}

// AddWatch answers as a server before 3.6 does: the fake has no
// persistent watches, so recipes on it take their one-shot fallback
// (persistent watches are tested against real servers).
func (c *fakeClient) AddWatch(context.Context, string, bool) (*zkclient.Watcher, error) {
	return nil, zkclient.ErrUnimplemented
}

func (c *fakeClient) ChildrenW(ctx context.Context, path string) ([]string, *zkclient.Stat, <-chan zkclient.WatchEvent, error) {
	return c.children(ctx, path, true)
}

func (c *fakeClient) children(ctx context.Context, path string, watch bool) (names []string, st *zkclient.Stat, ch <-chan zkclient.WatchEvent, err error) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	err = c.do(ctx, "children", func() error {
		if err := fakeCheckPath(path); err != nil {
			return err
		}
		n, ok := c.z.nodes[path]
		if !ok {
			return zkclient.ErrNoNode
		}
		// In map order: ZooKeeper promises no order either.
		names = slices.AppendSeq(make([]string, 0, len(n.children)), maps.Keys(n.children))
		st = c.z.statOf(path)
		if watch {
			ch = c.watch(fakeChild, path)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return names, st, ch, nil
}

// fakeOp is a zkclient.Op read back: Op keeps its fields to itself, so the
// fake reads them with reflect.
type fakeOp struct {
	code    int64
	path    string
	data    []byte
	mode    zkclient.CreateMode
	version int32
	acl     []zkclient.ACL
}

func readOp(op zkclient.Op) fakeOp {
	v := reflect.ValueOf(op)
	o := fakeOp{
		code:    v.FieldByName("op").Int(),
		path:    v.FieldByName("path").String(),
		mode:    zkclient.CreateMode(v.FieldByName("mode").Int()),
		version: int32(v.FieldByName("version").Int()),
	}
	if d := v.FieldByName("data"); !d.IsNil() {
		o.data = slices.Clone(d.Bytes())
	}
	acl := v.FieldByName("acl")
	for i := range acl.Len() {
		a := acl.Index(i)
		o.acl = append(o.acl, zkclient.ACL{Perms: int32(a.Field(0).Int()), Scheme: a.Field(1).String(), ID: a.Field(2).String()})
	}
	return o
}

var (
	opCodeCheck  = readOp(zkclient.CheckOp("/", 0)).code
	opCodeCreate = readOp(zkclient.CreateOp("/", nil, nil, 0)).code
	opCodeSet    = readOp(zkclient.SetOp("/", nil, 0)).code
	opCodeDelete = readOp(zkclient.DeleteOp("/", 0)).code
)

// Multi applies ops at one zxid, all or none, as ZooKeeper's transactions.
func (c *fakeClient) Multi(ctx context.Context, ops ...zkclient.Op) (res []zkclient.OpResult, err error) {
	if len(ops) == 0 {
		return nil, nil
	}
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	var failed *zkclient.MultiError
	err = c.do(ctx, "multi", func() error {
		z := c.z
		saved, zxid := z.snapshot(), z.zxid
		z.zxid++
		res = make([]zkclient.OpResult, len(ops))
		for i, op := range ops {
			o := readOp(op)
			var err error
			switch o.code {
			case opCodeCheck:
				if st := z.statOf(o.path); st == nil {
					err = zkclient.ErrNoNode
				} else if o.version != -1 && o.version != st.Version {
					err = zkclient.ErrBadVersion
				}
			case opCodeCreate:
				if o.mode > zkclient.Container {
					err = zkclient.ErrBadArguments
					break
				}
				res[i].Path, res[i].Stat, err = z.create(o.path, o.data, o.acl, o.mode, c.id, z.zxid)
			case opCodeSet:
				res[i].Stat, err = z.set(o.path, o.data, o.version, z.zxid)
			case opCodeDelete:
				err = z.deleteAt(o.path, o.version, z.zxid)
			default:
				err = zkclient.ErrUnimplemented
			}
			if err != nil {
				z.nodes, z.zxid, z.fired = saved, zxid, z.fired[:0]
				for j := range res {
					switch {
					case j < i:
						res[j] = zkclient.OpResult{}
					case j == i:
						res[j] = zkclient.OpResult{Err: err}
					default:
						res[j] = zkclient.OpResult{Err: zkclient.Code(-2)} // runtime inconsistency
					}
				}
				failed = &zkclient.MultiError{Index: i, Err: err}
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if failed != nil {
		return res, failed
	}
	return res, nil
}

// snapshot copies the tree, for a multi to roll back.
func (z *fakeZK) snapshot() map[string]*fakeNode {
	out := make(map[string]*fakeNode, len(z.nodes))
	for p, n := range z.nodes {
		cp := *n
		cp.children = maps.Clone(n.children)
		out[p] = &cp
	}
	return out
}

func (c *fakeClient) WhoAmI(ctx context.Context) (infos []zkclient.ClientInfo, err error) {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	err = c.do(ctx, "whoami", func() error {
		infos = []zkclient.ClientInfo{{AuthScheme: "ip", User: "127.0.0.1"}}
		return nil
	})
	return infos, err
}

func (c *fakeClient) SessionID() int64 {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	return c.id
}

func (c *fakeClient) State() zkclient.State {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	switch {
	case c.closed:
		return zkclient.StateClosed
	case c.connected:
		return zkclient.StateConnected
	}
	return zkclient.StateDisconnected
}

// Close closes the session as closeSession does: its ephemeral nodes go at
// once, its watches get EventLost with ErrClosed and later calls fail with
// ErrClosed.
func (c *fakeClient) Close(ctx context.Context) error {
	c.z.mu.Lock()
	defer c.z.mu.Unlock()
	if c.closed {
		return nil
	}
	if c.closing != nil {
		c.closing()
	}
	c.z.endSession(c.id)
	c.loseWatches(zkclient.ErrClosed)
	c.closed, c.connected, c.id = true, false, 0
	c.event(zkclient.Event{State: zkclient.StateClosed, Err: zkclient.ErrClosed})
	return nil
}

// Looking at the tree, for assertions.

// Children returns the names of path's children, sorted; nil if path does
// not exist.
func (z *fakeZK) Children(path string) []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	n, ok := z.nodes[path]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(n.children))
}

// Node returns path's data and stat, or ok false if it does not exist.
func (z *fakeZK) Node(path string) (data []byte, st zkclient.Stat, ok bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	n, ok := z.nodes[path]
	if !ok {
		return nil, st, false
	}
	return slices.Clone(n.data), n.stat, true
}

// The harness: a Session around a fake client.

// fakeSession is a Session whose client is a fakeClient, and the session's
// events from its start.
type fakeSession struct {
	*Session
	zk     *fakeClient
	events <-chan Event
}

// newFakeSession builds a Session as Connect does, around a new client of
// z, and returns it once its session is established. The Session's own
// goroutine (run) turns the fake's session events into session states and
// events, as it does those of zkclient. It is closed when the test ends.
func newFakeSession(t testing.TB, z *fakeZK, opts ...Option) *fakeSession {
	t.Helper()
	o, err := newOptions(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := z.newClient()
	c.timeout = o.sessionTimeout
	s := newSession(o, "")
	s.zk = c
	c.onEvent = func(ev zkclient.Event) { s.inbox.Put(ev) }
	c.heard = func() { s.live.lastHeard.Store(int64(time.Since(s.live.born))) }
	fs := &fakeSession{Session: s, zk: c}
	ctx, cancel := context.WithCancel(context.Background())
	fs.events = s.Events(ctx)
	reconnected := s.Events(ctx)
	seen := 0
	c.settled = func() {
		// Called with the fake locked, after a reconnect: wait until the
		// session's goroutine has published it.
		for e := range reconnected {
			if e.Type == EventReconnected {
				if seen++; seen == c.reconnects {
					break
				}
			}
		}
		for {
			states, unsubscribe := s.state.Subscribe()
			st := <-states
			unsubscribe()
			if st.Connected {
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	states, unsubscribe := s.state.Subscribe()
	defer unsubscribe()
	s.loop = actor.Start(context.Background(), s.run)
	t.Cleanup(func() {
		s.Close()
		cancel()
	})
	c.connect()
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	if err := awaitConnected(actx, states); err != nil {
		t.Fatalf("fake session: %v", err)
	}
	return fs
}

// await reads the session's events until one of type want, failing the
// test if none comes within a second.
func (fs *fakeSession) await(t testing.TB, want EventType) Event {
	t.Helper()
	return awaitEvent(t, fs.events, want, time.Second)
}

// The fake itself: what the recipe tests rely on.

func TestFakeZKBehavesAsZooKeeper(t *testing.T) {
	z := newFakeZK()
	c := z.newClient()
	c.connect()
	ctx := context.Background()

	if _, _, err := c.Create(ctx, "/a/b", nil, nil, zkclient.Persistent, 0); !errors.Is(err, zkclient.ErrNoNode) {
		t.Fatalf("create without parent: %v, want ErrNoNode", err)
	}
	if _, _, err := c.Create(ctx, "/a", []byte("x"), nil, zkclient.Persistent, 0); err != nil {
		t.Fatal(err)
	}
	_, _, cw, _ := c.ChildrenW(ctx, "/a")
	p1, st1, err := c.Create(ctx, "/a/n-", nil, nil, zkclient.EphemeralSequential, 0)
	if err != nil || p1 != "/a/n-0000000000" || st1.EphemeralOwner != c.SessionID() {
		t.Fatalf("first sequential: %q %+v %v", p1, st1, err)
	}
	if ev := <-cw; ev.Type != zkclient.EventNodeChildrenChanged || ev.Path != "/a" {
		t.Fatalf("child watch: %+v", ev)
	}
	if _, ok := <-cw; ok {
		t.Fatal("one-shot watch channel not closed after firing")
	}
	c.Create(ctx, "/a/x", nil, nil, zkclient.Persistent, 0)
	c.Delete(ctx, "/a/x", -1)
	p2, st2, _ := c.Create(ctx, "/a/n-", nil, nil, zkclient.EphemeralSequential, 0)
	if p2 != "/a/n-0000000003" || st2.Czxid <= st1.Czxid {
		t.Fatalf("sequence from cversion: %q (czxid %d after %d)", p2, st2.Czxid, st1.Czxid)
	}
	if _, st, _ := z.Node("/a"); st.Cversion != 4 || st.NumChildren != 2 || st.Pzxid != st2.Czxid {
		t.Fatalf("parent stat: %+v", st)
	}
	if err := c.Delete(ctx, "/a", -1); !errors.Is(err, zkclient.ErrNotEmpty) {
		t.Fatalf("delete non-empty: %v", err)
	}
	if _, err := c.Set(ctx, "/a", []byte("y"), 5); !errors.Is(err, zkclient.ErrBadVersion) {
		t.Fatalf("set bad version: %v", err)
	}
	_, _, dw, _ := c.GetW(ctx, "/a")
	if st, err := c.Set(ctx, "/a", []byte("y"), 0); err != nil || st.Version != 1 {
		t.Fatalf("set: %+v %v", st, err)
	}
	if ev := <-dw; ev.Type != zkclient.EventNodeDataChanged {
		t.Fatalf("data watch: %+v", ev)
	}

	// Multi: all or none, at one zxid.
	_, err = c.Multi(ctx, zkclient.CreateOp("/a/m", nil, nil, zkclient.Persistent), zkclient.CheckOp("/a", 7))
	var me *zkclient.MultiError
	if !errors.As(err, &me) || me.Index != 1 || !errors.Is(err, zkclient.ErrBadVersion) {
		t.Fatalf("failed multi: %v", err)
	}
	if _, _, ok := z.Node("/a/m"); ok {
		t.Fatal("failed multi applied its create")
	}
	res, err := c.Multi(ctx, zkclient.CreateOp("/a/m", nil, nil, zkclient.Persistent), zkclient.SetOp("/a", []byte("z"), 1))
	if err != nil || res[0].Path != "/a/m" || res[1].Stat.Mzxid != res[0].Stat.Czxid {
		t.Fatalf("multi: %+v %v", res, err)
	}

	// Expiry: watches lost, ephemerals gone (others see it), new session.
	other := z.newClient()
	other.connect()
	_, ow, _ := other.ExistsW(ctx, p1)
	_, mine, _ := c.ExistsW(ctx, "/a/m")
	old := c.SessionID()
	c.Expire()
	if ev := <-mine; ev.Type != zkclient.EventLost || !errors.Is(ev.Err, zkclient.ErrSessionExpired) {
		t.Fatalf("own watch on expiry: %+v", ev)
	}
	if ev := <-ow; ev.Type != zkclient.EventNodeDeleted || ev.Path != p1 {
		t.Fatalf("other's watch on expiry: %+v", ev)
	}
	if c.SessionID() == old || z.Children("/a") == nil || len(z.Children("/a")) != 1 {
		t.Fatalf("after expiry: session %d (was %d), children %v", c.SessionID(), old, z.Children("/a"))
	}

	// Faults.
	c.Disconnect()
	if _, err := c.Exists(ctx, "/a"); !errors.Is(err, zkclient.ErrConnectionLoss) {
		t.Fatalf("call while disconnected: %v", err)
	}
	c.Reconnect()
	c.LoseNextReply("create")
	if _, _, err := c.Create(ctx, "/a/lost", nil, nil, zkclient.Persistent, 0); !errors.Is(err, zkclient.ErrConnectionLoss) {
		t.Fatalf("lost reply: %v", err)
	}
	if _, _, ok := z.Node("/a/lost"); !ok || c.State() != zkclient.StateDisconnected {
		t.Fatalf("lost reply: applied %v, state %v", ok, c.State())
	}
	c.Reconnect()
	c.FailNext("get", 2, zkclient.ErrOperationTimeout)
	for range 2 {
		if _, _, err := c.Get(ctx, "/a"); !errors.Is(err, zkclient.ErrOperationTimeout) {
			t.Fatalf("failed get: %v", err)
		}
	}
	if _, _, err := c.Get(ctx, "/a"); err != nil {
		t.Fatalf("get after the failures: %v", err)
	}
}
