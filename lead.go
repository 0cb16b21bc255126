package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"
)

// DefaultGracePeriod is how long Lead waits for fn to return after fn's
// context ended before it leaves the election anyway.
const DefaultGracePeriod = 5 * time.Second

// Guard returns a transaction operation that lets Session.Txn commit only
// while this leadership holds: a check that the leader's own election node
// still exists. ZooKeeper orders the check with every other write, so once
// another participant can lead (this node deleted, or its session expired)
// the transaction fails with a *TxnError wrapping ErrNotLeader, even if this
// process has not heard yet (a long pause, a partition). Use it on the
// Session that elected this leadership.
//
// The guard holds as long as the node does: after a connection loss that
// the session survives, the same node leads again with the same Token, and
// an earlier Leadership value's Guard still passes, rightly. A Leadership
// that does not lead gives a Guard that fails Txn at once, without a round
// trip. Guard does not look at Context or Valid: the server decides.
func (l Leadership) Guard() TxnOp {
	op := TxnOp{kind: txnCheck, op: "guard", path: l.node, version: AnyVersion, guard: true}
	if !l.IsLeader || l.node == "" {
		op.path, op.err = "/", ErrNotLeader
		if l.e != nil {
			op.path = l.e.path
		}
	}
	return op
}

// LeadOption configures Lead. WithGracePeriod is one; every RecipeOption
// (WithID, WithData) is one too and configures the participant as for Elect.
type LeadOption interface{ applyLead(*leadOptions) }

type leadOptions struct {
	recipe []RecipeOption
	grace  time.Duration
}

func (o RecipeOption) applyLead(l *leadOptions) { l.recipe = append(l.recipe, o) }

type gracePeriod time.Duration

func (g gracePeriod) applyLead(l *leadOptions) { l.grace = time.Duration(g) }

// WithGracePeriod sets how long Lead waits for fn to return once fn's
// context has ended (default DefaultGracePeriod).
func WithGracePeriod(d time.Duration) LeadOption { return gracePeriod(d) }

// Lead joins the election at path (as Elect does) and calls fn each time
// this participant leads, with a ctx that is cancelled the moment the
// leadership ends (connection loss, expiry) or ctx ends. It blocks until it
// leaves the election, which makes it a fit for an errgroup:
//
//   - fn returns nil: if still leading, Lead releases the leadership and
//     stays in the election, at the back of the queue (alone, it leads again
//     at once); if the leadership was lost, Lead waits to lead again.
//   - fn returns an error: Lead leaves the election and returns that error.
//     fn returning its own ctx's error after that ctx ended counts as nil,
//     so `<-ctx.Done(); return ctx.Err()` is a clean end.
//   - ctx ends: fn's ctx is cancelled; once fn has returned, Lead leaves
//     the election and returns nil (or fn's error, as above).
//   - the Session closes: Lead returns an *OpError wrapping ErrClosed (the
//     close deletes the node without waiting for fn).
//
// Lead deletes its node only after fn has returned, so the next leader
// starts after this one's fn is done. If fn does not return within the
// grace period after its ctx ended, Lead leaves the election anyway (so the
// others are not held up), emits an EventError, waits for fn still, and
// returns an *OpError wrapping ErrGraceExceeded. Lead never returns while
// fn runs, and fn never runs twice at once. If fn panics, Lead leaves the
// election and panics in the goroutine that called it, where the panic can
// be recovered, with an error giving fn's panic value and stack
// (errors.Is and As reach the value if it is an error). If fn calls
// runtime.Goexit (t.FailNow in a test), Lead leaves the election and calls
// it too.
func (s *Session) Lead(ctx context.Context, path string, fn func(ctx context.Context, l Leadership) error, opts ...LeadOption) error {
	if err := s.usable(ctx); err != nil {
		return opError("lead", path, err)
	}
	o := leadOptions{grace: DefaultGracePeriod}
	for _, opt := range opts {
		if opt == nil {
			return &OpError{Op: "lead", Path: path, Err: fmt.Errorf("%w: nil option", ErrInvalidOption)}
		}
		opt.applyLead(&o)
	}
	if fn == nil {
		return &OpError{Op: "lead", Path: path, Err: fmt.Errorf("%w: nil fn", ErrInvalidOption)}
	}
	if o.grace <= 0 {
		return &OpError{Op: "lead", Path: path, Err: fmt.Errorf("%w: grace period %v is not positive", ErrInvalidOption, o.grace)}
	}
	// The election lives until Lead leaves, not until ctx ends: while fn
	// runs, the node must stay until fn has returned. Outside fn, ctx ending
	// leaves at once.
	electCtx, leave := context.WithCancel(context.WithoutCancel(ctx))
	defer leave()
	untie := context.AfterFunc(ctx, leave)
	defer func() { untie() }()
	ch, err := s.Elect(electCtx, path, o.recipe...)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil
		}
		return opError("lead", path, err)
	}
	defer func() {
		leave()
		for range ch { // until the participant's goroutine has left
		}
	}()
	// The grant Lead released, not its token: if the connection drops as
	// the release is sent, the release comes too late and is ignored, and
	// on reconnect the same node leads again, with the same token and a new
	// grant, for which fn must run.
	var released uint64
	for l := range ch {
		if !l.IsLeader || l.Context.Err() != nil || l.grant == released {
			continue // stale: that leadership is over
		}
		if !untie() {
			continue // ctx ended: leaving
		}
		err := s.runLeader(ctx, path, l, fn, o.grace, leave)
		switch {
		case err != nil:
			return err
		case ctx.Err() != nil:
			return nil
		case l.Context.Err() == nil:
			released = l.grant
			l.Release()
		}
		untie = context.AfterFunc(ctx, leave)
	}
	if ctx.Err() != nil {
		return nil
	}
	return &OpError{Op: "lead", Path: path, Err: ErrClosed}
}

