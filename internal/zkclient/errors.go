package zkclient

import (
	"errors"
	"fmt"
	"strconv"
)

// Code is an error code of ZooKeeper's protocol (KeeperException.Code). The
// named values below are errors; match them with errors.Is.
type Code int32

// Error codes sent by servers, and ErrConnectionLoss, which this client
// reports for requests whose connection dropped before their reply.
const (
	ErrSystemError              Code = -1
	ErrConnectionLoss           Code = -4
	ErrMarshalling              Code = -5
	ErrUnimplemented            Code = -6
	ErrOperationTimeout         Code = -7
	ErrBadArguments             Code = -8
	ErrAPIError                 Code = -100
	ErrNoNode                   Code = -101
	ErrNoAuth                   Code = -102
	ErrBadVersion               Code = -103
	ErrNoChildrenForEphemerals  Code = -108
	ErrNodeExists               Code = -110
	ErrNotEmpty                 Code = -111
	ErrSessionExpired           Code = -112
	ErrInvalidCallback          Code = -113
	ErrInvalidACL               Code = -114
	ErrAuthFailed               Code = -115
	ErrSessionMoved             Code = -118
	ErrNotReadOnly              Code = -119
	ErrEphemeralOnLocalSession  Code = -120
	ErrNoWatcher                Code = -121
	ErrRequestTimeout           Code = -122
	ErrReconfigDisabled         Code = -123
	ErrSessionClosedRequireSASL Code = -124
	ErrQuotaExceeded            Code = -125
	ErrThrottled                Code = -127

	// errRuntimeInconsistency marks the ops of a failed multi after the
	// failing one.
	errRuntimeInconsistency Code = -2
)

var codeText = map[Code]string{
	ErrSystemError:              "system error",
	errRuntimeInconsistency:     "runtime inconsistency",
	-3:                          "data inconsistency",
	ErrConnectionLoss:           "connection loss",
	ErrMarshalling:              "marshalling error",
	ErrUnimplemented:            "unimplemented",
	ErrOperationTimeout:         "operation timeout",
	ErrBadArguments:             "bad arguments",
	-12:                         "unknown session",
	-13:                         "new config has no quorum",
	-14:                         "reconfig in progress",
	ErrAPIError:                 "API error",
	ErrNoNode:                   "node does not exist",
	ErrNoAuth:                   "not authenticated",
	ErrBadVersion:               "bad version",
	ErrNoChildrenForEphemerals:  "ephemeral nodes may not have children",
	ErrNodeExists:               "node already exists",
	ErrNotEmpty:                 "node has children",
	ErrSessionExpired:           "session expired",
	ErrInvalidCallback:          "invalid callback",
	ErrInvalidACL:               "invalid ACL",
	ErrAuthFailed:               "authentication failed",
	ErrSessionMoved:             "session moved",
	ErrNotReadOnly:              "not a read-only call",
	ErrEphemeralOnLocalSession:  "ephemeral node on local session",
	ErrNoWatcher:                "no such watcher",
	ErrRequestTimeout:           "request timeout",
	ErrReconfigDisabled:         "reconfig is disabled",
	ErrSessionClosedRequireSASL: "session closed: SASL authentication required",
	ErrQuotaExceeded:            "quota exceeded",
	ErrThrottled:                "operation throttled",
}

// Error returns "zk: " and the code's meaning, or its number if unknown.
func (c Code) Error() string {
	if s, ok := codeText[c]; ok {
		return "zk: " + s
	}
	return "zk: unknown error " + strconv.Itoa(int(c))
}

// codeErr turns a reply's error code into an error; 0 is nil.
func codeErr(code int32) error {
	if code == 0 {
		return nil
	}
	return Code(code)
}

// ErrClosed is returned by calls on a closed Client, and by calls that were
// waiting when it was closed.
var ErrClosed = errors.New("zk: client closed")

// ErrRequestTooLarge is wrapped by the error of a request refused before it
// was sent because its frame exceeds Config.MaxPacket.
var ErrRequestTooLarge = errors.New("zk: request too large")

// errProtocol marks a reply that breaks the protocol; the connection is
// dropped.
var errProtocol = errors.New("zk: protocol error")

// MultiError is the error of a Multi whose transaction failed: Index is the
// first failing op and Err its code. No op was applied.
type MultiError struct {
	Index int
	Err   error
}

// Error says which op failed and why.
func (e *MultiError) Error() string {
	return fmt.Sprintf("zk: multi op %d failed: %v", e.Index, trimPrefix(e.Err))
}

// Unwrap returns the failing op's error.
func (e *MultiError) Unwrap() error { return e.Err }

// trimPrefix renders err without a leading "zk: ", for messages that have
// one already.
func trimPrefix(err error) string {
	s := err.Error()
	if len(s) > 4 && s[:4] == "zk: " {
		return s[4:]
	}
	return s
}

// maxQuoted bounds how much of a path an error message quotes.
const maxQuoted = 200

// quote renders s for an error message, in at most about maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		s = s[:maxQuoted]
	}
	q := strconv.Quote(s)
	if len(q) > maxQuoted {
		q = q[:maxQuoted] + "..."
	}
	return q
}
