//go:build linux

package faults

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

// A leader paused (SIGSTOP) past the session timeout wakes believing it
// leads and writes at once with its guard: the write must be refused,
// while the leader elected meanwhile commits its own.
func TestPausedLeadersGuardedWriteIsRefused(t *testing.T) {
	bin := buildParticipant(t)
	zkc := zktest.Shared(t)
	tr := newTrial(t, zkc, bin)
	t.Cleanup(tr.killAll)
	for _, id := range []string{"p1", "p2"} {
		m := &member{id: id, proxies: []*zktest.Proxy{zktest.ProxyT(t, zkc.Addr(0))}}
		tr.members[id] = m
		if err := tr.start(m); err != nil {
			t.Fatal(err)
		}
		if id == "p1" {
			awaitTrue(t, "p1 leads", func() bool { return tr.leader() == "p1" })
		}
	}
	history := func(id string) []Record {
		h, err := ReadHistory(filepath.Join(tr.dir, id+"-1.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// p2 is queued behind p1, and p1 has written as leader.
	awaitTrue(t, "p2 queued", func() bool {
		ps, err := tr.sess.Participants(context.Background(), "/election")
		return err == nil && len(ps) == 2
	})
	committed := func(id string, after time.Time) (Record, bool) {
		for _, r := range history(id) {
			if r.Ev == EvGuarded && r.OK && r.Time().After(after) {
				return r, true
			}
		}
		return Record{}, false
	}
	awaitTrue(t, "p1 commits a guarded write", func() bool { _, ok := committed("p1", tr.epoch); return ok })

	p1 := tr.members["p1"].cur
	from := time.Now()
	p1.cmd.Process.Signal(syscall.SIGSTOP)
	awaitTrue(t, "p2 elected while p1 sleeps", func() bool { return tr.leader() == "p2" })
	awaitTrue(t, "p2 commits a guarded write", func() bool { _, ok := committed("p2", from); return ok })
	// The checker takes a write for a deposed leader's only if it was sent
	// more than eps after the new leader was elected (two processes' clocks):
	// let that much time pass since p2's election, or p1's refused write
	// may prove nothing (it failed so once, p1 waking 16 ms after).
	for _, r := range history("p2") {
		if r.Ev == EvElected && r.Time().After(from) {
			time.Sleep(time.Until(r.Time().Add(2 * eps)))
			break
		}
	}
	p1.cmd.Process.Signal(syscall.SIGCONT)
	to := time.Now()
	tr.pauses = append(tr.pauses, Span{Proc: p1.Proc, Kind: "pause-long", From: from, To: to})

	// p1's write on waking uses the leadership it held before the pause; the
	// first attempts may meet the connection the pause broke.
	var woke Record
	awaitTrue(t, "p1's write on waking refused as not the leader", func() bool {
		for _, r := range history("p1") {
			if r.Ev != EvGuarded || r.Time().Before(to) {
				continue
			}
			if r.OK {
				t.Fatalf("paused leader's guarded write on waking committed: %s", r)
			}
			if r.NotLeader {
				woke = r
				return true
			}
		}
		return false
	})
	if g, _ := committed("p2", from); g.Token <= woke.Token {
		t.Fatalf("new leader's token %d is not above the paused one's %d", g.Token, woke.Token)
	}

	tr.stopAll()
	run := Run{Pauses: tr.pauses, Eps: eps, Settle: settle}
	for _, p := range tr.procs {
		run.Procs = append(run.Procs, Incarnation{Proc: p.Proc, History: history(p.ID), Stopped: true, Exit: p.exit, Stderr: p.stderr})
	}
	rep := Check(run)
	for _, v := range rep.Violations {
		if v.Rule != RuleOneLeader && v.Rule != RuleMembers && v.Rule != RuleRegistration { // not observed here
			t.Errorf("violation: %s", v)
		}
	}
	if rep.Guarded.DeposedRefused == 0 || rep.Checks[RuleGuarded] == 0 {
		for _, p := range run.Procs {
			for _, r := range p.History {
				t.Logf("%s %s", p.Proc, r)
			}
		}
		t.Logf("pause %s .. %s", from.Format("15:04:05.000"), to.Format("15:04:05.000"))
		t.Fatalf("checker saw guarded writes %+v, checks %v", rep.Guarded, rep.Checks)
	}
}

// awaitTrue polls ok until it holds, failing t after 15 s.
func awaitTrue(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
