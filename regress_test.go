package lighthouse

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// Regression tests for bugs found by using the library as a hostile newcomer
// would. Each failed before its fix.

// A leader whose node another session deletes must stop leading at once and
// rejoin: otherwise the next participant leads too, and both stay leaders.
func TestLeaderNodeDeletedByAnotherSessionRevokes(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	a, b, op := connect(t, root), connect(t, root), connect(t, root)
	ctx := testCtx(t)
	ach, err := a.Elect(ctx, "/leader", WithID("a"))
	if err != nil {
		t.Fatal(err)
	}
	la := awaitLeadership(t, ach, func(l Leadership) bool { return l.IsLeader })
	bch, err := b.Elect(ctx, "/leader", WithID("b"))
	if err != nil {
		t.Fatal(err)
	}
	awaitLeadership(t, bch, func(l Leadership) bool { return !l.IsLeader && l.Leader == "a" })

	ps, err := op.Participants(ctx, "/leader")
	if err != nil || len(ps) != 2 {
		t.Fatalf("participants: %+v %v", ps, err)
	}
	if err := op.Delete(ctx, "/leader/"+ps[0].Node, AnyVersion); err != nil {
		t.Fatal(err)
	}
	awaitLeadership(t, bch, func(l Leadership) bool { return l.IsLeader })
	select {
	case <-la.Context.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a still leads after its node was deleted")
	}
	// a rejoined, behind b.
	awaitLeadership(t, ach, func(l Leadership) bool { return !l.IsLeader && l.Leader == "b" })
	ps, err = op.Participants(ctx, "/leader")
	if err != nil || len(ps) != 2 || ps[0].ID != "b" || ps[1].ID != "a" {
		t.Fatalf("participants after a rejoined: %+v %v", ps, err)
	}
}

// A follower whose node is deleted must not lead on its predecessor's
// deletion without a node of its own.
func TestFollowerNodeDeletedRejoins(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	a, b, op := connect(t, root), connect(t, root), connect(t, root)
	ctx := testCtx(t)
	actx, leaveA := context.WithCancel(ctx)
	defer leaveA()
	ach, err := a.Elect(actx, "/leader", WithID("a"))
	if err != nil {
		t.Fatal(err)
	}
	awaitLeadership(t, ach, func(l Leadership) bool { return l.IsLeader })
	bch, err := b.Elect(ctx, "/leader", WithID("b"))
	if err != nil {
		t.Fatal(err)
	}
	awaitLeadership(t, bch, func(l Leadership) bool { return !l.IsLeader && l.Leader == "a" })
	ps, err := op.Participants(ctx, "/leader")
	if err != nil || len(ps) != 2 {
		t.Fatalf("participants: %+v %v", ps, err)
	}
	if err := op.Delete(ctx, "/leader/"+ps[1].Node, AnyVersion); err != nil {
		t.Fatal(err)
	}
	// b notices and creates a new node; then a leaves and b leads on it.
	awaitQueue(t, op, "/leader", func(ps []Participant) bool {
		return len(ps) == 2 && ps[1].ID == "b" && ps[1].Node != ps[0].Node
	})
	leaveA()
	l := awaitLeadership(t, bch, func(l Leadership) bool { return l.IsLeader })
	ps, err = op.Participants(ctx, "/leader")
	if err != nil || len(ps) != 1 || ps[0].ID != "b" || ps[0].Token != l.Token {
		t.Fatalf("b leads with token %d, participants %+v %v", l.Token, ps, err)
	}
}

// Release on a Leadership from before a connection blip must not end the
// leadership granted again after it.
func TestStaleReleaseKeepsNewLeadership(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(8*time.Second))
	ch, err := s.Elect(testCtx(t), "/leader", WithID("a"))
	if err != nil {
		t.Fatal(err)
	}
	first := awaitLeadership(t, ch, func(l Leadership) bool { return l.IsLeader })
	proxy.Cut()
	awaitLeadership(t, ch, func(l Leadership) bool { return !l.IsLeader })
	proxy.Heal()
	second := awaitLeadership(t, ch, func(l Leadership) bool { return l.IsLeader })
	if second.Token != first.Token {
		t.Fatalf("same session, same node: token %d, want %d", second.Token, first.Token)
	}
	first.Release()
	select {
	case <-second.Context.Done():
		t.Fatal("releasing the earlier leadership ended the current one")
	case <-time.After(time.Second):
	}
	// The current one is released as usual.
	second.Release()
	select {
	case <-second.Context.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Release did not end the current leadership")
	}
}

