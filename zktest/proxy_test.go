package zktest

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

func TestProxyCutHeal(t *testing.T) {
	t.Parallel()
	p := ProxyT(t, Shared(t).Addr(0))
	cl := connect(t, 10*time.Second, p.Addr())
	id := cl.SessionID()

	p.Cut()
	cl.await(t, zkclient.StateDisconnected)
	p.Heal()
	cl.await(t, zkclient.StateConnected)
	if cl.SessionID() != id {
		t.Fatalf("session %#x became %#x across a short cut", id, cl.SessionID())
	}
	if _, err := cl.Exists(testCtx(t), "/"); err != nil {
		t.Fatal(err)
	}
}

func TestProxyStall(t *testing.T) {
	t.Parallel()
	p := ProxyT(t, Shared(t).Addr(0))
	cl := connect(t, 2*time.Second, p.Addr())

	// The client notices the partition only through its receive timeout.
	p.Stall()
	cl.await(t, zkclient.StateDisconnected)
	p.Heal()
	cl.await(t, zkclient.StateConnected)
	if _, err := cl.Exists(testCtx(t), "/"); err != nil {
		t.Fatal(err)
	}
}

func TestProxyDelay(t *testing.T) {
	t.Parallel()
	p := ProxyT(t, Shared(t).Addr(0))
	cl := connect(t, 10*time.Second, p.Addr())

	const d = 100 * time.Millisecond
	p.Delay(d)
	start := time.Now()
	if _, err := cl.Exists(testCtx(t), "/"); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip took %v with %v delay each way", rtt, d)
	}
	p.Delay(0)
	if _, err := cl.Exists(testCtx(t), "/"); err != nil {
		t.Fatal(err)
	}
}

func TestProxyExpire(t *testing.T) {
	t.Parallel()
	zkc := Shared(t)
	root := chroot(t, zkc.Root(t))
	p := ProxyT(t, zkc.Addr(0))
	cl := connect(t, 10*time.Second, p.Addr())
	old := cl.SessionID()
	eph := root + "/ephemeral"
	if _, _, err := cl.Create(testCtx(t), eph, nil, zkclient.WorldACL(zkclient.PermAll), zkclient.Ephemeral, 0); err != nil {
		t.Fatal(err)
	}

	if err := p.Expire(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl.await(t, zkclient.StateExpired)
	cl.await(t, zkclient.StateConnected)
	if cl.SessionID() == old {
		t.Fatalf("session id %#x unchanged after expiry", old)
	}
	if st, err := cl.Exists(testCtx(t), eph); st != nil || err != nil {
		t.Fatalf("Exists(%s) = %+v, %v after expiry; want nil stat", eph, st, err)
	}
}

// Expires at once run one after the other, and leave the proxy as it
// was: forwarding. The second used to take the first's cut for the mode to
// restore, and left the proxy cut for good.
func TestProxyConcurrentExpires(t *testing.T) {
	t.Parallel()
	p := ProxyT(t, Shared(t).Addr(0))
	cl := connect(t, 10*time.Second, p.Addr())
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- p.Expire(context.Background()) }()
	}
	ok := 0
	for range 2 {
		if err := <-errs; err == nil {
			ok++
		}
	}
	if ok == 0 {
		t.Fatal("neither Expire succeeded")
	}
	cl.await(t, zkclient.StateExpired)
	cl.await(t, zkclient.StateConnected) // through the proxy, forwarding again
}

// A Cut made while Expire runs holds once Expire has ended: Expire used to
// restore the mode it had found, undoing the Cut.
func TestProxyCutDuringExpireHolds(t *testing.T) {
	t.Parallel()
	p := ProxyT(t, Shared(t).Addr(0))
	cl := connect(t, 10*time.Second, p.Addr())
	done := make(chan error, 1)
	p.expireMu.Lock() // Expire waits here: the Cut comes while it runs
	go func() { done <- p.Expire(context.Background()) }()
	p.Cut()
	p.expireMu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 500*time.Millisecond)
	defer cancel()
	if c, err := zkclient.Connect(ctx, zkclient.Config{Servers: []string{p.Addr()}}); err == nil {
		c.Close(testCtx(t))
		t.Fatal("connected through a proxy cut during Expire")
	}
	p.Heal() // the client gets through, and learns its session expired
	cl.await(t, zkclient.StateExpired)
	cl.await(t, zkclient.StateConnected)
}

