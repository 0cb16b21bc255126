package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"github.com/lighthouse-zk/lighthouse/zktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(benchWatcherEnv); spec != "" {
		os.Exit(benchWatcher(spec)) // a child process of BenchmarkWatchCost
	}
	goleak.VerifyTestMain(zktest.Main(m))
}

// connect opens a session for one test and closes it at the end.
func connect(t testing.TB, connectString string, opts ...Option) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts = append([]Option{WithSessionTimeout(time.Second)}, opts...)
	s, err := Connect(ctx, connectString, opts...)
	if err != nil {
		t.Fatalf("Connect(%q): %v", connectString, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testCtx is a context that ends with the test or after a generous deadline.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// awaitEvent reads events until one of type want, failing the test if it
// does not come within d. It returns that event.
func awaitEvent(t testing.TB, events <-chan Event, want EventType, d time.Duration) Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("events closed while waiting for %s (saw %v)", want, seen)
			}
			seen = append(seen, e.Type.String())
			if e.Type == want {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %s event within %v (saw %v)", want, d, seen)
		}
	}
}

func TestConnectAndClose(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	if s.SessionID() == 0 {
		t.Fatal("no session id after Connect")
	}
	events := s.Events(testCtx(t))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventClosed, time.Second)
	if _, ok := <-events; ok {
		t.Fatal("events not closed after EventClosed")
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, _, err := s.Get(context.Background(), "/"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
}

func TestCloseDeletesEphemeralsAtOnce(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	owner := connect(t, root, WithSessionTimeout(20*time.Second))
	watcher := connect(t, root)
	ctx := testCtx(t)
	if _, err := owner.Create(ctx, "/e", nil, Ephemeral); err != nil {
		t.Fatal(err)
	}
	_, _, w, err := watcher.ExistsW(ctx, "/e")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	owner.Close()
	select {
	case ev := <-w:
		if ev.Type != NodeDeleted {
			t.Fatalf("watch saw %v, want deleted", ev.Type)
		}
		// Far below the 20 s session timeout: the session was closed.
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("ephemeral node deleted after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ephemeral node of a closed session still there")
	}
}

func TestSuspendedAndReconnectedWhenServerRestarts(t *testing.T) {
	zkc := zktest.StartT(t, 1)
	s := connect(t, zkc.ConnectString(), WithSessionTimeout(10*time.Second))
	events := s.Events(testCtx(t))
	id := s.SessionID()
	if _, err := s.Create(testCtx(t), "/e", []byte("x"), Ephemeral); err != nil {
		t.Fatal(err)
	}
	if err := zkc.Stop(0); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventSuspended, 10*time.Second)
	if err := zkc.Restart(0); err != nil {
		t.Fatal(err)
	}
	e := awaitEvent(t, events, EventReconnected, 15*time.Second)
	if e.SessionID != id || s.SessionID() != id {
		t.Fatalf("reconnected to session 0x%x, want 0x%x", e.SessionID, id)
	}
	if ok, _, err := s.Exists(testCtx(t), "/e"); err != nil || !ok {
		t.Fatalf("ephemeral node after reconnect: exists=%v err=%v", ok, err)
	}
}

