package lighthouse

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// Errors. Every error the library returns matches one of these with
// errors.Is; most come wrapped in an *OpError that names the operation and
// the path. Their texts carry no prefix: an error's message says
// "lighthouse:" once, where it is wrapped.
var (
	// ErrNoNode: the node does not exist.
	ErrNoNode = errors.New("node does not exist")
	// ErrNodeExists: the node already exists.
	ErrNodeExists = errors.New("node already exists")
	// ErrBadVersion: the node's version is not the one given.
	ErrBadVersion = errors.New("version conflict")
	// ErrNotEmpty: the node has children.
	ErrNotEmpty = errors.New("node has children")
	// ErrNoAuth: the session's identity lacks the permission (see
	// WithDigestAuth, WithACL, WithParentACL).
	ErrNoAuth = errors.New("not authorized")
	// ErrInvalidACL: the server refused an ACL.
	ErrInvalidACL = errors.New("invalid ACL")
	// ErrEphemeralChild: ephemeral nodes cannot have children.
	ErrEphemeralChild = errors.New("ephemeral nodes may not have children")
	// ErrBadArguments: the server refused the request's arguments, as it
	// does for deleting "/" or "/zookeeper".
	ErrBadArguments = errors.New("the server refused the arguments")
	// ErrConnectionLoss: the connection was lost before the answer came. The
	// operation may or may not have been applied.
	ErrConnectionLoss = errors.New("connection lost")
	// ErrSessionExpired: the session expired; its ephemeral nodes are gone.
	ErrSessionExpired = errors.New("session expired")
	// ErrClosed: the Session is closed.
	ErrClosed = errors.New("session closed")
	// ErrAuthFailed: the server rejected the session's credentials.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrUnimplemented: the server does not know the request (an older
	// ZooKeeper: WhoAmI needs 3.7, persistent watches 3.6).
	ErrUnimplemented = errors.New("not implemented by the server")

	// ErrInvalidConnectString: the connect string is empty or malformed.
	ErrInvalidConnectString = errors.New("invalid connect string")
	// ErrInvalidOption: an option, or an argument such as a ctx or a
	// function, has a value that cannot work (nil, say).
	ErrInvalidOption = errors.New("invalid option")
	// ErrInvalidPath: a path breaks ZooKeeper's rules (see ValidatePath).
	ErrInvalidPath = errors.New("invalid path")
	// ErrDataTooLarge: node data over MaxDataSize, or a request over
	// ZooKeeper's packet limit.
	ErrDataTooLarge = errors.New("data too large")
	// ErrInvalidID: a participant or node ID is empty, too long or contains
	// a NUL byte or '/'.
	ErrInvalidID = errors.New("invalid id")
	// ErrIDTaken: another live participant, in this process or on another
	// session, holds the same ID: a registration in the same service, or a
	// participant of the same barrier.
	ErrIDTaken = errors.New("id already taken")
	// ErrNoLeader: the election has no participant.
	ErrNoLeader = errors.New("no leader")
	// ErrInvalidCount: a barrier's count is below 1.
	ErrInvalidCount = errors.New("invalid barrier count")
	// ErrNotEntered: Leave was called without a successful Enter before it.
	ErrNotEntered = errors.New("barrier not entered")
	// ErrDecode: a node's data is not a value of the type a Codec decodes,
	// for example because another client wrote something else there. The
	// library's codecs return it in an *OpError (Op "decode"); GetAs's
	// names the node, also for a Codec of the caller's whose error does not
	// wrap ErrDecode.
	ErrDecode = errors.New("cannot decode node data")
	// ErrEncode: a Codec could not encode a value (a string that is not
	// UTF-8, a value encoding/json refuses). As for ErrDecode, the error is
	// an *OpError with Op "encode".
	ErrEncode = errors.New("cannot encode value")
	// ErrInvalidInstance: data is not a Curator ServiceInstance, or one that
	// Register cannot write for the service and ID it was given.
	ErrInvalidInstance = errors.New("invalid service instance")
	// ErrNotLeader: a transaction's Guard failed: the leadership it guards
	// has ended (see Leadership.Guard).
	ErrNotLeader = errors.New("not the leader")
	// ErrGraceExceeded: a leader's fn did not return within the grace period
	// after its context ended (see Lead and WithGracePeriod).
	ErrGraceExceeded = errors.New("fn did not return within the grace period")
)

