package zktest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// rootTimeout bounds createRoot.
const rootTimeout = 10 * time.Second

// createRoot connects to servers and creates a persistent znode at the first
// path from next that does not exist yet, and returns it.
func createRoot(servers string, next func() string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rootTimeout)
	defer cancel()
	c, err := zkclient.Connect(ctx, zkclient.Config{Servers: strings.Split(servers, ","), SessionTimeout: rootTimeout})
	if err != nil {
		return "", fmt.Errorf("no ZooKeeper session with %s: %w", servers, err)
	}
	defer c.Close(ctx)
	for {
		path := next()
		_, _, err := c.Create(ctx, path, nil, zkclient.WorldACL(zkclient.PermAll), zkclient.Persistent, 0)
		if errors.Is(err, zkclient.ErrNodeExists) {
			continue // made by an earlier cluster in the same Dir
		}
		if err != nil {
			return "", fmt.Errorf("create %s: %w", path, err)
		}
		return path, nil
	}
}