// ReportError after the Balancer or its Session is closed must not queue
// anything.
func TestReportErrorAfterCloseKeepsNothing(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root)
	b := newBalancer(t, s, "api", nil)
	b.Close()
	for range 10000 {
		b.ReportError("x")
	}
	if n := b.errs.Len(); n != 0 {
		t.Fatalf("%d reports queued after Close", n)
	}
	b2 := newBalancer(t, s, "api", nil)
	s.Close()
	<-b2.done
	for range 10000 {
		b2.ReportError("x")
	}
	if n := b2.errs.Len(); n != 0 {
		t.Fatalf("%d reports queued after the session closed", n)
	}
}

// awaitLeadership reads ch until a value satisfies ok.
func awaitLeadership(t testing.TB, ch <-chan Leadership, ok func(Leadership) bool) Leadership {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, open := <-ch:
			if !open {
				t.Fatal("leadership channel closed")
			}
			if ok(l) {
				return l
			}
		case <-timeout:
			t.Fatal("leadership state not reached")
		}
	}
}

// awaitQueue polls, with a deadline, until ok holds.
func awaitQueue(t testing.TB, s *Session, path string, ok func([]Participant) bool) []Participant {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := s.Participants(testCtx(t), path)
		if err == nil && ok(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("participants not reached: %+v %v", ps, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A request over ZooKeeper's packet limit makes the server drop the
// connection: it must fail before it is sent, with a lasting error, and
// error messages must not quote megabytes.
func TestOversizedRequestsFailBeforeSending(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root)
	events := s.Events(testCtx(t))
	ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
	defer cancel()

	big := make([]byte, MaxDataSize)
	name := "/" + strings.Repeat("n", 5000)
	if _, err := s.Create(ctx, name, big, Persistent); !errors.Is(err, ErrDataTooLarge) {
		t.Fatalf("Create with a 5000-byte name and MaxDataSize data: %v, want ErrDataTooLarge", err)
	}
	reg, err := s.Register(ctx, strings.Repeat("s", 200), Node{ID: strings.Repeat("i", 1000), Data: big})
	if !errors.Is(err, ErrDataTooLarge) {
		if reg != nil {
			reg.Close()
		}
		t.Fatalf("Register with a long name and MaxDataSize data: %v, want ErrDataTooLarge", err)
	}
	if !strings.Contains(err.Error(), "1048575") {
		t.Errorf("error does not name the limit: %v", err)
	}
	huge := "/" + strings.Repeat("p", 2<<20)
	_, err = s.Create(ctx, huge, nil, Persistent)
	if !errors.Is(err, ErrInvalidPath) || len(err.Error()) > 500 {
		t.Fatalf("Create with a 2 MB path: %.600v (%d bytes), want a short ErrInvalidPath", err, len(err.Error()))
	}
	if _, _, err := s.Exists(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-events:
			if ev.Type == EventSuspended {
				t.Fatal("the connection was lost: a request was sent")
			}
			continue
		default:
		}
		break
	}
}

// The first authenticated Register must not lock other identities out of
// the shared parents it creates.
func TestIdentitiesShareParents(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	ctx := testCtx(t)
	alice := connect(t, root, WithDigestAuth("alice", "a-secret"))
	bob := connect(t, root, WithDigestAuth("bob", "b-secret"))
	anon := connect(t, root)
	for _, r := range []struct {
		s       *Session
		service string
		id      string
	}{{alice, "svc-a", "a1"}, {bob, "svc-b", "b1"}, {bob, "svc-a", "b2"}, {anon, "svc-a", "c1"}} {
		reg, err := r.s.Register(ctx, r.service, Node{ID: r.id})
		if err != nil {
			t.Fatalf("Register %s/%s: %v", r.service, r.id, err)
		}
		t.Cleanup(func() { reg.Close() })
	}
	nodes, err := anon.Instances(ctx, "svc-a")
	if err != nil || len(nodes) != 3 {
		t.Fatalf("svc-a: %v %v, want a1, b2, c1", ids(nodes), err)
	}
	for _, s := range []*Session{alice, bob} {
		ch, err := s.Elect(ctx, "/jobs/leader")
		if err != nil {
			t.Fatalf("Elect: %v", err)
		}
		<-ch
	}
	// bob can leave a service alice's session created.
	reg, err := bob.Register(ctx, "svc-a", Node{ID: "b3"})
	if err != nil {
		t.Fatal(err)
	}
	reg.Close()
	if ok, _, err := anon.Exists(ctx, "/services/svc-a/b3"); ok || err != nil {
		t.Fatalf("b3 still registered after Close: %v", err)
	}
}

func TestEmptyCredentialsAndIDsAreInvalid(t *testing.T) {
	zkc := zktest.Shared(t)
	for _, opt := range []Option{WithDigestAuth("u", ""), WithDigestAuth("", "p"), WithDigestAuth("a:b", "p")} {
		if _, err := Connect(testCtx(t), zkc.Addr(0), opt); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Connect with bad digest credentials: %v, want ErrInvalidOption", err)
		}
	}
	s := connect(t, zkc.Root(t))
	if _, err := s.Elect(testCtx(t), "/e", WithID("")); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("Elect with WithID(\"\"): %v, want ErrInvalidID", err)
	}
}

