package zkclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// A cancelled ctx ends the wait at once; the late reply is dropped without
// disturbing the next request.
func TestCancelledCallStopsWaiting(t *testing.T) {
	c, _, p, _ := proxied(t, Config{})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/c", []byte("v"), all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	p.Delay(300 * time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := c.Get(short, "/c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with a short ctx: %v", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("Get returned %v after its ctx ended", d-50*time.Millisecond)
	}
	p.Delay(0)
	if data, _, err := c.Get(ctx, "/c"); err != nil || string(data) != "v" {
		t.Fatalf("Get after a cancelled one = %q, %v", data, err)
	}
	if heard := c.LastHeard(); heard.IsZero() || time.Since(heard) > time.Second {
		t.Errorf("LastHeard = %v", heard)
	}
}

// Many goroutines share one connection; every reply reaches its caller.
func TestConcurrentCalls(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	const workers, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			path := fmt.Sprintf("/w%d", w)
			if _, _, err := c.Create(ctx, path, nil, all, Persistent, 0); err != nil {
				errs <- err
				return
			}
			for i := range each {
				want := fmt.Sprintf("%d-%d", w, i)
				if _, err := c.Set(ctx, path, []byte(want), -1); err != nil {
					errs <- err
					return
				}
				data, _, err := c.Get(ctx, path)
				if err != nil || string(data) != want {
					errs <- fmt.Errorf("Get %s = %q, %v; want %q", path, data, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Watches whose paths exceed one setWatches batch are all re-registered.
func TestSetWatchesInBatches(t *testing.T) {
	c, ev, p, direct := proxied(t, Config{})
	ctx := ctxT(t)
	const n = 1500 // ~100-byte paths: about 150 KB, more than one batch
	pad := strings.Repeat("x", 90)
	chans := make([]<-chan WatchEvent, n)
	for i := range n {
		_, ch, err := c.ExistsW(ctx, fmt.Sprintf("/%s-%04d", pad, i))
		if err != nil {
			t.Fatal(err)
		}
		chans[i] = ch
	}
	p.Cut()
	ev.await(t, StateDisconnected)
	p.Heal()
	ev.await(t, StateConnected)
	if err := c.Sync(ctx, "/"); err != nil { // after setWatches
		t.Fatal(err)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		path := fmt.Sprintf("/%s-%04d", pad, i)
		if _, _, err := direct.Create(ctx, path, nil, all, Persistent, 0); err != nil {
			t.Fatal(err)
		}
		if e := awaitWatch(t, chans[i]); e.Type != EventNodeCreated || e.Path != path {
			t.Fatalf("watch %d: %+v", i, e)
		}
	}
}
