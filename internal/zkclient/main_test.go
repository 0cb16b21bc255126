package zkclient

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Main(m)) }

// eventTimeout bounds every wait for an event.
const eventTimeout = 15 * time.Second

// events collects a client's session events for a test to await.
type events struct {
	mu sync.Mutex
	ch chan Event
}

func newEvents() *events { return &events{ch: make(chan Event, 1000)} }

func (e *events) on(ev Event) {
	select {
	case e.ch <- ev:
	default:
		panic("session event queue full")
	}
}

// await waits for state want, skipping others, and returns its event.
func (e *events) await(t *testing.T, want State) Event {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-e.ch:
			if ev.State == want {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no %v within %v", want, eventTimeout)
		}
	}
}

// connectT connects with cfg, fills Servers/Chroot from connStr when set,
// and closes the client when t ends.
func connectT(t *testing.T, connStr string, cfg Config) (*Client, *events) {
	t.Helper()
	if connStr != "" {
		servers, chroot, err := ParseConnectString(connStr)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Servers, cfg.Chroot = servers, chroot
	}
	ev := newEvents()
	if cfg.OnEvent == nil {
		cfg.OnEvent = ev.on
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	c, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c, ev
}

// ctxT returns a context bounded by eventTimeout and cancelled when t ends.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	t.Cleanup(cancel)
	return ctx
}

// awaitWatch waits for one event on a one-shot watch channel.
func awaitWatch(t *testing.T, ch <-chan WatchEvent) WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed without an event")
		}
		return ev
	case <-time.After(eventTimeout):
		t.Fatalf("no watch event within %v", eventTimeout)
	}
	panic("unreachable")
}

// testLogger logs to t, so a failed test shows what the client did.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
