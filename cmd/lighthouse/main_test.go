package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(removeBinary{zktest.Main(m)}) }

// removeBinary deletes the command built by the tests once they have run.
type removeBinary struct{ goleak.TestingM }

func (r removeBinary) Run() int {
	code := r.TestingM.Run()
	if binary.path != "" {
		os.RemoveAll(filepath.Dir(binary.path))
	}
	return code
}

func TestDemoRunsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo"}, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\n%s%s", err, out.String(), errOut.String())
	}
	expectInOrder(t, out.String(),
		"ZooKeeper is serving", "worker-3 joined",
		"releases leadership", "worker-1 no longer leads", "worker-2 leads", "failover after release took",
		"worker-2 killed", "worker-3 leads", "failover after crash", "worker-2 comes back", "client sees members [worker-1 worker-2 worker-3]",
		"server restarts", "session suspended", "session reconnected", "leads",
		"scenario done", "summary", "errors  0",
		"metrics", "leadership changes", "handovers", "reconnects", "expiries", "members", "balancer picks",
		"local ZooKeeper stopped")
	expectInOrder(t, out.String(), "worker-1 leads", "releases leadership")
	expectInOrder(t, out.String(), "server restarts", "no longer leads", "scenario done")
	// The client's view changes when the killed worker's session expires,
	// at about the time the next leader is elected.
	expectInOrder(t, out.String(), "worker-2 killed", "client sees members [worker-1 worker-3]", "worker-2 comes back")
	if strings.Contains(out.String(), "\x1b[") {
		t.Fatal("colour codes written to a non-terminal")
	}
}

func TestDemoAgainstAGivenEnsemble(t *testing.T) {
	zkc := zktest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	// Each demo under a root of its own: workers of an earlier one may hold
	// the same IDs until their sessions expire.
	if err := run(ctx, []string{"demo", "--zk", zkc.Root(t), "--workers", "4"}, &out, &errOut); err != nil {
		t.Fatalf("demo --zk: %v\n%s%s", err, out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "starting a local ZooKeeper") {
		t.Fatalf("demo --zk started its own server:\n%s", out.String())
	}
	expectInOrder(t, out.String(), "worker-4 joined", "connection is cut", "session suspended", "session reconnected", "errors  0")
}

func TestDemoStopsOnInterrupt(t *testing.T) {
	zkc := zktest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--zk", zkc.Root(t)}, &out, io.Discard) }()
	if !out.await("killed hard", 30*time.Second) { // mid-scenario
		select {
		case err := <-done:
			t.Fatalf("demo ended early: %v\n%s", err, out.String())
		default:
		}
		cancel()
		t.Fatalf("demo did not get going:\n%s", out.String())
	}
	cancel() // what Ctrl-C does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted demo: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop after interrupt")
	}
	expectInOrder(t, out.String(), "summary", "errors  0", "interrupted")
}

// TestDemoInterruptedWhileStarting: Ctrl-C while the local ZooKeeper is
// starting is as clean an end as later (it was exit 1 and the server's log).
func TestDemoInterruptedWhileStarting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo"}, &out, io.Discard) }()
	if !out.await("starting a local ZooKeeper", 10*time.Second) {
		cancel()
		t.Fatalf("demo did not start:\n%s", out.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo interrupted while starting: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop after interrupt")
	}
	expectInOrder(t, out.String(), "interrupted")
}

func TestDemoTakesNoArguments(t *testing.T) {
	var errOut bytes.Buffer
	if err := run(context.Background(), []string{"demo", "oops"}, io.Discard, &errOut); !errors.Is(err, errUsage) || exitCode(err) != 2 {
		t.Fatalf("demo oops = %v (exit %d)", err, exitCode(err))
	}
}

// expectInOrder fails t unless each of wants appears in s after the one
// before it.
func expectInOrder(t *testing.T, s string, wants ...string) {
	t.Helper()
	rest := s
	for _, want := range wants {
		i := strings.Index(rest, want)
		if i < 0 {
			t.Fatalf("output lacks %q (in order):\n%s", want, s)
		}
		rest = rest[i+len(want):]
	}
}

type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // closed by the next Write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote != nil {
		close(s.wrote)
		s.wrote = nil
	}
	return s.b.Write(p)
}

// await reports whether want is written within d.
func (s *syncBuffer) await(want string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		s.mu.Lock()
		found := strings.Contains(s.b.String(), want)
		if s.wrote == nil {
			s.wrote = make(chan struct{})
		}
		wrote := s.wrote
		s.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-wrote:
		case <-deadline:
			return false
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 || !strings.Contains(errOut.String(), "Usage:") {
			t.Errorf("run(%q) = %v (exit %d), stderr %q", args, err, exitCode(err), errOut.String())
		}
	}
}

// TestDemoKeepsConnectString: the demo uses every host and the chroot of
// --zk (here a dead host first, then the live one with a chroot).
func TestDemoKeepsConnectString(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo", "--zk", "127.0.0.1:1," + root, "--workers", "2"}, &out, &errOut); err != nil {
		t.Fatalf("demo --zk: %v\n%s%s", err, out.String(), errOut.String())
	}
	ok, _, err := session(t, root).Exists(context.Background(), demoElection)
	if err != nil || !ok {
		t.Fatalf("demo's election is not under the chroot: %v %v\n%s", ok, err, out.String())
	}
}

// TestDemoUnreachable: a demo that cannot reach its ensemble fails within
// --timeout with exit 3, and so does one interrupted before it connects.
func TestDemoUnreachable(t *testing.T) {
	for _, zk := range []string{"127.0.0.1:1", "no-such-host.invalid:2181"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"demo", "--zk", zk, "--timeout", "1s"}, &out, &errOut)
		cancel()
		if exitCode(err) != exitUnreachable || !strings.Contains(err.Error(), "cannot reach ZooKeeper") || time.Since(start) > 10*time.Second {
			t.Errorf("demo --zk %s: %v (exit %d) after %v", zk, err, exitCode(err), time.Since(start))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--zk", "127.0.0.1:1", "--timeout", "1m"}, &out, io.Discard) }()
	if !out.await("connecting", 10*time.Second) {
		t.Fatalf("demo does not say it is connecting: %q", out.String())
	}
	cancel() // Ctrl-C
	select {
	case err := <-done:
		if exitCode(err) != exitUnreachable {
			t.Fatalf("demo interrupted while connecting: %v (exit %d)", err, exitCode(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("demo did not stop after interrupt")
	}
}

// TestDemoMissingChroot: like every command, the demo checks the chroot.
func TestDemoMissingChroot(t *testing.T) {
	zkc := zktest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := run(ctx, []string{"demo", "--zk", zkc.Addr(0) + "/no-such-chroot"}, io.Discard, io.Discard)
	if exitCode(err) != exitNotFound || !strings.Contains(err.Error(), "chroot /no-such-chroot does not exist") {
		t.Fatalf("demo with a missing chroot: %v (exit %d)", err, exitCode(err))
	}
}
