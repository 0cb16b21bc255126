package lighthouse

import "github.com/lighthouse-zk/lighthouse/internal/zkclient"

// Stat is a node's metadata, as ZooKeeper reports it.
type Stat struct {
	Czxid          int64 // the zxid of the change that created the node
	Mzxid          int64 // the zxid of the change that last modified its data
	Ctime          int64 // when it was created, in ms since the epoch
	Mtime          int64 // when its data was last modified, in ms since the epoch
	Version        int32 // the number of changes to its data
	Cversion       int32 // the number of changes to its children
	Aversion       int32 // the number of changes to its ACL
	EphemeralOwner int64 // the session of an ephemeral node, else 0
	DataLength     int32 // the length of its data
	NumChildren    int32 // the number of its children
	Pzxid          int64 // the zxid of the change that last modified its children
}

// stat converts the client's Stat, which has the same layout.
func stat(s *zkclient.Stat) *Stat { return (*Stat)(s) }

// ACL grants Perms to one identity: ID in the Scheme ("world" "anyone",
// "digest" "user:base64(sha1(user:password))", "ip" "10.0.0.0/8", ...).
type ACL struct {
	Perms  int32
	Scheme string
	ID     string
}

// Permissions of an ACL, as ZooKeeper defines them.
const (
	PermRead   int32 = 1 << 0
	PermWrite  int32 = 1 << 1
	PermCreate int32 = 1 << 2
	PermDelete int32 = 1 << 3 // of the node's children
	PermAdmin  int32 = 1 << 4
	PermAll    int32 = PermRead | PermWrite | PermCreate | PermDelete | PermAdmin
)

// WorldACL grants perms to everyone.
func WorldACL(perms int32) []ACL { return []ACL{{Perms: perms, Scheme: "world", ID: "anyone"}} }

// DigestACL grants perms to whoever authenticates as user with password (see
// WithDigestAuth).
func DigestACL(perms int32, user, password string) []ACL {
	a := zkclient.DigestACL(perms, user, password)[0]
	return []ACL{ACL(a)}
}

// clientACL converts an ACL for the client.
func clientACL(acl []ACL) []zkclient.ACL {
	out := make([]zkclient.ACL, len(acl))
	for i, a := range acl {
		out[i] = zkclient.ACL(a)
	}
	return out
}
