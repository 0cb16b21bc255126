package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// ids returns the IDs of nodes, in order.
func ids(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

// awaitSet reads sets from ch until ok accepts one and returns it, failing
// the test if ch closes or none comes within d. want says what was awaited,
// and describe the last set, in the failure.
func awaitSet[T any](t testing.TB, ch <-chan T, d time.Duration, want string, ok func(T) bool, describe func(T) string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var last T
	for {
		select {
		case set, open := <-ch:
			if !open {
				t.Fatalf("members closed while waiting for %s (last %s)", want, describe(last))
			}
			if last = set; ok(set) {
				return set
			}
		case <-timer.C:
			t.Fatalf("members not %s within %v (last %s)", want, d, describe(last))
		}
	}
}

// describeNodes shows a set's size and first IDs, for a failure.
func describeNodes(nodes []Node) string {
	return fmt.Sprintf("%d: %v", len(nodes), abbrev(ids(nodes)))
}

// awaitIDs reads sets from ch until one has exactly the IDs want (sorted),
// failing the test if none comes within d. It returns that set.
func awaitIDs(t testing.TB, ch <-chan []Node, d time.Duration, want ...string) []Node {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	return awaitSet(t, ch, d, fmt.Sprint(want), func(nodes []Node) bool { return slices.Equal(ids(nodes), want) }, describeNodes)
}

func abbrev(s []string) []string {
	if len(s) > 10 {
		return append(slices.Clip(s[:10]), "...")
	}
	return s
}

// watch subscribes to service on s for the test's lifetime.
func watch(t testing.TB, s *Session, service string) <-chan []Node {
	t.Helper()
	ch, err := s.Members(testCtx(t), service)
	if err != nil {
		t.Fatalf("Members(%s): %v", service, err)
	}
	return ch
}

// register registers id on s for the test's lifetime.
func register(t testing.TB, s *Session, service, id string) *Registration {
	t.Helper()
	reg, err := s.Register(testCtx(t), service, Node{ID: id, Data: []byte("addr-" + id)})
	if err != nil {
		t.Fatalf("Register(%s, %s): %v", service, id, err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// awaitClosedMembers waits for ch to be closed, draining it.
func awaitClosedMembers(t testing.TB, ch <-chan []Node, what string) {
	t.Helper()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("%s: members channel not closed", what)
		}
	}
}

func TestRegisterAndUnregister(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s, other := connect(t, root), connect(t, root)
	ctx := testCtx(t)

	// The service does not exist yet: an empty set at once, then its members.
	members := watch(t, other, "users")
	awaitIDs(t, members, time.Second)

	reg, err := s.Register(ctx, "users", Node{ID: "node-1", Data: []byte("10.0.0.1:80")})
	if err != nil {
		t.Fatal(err)
	}
	if reg.ID() != "node-1" {
		t.Fatalf("ID() = %q", reg.ID())
	}
	// Register returns once the node exists, on this session.
	data, st, err := s.Get(ctx, "/services/users/node-1")
	if err != nil || string(data) != "10.0.0.1:80" || st.EphemeralOwner != s.SessionID() {
		t.Fatalf("node after Register: data=%q stat=%+v err=%v", data, st, err)
	}
	got := awaitIDs(t, members, 5*time.Second, "node-1")
	if string(got[0].Data) != "10.0.0.1:80" {
		t.Fatalf("member data %q", got[0].Data)
	}

	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Exists(ctx, "/services/users/node-1"); ok || err != nil {
		t.Fatalf("node after Close: exists=%v err=%v", ok, err)
	}
	awaitIDs(t, members, 5*time.Second)
	if err := reg.Close(); err != nil {
		t.Fatal("second Close:", err)
	}

	// Cancelling Register's ctx removes the node at once too.
	regCtx, cancel := context.WithCancel(ctx)
	reg, err = s.Register(regCtx, "users", Node{ID: "node-2"})
	if err != nil {
		t.Fatal(err)
	}
	awaitIDs(t, members, 5*time.Second, "node-2")
	cancel()
	awaitIDs(t, members, 5*time.Second)
	reg.Close()
	if ok, _, err := s.Exists(ctx, "/services/users/node-2"); ok || err != nil {
		t.Fatalf("node after cancel: exists=%v err=%v", ok, err)
	}
}

func TestRegisterDefaultsToHostName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal("no host name:", err)
	}
	s := connect(t, zktest.Shared(t).Root(t))
	reg, err := s.Register(testCtx(t), "svc", Node{Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if reg.ID() != host {
		t.Fatalf("ID() = %q, want the host name %q", reg.ID(), host)
	}
	nodes, err := s.Instances(testCtx(t), "svc")
	if err != nil || len(nodes) != 1 || nodes[0].ID != host || string(nodes[0].Data) != "x" {
		t.Fatalf("Instances: %+v, %v", nodes, err)
	}
}

func TestRegistrationGoneOnSessionClose(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s, other := connect(t, root, WithSessionTimeout(20*time.Second)), connect(t, root)
	reg := register(t, s, "svc", "a")
	members := watch(t, other, "svc")
	awaitIDs(t, members, 5*time.Second, "a")
	start := time.Now()
	s.Close()
	awaitIDs(t, members, 5*time.Second) // far below the 20 s session timeout
	t.Logf("gone %v after Close", time.Since(start))
	if err := reg.Close(); err != nil {
		t.Fatal("Close after the session closed:", err)
	}
}

func TestRegisterAgainAfterExpiry(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root))
	other := connect(t, root)
	events := s.Events(testCtx(t))
	ctx := testCtx(t)
	register(t, s, "svc", "a")
	_, before, err := other.Get(ctx, "/services/svc/a")
	if err != nil {
		t.Fatal(err)
	}
	members := watch(t, other, "svc")
	awaitIDs(t, members, 5*time.Second, "a")

	old := s.SessionID()
	if err := proxy.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventExpired, 10*time.Second)
	e := awaitEvent(t, events, EventRegistered, 10*time.Second)
	if e.SessionID == old || e.Path != "/services/svc/a" {
		t.Fatalf("registered again: %v (old session 0x%x)", e, old)
	}
	_, after, err := other.Get(ctx, "/services/svc/a")
	if err != nil {
		t.Fatal(err)
	}
	if after.EphemeralOwner != s.SessionID() || after.Czxid == before.Czxid {
		t.Fatalf("node after expiry: owner 0x%x (want 0x%x), czxid %d (before %d)",
			after.EphemeralOwner, s.SessionID(), after.Czxid, before.Czxid)
	}
	nodes := awaitIDs(t, members, 5*time.Second, "a")
	if string(nodes[0].Data) != "addr-a" {
		t.Fatalf("data after expiry: %q", nodes[0].Data)
	}
}