func TestExpiredThenNewSession(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root))
	events := s.Events(testCtx(t))
	ctx := testCtx(t)
	old := s.SessionID()
	if _, err := s.Create(ctx, "/e", nil, Ephemeral); err != nil {
		t.Fatal(err)
	}
	_, _, w, err := s.GetW(ctx, "/e")
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	e := awaitEvent(t, events, EventExpired, 10*time.Second)
	if e.SessionID != old {
		t.Fatalf("expired event for 0x%x, want 0x%x", e.SessionID, old)
	}
	if !errors.Is(e.Err, ErrSessionExpired) || !strings.HasPrefix(e.Err.Error(), "lighthouse: ") {
		t.Errorf("expired event's Err: %v, want ErrSessionExpired, with the prefix", e.Err)
	}
	e = awaitEvent(t, events, EventConnected, 10*time.Second)
	if e.SessionID == old || e.SessionID == 0 {
		t.Fatalf("new session id 0x%x (old 0x%x)", e.SessionID, old)
	}
	select {
	case ev := <-w:
		// The server deletes the node when the session ends; a watch may see
		// that or be dropped with the session.
		if ev.Type != WatchLost && ev.Type != NodeDeleted {
			t.Fatalf("watch after expiry: %v", ev.Type)
		}
		if ev.Type == WatchLost && !strings.HasPrefix(ev.Err.Error(), "lighthouse: ") {
			t.Errorf("lost watch's Err %q has no prefix", ev.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch of the expired session never fired")
	}
	if ok, _, err := s.Exists(ctx, "/e"); err != nil || ok {
		t.Fatalf("old session's ephemeral node: exists=%v err=%v", ok, err)
	}
}

// proxied connects a session for t to the shared server through a proxy
// of its own, under a root of its own, with a 10 s session timeout unless
// opts say otherwise.
func proxied(t testing.TB, opts ...Option) (s *Session, proxy *zktest.Proxy, root string) {
	t.Helper()
	zkc := zktest.Shared(t)
	root = zkc.Root(t)
	proxy = zktest.ProxyT(t, zkc.Addr(0))
	opts = append([]Option{WithSessionTimeout(10 * time.Second)}, opts...)
	return connect(t, proxy.Addr()+chrootOf(root), opts...), proxy, root
}

// chrootOf returns the "/chroot" part of a connect string.
func chrootOf(connectString string) string {
	if i := strings.IndexByte(connectString, '/'); i >= 0 {
		return connectString[i:]
	}
	return ""
}

func TestEnsembleMemberLossKeepsSession(t *testing.T) {
	zkc := zktest.StartT(t, 3)
	s := connect(t, zkc.ConnectString(), WithSessionTimeout(4*time.Second))
	events := s.Events(testCtx(t))
	id := s.SessionID()
	server := s.server()
	victim := -1
	for i := 0; i < zkc.Len(); i++ {
		if zkc.Addr(i) == server {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("session's server %s is not in the ensemble %s", server, zkc.ConnectString())
	}
	if err := zkc.Kill(victim); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventSuspended, 10*time.Second)
	awaitEvent(t, events, EventReconnected, 15*time.Second)
	if s.SessionID() != id {
		t.Fatalf("session changed from 0x%x to 0x%x", id, s.SessionID())
	}
	if s.server() == server {
		t.Fatalf("still on the killed server %s", server)
	}
	if _, err := s.Create(testCtx(t), "/after", nil, Persistent); err != nil {
		t.Fatal(err)
	}
}

func TestStalledConnection(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	// Long enough to reconnect before expiry: with one server address the
	// client waits 1 s before it dials again.
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(6*time.Second))
	events := s.Events(testCtx(t))
	id := s.SessionID()
	proxy.Stall()
	// The client notices only through its receive timeout (2/3 of 6 s).
	awaitEvent(t, events, EventSuspended, 8*time.Second)
	proxy.Heal()
	e := awaitEvent(t, events, EventReconnected, 10*time.Second)
	if e.SessionID != id {
		t.Fatalf("reconnected to 0x%x, want 0x%x", e.SessionID, id)
	}
}

func TestCloseWhileUnreachableIsPrompt(t *testing.T) {
	zkc := zktest.Shared(t)
	for _, fault := range []string{"cut", "stall"} {
		t.Run(fault, func(t *testing.T) {
			proxy := zktest.ProxyT(t, zkc.Addr(0))
			s := connect(t, proxy.Addr(), WithSessionTimeout(10*time.Second))
			if fault == "cut" {
				proxy.Cut()
			} else {
				proxy.Stall()
			}
			start := time.Now()
			s.Close()
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Close took %v with ZooKeeper unreachable (%s)", d, fault)
			}
		})
	}
}

// TestConnectErrorFromAWrongServerSaysLighthouseOnce: a server that speaks
// another protocol fails Connect with a message that names the client once,
// as "lighthouse:", not with the wire client's "zk:" inside.
func TestConnectErrorFromAWrongServerSaysLighthouseOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = Connect(ctx, ln.Addr().String())
	ln.Close()
	<-served
	if err == nil || strings.Count(err.Error(), "lighthouse:") != 1 || strings.Contains(err.Error(), "zk:") {
		t.Fatalf("Connect to an HTTP server: %v", err)
	}
	if !strings.Contains(err.Error(), "protocol error") {
		t.Fatalf("Connect to an HTTP server does not say why: %v", err)
	}
}

func TestConnectUnreachableSaysWhy(t *testing.T) {
	proxy := zktest.ProxyT(t, "127.0.0.1:1")
	proxy.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Connect(ctx, proxy.Addr())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect: %v, want DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Connect error does not give the dial error: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Connect returned %v after its context ended", d)
	}
}