func TestDeleteReservedNodesIsBadArguments(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Addr(0))
	for _, p := range []string{"/", "/zookeeper"} {
		if err := s.Delete(testCtx(t), p, AnyVersion); !errors.Is(err, ErrBadArguments) {
			t.Errorf("Delete(%s): %v, want ErrBadArguments", p, err)
		}
	}
}

// Close is not an error: it emits none, and the session has no id after it.
func TestCloseIsQuiet(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root)
	ctx := testCtx(t)
	events := s.Events(ctx)
	register(t, s, "api", "a1")
	watch(t, s, "api")
	newBalancer(t, s, "api", nil)
	if _, err := s.Elect(ctx, "/leader"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for ev := range events {
		if ev.Type == EventError {
			t.Errorf("Close emitted %v", ev)
		}
	}
	if id := s.SessionID(); id != 0 {
		t.Fatalf("SessionID after Close: 0x%x", id)
	}
}

// A chroot that does not exist fails Connect, naming it.
func TestConnectMissingChroot(t *testing.T) {
	zkc := zktest.Shared(t)
	_, err := Connect(testCtx(t), zkc.Addr(0)+"/no/such/chroot")
	if !errors.Is(err, ErrNoNode) || !strings.Contains(err.Error(), "/no/such/chroot") {
		t.Fatalf("Connect with a missing chroot: %v, want ErrNoNode naming it", err)
	}
}

// One host name that does not resolve, wherever it stands in the connect
// string, must not fail Connect: the other hosts are tried.
func TestConnectSkipsAnUnresolvableHost(t *testing.T) {
	zkc := zktest.Shared(t)
	for _, cs := range []string{
		"no-such-host.invalid:2181," + zkc.Addr(0),
		zkc.Addr(0) + ",no-such-host.invalid:2181",
	} {
		ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
		s, err := Connect(ctx, cs, WithSessionTimeout(2*time.Second))
		cancel()
		if err != nil {
			t.Fatalf("Connect(%s): %v", cs, err)
		}
		s.Close()
	}
	// With no host to reach, the error names every host's reason.
	ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
	defer cancel()
	_, err := Connect(ctx, "no-such-host.invalid:2181,127.0.0.1:1", WithSessionTimeout(2*time.Second))
	if err == nil || !strings.Contains(err.Error(), "no-such-host.invalid:2181") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Connect to nothing: %v, want each host's reason", err)
	}
	if errors.Is(err, ErrInvalidConnectString) {
		t.Fatalf("an unreachable ensemble is not a malformed connect string: %v", err)
	}
}