func TestMembersSeeJoinsAndLeaves(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	w1, w2 := connect(t, root), connect(t, root)
	m1, m2 := watch(t, w1, "svc"), watch(t, w2, "svc")
	var regs []*Registration
	var want []string
	for _, id := range []string{"c", "a", "b"} {
		regs = append(regs, register(t, connect(t, root), "svc", id))
		want = append(want, id)
		slices.Sort(want)
		awaitIDs(t, m1, 5*time.Second, want...)
		awaitIDs(t, m2, 5*time.Second, want...)
	}
	regs[1].Close() // "a"
	awaitIDs(t, m1, 5*time.Second, "b", "c")
	awaitIDs(t, m2, 5*time.Second, "b", "c")
	regs[0].Close() // "c"
	awaitIDs(t, m1, 5*time.Second, "b")
	awaitIDs(t, m2, 5*time.Second, "b")
}

func TestMembersConvergeWith200MembersOn20Sessions(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	var watchers [3]<-chan []Node
	for i := range watchers {
		watchers[i] = watch(t, connect(t, root), "svc")
	}
	sessions := make([]*Session, 20)
	for i := range sessions {
		sessions[i] = connect(t, root)
	}
	var want []string
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i, s := range sessions {
		for j := range 10 {
			id := fmt.Sprintf("m%02d-%d", i, j)
			want = append(want, id)
			wg.Add(1)
			go func() {
				defer wg.Done()
				reg, err := s.Register(testCtx(t), "svc", Node{ID: id, Data: []byte(id)})
				if err != nil {
					errs <- err
					return
				}
				t.Cleanup(func() { reg.Close() })
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(want)
	for _, w := range watchers {
		nodes := awaitIDs(t, w, 20*time.Second, want...)
		for _, n := range nodes {
			if string(n.Data) != n.ID {
				t.Fatalf("member %s has data %q", n.ID, n.Data)
			}
		}
	}
	// Half the sessions go: their members leave together.
	for _, s := range sessions[:10] {
		s.Close()
	}
	want = slices.DeleteFunc(want, func(id string) bool { return id < "m10" })
	for _, w := range watchers {
		awaitIDs(t, w, 20*time.Second, want...)
	}
}

func TestMembersPartitionHeals(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	// Long enough to reconnect before expiry: with one server address the
	// client waits 1 s before it dials again.
	w := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(6*time.Second))
	events := w.Events(testCtx(t))
	s := connect(t, root)
	a := register(t, s, "svc", "a")
	register(t, s, "svc", "b")
	members := watch(t, w, "svc")
	awaitIDs(t, members, 5*time.Second, "a", "b")

	proxy.Stall()
	a.Close()
	register(t, s, "svc", "c")
	awaitEvent(t, events, EventSuspended, 8*time.Second)
	// While suspended, the last set stands: nothing, and never an empty set.
	select {
	case nodes := <-members:
		t.Fatalf("members changed while partitioned: %v", ids(nodes))
	default:
	}
	proxy.Heal()
	awaitEvent(t, events, EventReconnected, 10*time.Second)
	awaitIDs(t, members, 5*time.Second, "b", "c")
}

func TestMembersAfterWatcherExpiry(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	w := connect(t, proxy.Addr()+chrootOf(root))
	events := w.Events(testCtx(t))
	s := connect(t, root)
	a := register(t, s, "svc", "a")
	members := watch(t, w, "svc")
	awaitIDs(t, members, 5*time.Second, "a")

	proxy.Stall() // no watch can reach it now
	a.Close()
	register(t, s, "svc", "b")
	proxy.Heal()
	if err := proxy.Expire(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventConnected, 10*time.Second)
	awaitIDs(t, members, 5*time.Second, "b")
	register(t, s, "svc", "c") // watches work on the new session
	awaitIDs(t, members, 5*time.Second, "b", "c")
}

func TestMembersEnd(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root)
	ctx, cancel := context.WithCancel(testCtx(t))
	byCtx, err := s.Members(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	bySession := watch(t, s, "svc")
	cancel()
	awaitClosedMembers(t, byCtx, "ctx cancelled")
	s.Close()
	awaitClosedMembers(t, bySession, "session closed")
	if _, err := s.Members(testCtx(t), "svc"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Members after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Register(testCtx(t), "svc", Node{ID: "a"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close: %v, want ErrClosed", err)
	}
}

func TestRegisterDuplicateID(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s, other := connect(t, root), connect(t, root)
	ctx := testCtx(t)
	first := register(t, s, "svc", "a")
	if _, err := s.Register(ctx, "svc", Node{ID: "a"}); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("same ID, same session: %v, want ErrIDTaken", err)
	}
	if _, err := other.Register(ctx, "svc", Node{ID: "a"}); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("same ID, other session: %v, want ErrIDTaken", err)
	}
	// A persistent node in the way is named as such, not as session 0.
	if _, err := s.Create(ctx, "/services/svc/p", nil, Persistent); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register(ctx, "svc", Node{ID: "p"}); !errors.Is(err, ErrIDTaken) || !strings.Contains(err.Error(), "persistent node") {
		t.Fatalf("same ID as a persistent node: %v, want ErrIDTaken naming it", err)
	}
	// The failed attempts did not touch the first node.
	if _, st, err := s.Get(ctx, "/services/svc/a"); err != nil || st.EphemeralOwner != s.SessionID() {
		t.Fatalf("first node after duplicates: %+v, %v", st, err)
	}
	// Another service, or the same ID once it is free, is fine.
	register(t, other, "other-svc", "a")
	first.Close()
	register(t, other, "svc", "a")
}

func TestMembershipBadInput(t *testing.T) {
	s := connect(t, zktest.Shared(t).Root(t))
	ctx := testCtx(t)
	big := make([]byte, MaxDataSize+1)
	for _, tc := range []struct {
		name    string
		service string
		node    Node
		want    error
	}{
		{"empty service", "", Node{ID: "a"}, ErrInvalidPath},
		{"service with slash", "a/b", Node{ID: "a"}, ErrInvalidPath},
		{"service dot-dot", "..", Node{ID: "a"}, ErrInvalidPath},
		{"service with control char", "a\x01", Node{ID: "a"}, ErrInvalidPath},
		{"id with slash", "svc", Node{ID: "a/b"}, ErrInvalidID},
		{"id dot", "svc", Node{ID: "."}, ErrInvalidID},
		{"id with NUL", "svc", Node{ID: "a\x00"}, ErrInvalidID},
		{"id too long", "svc", Node{ID: strings.Repeat("x", MaxIDLength+1)}, ErrInvalidID},
		{"data too large", "svc", Node{ID: "a", Data: big}, ErrDataTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Register(ctx, tc.service, tc.node); !errors.Is(err, tc.want) {
				t.Fatalf("Register: %v, want %v", err, tc.want)
			}
			if tc.want != ErrInvalidPath {
				return
			}
			if _, err := s.Members(ctx, tc.service); !errors.Is(err, tc.want) {
				t.Fatalf("Members: %v, want %v", err, tc.want)
			}
			if _, err := s.Instances(ctx, tc.service); !errors.Is(err, tc.want) {
				t.Fatalf("Instances: %v, want %v", err, tc.want)
			}
			if _, err := s.Balancer(ctx, tc.service, RoundRobin()); !errors.Is(err, tc.want) {
				t.Fatalf("Balancer: %v, want %v", err, tc.want)
			}
		})
	}
	if names, err := s.Services(ctx); err != nil || len(names) != 0 {
		t.Fatalf("bad input left services behind: %v, %v", names, err)
	}
}

func TestServicesAndInstances(t *testing.T) {
	s := connect(t, zktest.Shared(t).Root(t))
	ctx := testCtx(t)
	names, err := s.Services(ctx)
	if err != nil || names == nil || len(names) != 0 {
		t.Fatalf("Services with none: %#v, %v", names, err)
	}
	if nodes, err := s.Instances(ctx, "web"); err != nil || len(nodes) != 0 {
		t.Fatalf("Instances of a missing service: %v, %v", nodes, err)
	}
	register(t, s, "web", "w2")
	register(t, s, "web", "w1")
	register(t, s, "api", "a1")
	names, err = s.Services(ctx)
	if err != nil || !slices.Equal(names, []string{"api", "web"}) {
		t.Fatalf("Services: %v, %v", names, err)
	}
	nodes, err := s.Instances(ctx, "web")
	if err != nil || !slices.Equal(ids(nodes), []string{"w1", "w2"}) || string(nodes[0].Data) != "addr-w1" {
		t.Fatalf("Instances: %+v, %v", nodes, err)
	}
}

// A join costs one read (the new node), a leave none, an Update one,
// however many members there are.
func TestMembersReadsPerChange(t *testing.T) {
	for _, oneShot := range []bool{false, true} {
		t.Run(map[bool]string{false: "persistent", true: "one-shot"}[oneShot], func(t *testing.T) {
			zkc := zktest.Shared(t)
			root := zkc.Root(t)
			s, w := connect(t, root), connect(t, root)
			if oneShot {
				withoutPersistentWatches(w)
			}
			ctx := testCtx(t)
			if _, err := s.Create(ctx, "/services/svc", nil, Persistent, CreateParents()); err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range 50 {
				id := fmt.Sprintf("m%02d", i)
				if _, err := s.Create(ctx, "/services/svc/"+id, nil, Ephemeral); err != nil {
					t.Fatal(err)
				}
				want = append(want, id)
			}
			members := watch(t, w, "svc")
			awaitIDs(t, members, 5*time.Second, want...)
			if n := w.memberReads.Load(); n != 51 {
				t.Errorf("the first set cost %d reads, want 51", n)
			}

			// The one-shot fallback lists the names on each change.
			list := map[bool]int64{false: 0, true: 1}[oneShot]
			before := w.memberReads.Load()
			reg := register(t, s, "svc", "new")
			awaitIDs(t, members, 5*time.Second, append(slices.Clone(want), "new")...)
			if n := w.memberReads.Load() - before; n != 1+list {
				t.Errorf("a join cost %d reads, want %d", n, 1+list)
			}
			if !oneShot {
				before = w.memberReads.Load()
				if err := reg.Update(ctx, []byte("v2")); err != nil {
					t.Fatal(err)
				}
				nodes := awaitData(t, members, 5*time.Second, "new", "v2")
				if len(nodes) != 51 {
					t.Errorf("after Update: %d members", len(nodes))
				}
				if n := w.memberReads.Load() - before; n != 1 {
					t.Errorf("an Update cost %d reads, want 1", n)
				}
			}
			before = w.memberReads.Load()
			reg.Close()
			awaitIDs(t, members, 5*time.Second, want...)
			if n := w.memberReads.Load() - before; n != list {
				t.Errorf("a leave cost %d reads, want %d", n, list)
			}
		})
	}
}

// withoutPersistentWatches makes s's client answer AddWatch as a server
// before 3.6 does, so its recipes take the fallback path. Call it before
// starting any recipe on s.
func withoutPersistentWatches(s *Session) { s.zk = noAddWatch{s.zk} }

type noAddWatch struct{ client }

func (noAddWatch) AddWatch(context.Context, string, bool) (*zkclient.Watcher, error) {
	return nil, zkclient.ErrUnimplemented
}

// awaitData reads sets from ch until member id has data, failing the test
// if none comes within d. It returns that set.
func awaitData(t testing.TB, ch <-chan []Node, d time.Duration, id, data string) []Node {
	t.Helper()
	return awaitSet(t, ch, d, fmt.Sprintf("%s=%q", id, data), func(nodes []Node) bool {
		return slices.ContainsFunc(nodes, func(n Node) bool { return n.ID == id && string(n.Data) == data })
	}, describeNodes)
}

// A member that leaves and registers again between two reads of the names
// is found by the parent's child version, and its new node is read.
func TestMemberSetSeesReregistrationBetweenReads(t *testing.T) {
	s := connect(t, zktest.Shared(t).Root(t))
	ctx := testCtx(t)
	if _, err := s.Create(ctx, "/services/svc/a", []byte("old"), Ephemeral, CreateParents()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/services/svc/b", []byte("b"), Ephemeral); err != nil {
		t.Fatal(err)
	}
	f := newMemberSet(s, "/services/svc")
	f.oneShot = true             // the fallback; persistent watches see each change
	f.loop("members", func() {}) // sync sets the loop's watch
	if changed, err := f.sync(); err != nil || !changed {
		t.Fatalf("first sync: %v %v", changed, err)
	}
	if err := s.Delete(ctx, "/services/svc/a", AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/services/svc/a", []byte("new"), Ephemeral); err != nil {
		t.Fatal(err)
	}
	changed, err := f.sync()
	if err != nil || !changed {
		t.Fatalf("sync after re-registration: changed=%v err=%v", changed, err)
	}
	if nodes := f.nodes(); string(nodes[0].Data) != "new" || string(nodes[1].Data) != "b" {
		t.Fatalf("after re-registration: %q %q", nodes[0].Data, nodes[1].Data)
	}
	// Nothing changed: nothing to report.
	if changed, err := f.sync(); err != nil || changed {
		t.Fatalf("sync without change: changed=%v err=%v", changed, err)
	}
}

// The registration comes back if someone deletes its node.
func TestRegistrationRecreatedWhenDeleted(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s, other := connect(t, root), connect(t, root)
	events := s.Events(testCtx(t))
	register(t, s, "svc", "a")
	awaitEvent(t, events, EventRegistered, time.Second)
	if err := other.Delete(testCtx(t), "/services/svc/a", AnyVersion); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventRegistered, 5*time.Second)
	if _, st, err := other.Get(testCtx(t), "/services/svc/a"); err != nil || st.EphemeralOwner != s.SessionID() {
		t.Fatalf("after delete: %+v %v", st, err)
	}
}

