package zkclient

import (
	"context"
	"fmt"
	"time"
)

// Op is one operation of a Multi; make it with CheckOp, CreateOp, SetOp or
// DeleteOp.
type Op struct {
	op      int32
	path    string
	data    []byte
	acl     []ACL
	mode    CreateMode
	ttl     time.Duration
	version int32
}

// CheckOp checks that path's version is version.
func CheckOp(path string, version int32) Op { return Op{op: opCheck, path: path, version: version} }

// CreateOp creates path; for the TTL modes, use CreateTTLOp.
func CreateOp(path string, data []byte, acl []ACL, mode CreateMode) Op {
	return Op{op: opCreate, path: path, data: data, acl: acl, mode: mode}
}

// CreateTTLOp creates path with a TTL mode and ttl, as Create does.
func CreateTTLOp(path string, data []byte, acl []ACL, mode CreateMode, ttl time.Duration) Op {
	return Op{op: opCreate, path: path, data: data, acl: acl, mode: mode, ttl: ttl}
}

// SetOp sets path's data if its version matches (-1: any).
func SetOp(path string, data []byte, version int32) Op {
	return Op{op: opSetData, path: path, data: data, version: version}
}

// DeleteOp deletes path if its version matches (-1: any).
func DeleteOp(path string, version int32) Op {
	return Op{op: opDelete, path: path, version: version}
}

// OpResult is the outcome of one op of a Multi: the created path (for a
// create), the Stat (for a set), or the op's error when the Multi failed
// (nil for ops before the failing one, a runtime-inconsistency code for
// those after it).
type OpResult struct {
	Path string
	Stat *Stat
	Err  error
}

// Multi applies ops atomically: all or none. If the transaction fails, the
// error is a *MultiError naming the first failing op, and the results carry
// each op's error.
func (c *Client) Multi(ctx context.Context, ops ...Op) ([]OpResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	r := c.newRequest(opMulti)
	e := enc{r.buf}
	for i, op := range ops {
		full, err := c.path(op.path, op.op == opCreate && op.mode.sequential())
		if err != nil {
			c.release(r)
			return nil, fmt.Errorf("zk: multi op %d: %w", i, err)
		}
		code := op.op
		if op.op == opCreate {
			switch {
			case op.mode < Persistent || op.mode > PersistentSequentialWithTTL:
				c.release(r)
				return nil, fmt.Errorf("zk: multi op %d: %w: create mode %d", i, ErrBadArguments, op.mode)
			case op.mode == Container:
				code = opCreateContainer
			case op.mode.ttl() && op.ttl <= 0:
				c.release(r)
				return nil, fmt.Errorf("zk: multi op %d: %w: TTL mode needs a positive ttl", i, ErrBadArguments)
			case op.mode.ttl():
				code = opCreateTTL
			}
		}
		e.int32(code) // MultiHeader{type, done=false, err=-1}
		e.bool(false)
		e.int32(-1)
		e.string(full)
		switch op.op {
		case opCreate:
			e.buffer(op.data)
			e.acls(op.acl)
			e.int32(int32(op.mode))
			if code == opCreateTTL {
				e.int64(op.ttl.Milliseconds())
			}
		case opSetData:
			e.buffer(op.data)
			e.int32(op.version)
		case opDelete, opCheck:
			e.int32(op.version)
		}
	}
	e.int32(-1)
	e.bool(true)
	e.int32(-1)
	r.buf = e.b
	body, err := c.call(ctx, r)
	if err != nil {
		return nil, err
	}
	res, err := decodeMulti(body, c.chroot, len(ops))
	if err != nil {
		return nil, err
	}
	if len(res) != len(ops) {
		return nil, fmt.Errorf("%w: multi of %d ops has %d results", errProtocol, len(ops), len(res))
	}
	for i, x := range res {
		if x.Err != nil && x.Err != Code(0) {
			return res, &MultiError{Index: i, Err: x.Err}
		}
	}
	return res, nil
}