// A server that accepts TCP connections and never answers, first in the
// connect string, costs one dial timeout, then the next host serves.
func TestConnectPassesOverASilentServer(t *testing.T) {
	zkc := zktest.Shared(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answered
		}
	}()
	defer func() {
		silent.Close()
		<-accepted
		for _, c := range held {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
	defer cancel()
	start := time.Now()
	// Connect shuffles hosts; give the silent one every chance to be first.
	cs := strings.Repeat(silent.Addr().String()+",", 3) + zkc.Addr(0)
	s, err := Connect(ctx, cs, WithSessionTimeout(2*time.Second), WithDialTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Connect took %v past a silent server", d)
	}
	// Alone, the silent server gives an error that says so, when ctx ends.
	ctx2, cancel2 := context.WithTimeout(testCtx(t), time.Second)
	defer cancel2()
	start = time.Now()
	_, err = Connect(ctx2, silent.Addr().String(), WithDialTimeout(300*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), silent.Addr().String()) {
		t.Fatalf("Connect to a silent server: %v, want it named", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("Connect returned %v after its ctx", d-time.Second)
	}
}

// ZooKeeper accepts any digest credentials; WhoAmI shows which identity a
// session holds, so a typo can be found.
func TestWhoAmIShowsTheIdentity(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t), WithDigestAuth("orders", "s3cret"))
	ids, err := s.WhoAmI(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, "digest:orders") {
		t.Fatalf("WhoAmI = %v, want digest:orders among them", ids)
	}
}

// A nil option is a caller's mistake: ErrInvalidOption, not a panic.
func TestNilOptionsAreInvalid(t *testing.T) {
	zkc := zktest.Shared(t)
	ctx := testCtx(t)
	if _, err := Connect(ctx, zkc.Addr(0), nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Connect with a nil Option: %v", err)
	}
	s := connect(t, zkc.Root(t))
	if _, err := s.Elect(ctx, "/e", nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Elect with a nil option: %v", err)
	}
	if _, err := s.Register(ctx, "svc", Node{ID: "a"}, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Register with a nil option: %v", err)
	}
	if _, err := s.Create(ctx, "/n", nil, Persistent, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Create with a nil option: %v", err)
	}
	if _, err := s.Balancer(ctx, "svc", nil, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Balancer with a nil option: %v", err)
	}
}

// ValidatePath refuses exactly the characters ZooKeeper refuses, as far as
// another client lets a path through to the server: characters above U+FFFF
// (a surrogate pair in Java) passed ValidatePath, and then every call with
// such a path failed at the server with ErrBadArguments, and Members of such
// a service stayed empty without an error.
func TestPathCharactersAgreeWithServer(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t) // a connect string with the test's chroot
	raw := zkConnect(t, zkc.Addr(0))
	chroot := root[strings.IndexByte(root, '/'):]
	for _, r := range []rune{0xa0, 0xd7ff, 0xe000, 0xf8ff, 0xf900, 0xffef, 0xfff0, 0x10000, 0x1f600, 0x10ffff} {
		name := "/c" + string(r)
		_, err := raw.Create(chroot+name, nil, 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrInvalidPath) {
			continue // go-zookeeper refuses it before the server sees it
		}
		serverTakes := err == nil
		if err != nil && !errors.Is(err, zk.ErrBadArguments) {
			t.Fatalf("create %U: %v", r, err)
		}
		if ours := ValidatePath(name); (ours == nil) != serverTakes {
			t.Errorf("%U: ZooKeeper takes it: %v; ValidatePath: %v", r, serverTakes, ours)
		}
	}
	s := connect(t, root)
	if _, err := s.Register(testCtx(t), "svc\U0001F600", Node{ID: "a"}); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("Register of a service with U+1F600: %v, want ErrInvalidPath before any request", err)
	}
}
