package lighthouse

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

func TestTxnCommitsWithResults(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := connect(t, root) // a chroot: every path below is the caller's
	plain := connect(t, zkc.ConnectString())
	ctx := testCtx(t)

	res, err := s.Txn(ctx,
		CreateOp("/jobs", []byte("v0"), Persistent),
		CreateOp("/jobs/job-", []byte("a"), PersistentSequential),
		SetOp("/jobs", []byte("v1"), 0),
		CheckVersion("/jobs", 1),
		CheckExists("/jobs"),
		CreateOp("/jobs/tmp", nil, Persistent),
		DeleteOp("/jobs/tmp", AnyVersion),
	)
	if err != nil {
		t.Fatalf("Txn: %v", err)
	}
	want := []struct{ op, path string }{
		{"create", "/jobs"}, {"create", "/jobs/job-0000000000"}, {"set", "/jobs"},
		{"check", "/jobs"}, {"check", "/jobs"}, {"create", "/jobs/tmp"}, {"delete", "/jobs/tmp"},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		if res[i].Op != w.op || res[i].Path != w.path {
			t.Errorf("result %d = %s %s, want %s %s", i, res[i].Op, res[i].Path, w.op, w.path)
		}
		if (res[i].Stat != nil) != (w.op == "set") {
			t.Errorf("result %d (%s): stat %v", i, w.op, res[i].Stat)
		}
	}
	if res[2].Stat.Version != 1 {
		t.Errorf("set's stat has version %d, want 1", res[2].Stat.Version)
	}
	// On the server, under the chroot.
	data, st, err := plain.Get(ctx, chrootOf(root)+"/jobs")
	if err != nil || string(data) != "v1" || st.Mzxid != res[2].Stat.Mzxid {
		t.Fatalf("server has %q %+v %v, want v1 as the set reported", data, st, err)
	}
	if ok, _, _ := plain.Exists(ctx, chrootOf(root)+"/jobs/job-0000000000"); !ok {
		t.Fatal("sequential node not under the chroot")
	}
	if ok, _, _ := s.Exists(ctx, "/jobs/tmp"); ok {
		t.Fatal("node deleted in the transaction exists")
	}
}

func TestTxnFailureNamesFirstFailingOp(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)
	if _, err := s.Create(ctx, "/x", []byte("0"), Persistent); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/x/child", nil, Persistent); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		ops   []TxnOp
		index int
		op    string
		path  string
		cause error
	}{
		{"bad version", []TxnOp{CreateOp("/new", nil, Persistent), SetOp("/x", nil, 7), DeleteOp("/gone", AnyVersion)}, 1, "set", "/x", ErrBadVersion},
		{"exists", []TxnOp{CheckExists("/x"), CreateOp("/new", nil, Persistent), CreateOp("/x", nil, Persistent)}, 2, "create", "/x", ErrNodeExists},
		{"check missing node", []TxnOp{CreateOp("/new", nil, Persistent), CheckExists("/missing")}, 1, "check", "/missing", ErrNoNode},
		{"check version", []TxnOp{CheckVersion("/x", 3), CreateOp("/new", nil, Persistent)}, 0, "check", "/x", ErrBadVersion},
		{"not empty", []TxnOp{CreateOp("/new", nil, Persistent), DeleteOp("/x", AnyVersion)}, 1, "delete", "/x", ErrNotEmpty},
		{"no parent", []TxnOp{CreateOp("/new", nil, Persistent), CreateOp("/nope/a", nil, Persistent)}, 1, "create", "/nope/a", ErrNoNode},
		{"ephemeral parent", []TxnOp{CreateOp("/new", nil, Ephemeral), CreateOp("/new/a", nil, Persistent)}, 1, "create", "/new/a", ErrEphemeralChild},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Txn(ctx, tc.ops...)
			var te *TxnError
			if !errors.As(err, &te) {
				t.Fatalf("Txn = %v, %v; want a *TxnError", res, err)
			}
			if te.Index != tc.index || te.Op != tc.op || te.Path != tc.path || !errors.Is(err, tc.cause) {
				t.Fatalf("error %+v (%v), want op %d %s %s: %v", te, err, tc.index, tc.op, tc.path, tc.cause)
			}
			if res != nil {
				t.Fatalf("results %+v with an error", res)
			}
			if ok, _, _ := s.Exists(ctx, "/new"); ok {
				t.Fatal("a failed transaction created /new")
			}
		})
	}

	_, err := s.Txn(ctx, CheckExists("/x"), SetOp("/x", nil, 7))
	if want := "lighthouse: txn op 1 (set /x): version conflict"; err == nil || err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if strings.Count(err.Error(), "lighthouse:") != 1 {
		t.Fatalf("message %q says lighthouse more than once", err)
	}
}

