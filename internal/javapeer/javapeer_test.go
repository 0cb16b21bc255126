package javapeer

import (
	"strings"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Main(m)) }

func TestBuildOnce(t *testing.T) {
	a, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Build()
	if a != b || !strings.Contains(a, "curator-recipes.jar") {
		t.Fatalf("classpaths %q, %q", a, b)
	}
}

func TestJavaPeerLatchAndExit(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	p := Start(t, Options{Args: []string{root, "2000"}})
	// The latch may lead before the command's "ok": Call returns that line.
	var line string
	if got := p.Call([]string{"leader\tj1\t"}, "latch", "/leader", "j1"); len(got) > 0 {
		line = got[0]
	} else {
		line = p.Await("leader\tj1\t", 10*time.Second)
	}
	if !strings.HasPrefix(line, "leader\tj1\ttrue\t") {
		t.Fatalf("got %q, want j1 to lead", line)
	}
	got := p.Call([]string{"participants"}, "participants", "j1")
	if len(got) != 1 || got[0] != "participants\tj1*" {
		t.Fatalf("participants: %q", got)
	}
	p.Call(nil, "unlatch", "j1")
	p.Send("exit")
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("peer did not exit")
	}
}

func TestJavaPeerKill(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	p := Start(t, Options{Args: []string{root, "2000"}})
	p.Kill()
	p.Kill() // idempotent
}