func TestBadInputFailsBeforeNetwork(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		connect string
		opts    []Option
		want    error
	}{
		{"empty", "", nil, ErrInvalidConnectString},
		{"blank host", "127.0.0.1:2181,,h:1", nil, ErrInvalidConnectString},
		{"bad port", "127.0.0.1:99999", nil, ErrInvalidConnectString},
		{"port not a number", "127.0.0.1:zk", nil, ErrInvalidConnectString},
		{"chroot with trailing slash", "127.0.0.1:2181/app/", nil, ErrInvalidConnectString},
		{"chroot with empty segment", "127.0.0.1:2181/a//b", nil, ErrInvalidConnectString},
		{"only chroot", "/app", nil, ErrInvalidConnectString},
		{"NUL in a host", "host\x00:2181", nil, ErrInvalidConnectString},
		{"unclosed bracket", "[::1", nil, ErrInvalidConnectString},
		{"host not UTF-8", "h\xff:2181", nil, ErrInvalidConnectString},
		{"NUL in the chroot", "127.0.0.1:2181/a\x00", nil, ErrInvalidConnectString},
		{"zero session timeout", "127.0.0.1:2181", []Option{WithSessionTimeout(0)}, ErrInvalidOption},
		{"negative dial timeout", "127.0.0.1:2181", []Option{WithDialTimeout(-time.Second)}, ErrInvalidOption},
		{"nil logger", "127.0.0.1:2181", []Option{WithLogger(nil)}, ErrInvalidOption},
		{"password without user", "127.0.0.1:2181", []Option{WithDigestAuth("", "pw")}, ErrInvalidOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Connect(ctx, tc.connect, tc.opts...)
			if !errors.Is(err, tc.want) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Connect(%q) = %v, want %v", tc.connect, err, tc.want)
			}
			// One prefix, none of the client's words, no raw control bytes.
			msg := err.Error()
			if strings.Count(msg, "lighthouse:") != 1 || strings.Contains(msg, "bad arguments") || strings.ContainsAny(msg, "\x00\xff") {
				t.Errorf("Connect(%q): message %q", tc.connect, msg)
			}
		})
	}
}

func TestParseConnectString(t *testing.T) {
	for _, tc := range []struct {
		in     string
		hosts  []string
		chroot string
	}{
		{"127.0.0.1:2181", []string{"127.0.0.1:2181"}, ""},
		{"a:1,b:2/app", []string{"a:1", "b:2"}, "/app"},
		{"zk1,zk2:2182/x/y", []string{"zk1:2181", "zk2:2182"}, "/x/y"},
		{"[::1]:2181/", []string{"[::1]:2181"}, ""},
		{" a:1 , b:2 ", []string{"a:1", "b:2"}, ""},
	} {
		hosts, chroot, err := parseConnectString(tc.in)
		if err != nil || fmt.Sprint(hosts) != fmt.Sprint(tc.hosts) || chroot != tc.chroot {
			t.Errorf("parseConnectString(%q) = %v %q %v, want %v %q", tc.in, hosts, chroot, err, tc.hosts, tc.chroot)
		}
	}
}

func TestDigestAuthProtectsNodes(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	ctx := testCtx(t)
	owner := connect(t, root, WithDigestAuth("orders", "s3cret"))
	// Deleting a node needs the delete permission on its parent: the parent
	// is created by the library too, so it is protected the same way.
	if _, err := owner.Create(ctx, "/app/cfg", []byte("v1"), Persistent, CreateParents()); err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]Option{
		"anonymous":      nil,
		"wrong password": {WithDigestAuth("orders", "guess")},
	} {
		t.Run(name, func(t *testing.T) {
			other := connect(t, root, opts...)
			if data, _, err := other.Get(ctx, "/app/cfg"); err != nil || string(data) != "v1" {
				t.Fatalf("read: %q %v; anyone may read", data, err)
			}
			if _, err := other.Set(ctx, "/app/cfg", []byte("evil"), AnyVersion); !errors.Is(err, ErrNoAuth) {
				t.Fatalf("Set by %s: %v, want ErrNoAuth", name, err)
			}
			if err := other.Delete(ctx, "/app/cfg", AnyVersion); !errors.Is(err, ErrNoAuth) {
				t.Fatalf("Delete by %s: %v, want ErrNoAuth", name, err)
			}
			if _, err := other.Create(ctx, "/app/intruder", nil, Persistent); !errors.Is(err, ErrNoAuth) {
				t.Fatalf("Create under a protected node by %s: %v, want ErrNoAuth", name, err)
			}
		})
	}
	// The owner can still change it, also after a reconnect re-sends the
	// credentials.
	if _, err := owner.Set(ctx, "/app/cfg", []byte("v2"), AnyVersion); err != nil {
		t.Fatal(err)
	}
	if err := owner.DeleteAll(ctx, "/app"); err != nil {
		t.Fatal(err)
	}
}

