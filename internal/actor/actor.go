// Package actor holds the few concurrency building blocks lighthouse is made
// of, so that every goroutine has one obvious owner:
//
//   - [Start] runs a loop that owns its state until its context ends; Stop
//     cancels it and waits for it.
//   - [Mailbox] carries messages to an actor. Senders never block and nothing
//     is dropped, so it can be fed from callbacks that must not block (such as
//     a ZooKeeper client's event callback).
//   - [Outbox] carries values from an actor to one reader. The owner never
//     blocks: when the reader is slow the oldest undelivered value is
//     replaced. With capacity 1 the reader always gets the newest state.
//   - [Broadcast] is an Outbox per subscriber, with the same guarantee.
package actor

import (
	"context"
	"sync"
	"time"
)

// Actor is a goroutine that runs until its function returns or its context
// is cancelled.
type Actor struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start runs fn in a new goroutine with a context derived from parent.
// The context is cancelled when Stop is called or parent ends.
func Start(parent context.Context, fn func(ctx context.Context) error) *Actor {
	ctx, cancel := context.WithCancel(parent)
	a := &Actor{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer cancel()
		a.err = fn(ctx)
	}()
	return a
}

// Stop cancels the actor's context, waits for its function to return and
// returns its error. It is safe to call more than once and from several
// goroutines.
func (a *Actor) Stop() error {
	a.cancel()
	<-a.done
	return a.err
}

// Done is closed when the actor's function has returned.
func (a *Actor) Done() <-chan struct{} { return a.done }

// Err returns the function's error once Done is closed, nil before.
func (a *Actor) Err() error {
	select {
	case <-a.done:
		return a.err
	default:
		return nil
	}
}

// Mailbox is an unbounded FIFO of messages for one receiving actor. Put never
// blocks and never drops; the receiver waits on Ready and then takes
// everything queued with Take. The zero value is ready to use. Once the
// receiver has ended it closes the mailbox, and Put drops what it is given:
// a sender that outlives the receiver never grows a queue nobody reads.
type Mailbox[M any] struct {
	mu     sync.Mutex
	queue  []M
	ready  chan struct{}
	closed bool
}

func (m *Mailbox[M]) init() {
	if m.ready == nil {
		m.ready = make(chan struct{}, 1)
	}
}

// Put appends msg to the mailbox and wakes the receiver. After Close it does
// nothing.
func (m *Mailbox[M]) Put(msg M) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.init()
	m.queue = append(m.queue, msg)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default: // the receiver is already due to wake up
	}
}

// Ready returns a channel that receives a value after Put. One wake-up may
// stand for several messages, and a wake-up may find the mailbox empty.
func (m *Mailbox[M]) Ready() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	return m.ready
}

// Take removes and returns every queued message in the order they were put.
func (m *Mailbox[M]) Take() []M {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queue
	m.queue = nil
	return q
}

// Close discards what is queued and makes every later Put do nothing. The
// receiver calls it when it stops reading. It is idempotent.
func (m *Mailbox[M]) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed, m.queue = true, nil
}

// Len returns how many messages are queued.
func (m *Mailbox[M]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}

// Outbox sends values from one owner to one reader without ever blocking the
// owner. It holds at most its capacity of undelivered values; when it is full,
// Put discards the oldest to make room, so a slow reader loses history but
// never receives an older value after a newer one.
//
// Put and Close must not be called concurrently (they belong to the owner).
type Outbox[T any] struct {
	ch      chan T
	mark    func(v T, dropped int) T
	dropped int
	carried int // how many discarded values the last value sent reports
	closed  bool
}

// NewOutbox returns an outbox holding up to capacity values (at least 1).
// Capacity 1 gives "latest value" semantics. If mark is not nil, a value put
// after others were discarded is delivered as mark(v, n), n being how many
// were discarded, so the reader can learn that it missed some. With capacity
// 1, n is exactly how many values the reader missed before v; with a larger
// capacity, n only counts the values discarded since the previous Put.
func NewOutbox[T any](capacity int, mark func(v T, dropped int) T) *Outbox[T] {
	return &Outbox[T]{ch: make(chan T, max(capacity, 1)), mark: mark}
}

// C is the reader's side. Close closes it.
func (o *Outbox[T]) C() <-chan T { return o.ch }

// Put delivers v without blocking, discarding the oldest undelivered value if
// the outbox is full. Put after Close does nothing.
func (o *Outbox[T]) Put(v T) {
	if o.closed {
		return
	}
	for {
		w, carried := v, 0
		if o.dropped > 0 && o.mark != nil {
			w, carried = o.mark(v, o.dropped), o.dropped
		}
		select {
		case o.ch <- w:
			o.dropped, o.carried = 0, carried
			return
		default:
		}
		// Full. Only the owner sends, so once one value is out (taken here,
		// or by the reader just now) the next send has room.
		select {
		case <-o.ch:
			o.dropped++
			if cap(o.ch) == 1 {
				// The discarded value was the last one sent: the values it
				// reported as missed are now missed before v as well.
				o.dropped += o.carried
				o.carried = 0
			}
		default:
		}
	}
}

// Close closes the reader's channel; values still in it can be read first.
// It is idempotent.
func (o *Outbox[T]) Close() {
	if !o.closed {
		o.closed = true
		close(o.ch)
	}
}

// Broadcast fans values out to any number of subscribers, each with its own
// Outbox, so a slow subscriber never delays the publisher or the others.
// Its methods are safe for concurrent use.
type Broadcast[T any] struct {
	capacity int
	mark     func(T, int) T
	replay   bool

	mu     sync.Mutex
	subs   map[*Outbox[T]]struct{}
	last   T
	hasVal bool
	closed bool
}

// NewBroadcast returns a fan-out whose subscribers each hold up to capacity
// undelivered values, with mark as in NewOutbox. If replay is true, a new
// subscriber first receives the most recently published value (right for
// state; not for a stream of events).
func NewBroadcast[T any](capacity int, replay bool, mark func(T, int) T) *Broadcast[T] {
	return &Broadcast[T]{capacity: capacity, mark: mark, replay: replay, subs: make(map[*Outbox[T]]struct{})}
}

// Subscribe returns the channel of a new subscriber and a function that ends
// the subscription and closes that channel. After Close, the channel comes
// back closed (after the replayed value, if any).
func (b *Broadcast[T]) Subscribe() (<-chan T, func()) {
	o := NewOutbox(b.capacity, b.mark)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.replay && b.hasVal {
		o.Put(b.last)
	}
	if b.closed {
		o.Close()
		return o.C(), func() {}
	}
	b.subs[o] = struct{}{}
	return o.C(), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[o]; ok {
			delete(b.subs, o)
			o.Close()
		}
	}
}

// Publish delivers v to every subscriber without blocking.
func (b *Broadcast[T]) Publish(v T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.last, b.hasVal = v, true
	for o := range b.subs {
		o.Put(v)
	}
}

// Close closes every subscriber's channel; Publish does nothing afterwards.
// It is idempotent.
func (b *Broadcast[T]) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for o := range b.subs {
		o.Close()
	}
	b.subs = nil
}

// Group tracks goroutines so their owner can stop accepting new ones and wait
// for the rest. Unlike a bare sync.WaitGroup, Go may race with Close. The
// zero value is ready to use.
type Group struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

// Go runs f in a new goroutine and reports true, or reports false without
// running it once Close has been called.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Close refuses new goroutines and waits for the running ones, at most
// timeout (a negative timeout waits without limit). It reports whether they
// all ended.
func (g *Group) Close(timeout time.Duration) bool {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	if timeout < 0 {
		<-done
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
