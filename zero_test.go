package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// A nil or zero Session, and the zero value of each handle a Session
// returns, hold no session: every method fails with ErrClosed (or does
// nothing, or reports nothing), at once, and nothing panics. Before, most
// panicked, and a zero Session's Elect crashed the process from a goroutine
// of its own; a zero Barrier's Leave waited until its ctx ended.
func TestZeroValuesFailCleanly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lead := func(context.Context, Leadership) error { return nil }
	type call struct {
		name string
		f    func() error // nil: not an error-returning call, or a closed channel
	}
	closed := func(name string, ch <-chan struct{}) error {
		select {
		case <-ch:
			return ErrClosed
		case <-time.After(2 * time.Second):
			return fmt.Errorf("%s: the channel is still open", name)
		}
	}
	for _, s := range []*Session{nil, {}} {
		calls := []call{
			{"Close", func() error {
				if err := s.Close(); err != nil {
					return err
				}
				return ErrClosed
			}},
			{"Done", func() error { return closed("Done", s.Done()) }},
			{"SessionID", func() error {
				if s.SessionID() != 0 || s.SessionTimeout() != 0 {
					return errors.New("not 0")
				}
				return ErrClosed
			}},
			{"Events", func() error {
				for range s.Events(ctx) {
				}
				return ErrClosed
			}},
			{"Create", func() error { _, err := s.Create(ctx, "/a", nil, Persistent); return err }},
			{"Get", func() error { _, _, err := s.Get(ctx, "/a"); return err }},
			{"GetW", func() error { _, _, _, err := s.GetW(ctx, "/a"); return err }},
			{"Set", func() error { _, err := s.Set(ctx, "/a", nil, AnyVersion); return err }},
			{"Delete", func() error { return s.Delete(ctx, "/a", AnyVersion) }},
			{"DeleteAll", func() error { return s.DeleteAll(ctx, "/a") }},
			{"Exists", func() error { _, _, err := s.Exists(ctx, "/a"); return err }},
			{"ExistsW", func() error { _, _, _, err := s.ExistsW(ctx, "/a"); return err }},
			{"Children", func() error { _, err := s.Children(ctx, "/a"); return err }},
			{"ChildrenW", func() error { _, _, err := s.ChildrenW(ctx, "/a"); return err }},
			{"Txn", func() error { _, err := s.Txn(ctx, CheckExists("/a")); return err }},
			{"WhoAmI", func() error { _, err := s.WhoAmI(ctx); return err }},
			{"Elect", func() error { _, err := s.Elect(ctx, "/e"); return err }},
			{"Lead", func() error { return s.Lead(ctx, "/e", lead) }},
			{"Participants", func() error { _, err := s.Participants(ctx, "/e"); return err }},
			{"Leader", func() error { _, err := s.Leader(ctx, "/e"); return err }},
			{"Observe", func() error { _, err := s.Observe(ctx, "/e"); return err }},
			{"Register", func() error { _, err := s.Register(ctx, "svc", Node{ID: "x"}); return err }},
			{"Members", func() error { _, err := s.Members(ctx, "svc"); return err }},
			{"MemberSets", func() error { _, err := s.MemberSets(ctx, "svc"); return err }},
			{"Services", func() error { _, err := s.Services(ctx); return err }},
			{"Instances", func() error { _, err := s.Instances(ctx, "svc"); return err }},
			{"Balancer", func() error { _, err := s.Balancer(ctx, "svc", RoundRobin()); return err }},
			{"Barrier", func() error { _, err := s.Barrier(ctx, "/b", 2); return err }},
		}
		for _, c := range calls {
			t.Run(fmt.Sprintf("nil=%v/%s", s == nil, c.name), func(t *testing.T) {
				checkClosed(t, c.f)
			})
		}
	}
	var nilBalancer *Balancer
	var nilBarrier *Barrier
	var nilRegistration *Registration
	handles := []call{
		{"Balancer.Pick", func() error {
			for _, b := range []*Balancer{nilBalancer, {}} {
				if n, ok := b.Pick("k"); ok || n.ID != "" {
					return fmt.Errorf("picked %+v", n)
				}
				b.ReportError("x")
				if err := b.Close(); err != nil {
					return err
				}
			}
			return ErrClosed
		}},
		{"Barrier.Enter", func() error { return (&Barrier{}).Enter(ctx) }},
		{"Barrier.Leave", func() error { return (&Barrier{}).Leave(ctx) }},
		{"nil Barrier.Enter", func() error { return nilBarrier.Enter(ctx) }},
		{"nil Barrier.Leave", func() error {
			if nilBarrier.ID() != "" {
				return errors.New("ID not empty")
			}
			return nilBarrier.Leave(ctx)
		}},
		{"Registration.Update", func() error { return (&Registration{}).Update(ctx, nil) }},
		{"nil Registration.Update", func() error {
			if nilRegistration.ID() != "" {
				return errors.New("ID not empty")
			}
			return nilRegistration.Update(ctx, nil)
		}},
		{"Registration.Close", func() error {
			for _, r := range []*Registration{nilRegistration, {}} {
				if err := r.Close(); err != nil {
					return err
				}
			}
			return ErrClosed
		}},
		{"Leadership", func() error {
			var l Leadership
			l.Release()
			if l.Valid() {
				return errors.New("valid")
			}
			_, err := s0().Txn(ctx, l.Guard())
			return err
		}},
	}
	for _, c := range handles {
		t.Run(c.name, func(t *testing.T) { checkClosed(t, c.f) })
	}
}

func s0() *Session { return nil }

// checkClosed runs f and checks that it returns an error matching ErrClosed
// within 2 s, without panicking.
func checkClosed(t *testing.T, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- f()
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no return within 2 s")
	}
}
