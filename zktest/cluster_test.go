package zktest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

func TestClasspath(t *testing.T) {
	t.Run("debian", func(t *testing.T) {
		if home := os.Getenv("ZOOKEEPER_HOME"); home != "" {
			// Another install is in use: it must be found instead.
			if _, err := Classpath(); err != nil {
				t.Fatalf("Classpath() with ZOOKEEPER_HOME=%s: %v", home, err)
			}
			return
		}
		cp, err := Classpath()
		if _, statErr := os.Stat(debianJar); statErr != nil {
			t.Fatal("Debian's zookeeper package is not installed: scripts/setup installs it")
		}
		if err != nil || !strings.Contains(cp, debianJar) {
			t.Fatalf("Classpath() = %q, %v; want it to hold %s", cp, err, debianJar)
		}
	})
	t.Run("empty ZOOKEEPER_HOME", func(t *testing.T) {
		t.Setenv("ZOOKEEPER_HOME", t.TempDir())
		if _, err := Classpath(); !errors.Is(err, ErrNoZooKeeper) {
			t.Fatalf("Classpath() error = %v, want ErrNoZooKeeper", err)
		}
	})
}

// chroot returns the path part of a connect string from Root.
func chroot(t *testing.T, servers string) string {
	t.Helper()
	_, path, ok := strings.Cut(servers, "/")
	if !ok {
		t.Fatalf("%q has no chroot", servers)
	}
	return "/" + path
}

func TestStandaloneKillRestart(t *testing.T) {
	t.Parallel()
	c := StartT(t, 1)
	if c.Len() != 1 || c.ConnectString() != c.Addr(0) {
		t.Fatalf("Len() = %d, ConnectString() = %q, Addr(0) = %q", c.Len(), c.ConnectString(), c.Addr(0))
	}
	if i, err := c.Leader(); i != 0 || err != nil {
		t.Fatalf("Leader() = %d, %v; want 0", i, err)
	}
	root := chroot(t, c.Root(t))
	cl := connect(t, 10*time.Second, c.Addr(0))
	if st, err := cl.Exists(testCtx(t), root); st == nil || err != nil {
		t.Fatalf("Exists(%s) = %v, %v", root, st, err)
	}

	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	cl.await(t, zkclient.StateDisconnected)
	if err := c.Kill(0); err == nil {
		t.Fatal("second Kill succeeded")
	}
	if _, err := c.Leader(); err == nil {
		t.Fatal("Leader() succeeded with the server down")
	}

	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	cl.await(t, zkclient.StateConnected)
	if st, err := cl.Exists(testCtx(t), root); st == nil || err != nil {
		t.Fatalf("after restart, Exists(%s) = %v, %v", root, st, err)
	}
	if !strings.Contains(c.Logs(0), "restarting server 0") {
		t.Error("log lacks the restart marker")
	}
}

// awaitLeader polls Leader until it names a server accepted by ok.
func awaitLeader(t *testing.T, c *Cluster, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if i, err := c.Leader(); err == nil && ok(i) {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatalf("no acceptable leader within %v", eventTimeout)
		}
	}
	panic("unreachable")
}

func TestEnsemble(t *testing.T) {
	t.Parallel()
	c := StartT(t, 3)
	if c.Len() != 3 || strings.Count(c.ConnectString(), ",") != 2 {
		t.Fatalf("Len() = %d, ConnectString() = %q", c.Len(), c.ConnectString())
	}
	leader, err := c.Leader()
	if err != nil {
		t.Fatal(err)
	}
	cl := connect(t, 10*time.Second, strings.Split(c.ConnectString(), ",")...)
	path := chroot(t, c.Root(t))

	// Killing the leader makes the other two elect one of themselves.
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	next := awaitLeader(t, c, func(i int) bool { return i != leader })

	// The old leader rejoins as a follower.
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	if mode, err := srvrMode(context.Background(), c.Addr(leader)); mode != "follower" || err != nil {
		t.Fatalf("restarted server %d: mode %q, %v; want follower", leader, mode, err)
	}

	// A follower stopped gracefully rejoins too.
	follower := 3 - leader - next
	if err := c.Stop(follower); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(follower); err != nil {
		t.Fatal(err)
	}

	// A paused server answers nothing until resumed.
	if err := c.Pause(follower); err != nil {
		t.Fatal(err)
	}
	if _, err := fourLetterWord(context.Background(), c.Addr(follower), "srvr", 300*time.Millisecond); err == nil {
		t.Fatal("paused server answered srvr")
	}
	if err := c.Resume(follower); err != nil {
		t.Fatal(err)
	}
	if _, err := fourLetterWord(context.Background(), c.Addr(follower), "srvr", 5*time.Second); err != nil {
		t.Fatalf("resumed server: %v", err)
	}

	if st, err := cl.Exists(testCtx(t), path); st == nil || err != nil {
		t.Fatalf("Exists(%s) = %v, %v", path, st, err)
	}
}

