package zktest

import (
	"context"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(Main(m)) }

// eventTimeout bounds every wait for an event in these tests.
const eventTimeout = 15 * time.Second

// testCtx returns a context for a test's calls, bounded by eventTimeout and
// by the test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), eventTimeout)
	t.Cleanup(cancel)
	return ctx
}

// client is a raw zkclient connection whose session states are queued for
// the test to await.
type client struct {
	*zkclient.Client
	states chan zkclient.State
}

// connect opens a zkclient client to addrs, closes it when t ends, and waits
// until it has a session.
func connect(t *testing.T, sessionTimeout time.Duration, addrs ...string) *client {
	t.Helper()
	states := make(chan zkclient.State, 100)
	conn, err := zkclient.Connect(testCtx(t), zkclient.Config{
		Servers:        addrs,
		SessionTimeout: sessionTimeout,
		OnEvent: func(ev zkclient.Event) {
			// Called on the client's owner goroutine: must not block.
			select {
			case states <- ev.State:
			default:
				t.Errorf("state %v dropped: queue full", ev.State)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Close returns once every goroutine of the client has ended, so
		// OnEvent is not called after it.
		conn.Close(context.Background())
	})
	c := &client{conn, states}
	c.await(t, zkclient.StateConnected)
	return c
}

// await waits for the client to reach state want, skipping other states.
func (c *client) await(t *testing.T, want zkclient.State) {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for {
		select {
		case s := <-c.states:
			if s == want {
				return
			}
		case <-timer.C:
			t.Fatalf("no %v within %v", want, eventTimeout)
		}
	}
}
