package lighthouse

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

func TestOperations(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)

	// create, with and without parents
	if _, err := s.Create(ctx, "/a/b/c", []byte("x"), Persistent); !errors.Is(err, ErrNoNode) {
		t.Fatalf("create without parent: %v, want ErrNoNode", err)
	}
	p, err := s.Create(ctx, "/a/b/c", []byte("x"), Persistent, CreateParents())
	if err != nil || p != "/a/b/c" {
		t.Fatalf("create with parents: %q %v", p, err)
	}
	if _, err := s.Create(ctx, "/a/b/c", nil, Persistent); !errors.Is(err, ErrNodeExists) {
		t.Fatalf("create twice: %v, want ErrNodeExists", err)
	}

	// get and compare-and-set
	data, st, err := s.Get(ctx, "/a/b/c")
	if err != nil || string(data) != "x" || st.Version != 0 {
		t.Fatalf("get: %q %+v %v", data, st, err)
	}
	if _, err := s.Set(ctx, "/a/b/c", []byte("y"), st.Version+1); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("set with a stale version: %v, want ErrBadVersion", err)
	}
	st2, err := s.Set(ctx, "/a/b/c", []byte("y"), st.Version)
	if err != nil || st2.Version != st.Version+1 {
		t.Fatalf("set: %+v %v", st2, err)
	}

	// exists
	if ok, st, err := s.Exists(ctx, "/a/b/c"); !ok || st == nil || err != nil {
		t.Fatalf("exists: %v %v %v", ok, st, err)
	}
	if ok, st, err := s.Exists(ctx, "/nope"); ok || st != nil || err != nil {
		t.Fatalf("exists of a missing node: %v %v %v", ok, st, err)
	}

	// delete with version, not empty, recursive
	if err := s.Delete(ctx, "/a/b/c", 0); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("delete with a stale version: %v", err)
	}
	if err := s.Delete(ctx, "/a", AnyVersion); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("delete of a parent: %v, want ErrNotEmpty", err)
	}
	if err := s.DeleteAll(ctx, "/a"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := s.Exists(ctx, "/a"); ok {
		t.Fatal("DeleteAll left the node")
	}
	if err := s.DeleteAll(ctx, "/a"); err != nil {
		t.Fatalf("DeleteAll of a missing node: %v", err)
	}
	if err := s.Delete(ctx, "/a", AnyVersion); !errors.Is(err, ErrNoNode) {
		t.Fatalf("delete of a missing node: %v, want ErrNoNode", err)
	}

	// ephemeral nodes cannot have children
	if _, err := s.Create(ctx, "/eph", nil, Ephemeral); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/eph/child", nil, Persistent); !errors.Is(err, ErrEphemeralChild) {
		t.Fatalf("child of an ephemeral: %v", err)
	}

	// the error names the operation and path
	_, _, err = s.Get(ctx, "/missing")
	var opErr *OpError
	if !errors.As(err, &opErr) || opErr.Op != "get" || opErr.Path != "/missing" {
		t.Fatalf("error %v is not an *OpError for get /missing", err)
	}
}

func TestSequentialAndContainerNodes(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)
	var created []string
	for _, prefix := range []string{"b-", "a-", "c-", "a-"} {
		p, err := s.Create(ctx, "/q/"+prefix, nil, EphemeralSequential, CreateParents())
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, strings.TrimPrefix(p, "/q/"))
	}
	children, err := s.Children(ctx, "/q")
	if err != nil {
		t.Fatal(err)
	}
	SortSequential(children)
	if !slices.Equal(children, created) {
		t.Fatalf("sorted children %v, want creation order %v", children, created)
	}

	// A container goes away by itself once its last child is deleted.
	if _, err := s.Create(ctx, "/box/item", nil, Persistent); !errors.Is(err, ErrNoNode) {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/box", nil, Container); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/box/item", nil, Persistent); err != nil {
		t.Fatal(err)
	}
	_, _, gone, err := s.ExistsW(ctx, "/box")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "/box/item", AnyVersion); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-gone:
		if ev.Type != NodeDeleted || ev.Path != "/box" {
			t.Fatalf("container watch: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("empty container not deleted")
	}
}

