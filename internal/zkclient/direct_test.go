package zkclient

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// The reader delivers a notification itself only once the owner has
// handled every frame before it. Here each reply that sets a watch comes in
// one write with a notification that fires it: delivered before the owner
// registered the watch, the event would be lost.
func TestNotificationAfterTheReplyThatSetsItsWatch(t *testing.T) {
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(3000, 5) != nil {
			return
		}
		c.serve(func(xid, op int32, body []byte) []byte {
			d := dec{b: body}
			path := d.string()
			out := replyF(xid, 0, i32(0), statB())
			return append(out, notifF(int32(EventNodeDataChanged), 3, path)...)
		})
	})
	c, ctx := connectScripted(t, addr)
	for i := range 300 {
		_, _, ch, err := c.GetW(ctx, fmt.Sprintf("/n%d", i))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-ch:
			if ev.Type != EventNodeDataChanged {
				t.Fatalf("watch %d: %+v", i, ev)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("watch %d: the notification that came right after its reply was lost", i)
		}
	}
}

// A notification that comes before a reply is delivered before the call
// returns, as ZooKeeper promises: a client sees the event before the data
// that follows it.
func TestNotificationBeforeTheNextReply(t *testing.T) {
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(3000, 5) != nil {
			return
		}
		c.serve(func(xid, op int32, body []byte) []byte {
			if op == opExists {
				return append(notifF(int32(EventNodeDataChanged), 3, "/w"), replyF(xid, 0, statB())...)
			}
			return replyF(xid, 0, i32(0), statB()) // getData of path
		})
	})
	c, ctx := connectScripted(t, addr)
	for i := range 100 {
		_, _, ch, err := c.GetW(ctx, "/w")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exists(ctx, "/other"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		default:
			t.Fatalf("round %d: Exists returned before the notification sent ahead of its reply was delivered", i)
		}
	}
}

// A call submitted on the caller's goroutine does not overtake one that is
// on its way to the owner: the server sees them in the order they were
// made.
func TestDirectSubmitDoesNotOvertake(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	_, addr := hostile(t, func(c *sconn) {
		if c.handshake(3000, 5) != nil {
			return
		}
		c.serve(func(xid, op int32, body []byte) []byte {
			d := dec{b: body}
			mu.Lock()
			seen = append(seen, d.string())
			mu.Unlock()
			return replyF(xid, 0, statB())
		})
	})
	c, ctx := connectScripted(t, addr)
	for i := range 50 {
		mu.Lock()
		seen = nil
		mu.Unlock()
		c.o.mu.Lock() // the owner is busy: the first call goes through reqs
		first := make(chan error, 1)
		go func() {
			_, err := c.Exists(ctx, "/first")
			first <- err
		}()
		for c.inReqs.Load() == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		// The owner takes it, then waits for mu; the second call, made
		// now, finds mu free before the owner has it.
		c.o.mu.Unlock()
		if _, err := c.Exists(ctx, "/second"); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := fmt.Sprint(seen)
		mu.Unlock()
		if got != "[/first /second]" {
			t.Fatalf("round %d: the server saw %s", i, got)
		}
	}
}
