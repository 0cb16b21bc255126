package zktest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
)

// TB is the part of testing.TB the kit uses; *testing.T, *testing.B and
// *testing.F satisfy it. The kit takes this interface rather than
// testing.TB so that programs which link it, such as a demo that starts a
// local server, do not link the testing package.
type TB interface {
	Helper()
	Name() string
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// logTailLines is how much of each server's log a failed test prints.
const logTailLines = 200

// StartT starts a cluster of the given number of servers for t (1 is
// standalone, more form an ensemble) and closes it when t ends. If t failed,
// it first logs the last lines of each server's log. It fails t at once if
// the servers do not start; call it from the test's goroutine.
func StartT(t TB, servers int) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), Options{Servers: servers})
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range c.Len() {
				t.Logf("ZooKeeper server %d (%s), last %d log lines:\n%s", i, c.Addr(i), logTailLines, tail(c.Logs(i), logTailLines))
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return c
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the test binary's one standalone server, starting it on
// the first call (which takes a second or two; later calls return at once).
// Tests sharing it should each work under their own Root(t), and may run in
// parallel. If t fails, the last lines of the server's log are logged when t
// ends. Main closes the server after all tests; without Main it is killed
// when the test binary exits (on Linux; elsewhere it may outlive it), and
// its directory is removed by the next Start on the machine.
func Shared(t TB) *Cluster {
	t.Helper()
	c, err := SharedCluster()
	if err != nil {
		t.Fatalf("zktest: shared ZooKeeper: %s", unprefixed(err))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shared ZooKeeper server (%s), last 50 log lines:\n%s", c.Addr(0), tail(c.Logs(0), 50))
		}
	})
	return c
}

// SharedCluster is Shared for code that has no TB, such as Example
// functions: it returns the same server, or the error that kept it from
// starting (ErrClosed once Main has closed it).
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

// M runs a test binary's tests and returns its exit code, as *testing.M
// does; goleak.VerifyTestMain takes one.
type M interface {
	Run() int
}

// Main wraps a test binary's m so that Run closes the shared server (see
// Shared) after the tests have run, and fails the run if that fails. Use it
// in TestMain, inside goleak's check, so that the server's goroutines are
// gone before goleak looks for leaks:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Main(m)) }
//
// or, without goleak, os.Exit(zktest.Main(m).Run()).
func Main(m M) M { return mainM{m} }

type mainM struct{ m M }

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

// Root creates a new persistent znode for t directly under the cluster's
// root, named after the test ("/TestName-3": characters other than letters,
// digits, '_', '.' and '-' become '_'), and returns ConnectString() with
// that path as chroot: "127.0.0.1:p1,.../TestName-3". Each call makes a new
// znode, so tests sharing a cluster do not see each other's nodes. The
// znode is not deleted: it lives as long as the cluster. Root fails t if the
// znode cannot be made within 10s; call it from the test's goroutine.
func (c *Cluster) Root(t TB) string {
	t.Helper()
	name := sanitize(t.Name())
	path, err := createRoot(c.ConnectString(), func() string {
		return fmt.Sprintf("/%s-%d", name, c.roots.Add(1))
	})
	if err != nil {
		t.Fatalf("zktest: Root: %v", err)
	}
	return c.ConnectString() + path
}

// Chroot returns the chroot of a connect string such as Root's, "/TestX-1"
// for "127.0.0.1:2181/TestX-1", or "" if it has none. It lets a client
// reach a test's root through a Proxy: p.Addr() + Chroot(root).
func Chroot(connectString string) string {
	if i := strings.IndexByte(connectString, '/'); i >= 0 {
		return connectString[i:]
	}
	return ""
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