func TestProxyExpireWithoutSession(t *testing.T) {
	t.Parallel()
	p := ProxyT(t, Shared(t).Addr(0))
	if err := p.Expire(context.Background()); err == nil {
		t.Fatal("Expire succeeded before any client connected")
	}
	var nilCtx context.Context
	if err := p.Expire(nilCtx); err == nil {
		t.Fatal("Expire with a nil context succeeded")
	}
}

func TestNewProxyChecksItsTarget(t *testing.T) {
	for _, target := range []string{"", "127.0.0.1"} {
		p, err := NewProxy(target)
		if err == nil {
			p.Close()
			t.Errorf("NewProxy(%q) succeeded", target)
			continue
		}
		if strings.Count(err.Error(), "zktest:") != 1 {
			t.Errorf("NewProxy(%q): %v, want one zktest: prefix", target, err)
		}
	}
}

func TestProxyLoseReplyTo(t *testing.T) {
	t.Parallel()
	zkc := Shared(t)
	root := chroot(t, zkc.Root(t))
	p := ProxyT(t, zkc.Addr(0))
	cl := connect(t, 10*time.Second, p.Addr())
	direct := connect(t, 10*time.Second, zkc.Addr(0))
	acl := zkclient.WorldACL(zkclient.PermAll)

	// The lighthouse client sends Create as create2.
	p.LoseReplyTo(OpCreate2)
	lost := root + "/lost"
	if _, _, err := cl.Create(testCtx(t), lost, nil, acl, zkclient.Persistent, 0); err == nil {
		t.Fatal("Create returned no error although its reply was lost")
	}
	if st, err := direct.Exists(testCtx(t), lost); st == nil || err != nil {
		t.Fatalf("Exists(%s) = %v, %v; the server should have applied the create", lost, st, err)
	}

	// The fault fires once; the client carries on in the same session.
	cl.await(t, zkclient.StateConnected)
	if _, _, err := cl.Create(testCtx(t), root+"/kept", nil, acl, zkclient.Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.Create(testCtx(t), lost, nil, acl, zkclient.Persistent, 0); !errors.Is(err, zkclient.ErrNodeExists) {
		t.Fatalf("second Create(%s) = %v, want ErrNodeExists", lost, err)
	}
}

func TestFrameScanner(t *testing.T) {
	frame := func(body ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	long := make([]byte, 100)
	long[0] = 7
	stream := slices.Concat(frame(1, 2, 3), frame(), frame(long...), frame(9))
	want := [][]byte{{1, 2, 3}, {}, long[:headLen], {9}}

	for _, chunk := range []int{1, 3, 5, 64, len(stream)} {
		var s frameScanner
		var got [][]byte
		for b := range slices.Chunk(stream, chunk) {
			s.scan(b, func(i int, head []byte) bool {
				if i != len(got) {
					t.Errorf("chunk %d: frame index %d, want %d", chunk, i, len(got))
				}
				got = append(got, slices.Clone(head))
				return false
			})
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("chunk %d: heads %v, want %v", chunk, got, want)
		}
	}

	t.Run("cut offset", func(t *testing.T) {
		var s frameScanner
		at := s.scan(stream, func(i int, _ []byte) bool { return i == 2 })
		if want := len(frame(1, 2, 3)) + len(frame()); at != want {
			t.Fatalf("cut at %d, want %d", at, want)
		}
	})

	t.Run("not framed", func(t *testing.T) {
		var s frameScanner
		s.scan([]byte("srvr"), func(int, []byte) bool {
			t.Fatal("a four-letter word was taken for a frame")
			return false
		})
		if !s.off {
			t.Fatal("scanner still on")
		}
	})
}