// Checks are made before anything is sent: with a cancelled ctx, Txn would
// fail with ctx's error at the first step that needs the server.
func TestTxnBadInputFailsWithoutRoundTrip(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := make([]byte, MaxDataSize+1)
	half := make([]byte, maxPacket/2)
	for _, tc := range []struct {
		name  string
		ops   []TxnOp
		index int
		cause error
	}{
		{"zero op", []TxnOp{CheckExists("/a"), {}}, 1, ErrInvalidOption},
		{"relative path", []TxnOp{SetOp("a", nil, 0)}, 0, ErrInvalidPath},
		{"trailing slash", []TxnOp{CheckExists("/a"), DeleteOp("/a/", 0)}, 1, ErrInvalidPath},
		{"create root", []TxnOp{CreateOp("/", nil, Persistent)}, 0, ErrNodeExists},
		{"data too large", []TxnOp{SetOp("/a", big, 0)}, 0, ErrDataTooLarge},
		{"too much data in all", []TxnOp{SetOp("/a", half, 0), SetOp("/b", half, 0)}, 1, ErrDataTooLarge},
		{"unknown mode", []TxnOp{CreateOp("/a", nil, CreateMode(42))}, 0, ErrInvalidOption},
		{"container", []TxnOp{CreateOp("/a", nil, Container)}, 0, ErrInvalidOption},
		{"parents", []TxnOp{CreateOp("/a/b", nil, Persistent, CreateParents())}, 0, ErrInvalidOption},
		{"empty ACL", []TxnOp{CreateOp("/a", nil, Persistent, CreateACL())}, 0, ErrInvalidACL},
		{"ACL without perms", []TxnOp{CreateOp("/a", nil, Persistent, CreateACL(ACL{Scheme: "world", ID: "anyone"}))}, 0, ErrInvalidACL},
		{"version", []TxnOp{CheckVersion("/a", -2)}, 0, ErrInvalidOption},
		{"nil codec", []TxnOp{SetOpAs[string]("/a", "x", 0, nil)}, 0, ErrInvalidOption},
		{"not a leader", []TxnOp{Leadership{}.Guard(), SetOp("/a", nil, 0)}, 0, ErrNotLeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Txn(ctx, tc.ops...)
			var te *TxnError
			if !errors.As(err, &te) || te.Index != tc.index || !errors.Is(err, tc.cause) {
				t.Fatalf("Txn = %v, want op %d failing with %v", err, tc.index, tc.cause)
			}
			if n := strings.Count(err.Error(), "lighthouse:"); n != 1 {
				t.Fatalf("message %q says lighthouse %d times", err, n)
			}
		})
	}
	// A good transaction gets as far as ctx.
	if _, err := s.Txn(ctx, CheckExists("/a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("valid transaction with a cancelled ctx: %v", err)
	}
	// An empty one commits nothing, at once.
	if res, err := s.Txn(ctx); res != nil || err != nil {
		t.Fatalf("empty transaction = %v, %v; want nil, nil", res, err)
	}
}