// leadPanic is what Lead panics with when fn panicked: an error that says
// where, with fn's panic value and stack. errors.Is and As reach the value
// if it is an error.
type leadPanic struct {
	path  string
	value any
	stack []byte
}

func (p *leadPanic) Error() string {
	return fmt.Sprintf("lighthouse: lead %s: fn panicked: %v\n\n%s", clip(p.path), p.value, p.stack)
}

func (p *leadPanic) Unwrap() error {
	err, _ := p.value.(error)
	return err
}

// runLeader runs fn while l leads and returns its error, nil for fn's own
// ctx's error after that ctx ended. Past the grace period it calls leave
// and still waits for fn.
func (s *Session) runLeader(ctx context.Context, path string, l Leadership, fn func(context.Context, Leadership) error, grace time.Duration, leave func()) error {
	fnCtx, cancel := context.WithCancel(l.Context)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	done := make(chan error, 1)
	var panicked *leadPanic // set before done is sent to
	var exited bool         // fn called runtime.Goexit; set before done is sent to
	go func() {
		returned := false
		defer func() {
			if v := recover(); v != nil {
				panicked = &leadPanic{path: path, value: v, stack: debug.Stack()}
				done <- nil
			} else if !returned {
				exited = true
				done <- nil
			}
		}()
		err := fn(fnCtx, l)
		returned = true
		done <- err
	}()

	var err error
	select {
	case err = <-done:
	case <-fnCtx.Done():
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case err = <-done:
		case <-timer.C:
			leave()
			exceeded := &OpError{Op: "lead", Path: path, Err: fmt.Errorf("%w (%v): left the election", ErrGraceExceeded, grace)}
			s.emit(Event{Type: EventError, SessionID: s.SessionID(), Path: path, Err: exceeded})
			<-done
			err = exceeded
		}
	}
	// A panic, or runtime.Goexit (t.FailNow in a test), goes on in the
	// goroutine that called Lead, once Lead's deferred calls have left the
	// election: there the panic can be recovered.
	if panicked != nil {
		panic(panicked)
	}
	if exited {
		runtime.Goexit()
	}
	if err != nil && fnCtx.Err() != nil && errors.Is(err, fnCtx.Err()) {
		err = nil
	}
	return err
}
