package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// TxnError is the error of a transaction (Session.Txn). Index is the
// position of the first operation that failed, and Op and Path name it ("check",
// "guard", "create", "set" or "delete", and the path as the caller gave
// it). An error of the whole transaction, such as a lost connection or a
// cancelled ctx, has Index -1, Op "txn" and no Path. Err is the cause, one
// of the Err* values of ops.go or ErrNotLeader where they apply, so
// errors.Is works through a TxnError.
type TxnError struct {
	Index int
	Op    string
	Path  string
	Err   error
}

func (e *TxnError) Error() string {
	// Some causes say "lighthouse:" themselves (ErrInvalidPath, a codec's
	// error): the message says it once.
	cause := strings.TrimPrefix(e.Err.Error(), "lighthouse: ")
	if e.Index < 0 {
		return "lighthouse: txn: " + cause
	}
	return fmt.Sprintf("lighthouse: txn op %d (%s %s): %s", e.Index, e.Op, clip(e.Path), cause)
}

func (e *TxnError) Unwrap() error { return e.Err }

type txnKind int

const (
	txnCheck txnKind = iota + 1
	txnCreate
	txnSet
	txnDelete
)

// TxnOp is one operation of a transaction. Make it with CheckVersion,
// CheckExists, CreateOp, SetOp, DeleteOp (or CreateOpAs, SetOpAs, Guard);
// the zero TxnOp is invalid. A TxnOp is a value: it can be reused.
type TxnOp struct {
	kind    txnKind
	op      string // its name in errors and results
	path    string
	data    []byte
	version int32
	mode    CreateMode
	opts    []CreateOption
	err     error // found when it was made; Txn reports it before sending
	guard   bool  // a failed check means ErrNotLeader
}

// TxnResult is the outcome of one operation of a committed transaction.
type TxnResult struct {
	Op   string // "check", "guard", "create", "set" or "delete"
	Path string // the operation's path; for create, the created node's (with its sequence number)
	Stat *Stat  // for set, the node's new stat; nil for the others
}

// CheckVersion makes a transaction commit only if the node at path has
// version version (AnyVersion: only if it exists).
func CheckVersion(path string, version int32) TxnOp {
	return TxnOp{kind: txnCheck, op: "check", path: path, version: version}
}

// CheckExists makes a transaction commit only if the node at path exists.
func CheckExists(path string) TxnOp { return CheckVersion(path, AnyVersion) }

// CreateOp creates a node as Session.Create does (TTL modes included),
// except that CreateParents is not allowed (create the parents in earlier
// operations) and neither is the Container mode. Its result has the created
// path.
func CreateOp(path string, data []byte, mode CreateMode, opts ...CreateOption) TxnOp {
	return TxnOp{kind: txnCreate, op: "create", path: path, data: data, mode: mode, opts: opts}
}

// SetOp replaces a node's data if its version is version (AnyVersion for
// any). Its result has the node's new stat.
func SetOp(path string, data []byte, version int32) TxnOp {
	return TxnOp{kind: txnSet, op: "set", path: path, data: data, version: version}
}

// DeleteOp deletes a node (without children) if its version is version
// (AnyVersion for any).
func DeleteOp(path string, version int32) TxnOp {
	return TxnOp{kind: txnDelete, op: "delete", path: path, version: version}
}

// CreateOpAs is CreateOp with v encoded by c as the node's data. An
// encoding error is reported by Txn, as the error of this operation.
func CreateOpAs[T any](path string, v T, mode CreateMode, c Codec[T], opts ...CreateOption) TxnOp {
	op := CreateOp(path, nil, mode, opts...)
	op.data, op.err = encodeOp(v, c)
	return op
}

// SetOpAs is SetOp with v encoded by c. An encoding error is reported by
// Txn, as the error of this operation.
func SetOpAs[T any](path string, v T, version int32, c Codec[T]) TxnOp {
	op := SetOp(path, nil, version)
	op.data, op.err = encodeOp(v, c)
	return op
}

