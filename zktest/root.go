package zktest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// rootTimeout bounds createRoot.
const rootTimeout = 10 * time.Second

// createRoot connects to servers and creates a persistent znode at the first
// path from next that does not exist yet, and returns it. This is the kit's
// only ZooKeeper client call, kept here so the client can be swapped.
func createRoot(servers string, next func() string) (string, error) {
	conn, events, err := zk.Connect(strings.Split(servers, ","), rootTimeout, zk.WithLogger(nopLogger{}))
	if err != nil {
		return "", err
	}
	defer func() {
		conn.Close()
		for range events {
			// The client closes its event channel as its last act.
		}
	}()
	deadline := time.NewTimer(rootTimeout)
	defer deadline.Stop()
	for connected := false; !connected; {
		select {
		case ev := <-events:
			connected = ev.State == zk.StateHasSession
		case <-deadline.C:
			return "", fmt.Errorf("no ZooKeeper session with %s within %v", servers, rootTimeout)
		}
	}
	for {
		path := next()
		_, err := conn.Create(path, nil, 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			continue // made by an earlier cluster in the same Dir
		}
		if err != nil {
			return "", fmt.Errorf("create %s: %w", path, err)
		}
		return path, nil
	}
}

// nopLogger silences go-zookeeper.
type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
