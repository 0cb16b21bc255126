package zkclient

import (
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"
)

// Stat is a znode's metadata, in jute's field order.
type Stat struct {
	Czxid, Mzxid, Ctime, Mtime  int64
	Version, Cversion, Aversion int32
	EphemeralOwner              int64
	DataLength, NumChildren     int32
	Pzxid                       int64
}

// ACL grants Perms to the identity ID of the scheme Scheme.
type ACL struct {
	Perms  int32
	Scheme string
	ID     string
}

// Permission bits of an ACL (ZooDefs.Perms).
const (
	PermRead   int32 = 1 << 0
	PermWrite  int32 = 1 << 1
	PermCreate int32 = 1 << 2
	PermDelete int32 = 1 << 3
	PermAdmin  int32 = 1 << 4
	PermAll    int32 = PermRead | PermWrite | PermCreate | PermDelete | PermAdmin
)

// WorldACL grants perms to everyone.
func WorldACL(perms int32) []ACL { return []ACL{{perms, "world", "anyone"}} }

// DigestACL grants perms to whoever authenticated with the digest scheme
// as user:password.
func DigestACL(perms int32, user, password string) []ACL {
	sum := sha1.Sum([]byte(user + ":" + password))
	return []ACL{{perms, "digest", user + ":" + base64.StdEncoding.EncodeToString(sum[:])}}
}

// CreateMode says what kind of znode Create makes (ZooKeeper's CreateMode
// flags).
type CreateMode int32

// Create modes.
const (
	Persistent                  CreateMode = 0
	Ephemeral                   CreateMode = 1
	PersistentSequential        CreateMode = 2
	EphemeralSequential         CreateMode = 3
	Container                   CreateMode = 4
	PersistentWithTTL           CreateMode = 5
	PersistentSequentialWithTTL CreateMode = 6
)

func (m CreateMode) sequential() bool {
	return m == PersistentSequential || m == EphemeralSequential || m == PersistentSequentialWithTTL
}

func (m CreateMode) ttl() bool { return m == PersistentWithTTL || m == PersistentSequentialWithTTL }

// Auth is a credential sent to every server the client connects to, before
// any request.
type Auth struct {
	Scheme  string
	Payload []byte
}

// ClientInfo is an identity the server has for this connection (WhoAmI).
type ClientInfo struct {
	AuthScheme string
	User       string
}

// EventType says what happened to a watched znode.
type EventType int

// Event types; the first four are ZooKeeper's numbers.
const (
	EventNodeCreated         EventType = 1
	EventNodeDeleted         EventType = 2
	EventNodeDataChanged     EventType = 3
	EventNodeChildrenChanged EventType = 4
	// EventLost says the watch is gone without a change: Err says why
	// (ErrSessionExpired, ErrClosed, ErrAuthFailed).
	EventLost EventType = -1
)

// String returns ZooKeeper's name of the event type.
func (t EventType) String() string {
	switch t {
	case EventNodeCreated:
		return "NodeCreated"
	case EventNodeDeleted:
		return "NodeDeleted"
	case EventNodeDataChanged:
		return "NodeDataChanged"
	case EventNodeChildrenChanged:
		return "NodeChildrenChanged"
	case EventLost:
		return "Lost"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// WatchEvent is a watch's notification. Path is relative to the chroot. Zxid
// is the transaction that triggered it, or 0 when the server does not say
// (3.8 does not).
type WatchEvent struct {
	Type EventType
	Path string
	Err  error
	Zxid int64
}

// State is the state of a Client's session.
type State int

// Session states, as reported to Config.OnEvent.
const (
	// StateDisconnected: no connection; the session may still be alive.
	StateDisconnected State = iota
	// StateConnected: a session is established (new or resumed) and every
	// Auth has been accepted.
	StateConnected
	// StateExpired: the server said the session is gone. A new session
	// follows.
	StateExpired
	// StateAuthFailed: a server refused an Auth; the client closes.
	StateAuthFailed
	// StateClosed: the client is closed.
	StateClosed
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateDisconnected:
		return "Disconnected"
	case StateConnected:
		return "Connected"
	case StateExpired:
		return "Expired"
	case StateAuthFailed:
		return "AuthFailed"
	case StateClosed:
		return "Closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Event is a change of session state. SessionID, Timeout and Server describe
// the session and connection for StateConnected; Err says why for the others
// when known.
type Event struct {
	State     State
	SessionID int64
	Timeout   time.Duration
	Server    string
	Err       error
}
