package zkclient

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// hookLog records what the hooks report.
type hookLog struct {
	mu       sync.Mutex
	attempts []error
	calls    []string // op + " " + error ("" if none)
	watches  []EventType
}

func (h *hookLog) hooks() Hooks {
	return Hooks{
		OnAttempt: func(_ string, err error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.attempts = append(h.attempts, err)
		},
		OnCall: func(_ context.Context, op string, took time.Duration, err error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if took <= 0 {
				op += " (no duration)"
			}
			if err != nil {
				op += " " + err.Error()
			}
			h.calls = append(h.calls, op)
		},
		OnWatch: func(typ EventType) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.watches = append(h.watches, typ)
		},
	}
}

func TestHooks(t *testing.T) {
	var h hookLog
	c, _ := connectT(t, zktest.Shared(t).Root(t), Config{Hooks: h.hooks()})
	ctx := ctxT(t)
	if _, _, err := c.Create(ctx, "/a", nil, all, Persistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "/missing"); !errors.Is(err, ErrNoNode) {
		t.Fatal(err)
	}
	_, ch, err := c.ExistsW(ctx, "/a")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "/a", -1); err != nil {
		t.Fatal(err)
	}
	awaitWatch(t, ch)

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.attempts) != 1 || h.attempts[0] != nil {
		t.Errorf("attempts: %v, want one that succeeded", h.attempts)
	}
	want := []string{"create", "get_data " + ErrNoNode.Error(), "exists", "delete"}
	if !slices.Equal(h.calls, want) {
		t.Errorf("calls: %q, want %q", h.calls, want)
	}
	if !slices.Equal(h.watches, []EventType{EventNodeDeleted}) {
		t.Errorf("watches: %v, want [NodeDeleted]", h.watches)
	}
}

// An attempt that fails is reported with its error.
func TestHooksFailedAttempt(t *testing.T) {
	var h hookLog
	proxy := zktest.ProxyT(t, zktest.Shared(t).Addr(0))
	proxy.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Connect(ctx, Config{Servers: []string{proxy.Addr()}, Hooks: h.hooks(), ConnectTimeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("Connect through a cut proxy worked")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.attempts) == 0 || h.attempts[0] == nil {
		t.Errorf("attempts: %v, want a failure", h.attempts)
	}
}
