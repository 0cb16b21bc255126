package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EventType says what an Event reports.
type EventType int

// Session events. Recipes add their own types.
const (
	// EventConnected: a session is established. It follows Connect and every
	// Expired (with the new session's id).
	EventConnected EventType = iota + 1
	// EventSuspended: the connection is lost. The session may still be alive
	// on the server; nothing can be known until it comes back or expires.
	EventSuspended
	// EventReconnected: the connection is back and the session survived:
	// ephemeral nodes and watches are intact.
	EventReconnected
	// EventExpired: the server ended the session and deleted its ephemeral
	// nodes. A new session is being established; recipes rebuild on it.
	EventExpired
	// EventClosed: Close was called. It is the last event.
	EventClosed
	// EventError: something failed that the library will retry or has
	// worked around (for example node data it could not decode). Err says what.
	EventError
)

var eventNames = map[EventType]string{
	EventConnected:   "connected",
	EventSuspended:   "suspended",
	EventReconnected: "reconnected",
	EventExpired:     "expired",
	EventClosed:      "closed",
	EventError:       "error",
}

func (t EventType) String() string {
	if n, ok := eventNames[t]; ok {
		return n
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one thing that happened to a session or to one of its recipes.
type Event struct {
	Time      time.Time
	Type      EventType
	SessionID int64  // the ZooKeeper session the event belongs to; 0 if none
	Path      string // the recipe's path, for recipe events
	Err       error  // the cause, for EventError (and Expired, Suspended when known)
	// Dropped counts events this subscriber missed before this one because
	// it read too slowly (see Session.Events).
	Dropped int
}

func (e Event) String() string {
	s := fmt.Sprintf("%s %s session=0x%x", e.Time.Format(time.RFC3339Nano), e.Type, e.SessionID)
	if e.Path != "" {
		s += " path=" + e.Path
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	if e.Dropped > 0 {
		s += fmt.Sprintf(" (after %d dropped)", e.Dropped)
	}
	return s
}

// eventBuffer is how many undelivered events each Events subscriber holds.
const eventBuffer = 256

// Events subscribes to the session's events (and its recipes') until ctx ends
// or the session is closed; then the channel is closed (at once for a nil
// ctx).
//
// A slow or absent reader never blocks the session: each subscriber has a
// buffer of 256 events, and when it is full the oldest undelivered event is
// dropped. The next event delivered says how many were dropped (Dropped).
// Events are in the order they happened.
func (s *Session) Events(ctx context.Context) <-chan Event {
	if !s.made() || ctx == nil {
		ch := make(chan Event)
		close(ch)
		return ch
	}
	ch, stop := s.events.Subscribe()
	context.AfterFunc(ctx, stop)
	return ch
}

// emit publishes an event to every subscriber. It never blocks. Closing is
// not an error: an EventError caused by the session's own Close is dropped.
func (s *Session) emit(e Event) {
	if e.Type == EventError && errors.Is(e.Err, ErrClosed) {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if lvl := s.log.Enabled(context.Background(), levelOf(e)); lvl {
		s.log.Log(context.Background(), levelOf(e), "lighthouse: "+e.Type.String(),
			"session", fmt.Sprintf("0x%x", e.SessionID), "path", e.Path, "err", e.Err)
	}
	s.metrics.event(e)
	s.events.Publish(e)
}

func markDropped(e Event, n int) Event {
	e.Dropped += n
	return e
}