func TestDigestAuthSurvivesReconnect(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	ctx := testCtx(t)
	s := connect(t, proxy.Addr()+chrootOf(root), WithDigestAuth("orders", "s3cret"), WithSessionTimeout(5*time.Second))
	events := s.Events(ctx)
	if _, err := s.Create(ctx, "/cfg", nil, Persistent); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	awaitEvent(t, events, EventSuspended, 5*time.Second)
	proxy.Heal()
	awaitEvent(t, events, EventReconnected, 10*time.Second)
	if _, err := s.Set(ctx, "/cfg", []byte("x"), AnyVersion); err != nil {
		t.Fatalf("Set after reconnect: %v", err)
	}
	if err := proxy.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventConnected, 10*time.Second)
	if _, err := s.Set(ctx, "/cfg", []byte("y"), AnyVersion); err != nil {
		t.Fatalf("Set in the new session: %v", err)
	}
}

func TestEventsSlowReaderNeverBlocks(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	slow := s.Events(testCtx(t)) // never read until the end
	for i := 0; i < eventBuffer+10; i++ {
		s.emit(Event{Type: EventError, Err: fmt.Errorf("e%d", i)})
	}
	// The session still works and Close is not held up by the reader.
	if _, _, err := s.Get(testCtx(t), "/"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var got []Event
	for e := range slow {
		got = append(got, e)
	}
	dropped := 0
	for _, e := range got {
		dropped += e.Dropped
	}
	if len(got) != eventBuffer || dropped != 11 {
		t.Fatalf("slow reader got %d events with %d dropped, want %d and 11", len(got), dropped, eventBuffer)
	}
	if last := got[len(got)-1]; last.Type != EventClosed {
		t.Fatalf("last event %v, want closed", last.Type)
	}
}

func TestEventsEndWithContext(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Events(ctx)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events channel not closed after its context ended")
	}
}

