package zkclient

import (
	"context"
	"time"
)

// Hooks let the client's user count what happens on the wire (metrics)
// without wrapping every call. Each is optional. A hook runs on the
// goroutine named in its comment and must return at once: it must not
// block and must not call the Client.
type Hooks struct {
	// OnAttempt is called on the owner goroutine after each attempt to
	// reach a server (dial, TLS, handshake), with the server's address as
	// configured and the attempt's error (nil when a connection was made).
	OnAttempt func(server string, err error)
	// OnCall is called on the caller's goroutine when a request ends, with
	// the request's name (see OpName), how long it took from being handed
	// to the client to its reply, and its error (a Code for the server's
	// errors, ctx's error, ErrClosed, ...). Pings, auth and the client's
	// own requests (setWatches, closeSession) and Watcher.Remove are not
	// reported.
	OnCall func(ctx context.Context, op string, took time.Duration, err error)
	// OnWatch is called for each watch notification from the server, before
	// it is delivered to the watches it triggers, one call at a time (on the
	// client's owner goroutine or its connection's reader).
	OnWatch func(typ EventType)
}

// OpName returns a short stable name of an opcode: "create" (all create
// variants), "delete", "exists", "get_data", "set_data", "get_acl",
// "set_acl", "get_children", "sync", "check", "multi", "add_watch",
// "remove_watches", "whoami", or "other".
func OpName(op int32) string {
	switch op {
	case opCreate, opCreate2, opCreateContainer, opCreateTTL:
		return "create"
	case opDelete:
		return "delete"
	case opExists:
		return "exists"
	case opGetData:
		return "get_data"
	case opSetData:
		return "set_data"
	case opGetACL:
		return "get_acl"
	case opSetACL:
		return "set_acl"
	case opGetChildren, opGetChildren2:
		return "get_children"
	case opSync:
		return "sync"
	case opCheck:
		return "check"
	case opMulti:
		return "multi"
	case opAddWatch:
		return "add_watch"
	case opRemoveWatches:
		return "remove_watches"
	case opWhoAmI:
		return "whoami"
	}
	return "other"
}

// timed runs do for a caller's request and reports it to OnCall.
func (c *Client) timed(ctx context.Context, r *request) (reply, error) {
	h := c.cfg.Hooks.OnCall
	if h == nil {
		return c.do(ctx, r)
	}
	op := r.op // r goes back to the pool once answered
	start := time.Now()
	rep, err := c.do(ctx, r)
	took := time.Since(start)
	if err == nil {
		h(ctx, OpName(op), took, rep.err)
	} else {
		h(ctx, OpName(op), took, err)
	}
	return rep, err
}

func (h *Hooks) attempt(server string, err error) {
	if h.OnAttempt != nil {
		h.OnAttempt(server, err)
	}
}

func (h *Hooks) watch(typ EventType) {
	if h.OnWatch != nil {
		h.OnWatch(typ)
	}
}
