package lighthouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// A nil or zero Session, and the zero value of each handle a Session
// returns, hold no session: every method fails with ErrClosed (or does
// nothing, or reports nothing), at once, and nothing panics. Before, most
// panicked, and a zero Session's Elect crashed the process from a goroutine
// of its own; a zero Barrier's Leave waited until its ctx ended.
func TestZeroValuesFailCleanly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
		}
		calls = append(calls, sessionCalls(s, ctx)...)
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

// TestNilContextFailsCleanly: a nil ctx, which Go's rules forbid, fails
// each call with ErrInvalidOption instead of a panic. Before, most calls
// panicked, and Members and MemberSets crashed the process from a
// goroutine of their own, where no caller could recover.
func TestNilContextFailsCleanly(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	s := connect(t, root)
	var nilCtx context.Context
	reg := register(t, s, "svc", "a")
	b, err := s.Barrier(testCtx(t), "/b", 1)
	if err != nil {
		t.Fatal(err)
	}
	calls := []call{
		{"Connect", func() error { _, err := Connect(nilCtx, root); return err }},
		{"CreateAs", func() error { _, err := CreateAs(nilCtx, s, "/a", "v", Persistent, String()); return err }},
		{"GetAs", func() error { _, _, err := GetAs(nilCtx, s, "/a", String()); return err }},
		{"SetAs", func() error { _, err := SetAs(nilCtx, s, "/a", "v", AnyVersion, String()); return err }},
		{"Barrier.Enter", func() error { return b.Enter(nilCtx) }},
		{"Barrier.Leave", func() error { return b.Leave(nilCtx) }},
		{"Registration.Update", func() error { return reg.Update(nilCtx, []byte("x")) }},
	}
	calls = append(calls, sessionCalls(s, nilCtx)...)
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.f()
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), "nil context") || strings.Count(err.Error(), "lighthouse:") != 1 {
				t.Errorf("%s(nil ctx): %v, want ErrInvalidOption naming the nil context", c.name, err)
			}
		})
	}
	t.Run("Events", func(t *testing.T) {
		for range s.Events(nilCtx) { // closed at once
		}
	})
}

// call is one call of a public method, for the tests that make every one.
type call struct {
	name string
	f    func() error // nil: not an error-returning call, or a closed channel
}

// sessionCalls are the calls of s's methods that take a ctx and return an
// error, made with ctx.
func sessionCalls(s *Session, ctx context.Context) []call {
	lead := func(context.Context, Leadership) error { return nil }
	return []call{
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
}