func TestRootNames(t *testing.T) {
	t.Parallel()
	c := Shared(t)
	for _, name := range []string{"plain", "with/slash and space#1"} {
		t.Run(name, func(t *testing.T) {
			a, b := c.Root(t), c.Root(t)
			if a == b {
				t.Fatalf("two Roots are both %q", a)
			}
			want := c.ConnectString() + "/" + sanitize(t.Name()) + "-"
			if !strings.HasPrefix(a, want) {
				t.Fatalf("Root = %q, want prefix %q", a, want)
			}
			if strings.ContainsAny(chroot(t, a)[1:], "/ #") {
				t.Fatalf("Root = %q is not one sanitized znode", a)
			}
		})
	}
}

func TestStartOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var logs bytes.Buffer
	c, err := Start(context.Background(), Options{TickTime: 50 * time.Millisecond, Dir: dir, LogOutput: &logs})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "server1", "zoo.cfg"))
	if err != nil || !strings.Contains(string(cfg), "tickTime=50\n") || !strings.Contains(string(cfg), "minSessionTimeout=100\n") {
		t.Errorf("zoo.cfg = %q, %v", cfg, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Close has reaped the JVM, so its output has all been copied.
	if !strings.Contains(logs.String(), "QuorumPeerMain") || logs.String() != c.Logs(0) {
		t.Errorf("LogOutput got %d bytes, log file %d; want the same log", logs.Len(), len(c.Logs(0)))
	}
	if _, err := os.Stat(filepath.Join(dir, "server1", "data")); err != nil {
		t.Errorf("Close removed a directory it did not make: %v", err)
	}
	if err := c.Restart(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Restart after Close: %v, want ErrClosed", err)
	}
}

func TestStartValidates(t *testing.T) {
	for _, opts := range []Options{{Servers: -1}, {TickTime: 1500 * time.Microsecond}} {
		if c, err := Start(context.Background(), opts); err == nil {
			c.Close()
			t.Errorf("Start(%+v) succeeded", opts)
		}
	}
	var nilCtx context.Context
	if c, err := Start(nilCtx, Options{}); err == nil {
		c.Close()
		t.Error("Start with a nil context succeeded")
	}
}

func TestStartRetriesPortClash(t *testing.T) {
	// Not parallel: it replaces pickPorts.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 && err == nil {
			ports[0] = takenPort
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()

	c := StartT(t, 1)
	if calls != 2 || c.Addr(0) == taken.Addr().String() {
		t.Fatalf("picked ports %d times, serving on %s (taken: %s)", calls, c.Addr(0), taken.Addr())
	}
}

// With Options.TLS every server also serves TLS with a certificate that
// TLSConfig trusts, and keeps doing so across a restart.
func TestTLS(t *testing.T) {
	t.Parallel()
	if (&Cluster{}).TLSConfig() != nil {
		t.Error("TLSConfig() of a cluster without TLS is not nil")
	}
	c, err := Start(testCtx(t), Options{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dial := func() error {
		conn, err := tls.Dial("tcp", c.SecureAddr(0), c.TLSConfig())
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("TLS handshake with %s: %v", c.SecureAddr(0), err)
	}
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	// Restart returns once the plain port serves; so does the secure one.
	if err := dial(); err != nil {
		t.Fatalf("TLS handshake after a restart: %v", err)
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

// A LogOutput that fails gets nothing more, and the server's own log goes
// on: the copy to both stopped at the writer's first failure (io.MultiWriter
// gives up), and the server's output then went nowhere.
func TestFailingLogOutput(t *testing.T) {
	t.Parallel()
	c, err := Start(testCtx(t), Options{LogOutput: &failingWriter{n: 100}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A frame length the server refuses: it logs "Len error" and closes.
	conn, err := net.Dial("tcp", c.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{0x7f, 0xff, 0xff, 0xff})
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.Logs(0), "Len error") {
		if time.Now().After(deadline) {
			t.Fatal("the server's log stopped when LogOutput failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
