package zktest

import (
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(Main(m)) }

// eventTimeout bounds every wait for an event in these tests.
const eventTimeout = 15 * time.Second

// client is a raw go-zookeeper connection whose session states are queued
// for the test to await.
type client struct {
	*zk.Conn
	states chan zk.State
}

// connect opens a go-zookeeper client to addrs, closes it when t ends, and
// waits until it has a session.
func connect(t *testing.T, sessionTimeout time.Duration, addrs ...string) *client {
	t.Helper()
	states := make(chan zk.State, 100)
	conn, events, err := zk.Connect(addrs, sessionTimeout, zk.WithLogger(nopLogger{}),
		zk.WithEventCallback(func(ev zk.Event) {
			if ev.Type != zk.EventSession {
				return
			}
			select {
			case states <- ev.State:
			default:
				t.Errorf("state %v dropped: queue full", ev.State)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		for range events {
			// Closed once the client's goroutines are done.
		}
	})
	c := &client{conn, states}
	c.await(t, zk.StateHasSession)
	return c
}

// await waits for the client to reach state want, skipping other states.
func (c *client) await(t *testing.T, want zk.State) {
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