func encodeOp[T any](v T, c Codec[T]) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil codec", ErrInvalidOption)
	}
	data, err := c.Encode(v)
	if err != nil {
		return nil, codecCause(err, ErrEncode)
	}
	return data, nil
}

// Txn runs ops as one ZooKeeper transaction (multi): either every operation
// is applied, in order, or none is. On success it returns one TxnResult per
// operation. On failure the error is a *TxnError naming the first operation
// that failed (errors.Is finds its cause: ErrBadVersion, ErrNoNode,
// ErrNodeExists, ErrNotLeader...), and nothing was applied.
//
// Every operation is checked before anything is sent: a bad path, data over
// MaxDataSize (or a whole request over ZooKeeper's packet limit, which the
// server would answer by dropping the connection), an unknown or Container
// mode, CreateParents, an empty ACL, a TTL ZooKeeper would refuse, a version
// below AnyVersion, a failed encoding or a Guard of a Leadership that does
// not lead fail at once, without a round trip. A transaction without operations commits nothing
// and returns no results and no error, also without a round trip.
//
// ctx bounds the call only. If ctx ends or the connection is lost after the
// transaction was sent (Index -1 with ctx's error or ErrConnectionLoss), it
// may or may not have been applied: read to find out.
func (s *Session) Txn(ctx context.Context, ops ...TxnOp) ([]TxnResult, error) {
	if err := s.usable(ctx); err != nil {
		return nil, &TxnError{Index: -1, Op: "txn", Err: err}
	}
	select {
	case <-s.closing:
		return nil, &TxnError{Index: -1, Op: "txn", Err: ErrClosed}
	default:
	}
	wire, err := s.txnOps(ops)
	if err != nil || len(wire) == 0 {
		return nil, err
	}
	out, failed, err := s.multi(ctx, wire)
	if err != nil {
		cause := s.opErr("txn", "", err).(*OpError).Err
		if failed < 0 || failed >= len(ops) {
			return nil, &TxnError{Index: -1, Op: "txn", Err: cause}
		}
		op := ops[failed]
		if op.guard && errors.Is(cause, ErrNoNode) {
			cause = ErrNotLeader // the leader's node is gone: leadership moved on
		}
		return nil, &TxnError{Index: failed, Op: op.op, Path: op.path, Err: cause}
	}
	results := make([]TxnResult, len(ops))
	for i, op := range ops {
		results[i] = TxnResult{Op: op.op, Path: op.path}
		if i < len(out) {
			if op.kind == txnCreate {
				results[i].Path = out[i].path
			}
			results[i].Stat = out[i].stat
		}
	}
	return results, nil
}