// modes runs f with persistent watches and with the one-shot fallback
// (setup is given the watching session before any recipe starts on it).
func modes(t *testing.T, f func(t *testing.T, oneShot bool, setup func(*Session))) {
	for _, oneShot := range []bool{false, true} {
		t.Run(map[bool]string{false: "persistent", true: "one-shot"}[oneShot], func(t *testing.T) {
			f(t, oneShot, func(s *Session) {
				if oneShot {
					withoutPersistentWatches(s)
				}
			})
		})
	}
}

// The server tells a persistent watch nothing of what changed while the
// connection was down: joins, leaves and Updates made then are found when
// the same session is back, and the watch works on.
func TestMembersSeeChangesMadeWhileCut(t *testing.T) {
	modes(t, func(t *testing.T, oneShot bool, setup func(*Session)) {
		zkc := zktest.Shared(t)
		root := zkc.Root(t)
		proxy := zktest.ProxyT(t, zkc.Addr(0))
		w := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(8*time.Second))
		setup(w)
		events := w.Events(testCtx(t))
		s := connect(t, root)
		a, b := register(t, s, "svc", "a"), register(t, s, "svc", "b")
		members := watch(t, w, "svc")
		awaitIDs(t, members, 5*time.Second, "a", "b")
		id := w.SessionID()

		proxy.Cut()
		awaitEvent(t, events, EventSuspended, 5*time.Second)
		a.Close()
		register(t, s, "svc", "c")
		if err := b.Update(testCtx(t), []byte("b2")); err != nil {
			t.Fatal(err)
		}
		proxy.Heal()
		awaitEvent(t, events, EventReconnected, 10*time.Second)
		if w.SessionID() != id {
			t.Fatal("the session expired; the test needs it to come back")
		}
		nodes := awaitIDs(t, members, 5*time.Second, "b", "c")
		if !oneShot && string(nodes[0].Data) != "b2" {
			nodes = awaitData(t, members, 5*time.Second, "b", "b2")
		}
		before := w.memberReads.Load()
		register(t, s, "svc", "d")
		awaitIDs(t, members, 5*time.Second, "b", "c", "d")
		if n, want := w.memberReads.Load()-before, map[bool]int64{false: 1, true: 2}[oneShot]; n != want {
			t.Errorf("a join after the reconnect cost %d reads, want %d", n, want)
		}
	})
}

