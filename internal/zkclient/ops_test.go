package zkclient

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

var all = WorldACL(PermAll)

func TestCRUD(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	p, st, err := c.Create(ctx, "/a", []byte("hello"), all, Persistent, 0)
	if err != nil || p != "/a" || st == nil || st.DataLength != 5 {
		t.Fatalf("Create = %q, %+v, %v", p, st, err)
	}
	if _, _, err := c.Create(ctx, "/a", nil, all, Persistent, 0); !errors.Is(err, ErrNodeExists) {
		t.Fatalf("second Create: %v, want ErrNodeExists", err)
	}
	data, st, err := c.Get(ctx, "/a")
	if err != nil || string(data) != "hello" || st.Version != 0 {
		t.Fatalf("Get = %q, %+v, %v", data, st, err)
	}
	st, err = c.Set(ctx, "/a", []byte("bye"), 0)
	if err != nil || st.Version != 1 {
		t.Fatalf("Set = %+v, %v", st, err)
	}
	if _, err := c.Set(ctx, "/a", nil, 0); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("Set with old version: %v", err)
	}
	st, err = c.Exists(ctx, "/a")
	if err != nil || st == nil || st.DataLength != 3 {
		t.Fatalf("Exists = %+v, %v", st, err)
	}
	if st, err := c.Exists(ctx, "/none"); st != nil || err != nil {
		t.Fatalf("Exists(missing) = %+v, %v", st, err)
	}
	if _, _, err := c.Get(ctx, "/none"); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Get(missing): %v", err)
	}
	for _, name := range []string{"x", "y", "z"} {
		if _, _, err := c.Create(ctx, "/a/"+name, nil, all, Persistent, 0); err != nil {
			t.Fatal(err)
		}
	}
	names, st, err := c.Children(ctx, "/a")
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"x", "y", "z"}) || st.NumChildren != 3 {
		t.Fatalf("Children = %v, %+v, %v", names, st, err)
	}
	if err := c.Delete(ctx, "/a", -1); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Delete(non-empty): %v", err)
	}
	for _, name := range []string{"x", "y", "z"} {
		if err := c.Delete(ctx, "/a/"+name, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, "/a", 5); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("Delete with bad version: %v", err)
	}
	if err := c.Delete(ctx, "/a", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "bad"); !errors.Is(err, ErrBadArguments) {
		t.Fatalf("Get(relative): %v", err)
	}
}

func TestCreateModes(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	p1, _, err := c.Create(ctx, "/seq-", nil, all, PersistentSequential, 0)
	if err != nil {
		t.Fatal(err)
	}
	p2, _, err := c.Create(ctx, "/seq-", nil, all, EphemeralSequential, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p1, "/seq-") || len(p1) != len("/seq-")+10 || p2 <= p1 {
		t.Fatalf("sequential names %q, %q", p1, p2)
	}
	_, st, err := c.Create(ctx, "/eph", nil, all, Ephemeral, 0)
	if err != nil || st.EphemeralOwner != c.SessionID() {
		t.Fatalf("ephemeral: %+v, %v (session %#x)", st, err, c.SessionID())
	}
	if _, _, err := c.Create(ctx, "/eph/child", nil, all, Persistent, 0); !errors.Is(err, ErrNoChildrenForEphemerals) {
		t.Fatalf("child of ephemeral: %v", err)
	}
	if _, _, err := c.Create(ctx, "/box", nil, all, Container, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, "/box/x", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, "/ttl", nil, all, PersistentWithTTL, time.Hour); err != nil {
		t.Fatal(err)
	}
	p, _, err := c.Create(ctx, "/ttlseq-", nil, all, PersistentSequentialWithTTL, time.Hour)
	if err != nil || !strings.HasPrefix(p, "/ttlseq-") {
		t.Fatalf("TTL sequential: %q, %v", p, err)
	}
	// An emptied container is removed by the server.
	_, _, wch, err := c.GetW(ctx, "/box")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "/box/x", -1); err != nil {
		t.Fatal(err)
	}
	if ev := awaitWatch(t, wch); ev.Type != EventNodeDeleted || ev.Path != "/box" {
		t.Fatalf("container event %+v", ev)
	}
}

func TestWatches(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	st, ech, err := c.ExistsW(ctx, "/w")
	if err != nil || st != nil || ech == nil {
		t.Fatalf("ExistsW(missing) = %v, %v, %v", st, ech, err)
	}
	if _, _, err := c.Create(ctx, "/w", []byte("1"), all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if ev := awaitWatch(t, ech); ev.Type != EventNodeCreated || ev.Path != "/w" {
		t.Fatalf("exists event %+v", ev)
	}
	if _, ok := <-ech; ok {
		t.Fatal("channel not closed after its event")
	}
	_, _, dch, err := c.GetW(ctx, "/w")
	if err != nil {
		t.Fatal(err)
	}
	_, _, cch, err := c.ChildrenW(ctx, "/w")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "/w", []byte("2"), -1); err != nil {
		t.Fatal(err)
	}
	if ev := awaitWatch(t, dch); ev.Type != EventNodeDataChanged || ev.Path != "/w" {
		t.Fatalf("data event %+v", ev)
	}
	if _, _, err := c.Create(ctx, "/w/c", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if ev := awaitWatch(t, cch); ev.Type != EventNodeChildrenChanged || ev.Path != "/w" {
		t.Fatalf("child event %+v", ev)
	}
	if _, _, ch, err := c.GetW(ctx, "/missing"); !errors.Is(err, ErrNoNode) || ch != nil {
		t.Fatalf("GetW(missing) = %v, %v", ch, err)
	}
	_, _, dch, err = c.GetW(ctx, "/w/c")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "/w/c", -1); err != nil {
		t.Fatal(err)
	}
	if ev := awaitWatch(t, dch); ev.Type != EventNodeDeleted || ev.Path != "/w/c" {
		t.Fatalf("delete event %+v", ev)
	}
}