// txnOps checks the caller's operations and turns them into the client's,
// with server paths.
func (s *Session) txnOps(ops []TxnOp) ([]txnOp, error) {
	wire := make([]txnOp, len(ops))
	size := 8 + 9 // the request's header (xid, opcode) and the multi's end marker
	for i, op := range ops {
		bad := func(err error) error { return &TxnError{Index: i, Op: op.op, Path: op.path, Err: err} }
		if op.kind == 0 {
			return nil, &TxnError{Index: i, Op: "?", Path: op.path, Err: fmt.Errorf("%w: zero TxnOp", ErrInvalidOption)}
		}
		if op.err != nil {
			return nil, bad(op.err)
		}
		if err := ValidatePath(op.path); err != nil {
			return nil, bad(err)
		}
		if op.version < AnyVersion {
			return nil, bad(fmt.Errorf("%w: version %d", ErrInvalidOption, op.version))
		}
		if len(op.data) > MaxDataSize {
			return nil, bad(fmt.Errorf("%w: %d bytes, at most %d", ErrDataTooLarge, len(op.data), MaxDataSize))
		}
		w := txnOp{kind: op.kind, path: op.path, data: op.data, version: op.version}
		if op.kind == txnCreate {
			o := createOptions{acl: s.acl}
			for _, opt := range op.opts {
				if opt != nil {
					opt(&o)
				}
			}
			switch {
			case op.path == "/":
				return nil, bad(ErrNodeExists)
			case o.parents:
				return nil, bad(fmt.Errorf("%w: CreateParents in a transaction", ErrInvalidOption))
			case op.mode == Container:
				return nil, bad(fmt.Errorf("%w: Container mode in a transaction", ErrInvalidOption))
			case len(o.acl) == 0:
				return nil, bad(fmt.Errorf("%w: empty", ErrInvalidACL))
			}
			for _, a := range o.acl {
				if a.Scheme == "" || a.Perms == 0 {
					return nil, bad(fmt.Errorf("%w: %+v", ErrInvalidACL, a))
				}
			}
			mode, err := op.mode.client()
			if err != nil {
				return nil, bad(fmt.Errorf("%w: create mode %d in a transaction", ErrInvalidOption, int(op.mode)))
			}
			if err := checkTTL(op.mode, o.ttl); err != nil {
				return nil, bad(err)
			}
			w.mode, w.acl, w.ttl = mode, o.acl, o.ttl
		}
		wire[i] = w
		// The whole multi request must fit in one packet, as checkWrite
		// makes sure for one create or set.
		if size += w.size() + len(s.chroot); size > maxPacket {
			return nil, bad(fmt.Errorf("%w: the transaction's request reaches %d bytes here, over ZooKeeper's limit of %d (jute.maxbuffer)",
				ErrDataTooLarge, size, maxPacket))
		}
	}
	return wire, nil
}

// txnOp is one operation as the client sends it: path with the chroot.
type txnOp struct {
	kind    txnKind
	path    string
	data    []byte
	version int32
	mode    zkclient.CreateMode
	acl     []zkclient.ACL
	ttl     time.Duration // TTL modes
}

// size is the op's bytes in a multi request: its header (type, done,
// error) and its record, as ZooKeeper's jute encodes them.
func (op txnOp) size() int {
	n := 9 + 4 + len(op.path) + 4 // header, path, version or flags
	switch op.kind {
	case txnCreate:
		n += 4 + len(op.data) + 4
		if op.ttl > 0 {
			n += 8
		}
		for _, a := range op.acl {
			n += 4 + 4 + len(a.Scheme) + 4 + len(a.ID)
		}
	case txnSet:
		n += 4 + len(op.data)
	}
	return n
}

// txnResult is one operation's answer: path is the created node's (with
// the chroot), stat a set's new stat.
type txnResult struct {
	path string
	stat *Stat
}

// multi sends ops as one multi request. It returns one result per op, or
// the client's error and the index of the first op the server refused (-1
// if the whole request failed, e.g. on a lost connection).
func (s *Session) multi(ctx context.Context, ops []txnOp) ([]txnResult, int, error) {
	reqs := make([]zkclient.Op, len(ops))
	for i, op := range ops {
		switch op.kind {
		case txnCheck:
			reqs[i] = zkclient.CheckOp(op.path, op.version)
		case txnCreate:
			reqs[i] = zkclient.CreateTTLOp(op.path, op.data, op.acl, op.mode, op.ttl)
		case txnSet:
			reqs[i] = zkclient.SetOp(op.path, op.data, op.version)
		case txnDelete:
			reqs[i] = zkclient.DeleteOp(op.path, op.version)
		}
	}
	resp, err := s.zk.Multi(ctx, reqs...)
	if err != nil {
		var me *zkclient.MultiError
		if errors.As(err, &me) {
			return nil, me.Index, me.Err
		}
		return nil, -1, err
	}
	if len(resp) != len(ops) {
		return nil, -1, fmt.Errorf("%d results for %d operations", len(resp), len(ops))
	}
	out := make([]txnResult, len(ops))
	for i, r := range resp {
		out[i] = txnResult{path: r.Path, stat: stat(r.Stat)}
	}
	return out, -1, nil
}