// After the watching session expires, the set is read afresh on the new
// session and followed from there.
func TestMembersConvergeAfterExpiry(t *testing.T) {
	modes(t, func(t *testing.T, oneShot bool, setup func(*Session)) {
		zkc := zktest.Shared(t)
		root := zkc.Root(t)
		proxy := zktest.ProxyT(t, zkc.Addr(0))
		w := connect(t, proxy.Addr()+chrootOf(root))
		setup(w)
		events := w.Events(testCtx(t))
		s := connect(t, root)
		a, b := register(t, s, "svc", "a"), register(t, s, "svc", "b")
		members := watch(t, w, "svc")
		awaitIDs(t, members, 5*time.Second, "a", "b")

		proxy.Stall() // no event can reach it now
		a.Close()
		register(t, s, "svc", "c")
		if err := b.Update(testCtx(t), []byte("b2")); err != nil {
			t.Fatal(err)
		}
		proxy.Heal()
		if err := proxy.Expire(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		awaitEvent(t, events, EventConnected, 10*time.Second)
		nodes := awaitIDs(t, members, 5*time.Second, "b", "c")
		if string(nodes[0].Data) != "b2" {
			awaitData(t, members, 5*time.Second, "b", "b2") // read afresh in both modes
		}
		register(t, s, "svc", "d") // watches work on the new session
		awaitIDs(t, members, 5*time.Second, "b", "c", "d")
		if !oneShot {
			if err := b.Update(testCtx(t), []byte("b3")); err != nil {
				t.Fatal(err)
			}
			awaitData(t, members, 5*time.Second, "b", "b3")
		}
	})
}

// The service node is a container: removed once its last member leaves,
// created again by the next one. The watch on it follows both.
func TestMembersFollowServiceNodeGoneAndBack(t *testing.T) {
	modes(t, func(t *testing.T, oneShot bool, setup func(*Session)) {
		zkc := zktest.Shared(t)
		root := zkc.Root(t)
		s, w := connect(t, root), connect(t, root)
		setup(w)
		members := watch(t, w, "svc")
		a := register(t, s, "svc", "a")
		awaitIDs(t, members, 5*time.Second, "a")
		a.Close()
		awaitIDs(t, members, 5*time.Second)
		// Remove the container now rather than wait for the server to.
		if err := s.Delete(testCtx(t), "/services/svc", AnyVersion); err != nil && !errors.Is(err, ErrNoNode) {
			t.Fatal(err)
		}
		register(t, s, "svc", "b")
		awaitIDs(t, members, 5*time.Second, "b")
	})
}

func TestRegistrationUpdate(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root))
	other := connect(t, root)
	events := s.Events(testCtx(t))
	ctx := testCtx(t)
	reg := register(t, s, "svc", "a")
	if err := reg.Update(ctx, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if data, _, err := other.Get(ctx, "/services/svc/a"); err != nil || string(data) != "v2" {
		t.Fatalf("node after Update: %q %v", data, err)
	}
	if err := reg.Update(ctx, make([]byte, MaxDataSize+1)); !errors.Is(err, ErrDataTooLarge) {
		t.Fatalf("Update too large: %v, want ErrDataTooLarge", err)
	}

	// While another session holds the ID, the node is not ours: ErrNoNode.
	// Once it is back, it is created with the updated data.
	if err := proxy.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Cut() // hold the client off while other takes the ID
	if _, err := other.Create(ctx, "/services/svc/a", []byte("theirs"), Ephemeral); err != nil {
		t.Fatal(err)
	}
	proxy.Heal()
	awaitEvent(t, events, EventConnected, 10*time.Second)
	for {
		e := awaitEvent(t, events, EventError, 10*time.Second)
		if errors.Is(e.Err, ErrIDTaken) {
			break
		}
	}
	if err := reg.Update(ctx, []byte("v3")); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Update while the ID is taken: %v, want ErrNoNode", err)
	}
	if err := other.Delete(ctx, "/services/svc/a", AnyVersion); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, EventRegistered, 10*time.Second)
	if data, st, err := other.Get(ctx, "/services/svc/a"); err != nil || string(data) != "v2" || st.EphemeralOwner != s.SessionID() {
		t.Fatalf("node registered again: %q %+v %v", data, st, err)
	}

	reg.Close()
	if err := reg.Update(ctx, []byte("v4")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v, want ErrClosed", err)
	}
}