func TestMulti(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	res, err := c.Multi(ctx,
		CreateOp("/m", []byte("x"), all, Persistent),
		CreateOp("/m/s-", nil, all, PersistentSequential),
		SetOp("/m", []byte("y"), 0),
		CheckOp("/m", 1),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || res[0].Path != "/m" || !strings.HasPrefix(res[1].Path, "/m/s-") || res[2].Stat == nil || res[2].Stat.Version != 1 {
		t.Fatalf("results %+v", res)
	}
	res, err = c.Multi(ctx,
		CreateOp("/m2", nil, all, Persistent),
		DeleteOp("/m", -1), // not empty
		SetOp("/m", nil, -1),
	)
	var me *MultiError
	if !errors.As(err, &me) || me.Index != 1 || !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("failed multi: %v", err)
	}
	if len(res) != 3 || res[0].Err != nil || !errors.Is(res[1].Err, ErrNotEmpty) || res[2].Err == nil {
		t.Fatalf("failed multi results %+v", res)
	}
	if st, err := c.Exists(ctx, "/m2"); st != nil || err != nil {
		t.Fatalf("op of a failed multi applied: %v %v", st, err)
	}
	if res, err := c.Multi(ctx); res != nil || err != nil {
		t.Fatalf("empty Multi = %v, %v", res, err)
	}
}

func TestChroot(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	plain, _ := connectT(t, strings.SplitN(root, "/", 2)[0], Config{})
	chroot := "/" + strings.SplitN(root, "/", 2)[1]
	ctx := ctxT(t)
	if _, _, err := plain.Create(ctx, chroot+"/app", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	c, _ := connectT(t, root+"/app", Config{})
	p, _, err := c.Create(ctx, "/n-", []byte("v"), all, PersistentSequential, 0)
	if err != nil || !strings.HasPrefix(p, "/n-") {
		t.Fatalf("Create in chroot = %q, %v", p, err)
	}
	if data, _, err := plain.Get(ctx, chroot+"/app"+p); err != nil || string(data) != "v" {
		t.Fatalf("node not under the chroot: %q, %v", data, err)
	}
	names, _, err := c.Children(ctx, "/")
	if err != nil || len(names) != 1 || "/"+names[0] != p {
		t.Fatalf("Children(/) = %v, %v", names, err)
	}
	_, _, ch, err := c.GetW(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	_, _, rch, err := c.ChildrenW(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Multi(ctx, CreateOp("/m", nil, all, Persistent), DeleteOp(p, -1))
	if err != nil || res[0].Path != "/m" {
		t.Fatalf("Multi in chroot = %+v, %v", res, err)
	}
	if ev := awaitWatch(t, ch); ev.Path != p || ev.Type != EventNodeDeleted {
		t.Fatalf("event %+v", ev)
	}
	if ev := awaitWatch(t, rch); ev.Path != "/" || ev.Type != EventNodeChildrenChanged {
		t.Fatalf("event on the chroot %+v", ev)
	}
}

func TestACLAndAuth(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	c, _ := connectT(t, root, Config{})
	ctx := ctxT(t)
	acl := append(DigestACL(PermAll, "alice", "secret"), ACL{PermRead, "world", "anyone"})
	if _, _, err := c.Create(ctx, "/open", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetACL(ctx, "/open", acl, 0); err != nil {
		t.Fatal(err)
	}
	got, st, err := c.GetACL(ctx, "/open")
	if err != nil || len(got) != 2 || st.Aversion != 1 {
		t.Fatalf("GetACL = %+v, %+v, %v", got, st, err)
	}
	if _, err := c.Set(ctx, "/open", []byte("x"), -1); !errors.Is(err, ErrNoAuth) {
		t.Fatalf("Set without auth: %v", err)
	}
	if _, _, err := c.Create(ctx, "/secret", []byte("s"), DigestACL(PermAll, "alice", "secret"), Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "/secret"); !errors.Is(err, ErrNoAuth) {
		t.Fatalf("Get without auth: %v", err)
	}
	a, _ := connectT(t, root, Config{Auth: []Auth{{"digest", []byte("alice:secret")}}})
	if data, _, err := a.Get(ctx, "/secret"); err != nil || string(data) != "s" {
		t.Fatalf("Get with auth = %q, %v", data, err)
	}
	if _, err := a.Set(ctx, "/open", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	who, err := a.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range who {
		found = found || w.AuthScheme == "digest" && w.User == "alice"
	}
	if !found {
		t.Fatalf("WhoAmI = %+v, want digest alice", who)
	}
}

func TestRequestTooLarge(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	_, _, err := c.Create(ctx, "/big", bytes.Repeat([]byte("x"), 2<<20), all, Persistent, 0)
	if !errors.Is(err, ErrRequestTooLarge) || !strings.Contains(err.Error(), "1048575") {
		t.Fatalf("Create(2 MiB): %v", err)
	}
	if _, _, err := c.Create(ctx, "/ok", bytes.Repeat([]byte("x"), 1000_000), all, Persistent, 0); err != nil {
		t.Fatalf("Create(1 MB) after a refused one: %v", err)
	}
}