// zkConnect opens a raw go-zookeeper connection for comparisons.
func zkConnect(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	c, events, err := zk.Connect([]string{addr}, 5*time.Second, zk.WithLogInfo(false), zk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for ev := range events {
		if ev.State == zk.StateHasSession {
			return c
		}
	}
	t.Fatal("raw zk connection closed before a session")
	return nil
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// After a silence longer than the client's receive timeout (a paused
// process, a stalled link), bytes that were waiting in the socket must not
// make a leadership look Valid again.
func TestReadsAfterASilenceProveNothing(t *testing.T) {
	s := &Session{}
	s.live.init(3 * time.Second)
	s.live.born = time.Now().Add(-time.Hour)
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := &heardConn{Conn: client, l: &s.live}
	read := func() {
		t.Helper()
		go server.Write([]byte("x"))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if !s.heardWithin(time.Second) {
		t.Fatal("a read on a live connection does not count")
	}
	// The previous read was long ago, as after a SIGSTOP.
	c.lastRead -= 10 * time.Second
	s.live.lastHeard.Store(int64(c.lastRead))
	read()
	read()
	if s.heardWithin(time.Second) {
		t.Fatal("reads right after a long silence count as hearing from the server")
	}
}

// A recipe started while the session closes returns ErrClosed; it does not
// wait for a first result that will never come.
func TestRecipesStartedAtCloseReturn(t *testing.T) {
	zkc := zktest.Shared(t)
	for i := range 20 {
		s := connect(t, zkc.Root(t))
		done := make(chan error, 4)
		go func() { _, err := s.Members(context.Background(), "svc"); done <- err }()
		go func() { _, err := s.Observe(context.Background(), "/leader"); done <- err }()
		go func() { _, err := s.Balancer(context.Background(), "svc", nil); done <- err }()
		go func() { _, err := s.Elect(context.Background(), "/leader", WithID("x")); done <- err }()
		if i%2 == 0 {
			s.Close()
		} else {
			go s.Close()
		}
		for range 4 {
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, ErrClosed) {
					t.Fatalf("recipe started at Close: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a recipe started while the session closed never returned")
			}
		}
	}
}

// Close deletes the nodes its recipes hold with their own requests before
// closeSession: a watcher hears of a leader's or a member's node from a
// delete, which the server tells it sooner than the closing of a session.
// A parent's pzxid shows which transaction deleted its child: the closing
// of the session is the write just before the next create.
func TestCloseDeletesHeldNodesBeforeTheSession(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	ctx := testCtx(t)
	s, w := connect(t, root), connect(t, root)
	// A persistent service node: a container could go once empty.
	if _, err := w.Create(ctx, "/services/svc", nil, Persistent, CreateParents()); err != nil {
		t.Fatal(err)
	}
	leader, err := s.Elect(ctx, "/e", WithID("a"))
	if err != nil {
		t.Fatal(err)
	}
	awaitLeadership(t, leader, func(l Leadership) bool { return l.IsLeader })
	if _, err := s.Register(ctx, "svc", Node{ID: "m"}); err != nil {
		t.Fatal(err)
	}
	names, err := w.Children(ctx, "/e")
	if err != nil || len(names) != 1 {
		t.Fatalf("election children %q, %v", names, err)
	}
	parents := []string{"/e", "/services/svc"}
	cversions := map[string]int32{}
	for _, p := range parents {
		st, err := w.zk.Exists(ctx, p)
		if err != nil || st == nil {
			t.Fatalf("Exists(%s): %v, %v", p, st, err)
		}
		cversions[p] = st.Cversion
	}
	var watches []<-chan zkclient.WatchEvent
	for _, p := range []string{"/e/" + names[0], "/services/svc/m"} {
		st, ch, err := w.zk.ExistsW(ctx, p)
		if err != nil || st == nil {
			t.Fatalf("ExistsW(%s): %v, %v", p, st, err)
		}
		watches = append(watches, ch)
	}
	s.Close()
	for _, ch := range watches {
		if ev := recv(t, ch, "deletion"); ev.Type != zkclient.EventNodeDeleted {
			t.Fatalf("watch: %+v", ev)
		}
	}
	_, st, err := w.zk.Create(ctx, "/after", nil, zkclient.WorldACL(zkclient.PermAll), zkclient.Persistent, 0)
	if err != nil {
		t.Fatal(err)
	}
	closed := st.Czxid - 1
	for _, parent := range parents {
		st, err := w.zk.Exists(ctx, parent)
		if err != nil || st == nil {
			t.Fatalf("Exists(%s): %v, %v", parent, st, err)
		}
		if st.Pzxid >= closed {
			t.Errorf("the node under %s was deleted at zxid %#x, when the session closed (%#x), not by a delete of its own", parent, st.Pzxid, closed)
		}
		// One change: the delete. A recipe that made its node again during
		// Close would show three.
		if d := st.Cversion - cversions[parent]; d != 1 {
			t.Errorf("%d changes to the children of %s during Close, want 1", d, parent)
		}
	}
}

// TestRecipesEndPromptlyWhileStalled: with the server silent (the
// connection open, nothing answered), ending a recipe does not wait until
// the client declares the connection lost (two thirds of the 10 s session
// timeout): the cleanup it sends goes on in the session's background.
func TestRecipesEndPromptlyWhileStalled(t *testing.T) {
	const bound = 2 * time.Second
	session := func(t *testing.T) (*Session, *zktest.Proxy) {
		s, proxy, _ := proxied(t)
		return s, proxy
	}
	prompt := func(t *testing.T, what string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		if d := time.Since(start); d > bound {
			t.Errorf("%s took %v with the server silent", what, d)
		}
	}
	t.Run("registration close", func(t *testing.T) {
		t.Parallel()
		s, proxy := session(t)
		reg := register(t, s, "svc", "a")
		proxy.Stall()
		prompt(t, "Registration.Close", func() { reg.Close() })
	})
	t.Run("register ctx", func(t *testing.T) {
		t.Parallel()
		s, proxy := session(t)
		proxy.Stall()
		ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
		defer cancel()
		prompt(t, "Register with a 300 ms ctx", func() {
			if _, err := s.Register(ctx, "svc", Node{ID: "b"}); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Register: %v, want DeadlineExceeded", err)
			}
		})
	})
	t.Run("elect cancel", func(t *testing.T) {
		t.Parallel()
		s, proxy := session(t)
		ctx, cancel := context.WithCancel(testCtx(t))
		ch, err := s.Elect(ctx, "/e", WithID("a"))
		if err != nil {
			t.Fatal(err)
		}
		awaitLeadership(t, ch, func(l Leadership) bool { return l.IsLeader })
		proxy.Stall()
		prompt(t, "leaving an election", func() {
			cancel()
			for range ch {
			}
		})
	})
	t.Run("lead cancel", func(t *testing.T) {
		t.Parallel()
		s, proxy := session(t)
		ctx, cancel := context.WithCancel(testCtx(t))
		leading := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- s.Lead(ctx, "/l", func(ctx context.Context, _ Leadership) error {
				close(leading)
				<-ctx.Done()
				return nil
			}, WithID("a"))
		}()
		<-leading
		proxy.Stall()
		prompt(t, "Lead after its ctx ends", func() {
			cancel()
			<-done
		})
	})
	t.Run("members cancel", func(t *testing.T) {
		t.Parallel()
		s, proxy := session(t)
		ctx, cancel := context.WithCancel(testCtx(t))
		ch, err := s.Members(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		proxy.Stall()
		prompt(t, "stopping Members", func() {
			cancel()
			for range ch {
			}
		})
	})
	t.Run("balancer close", func(t *testing.T) {
		t.Parallel()
		s, proxy := session(t)
		b, err := s.Balancer(testCtx(t), "svc", RoundRobin())
		if err != nil {
			t.Fatal(err)
		}
		proxy.Stall()
		prompt(t, "Balancer.Close", func() { b.Close() })
	})
	t.Run("barrier leave", func(t *testing.T) {
		t.Parallel()
		s, proxy := session(t)
		b, err := s.Barrier(testCtx(t), "/b", 1, WithID("a"))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Enter(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		proxy.Stall()
		ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
		defer cancel()
		prompt(t, "Barrier.Leave with a 300 ms ctx", func() {
			if err := b.Leave(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Leave: %v, want DeadlineExceeded", err)
			}
		})
	})
}

// TestRegisterAgainAfterAFailedOne: a Register whose ctx ends while the
// server is slow returns before its goroutine has ended (that goroutine
// waits for its create's answer, to delete the node if it was made).
// Registering the same ID again waits for it instead of failing with
// ErrIDTaken, which says that a live registration holds the ID.
func TestRegisterAgainAfterAFailedOne(t *testing.T) {
	s, proxy, _ := proxied(t)
	proxy.Delay(time.Second)
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Register(ctx, "svc", Node{ID: "a"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Register with a short ctx: %v, want DeadlineExceeded", err)
	}
	proxy.Delay(0) // for what is sent from now on; the create is still on its way
	again, err := s.Register(testCtx(t), "svc", Node{ID: "a"})
	if err != nil {
		t.Fatalf("Register again: %v", err)
	}
	again.Close()
}

// TestFailedRegisterLeavesNoNode: the server made the node of a Register
// whose create's answer was lost, and Register's ctx ended before the
// registration learned of it. The node is deleted once the connection is
// back, instead of staying for the whole session as an instance nobody
// registered. (A review found it.)
func TestFailedRegisterLeavesNoNode(t *testing.T) {
	s, proxy, root := proxied(t)
	other := connect(t, root)
	if _, err := other.Create(testCtx(t), "/services/svc", nil, Persistent, CreateParents()); err != nil {
		t.Fatal(err)
	}
	// Register's ctx ends as the connection goes, before the registration
	// can look again.
	events := s.Events(testCtx(t))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	go func() {
		for e := range events {
			if e.Type == EventSuspended {
				cancel()
				return
			}
		}
	}()
	proxy.LoseReplyTo(zktest.OpCreate2)
	if _, err := s.Register(ctx, "svc", Node{ID: "a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Register: %v, want Canceled", err)
	}
	ok, _, w, err := other.ExistsW(testCtx(t), "/services/svc/a")
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		select {
		case ev := <-w:
			if ev.Type != NodeDeleted {
				t.Fatalf("watch on the node: %v", ev.Type)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the node of the failed Register is still there")
		}
	}
}

// TestRegisterAgainWhileTheOldNodeIsBeingDeleted: a registration whose
// delete's answer was lost leaves the delete to a retry once the
// connection is back. Registering the same ID again meanwhile must not
// have its new node taken by that retry (which deletes whatever node is
// at the path): the claim on the ID is let go only once the retry is done.
func TestRegisterAgainWhileTheOldNodeIsBeingDeleted(t *testing.T) {
	r, mp := meterT(t)
	s, proxy, root := proxied(t, WithMeterProvider(mp))
	// The service's node, made beforehand, so that the only creates are the
	// registrations' (a container could be removed and made again).
	if _, err := connect(t, root).Create(testCtx(t), "/services/svc", nil, Persistent, CreateParents()); err != nil {
		t.Fatal(err)
	}
	reg := register(t, s, "svc", "a")
	proxy.LoseReplyTo(zktest.OpDelete)
	reg.Close() // the delete is applied, its answer lost: the retry waits for a connection
	proxy.Cut()
	registered := make(chan error, 1)
	go func() {
		again, err := s.Register(testCtx(t), "svc", Node{ID: "a"})
		if err == nil {
			again.Close()
		}
		registered <- err
	}()
	proxy.Heal()
	if err := <-registered; err != nil {
		t.Fatal(err)
	}
	// Two creates: the first registration's and the second's. A third
	// would be the second registration making its node again after the
	// retried delete took it.
	want(t, r, "lighthouse.op.duration", 2, attrOp.String("create"), attrResult.String("ok"))
}

// TestCloseSparesAnotherSessionsNode: our registration's node was deleted
// and another session registered the ID before we heard of it; closing our
// registration then must not delete that session's node. (Found by a
// review; deleting by path alone did.)
func TestCloseSparesAnotherSessionsNode(t *testing.T) {
	s, proxy, root := proxied(t)
	other := connect(t, root)
	reg := register(t, s, "svc", "a")
	proxy.Stall() // s hears nothing of what follows
	if err := other.Delete(testCtx(t), "/services/svc/a", AnyVersion); err != nil {
		t.Fatal(err)
	}
	theirs := register(t, other, "svc", "a")
	reg.Close() // its delete is left to a retry once the connection is back
	proxy.Heal()
	// Registering the ID again waits until that retry is done, then finds
	// the other session's node.
	if _, err := s.Register(testCtx(t), "svc", Node{ID: "a"}); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("Register again: %v, want ErrIDTaken (the other session's node)", err)
	}
	if _, st, err := other.Get(testCtx(t), "/services/svc/a"); err != nil || st.EphemeralOwner != other.SessionID() {
		t.Fatalf("the other session's node after our Close: %+v %v", st, err)
	}
	theirs.Close()
}

// TestRegisterAgainWhenTheDeleteIsRefused: a delete the server refuses for
// good (no DELETE permission on the service's node) is given up, with an
// EventError, and lets the ID go: registering it again takes the node
// over instead of waiting for ever. (Found by a review.)
func TestRegisterAgainWhenTheDeleteIsRefused(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	s := connect(t, root)
	if _, err := s.Create(testCtx(t), "/services/svc", nil, Persistent, CreateParents(), CreateACL(WorldACL(PermRead|PermCreate)...)); err != nil {
		t.Fatal(err)
	}
	events := s.Events(testCtx(t))
	reg := register(t, s, "svc", "a")
	reg.Close()
	if e := awaitEvent(t, events, EventError, 5*time.Second); !errors.Is(e.Err, ErrNoAuth) {
		t.Fatalf("EventError: %v, want ErrNoAuth", e.Err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
	defer cancel()
	again, err := s.Register(ctx, "svc", Node{ID: "a"})
	if err != nil {
		t.Fatalf("Register again: %v", err)
	}
	again.Close()
}

// TestTinySessionTimeoutStillConnects: the server lengthens a session
// timeout below its minimum, so asking for one (even 10 ns, a slip for
// 10 s) must not make each attempt's limit too short to connect at all.
func TestTinySessionTimeoutStillConnects(t *testing.T) {
	zkc := zktest.Shared(t)
	for _, d := range []time.Duration{10, 3 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
		s, err := Connect(ctx, zkc.Addr(0), WithSessionTimeout(d))
		cancel()
		if err != nil {
			t.Fatalf("WithSessionTimeout(%v): %v", d, err)
		}
		if got := s.SessionTimeout(); got < d {
			t.Errorf("WithSessionTimeout(%v): granted %v", d, got)
		}
		s.Close()
	}
}