// A Balancer picks from the updated data, and an Update does not bring a
// node that is down back (it did not register again).
func TestBalancerFollowsUpdates(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	// One session registers and balances: its registrations' watches on
	// their nodes and the balancer's watch on the service live side by side.
	s := connect(t, root)
	a := register(t, s, "svc", "a")
	register(t, s, "svc", "b")
	bal, err := s.Balancer(testCtx(t), "svc", RoundRobin(), WithDownPolicy(1, time.Minute, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bal.Close() })
	if err := a.Update(testCtx(t), []byte("a2")); err != nil {
		t.Fatal(err)
	}
	awaitPick(t, bal, func(n Node) bool { return n.ID == "a" && string(n.Data) == "a2" })
	bal.ReportError("b")
	awaitPick(t, bal, func(n Node) bool { return n.ID == "a" }) // b is down
	if err := a.Update(testCtx(t), []byte("a3")); err != nil {
		t.Fatal(err)
	}
	awaitPick(t, bal, func(n Node) bool { return string(n.Data) == "a3" })
	for range 4 {
		if n, ok := bal.Pick(""); !ok || n.ID != "a" {
			t.Fatalf("Pick after Update: %+v %v; b should still be down", n, ok)
		}
	}
}

// awaitPick picks until ok accepts the node picked. A Balancer has no
// channel to wait on, so it polls.
func awaitPick(t testing.TB, b *Balancer, ok func(Node) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, found := b.Pick("")
		if found && ok(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such pick within 5s (last %+v %v)", n, found)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watchRecorder keeps the persistent watches its client's recipes set.
type watchRecorder struct {
	client
	mu sync.Mutex
	ws []*zkclient.Watcher
}

func (r *watchRecorder) AddWatch(ctx context.Context, path string, recursive bool) (*zkclient.Watcher, error) {
	w, err := r.client.AddWatch(ctx, path, recursive)
	if err == nil {
		r.mu.Lock()
		r.ws = append(r.ws, w)
		r.mu.Unlock()
	}
	return w, err
}

// A Members that ends removes its watch: the client queues nothing more
// for it.
func TestMembersRemoveTheirWatch(t *testing.T) {
	s := connect(t, zktest.Shared(t).Root(t))
	rec := &watchRecorder{client: s.zk}
	s.zk = rec
	ctx, cancel := context.WithCancel(testCtx(t))
	ch, err := s.Members(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	register(t, s, "svc", "a")
	awaitIDs(t, ch, 5*time.Second, "a")
	cancel()
	awaitClosedMembers(t, ch, "ctx cancelled")
	rec.mu.Lock()
	ws := rec.ws
	rec.mu.Unlock()
	if len(ws) != 1 {
		t.Fatalf("%d persistent watches set, want 1", len(ws))
	}
	ws[0].Take()
	register(t, s, "svc", "b")
	// The server sends a connection's notifications before the replies
	// to its later requests.
	if ok, _, err := s.Exists(testCtx(t), "/services/svc/b"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if evs := ws[0].Take(); len(evs) != 0 {
		t.Fatalf("the ended Members' watch still gets events: %v", evs)
	}
}

// MemberSets delivers the same sets as Members, as MemberSets; one kept
// from before a change is unchanged after it.
func TestMemberSetsFollowJoinsUpdatesAndLeaves(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	w, s := connect(t, root), connect(t, root)
	ctx, cancel := context.WithCancel(testCtx(t))
	sets, err := w.MemberSets(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	await := func(ok func(MemberSet) bool) MemberSet {
		t.Helper()
		return awaitSet(t, sets, 10*time.Second, "the set", ok, func(m MemberSet) string { return describeNodes(m.Nodes()) })
	}
	if first := await(func(MemberSet) bool { return true }); first.Len() != 0 {
		t.Fatalf("first set has %d members", first.Len())
	}
	a := register(t, s, "svc", "a")
	register(t, s, "svc", "b")
	two := await(func(m MemberSet) bool { return m.Len() == 2 })
	if err := a.Update(testCtx(t), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	updated := await(func(m MemberSet) bool { n, _ := m.Get("a"); return string(n.Data) == "v2" })
	a.Close()
	after := await(func(m MemberSet) bool { return m.Len() == 1 })
	if got := ids(after.Nodes()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after a left: %v", got)
	}
	if n, _ := two.Get("a"); string(n.Data) != "addr-a" || two.Len() != 2 {
		t.Fatalf("a set kept from before the changes changed: %v", two.Nodes())
	}
	if updated.At(0).ID != "a" || updated.Len() != 2 {
		t.Fatalf("a set kept from before a left changed: %v", updated.Nodes())
	}
	cancel()
	for range sets {
	}
	if _, err := w.MemberSets(testCtx(t), "bad/name"); !errors.Is(err, ErrInvalidPath) || strings.Count(err.Error(), "lighthouse:") != 1 {
		t.Fatalf("MemberSets(bad/name): %v, want one ErrInvalidPath", err)
	}
}

// An Update that Close cuts short fails with ErrClosed, the caller's ctx
// being alive. It failed with context.Canceled (the registration's own
// context, ended by Close), in 12 of 20 tries of a hostile review.
func TestRegistrationUpdateRacingClose(t *testing.T) {
	s := connect(t, zktest.Shared(t).Root(t))
	ctx := testCtx(t)
	for i := range 30 {
		reg, err := s.Register(ctx, "svc", Node{ID: fmt.Sprintf("u%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- reg.Update(ctx, []byte("new")) }()
		time.Sleep(time.Duration(i*10) * time.Microsecond)
		reg.Close()
		if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("try %d: Update racing Close: %v, want nil or ErrClosed", i, err)
		}
	}
}
