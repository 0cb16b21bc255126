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

	"github.com/lighthouse-zk/lighthouse/internal/testzk"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(removeBinary{testzk.Main(m)}) }

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
		"scenario done", "summary", "errors  0", "local ZooKeeper stopped")
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
	zkc := testzk.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo", "--zk", zkc.ConnectString(), "--workers", "4"}, &out, &errOut); err != nil {
		t.Fatalf("demo --zk: %v\n%s%s", err, out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "starting a local ZooKeeper") {
		t.Fatalf("demo --zk started its own server:\n%s", out.String())
	}
	expectInOrder(t, out.String(), "worker-4 joined", "connection is cut", "session suspended", "session reconnected", "errors  0")
}

func TestDemoStopsOnInterrupt(t *testing.T) {
	zkc := testzk.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--zk", zkc.ConnectString()}, &out, io.Discard) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "killed hard") { // mid-scenario
		if time.Now().After(deadline) {
			t.Fatalf("demo did not get going:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
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
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
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