// Former names of ErrIDTaken.
var (
	// Deprecated: use ErrIDTaken.
	ErrAlreadyRegistered = ErrIDTaken
	// Deprecated: use ErrIDTaken.
	ErrDuplicateID = ErrIDTaken
)

// OpError is the error of one operation on one path, as os.PathError is.
type OpError struct {
	Op   string // "create", "get", "elect", "register", "connect", ...
	Path string // as the caller gave it ("" if none)
	Err  error  // one of the Err* values above, or another cause
}

func (e *OpError) Error() string {
	p := clip(e.Path)
	if p == "" {
		return "lighthouse: " + e.Op + ": " + e.Err.Error()
	}
	return "lighthouse: " + e.Op + " " + p + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// opError wraps err for the caller of op on path. An *OpError from a call
// made on the way gives its cause, so the message says "lighthouse:" once.
func opError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	if oe, ok := err.(*OpError); ok {
		err = oe.Err
	}
	return &OpError{Op: op, Path: path, Err: err}
}

// codes maps the server's error codes to ours.
var codes = map[zkclient.Code]error{
	zkclient.ErrNoNode:                  ErrNoNode,
	zkclient.ErrNodeExists:              ErrNodeExists,
	zkclient.ErrBadVersion:              ErrBadVersion,
	zkclient.ErrNotEmpty:                ErrNotEmpty,
	zkclient.ErrNoAuth:                  ErrNoAuth,
	zkclient.ErrInvalidACL:              ErrInvalidACL,
	zkclient.ErrNoChildrenForEphemerals: ErrEphemeralChild,
	zkclient.ErrConnectionLoss:          ErrConnectionLoss,
	zkclient.ErrSessionMoved:            ErrConnectionLoss,
	zkclient.ErrSessionExpired:          ErrSessionExpired,
	zkclient.ErrAuthFailed:              ErrAuthFailed,
	zkclient.ErrBadArguments:            ErrBadArguments,
	zkclient.ErrUnimplemented:           ErrUnimplemented,
}

// mapErr turns a client error into ours.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var code zkclient.Code
	if errors.As(err, &code) {
		if mapped, ok := codes[code]; ok {
			if err == error(code) {
				return mapped
			}
			return fmt.Errorf("%w: %s", mapped, trimZK(err))
		}
	}
	switch {
	case errors.Is(err, zkclient.ErrClosed):
		return ErrClosed
	case errors.Is(err, zkclient.ErrRequestTooLarge):
		return fmt.Errorf("%w: %s", ErrDataTooLarge, trimZK(err))
	case strings.HasPrefix(err.Error(), "zk: "):
		return clientError{err}
	}
	return err
}

// clientError is another error of the client, said without its prefix:
// the message says "lighthouse:" once. errors.Is and As see the client's.
type clientError struct{ err error }

func (e clientError) Error() string { return trimZK(e.err) }
func (e clientError) Unwrap() error { return e.err }

// trimZK is the client's message without its "zk: " prefix.
func trimZK(err error) string { return strings.TrimPrefix(err.Error(), "zk: ") }

// opErr wraps a client error for the caller. While the session closes,
// connection loss and expiry are ErrClosed.
func (s *Session) opErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	err = mapErr(err)
	if errors.Is(err, ErrConnectionLoss) || errors.Is(err, ErrSessionExpired) {
		select {
		case <-s.closing:
			err = ErrClosed
		default:
		}
	}
	return opError(op, path, err)
}

// lasting reports whether an error will not go away by retrying.
func lasting(err error) bool {
	err = mapErr(err)
	for _, l := range []error{ErrNoAuth, ErrInvalidACL, ErrEphemeralChild, ErrBadArguments, ErrAuthFailed, ErrDataTooLarge, ErrInvalidPath} {
		if errors.Is(err, l) {
			return true
		}
	}
	return false
}
