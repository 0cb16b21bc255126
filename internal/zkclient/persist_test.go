package zkclient

import (
	"errors"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// takeN collects n events from w, failing t on timeout.
func takeN(t *testing.T, w *Watcher, n int) []WatchEvent {
	t.Helper()
	var all []WatchEvent
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for len(all) < n {
		select {
		case <-w.Events():
			all = append(all, w.Take()...)
		case <-timer.C:
			t.Fatalf("got %d of %d events within %v: %+v", len(all), n, eventTimeout, all)
		}
	}
	if len(all) > n {
		t.Fatalf("got %d events, want %d: %+v", len(all), n, all)
	}
	return all
}

type evKey struct {
	Type EventType
	Path string
}

func keys(evs []WatchEvent) []evKey {
	v := make([]evKey, len(evs))
	for i, e := range evs {
		v[i] = evKey{e.Type, e.Path}
	}
	return v
}

func equalKeys(a, b []evKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// barrier makes sure every notification caused before it has been
// delivered: notifications arrive in order, so once a one-shot watch set and
// triggered after them fires, they have all been queued.
func barrier(t *testing.T, c *Client, path string) {
	t.Helper()
	ctx := ctxT(t)
	_, ch, err := c.ExistsW(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, path, nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	awaitWatch(t, ch)
}

func TestRecursiveWatch(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/r", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	w, err := c.AddWatch(ctx, "/r", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, "/r/a", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, "/r/a/b", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "/r/a", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "/r/a/b", -1); err != nil {
		t.Fatal(err)
	}
	want := []evKey{
		{EventNodeCreated, "/r/a"},
		{EventNodeCreated, "/r/a/b"},
		{EventNodeDataChanged, "/r/a"},
		{EventNodeDeleted, "/r/a/b"},
	}
	if got := keys(takeN(t, w, len(want))); !equalKeys(got, want) {
		t.Fatalf("recursive events %+v, want %+v", got, want)
	}
	if err := w.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "/r/a", []byte("y"), -1); err != nil {
		t.Fatal(err)
	}
	barrier(t, c, "/barrier")
	if evs := w.Take(); len(evs) != 0 {
		t.Fatalf("events after Remove: %+v", evs)
	}
}

func TestPersistentWatch(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/p", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	w, err := c.AddWatch(ctx, "/p", false)
	if err != nil {
		t.Fatal(err)
	}
	// A one-shot watch on the same path fires once; the persistent one stays.
	_, _, once, err := c.GetW(ctx, "/p")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, "/p/c", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "/p/c", nil, -1); err != nil { // not watched: a grandchild's data
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "/p", []byte("1"), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "/p", []byte("2"), -1); err != nil {
		t.Fatal(err)
	}
	want := []evKey{
		{EventNodeChildrenChanged, "/p"},
		{EventNodeDataChanged, "/p"},
		{EventNodeDataChanged, "/p"},
	}
	if got := keys(takeN(t, w, len(want))); !equalKeys(got, want) {
		t.Fatalf("persistent events %+v, want %+v", got, want)
	}
	if e := awaitWatch(t, once); e.Type != EventNodeDataChanged {
		t.Fatalf("one-shot beside a persistent watch: %+v", e)
	}
	if err := w.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPersistentWatchSurvivesReconnect(t *testing.T) {
	c, ev, p, direct := proxied(t, Config{})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/s", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	// A recursive and a plain persistent watch on one path: servers before
	// 3.9 hold one of them, the client serves both.
	rec, err := c.AddWatch(ctx, "/s", true)
	if err != nil {
		t.Fatal(err)
	}
	per, err := c.AddWatch(ctx, "/s", false)
	if err != nil {
		t.Fatal(err)
	}
	p.Cut()
	ev.await(t, StateDisconnected)
	// Persistent watches get no catch-up events for what happens meanwhile.
	if _, _, err := direct.Create(ctx, "/s/while-cut", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	p.Heal()
	ev.await(t, StateConnected)
	// Our requests are handled after setWatches2: once Sync returns, the
	// watches are back.
	if err := c.Sync(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Set(ctx, "/s/while-cut", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := direct.Create(ctx, "/s/after", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	want := []evKey{{EventNodeDataChanged, "/s/while-cut"}, {EventNodeCreated, "/s/after"}}
	if got := keys(takeN(t, rec, len(want))); !equalKeys(got, want) {
		t.Fatalf("recursive events across a reconnect %+v, want %+v", got, want)
	}
	if got := keys(takeN(t, per, 1)); got[0] != (evKey{EventNodeChildrenChanged, "/s"}) {
		t.Fatalf("persistent events across a reconnect %+v", got)
	}
	// Without the recursive watch the plain one still gets child events.
	if err := rec.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := direct.Delete(ctx, "/s/after", -1); err != nil {
		t.Fatal(err)
	}
	if got := keys(takeN(t, per, 1)); got[0] != (evKey{EventNodeChildrenChanged, "/s"}) {
		t.Fatalf("persistent events after removing the recursive one %+v", got)
	}
	if err := per.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	// Removed watches are not re-registered.
	p.Cut()
	ev.await(t, StateDisconnected)
	p.Heal()
	ev.await(t, StateConnected)
	if err := direct.Delete(ctx, "/s/while-cut", -1); err != nil {
		t.Fatal(err)
	}
	barrier(t, c, "/s-barrier")
	if evs := append(rec.Take(), per.Take()...); len(evs) != 0 {
		t.Fatalf("events after Remove: %+v", evs)
	}
}

func TestWatcherLostOnClose(t *testing.T) {
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{})
	ctx := ctxT(t)
	w, err := c.AddWatch(ctx, "/", true)
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	evs := takeUntilLost(t, w)
	if last := evs[len(evs)-1]; !errors.Is(last.Err, ErrClosed) {
		t.Fatalf("last event %+v", last)
	}
}
