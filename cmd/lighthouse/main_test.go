package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/testzk"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testzk.Main(m)) }

func TestDemoRunsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo"}, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\n%s%s", err, out.String(), errOut.String())
	}
	// The scenario, in order.
	rest := out.String()
	for _, want := range []string{
		"ZooKeeper is serving", "connected", "created ephemeral node",
		"session event: suspended", "session event: reconnected", "still there: true",
		"session event: expired", "session event: connected", "ephemeral node is gone: true",
		"session event: closed", "done",
	} {
		i := strings.Index(rest, want)
		if i < 0 {
			t.Fatalf("demo output lacks %q (in order):\n%s", want, out.String())
		}
		rest = rest[i+len(want):]
	}
}

func TestDemoAgainstAGivenEnsemble(t *testing.T) {
	zkc := testzk.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo", "--zk", zkc.ConnectString()}, &out, &errOut); err != nil {
		t.Fatalf("demo --zk: %v\n%s%s", err, out.String(), errOut.String())
	}
	if strings.Contains(out.String(), "starting a local ZooKeeper") || !strings.Contains(out.String(), "cutting the connection") {
		t.Fatalf("demo --zk started its own server or did not use the proxy:\n%s", out.String())
	}
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