func TestChrootIsInvisible(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root)
	plain := connect(t, zkc.ConnectString())
	ctx := testCtx(t)
	p, err := s.Create(ctx, "/seq-", nil, PersistentSequential)
	if err != nil || !strings.HasPrefix(p, "/seq-") {
		t.Fatalf("create under chroot returned %q %v", p, err)
	}
	if ok, _, err := plain.Exists(ctx, chrootOf(root)+p); !ok || err != nil {
		t.Fatalf("node not under the chroot on the server: %v %v", ok, err)
	}
	_, w, err := s.ChildrenW(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Create(ctx, chrootOf(root)+"/x", nil, Persistent); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w:
		if ev.Type != NodeChildrenChanged || ev.Path != "/" {
			t.Fatalf("children watch under chroot: %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("children watch did not fire")
	}
}

func TestWatches(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root)
	other := connect(t, root)
	ctx := testCtx(t)

	ok, _, created, err := s.ExistsW(ctx, "/n")
	if err != nil || ok {
		t.Fatalf("ExistsW: %v %v", ok, err)
	}
	if _, err := other.Create(ctx, "/n", []byte("1"), Persistent); err != nil {
		t.Fatal(err)
	}
	expectWatch(t, created, NodeCreated, "/n")

	_, _, changed, err := s.GetW(ctx, "/n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Set(ctx, "/n", []byte("2"), AnyVersion); err != nil {
		t.Fatal(err)
	}
	expectWatch(t, changed, NodeDataChanged, "/n")

	_, _, deleted, err := s.GetW(ctx, "/n")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(ctx, "/n", AnyVersion); err != nil {
		t.Fatal(err)
	}
	expectWatch(t, deleted, NodeDeleted, "/n")

	// A watch still pending when the session closes is lost, not leaked.
	_, _, pending, err := s.ExistsW(ctx, "/never")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ev := expectWatch(t, pending, WatchLost, "")
	if !errors.Is(ev.Err, ErrClosed) {
		t.Fatalf("lost watch error %v, want ErrClosed", ev.Err)
	}
}

func expectWatch(t *testing.T, ch <-chan WatchEvent, want WatchType, path string) WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok || ev.Type != want || (path != "" && ev.Path != path) {
			t.Fatalf("watch: %+v (open=%v), want %v on %q", ev, ok, want, path)
		}
		if _, ok := <-ch; ok {
			t.Fatal("watch channel delivered twice")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("no %v watch event", want)
	}
	return WatchEvent{}
}

func TestCancelledContextReturnsAtOnce(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	proxy := zktest.ProxyT(t, zkc.Addr(0))
	s := connect(t, proxy.Addr()+chrootOf(root), WithSessionTimeout(10*time.Second))
	proxy.Stall() // every request now hangs
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := s.Get(ctx, "/")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Get returned %v after its deadline", d)
	}
	cancelled, stop := context.WithCancel(context.Background())
	stop()
	if _, err := s.Create(cancelled, "/x", nil, Persistent); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with a cancelled context: %v", err)
	}
	proxy.Heal()
}

func TestBadOperationInput(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)
	big := bytes.Repeat([]byte{'x'}, MaxDataSize+1)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"relative path", s.Delete(ctx, "a", AnyVersion), ErrInvalidPath},
		{"trailing slash", s.Delete(ctx, "/a/", AnyVersion), ErrInvalidPath},
		{"empty segment", s.Delete(ctx, "/a//b", AnyVersion), ErrInvalidPath},
		{"dot segment", s.Delete(ctx, "/a/./b", AnyVersion), ErrInvalidPath},
		{"dotdot segment", s.Delete(ctx, "/a/..", AnyVersion), ErrInvalidPath},
		{"nul", s.Delete(ctx, "/a\x00b", AnyVersion), ErrInvalidPath},
		{"control char", s.Delete(ctx, "/a\x07", AnyVersion), ErrInvalidPath},
		{"empty path", s.Delete(ctx, "", AnyVersion), ErrInvalidPath},
		{"create too large", second(s.Create(ctx, "/big", big, Persistent)), ErrDataTooLarge},
		{"set too large", second(s.Set(ctx, "/", big, AnyVersion)), ErrDataTooLarge},
		{"bad mode", second(s.Create(ctx, "/m", nil, CreateMode(42))), ErrInvalidOption},
		{"create root", second(s.Create(ctx, "/", nil, Persistent)), ErrNodeExists},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// The largest data allowed fits.
	largest := bytes.Repeat([]byte{'x'}, MaxDataSize)
	if _, err := s.Create(ctx, "/max", largest, Persistent); err != nil {
		t.Fatalf("create with MaxDataSize bytes: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestParseSequence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string
		seq    int64
		ok     bool
	}{
		{"latch-0000000042", "latch-", 42, true},
		{"_c_abc-latch-0000000001", "_c_abc-latch-", 1, true},
		{"0000000007", "", 7, true},
		{"latch-42", "", 0, false},
		{"latch-000000004x", "", 0, false},
		{"", "", 0, false},
	} {
		prefix, seq, ok := ParseSequence(tc.name)
		if prefix != tc.prefix || seq != tc.seq || ok != tc.ok {
			t.Errorf("ParseSequence(%q) = %q %d %v, want %q %d %v", tc.name, prefix, seq, ok, tc.prefix, tc.seq, tc.ok)
		}
	}
	names := []string{"x", "b-0000000003", "a-0000000010", "c-0000000001"}
	SortSequential(names)
	if want := []string{"c-0000000001", "b-0000000003", "a-0000000010", "x"}; !slices.Equal(names, want) {
		t.Fatalf("SortSequential: %v, want %v", names, want)
	}
}