// The packet limit Txn checks is the server's: a transaction of exactly
// maxPacket bytes commits, one byte more is refused before sending.
func TestTxnAtThePacketLimit(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)
	for _, p := range []string{"/a", "/b"} {
		if _, err := s.Create(ctx, p, nil, Persistent); err != nil {
			t.Fatal(err)
		}
	}
	ops := func(n int) []TxnOp {
		return []TxnOp{SetOp("/a", make([]byte, MaxDataSize), AnyVersion), SetOp("/b", make([]byte, n), AnyVersion)}
	}
	wire, err := s.txnOps(ops(0))
	if err != nil {
		t.Fatal(err)
	}
	n := maxPacket - (8 + 9 + wire[0].size() + wire[1].size() + 2*len(s.chroot)) // paths go with the chroot
	if _, err := s.Txn(ctx, ops(n)...); err != nil {
		t.Fatalf("transaction of %d bytes: %v", maxPacket, err)
	}
	var te *TxnError
	if _, err := s.Txn(ctx, ops(n+1)...); !errors.Is(err, ErrDataTooLarge) || !errors.As(err, &te) || te.Index != 1 {
		t.Fatalf("transaction of %d bytes: %v, want op 1: ErrDataTooLarge", maxPacket+1, err)
	}
	if st, err := s.Txn(ctx, CheckExists("/a")); err != nil {
		t.Fatalf("session after the limit: %v %v", st, err)
	}
}

func TestTxnWithCodecs(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)
	type job struct {
		Name string `json:"name"`
	}
	if _, err := s.Txn(ctx,
		CreateOpAs("/job", job{Name: "index"}, Persistent, JSON[job]()),
		CreateOpAs("/count", 0, Persistent, Int()),
		SetOpAs("/count", 41, 0, Int()),
		SetOpAs("/count", 42, 1, Int()),
	); err != nil {
		t.Fatal(err)
	}
	if j, _, err := GetAs(ctx, s, "/job", JSON[job]()); err != nil || j.Name != "index" {
		t.Fatalf("job %+v %v", j, err)
	}
	if n, st, err := GetAs(ctx, s, "/count", Int()); err != nil || n != 42 || st.Version != 2 {
		t.Fatalf("count %d %+v %v, want 42 at version 2", n, st, err)
	}
	// An encoding error names its operation and sends nothing.
	_, err := s.Txn(ctx, SetOpAs("/count", 0, 2, Int()), SetOpAs("/job", "\xff", AnyVersion, String()))
	var te *TxnError
	if !errors.As(err, &te) || te.Index != 1 || te.Path != "/job" {
		t.Fatalf("encoding error %v, want op 1 on /job", err)
	}
	if n, _, _ := GetAs(ctx, s, "/count", Int()); n != 42 {
		t.Fatalf("count %d after a transaction that failed to encode", n)
	}
}

// TTL modes work in a transaction as in Create (the server takes a TTL mode
// only in a createTTL request), and a TTL ZooKeeper would refuse (under 1
// ms, over MaxTTL) is refused before any request, in both. The transaction
// refused every TTL mode, and both let such TTLs through to the server's
// ErrBadArguments.
func TestTxnAndCreateWithTTL(t *testing.T) {
	s := connect(t, zktest.Shared(t).Root(t))
	ctx := testCtx(t)
	res, err := s.Txn(ctx,
		CreateOp("/ttl", []byte("a"), PersistentWithTTL, CreateTTL(time.Hour)),
		CreateOp("/ttl/seq-", nil, PersistentSequentialWithTTL, CreateTTL(time.Minute)),
	)
	if err != nil || len(res) != 2 || res[1].Path != "/ttl/seq-0000000000" {
		t.Fatalf("Txn with TTL modes: %+v, %v", res, err)
	}
	for _, ttl := range []time.Duration{time.Microsecond, MaxTTL + time.Millisecond, 1 << 62} {
		if _, err := s.Create(ctx, "/bad", nil, PersistentWithTTL, CreateTTL(ttl)); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Create with TTL %v: %v, want ErrInvalidOption", ttl, err)
		}
		if _, err := s.Txn(ctx, CreateOp("/bad", nil, PersistentWithTTL, CreateTTL(ttl))); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("Txn with TTL %v: %v, want ErrInvalidOption", ttl, err)
		}
	}
	if _, err := s.Txn(ctx, CreateOp("/bad", nil, Persistent, CreateTTL(time.Hour))); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Txn with a TTL and no TTL mode: %v, want ErrInvalidOption", err)
	}
	if _, st, err := s.Exists(ctx, "/bad"); st != nil || err != nil {
		t.Errorf("/bad: %+v, %v; want nothing created", st, err)
	}
}
