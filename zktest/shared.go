package zktest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"
)

// logTailLines is how much of each server's log a failed test prints.
const logTailLines = 200

// StartT starts a cluster of the given number of servers for t (1 =
// standalone) and closes it when t ends. If t failed, it first logs the tail
// of each server's log. It fails t at once if the servers do not start.
func StartT(t testing.TB, servers int) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), Options{Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range c.Len() {
				t.Logf("ZooKeeper server %d (%s), last %d log lines:\n%s", i, c.Addr(i), logTailLines, tail(c.Logs(i), logTailLines))
			}
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the test binary's one standalone server, starting it on the
// first call. Tests sharing it should each work under their own Root(t).
// If t fails, the tail of the server's log is logged when t ends. Main closes
// the server after all tests; without Main it is killed when the test binary
// exits (on Linux).
func Shared(t testing.TB) *Cluster {
	t.Helper()
	c, err := SharedCluster()
	if err != nil {
		t.Fatalf("shared ZooKeeper: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shared ZooKeeper server (%s), last 50 log lines:\n%s", c.Addr(0), tail(c.Logs(0), 50))
		}
	})
	return c
}

// SharedCluster is Shared for code without a testing.TB, such as Example
// functions.
func SharedCluster() (*Cluster, error) {
	shared.once.Do(func() {
		shared.c, shared.err = Start(context.Background(), Options{})
	})
	return shared.c, shared.err
}

// closeShared closes the shared server, if one was started, and keeps any
// later Shared from starting another.
func closeShared() error {
	shared.once.Do(func() { shared.err = ErrClosed })
	if shared.c == nil {
		return nil
	}
	return shared.c.Close()
}

// Main wraps m so that the shared server is closed after the tests ran and
// before goleak looks for leaked goroutines:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Main(m)) }
func Main(m *testing.M) goleak.TestingM { return mainM{m} }

type mainM struct{ m *testing.M }

func (m mainM) Run() int {
	code := m.m.Run()
	if err := closeShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Root creates a new persistent znode for t directly under the root, named
// after the test ("/TestName-3", with characters other than letters, digits,
// '_', '.' and '-' replaced by '_'), and returns ConnectString() with that
// path as chroot: "127.0.0.1:p1,.../TestName-3". The znode is not deleted:
// it lives as long as the cluster. Root fails t if the znode cannot be made
// within 10s; call it from the test's goroutine.
func (c *Cluster) Root(t testing.TB) string {
	t.Helper()
	conn, closeConn, err := c.dial(10 * time.Second)
	if err != nil {
		t.Fatalf("zktest: Root: %v", err)
	}
	defer closeConn()
	name := sanitize(t.Name())
	for {
		path := fmt.Sprintf("/%s-%d", name, c.roots.Add(1))
		_, err := conn.Create(path, nil, 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			continue // made by an earlier cluster in the same Dir
		}
		if err != nil {
			t.Fatalf("zktest: Root: create %s: %v", path, err)
		}
		return c.ConnectString() + path
	}
}

// dial connects a go-zookeeper client to the whole cluster and waits up to
// timeout for a session. The returned func closes the client and waits until
// its goroutines have ended.
func (c *Cluster) dial(timeout time.Duration) (*zk.Conn, func(), error) {
	conn, events, err := zk.Connect(strings.Split(c.ConnectString(), ","), timeout, zk.WithLogger(nopLogger{}))
	if err != nil {
		return nil, nil, err
	}
	closeConn := func() {
		conn.Close()
		for range events {
			// The client closes its event channel as its last act.
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn, closeConn, nil
			}
		case <-deadline.C:
			closeConn()
			return nil, nil, fmt.Errorf("no ZooKeeper session with %s within %v", c.ConnectString(), timeout)
		}
	}
}

// sanitize makes a test name usable as one znode name.
func sanitize(name string) string {
	b := []byte(name)
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// nopLogger silences go-zookeeper.
type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
