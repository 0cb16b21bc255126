package lighthouse

import (
	"context"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// client is what the Session and its recipes ask of a ZooKeeper client: the
// handful of calls they make. *zkclient.Client has them; recipe tests use a
// fake, so a recipe's state machine can be tested in milliseconds.
type client interface {
	Create(ctx context.Context, path string, data []byte, acl []zkclient.ACL, mode zkclient.CreateMode, ttl time.Duration) (string, *zkclient.Stat, error)
	Delete(ctx context.Context, path string, version int32) error
	Exists(ctx context.Context, path string) (*zkclient.Stat, error)
	ExistsW(ctx context.Context, path string) (*zkclient.Stat, <-chan zkclient.WatchEvent, error)
	Get(ctx context.Context, path string) ([]byte, *zkclient.Stat, error)
	GetW(ctx context.Context, path string) ([]byte, *zkclient.Stat, <-chan zkclient.WatchEvent, error)
	Set(ctx context.Context, path string, data []byte, version int32) (*zkclient.Stat, error)
	Children(ctx context.Context, path string) ([]string, *zkclient.Stat, error)
	ChildrenW(ctx context.Context, path string) ([]string, *zkclient.Stat, <-chan zkclient.WatchEvent, error)
	AddWatch(ctx context.Context, path string, recursive bool) (*zkclient.Watcher, error)
	Multi(ctx context.Context, ops ...zkclient.Op) ([]zkclient.OpResult, error)
	WhoAmI(ctx context.Context) ([]zkclient.ClientInfo, error)
	SessionID() int64
	State() zkclient.State
	Close(ctx context.Context) error
}

var _ client = (*zkclient.Client)(nil)
