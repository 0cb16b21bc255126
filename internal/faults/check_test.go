package faults

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the epoch of the hand-made histories; at(ms) is ms after it.
var t0 = time.Unix(1_700_000_000, 0)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// rec makes a record at ms; the incarnation fills in the rest.
func rec(ms int, ev string, token int64) Record {
	return Record{Ev: ev, Token: token, Wall: at(ms).UnixNano(), Since: int64(time.Duration(ms) * time.Millisecond)}
}

func duty(ms int, token int64, valid bool) Record {
	r := rec(ms, EvDuty, token)
	r.OK = valid
	return r
}

// guarded is a guarded write sent at ms: committed with zxid, or (zxid 0)
// refused with ErrNotLeader.
func guarded(ms int, token, zxid int64) Record {
	r := rec(ms, EvGuarded, token)
	r.OK, r.Zxid, r.NotLeader = zxid != 0, zxid, zxid == 0
	if zxid == 0 {
		r.Err = "lighthouse: txn op 0 (guard /election/n): not the leader"
	}
	return r
}

func members(ms int, ids ...string) Record {
	r := rec(ms, EvMembers, 0)
	r.Members = ids
	return r
}

// inc builds a cleanly stopped incarnation from records sorted by time.
func inc(id string, n int, recs ...Record) Incarnation {
	slices.SortStableFunc(recs, func(a, b Record) int { return int(a.Wall - b.Wall) })
	for i := range recs {
		recs[i].P, recs[i].Inc, recs[i].Seq = id, n, int64(i+1)
	}
	return Incarnation{Proc: Proc{id, n}, History: recs, Stopped: true}
}

// goodRun is a correct history: p1 leads with token 10 until 5 s, p2 is
// elected at 6 s with token 20 and leads to the end; the faults stop at
// 7 s, the system must have settled by 8 s, observation ends at 10 s and
// the participants are stopped at 10.2 s (revoking p2).
func goodRun() Run {
	return Run{
		Procs: []Incarnation{
			inc("p1", 1,
				rec(0, EvStart, 0), rec(100, EvElected, 10), duty(150, 10, true), duty(4900, 10, true),
				rec(5000, EvRevoked, 10), members(200, "p1"), members(300, "p1", "p2"), rec(10300, EvExit, 0)),
			inc("p2", 1,
				rec(0, EvStart, 0), members(400, "p1", "p2"), rec(6000, EvElected, 20), duty(6050, 20, true),
				rec(10200, EvRevoked, 20), rec(10300, EvExit, 0)),
		},
		Quiet: at(7000), Check: at(10000), Settle: time.Second, Eps: 25 * time.Millisecond,
		Live: []string{"p1", "p2"}, Truth: []string{"p2", "p1"},
	}
}

// edit returns a change to p's records: keep drops records for which keep
// is false, add adds records.
func edit(run *Run, id string, keep func(Record) bool, add ...Record) {
	for i, p := range run.Procs {
		if p.ID != id {
			continue
		}
		var recs []Record
		for _, r := range p.History {
			if keep == nil || keep(r) {
				recs = append(recs, r)
			}
		}
		q := inc(p.ID, p.Inc, append(recs, add...)...)
		q.Killed, q.Stopped, q.Exit, q.Stderr = p.Killed, p.Stopped, p.Exit, p.Stderr
		run.Procs[i] = q
	}
}

func isEv(ev string) func(Record) bool { return func(r Record) bool { return r.Ev != ev } }

func TestCheckAcceptsGoodRuns(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Run)
		counts []string // rules that must have been checked
	}{
		{"plain", func(*Run) {}, []string{RuleTokens, RuleOverlap, RuleStaleAct, RuleOneLeader, RuleMembers, RuleRegistration, RuleCleanExit}},
		{"revocation stamped within eps of the next grant", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), rec(6020, EvRevoked, 10))
		}, nil},
		{"killed leader is never revoked", func(r *Run) {
			edit(r, "p1", func(x Record) bool { return x.Wall < at(5000).UnixNano() })
			r.Procs[0].Killed, r.Procs[0].Stopped = at(4950), false
			r.Procs = append(r.Procs, inc("p1", 2, rec(5500, EvStart, 0), members(6500, "p1", "p2"), rec(10300, EvExit, 0)))
		}, nil},
		{"paused leader overlapped, wakes and learns it lost", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), duty(6450, 10, false), rec(6460, EvRevoked, 10))
			r.Pauses = []Span{{Proc: Proc{"p1", 1}, Kind: "pause", From: at(3000), To: at(6400)}}
		}, []string{RulePausedOverlap, RuleWake}},
		{"a pause the process noticed itself", func(r *Run) {
			woke := rec(6400, EvWoke, 0)
			woke.Gap = int64(3400 * time.Millisecond)
			edit(r, "p1", isEv(EvRevoked), woke, rec(6410, EvRevoked, 10))
		}, []string{RulePausedOverlap, RuleWake}},
		{"grant received before a pause, stamped after it", func(r *Run) {
			edit(r, "p1", func(x Record) bool { return x.Ev != EvRevoked && x.Ev != EvDuty }, rec(1500, EvRevoked, 10))
			r.Procs = append(r.Procs, inc("p3", 1, rec(0, EvStart, 0), rec(6420, EvElected, 15), rec(6430, EvRevoked, 15), rec(10300, EvExit, 0)))
			r.Pauses = []Span{{Proc: Proc{"p3", 1}, Kind: "pause", From: at(2000), To: at(6400)}}
		}, []string{RulePausedOverlap}},
		{"same token again after a reconnect", func(r *Run) {
			edit(r, "p1", nil, rec(1000, EvRevoked, 10), rec(1200, EvElected, 10))
		}, nil},
		{"guarded writes: a paused leader's is refused after it wakes", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), guarded(150, 10, 100), guarded(6450, 10, 0), rec(6460, EvRevoked, 10))
			edit(r, "p2", nil, guarded(6100, 20, 200))
			r.Pauses = []Span{{Proc: Proc{"p1", 1}, Kind: "pause", From: at(3000), To: at(6400)}}
		}, []string{RuleGuarded}},
		{"guarded write sent just before the next grant commits", func(r *Run) {
			edit(r, "p1", nil, guarded(4990, 10, 150))
			edit(r, "p2", nil, guarded(6100, 20, 200))
		}, []string{RuleGuarded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := goodRun()
			tc.change(&run)
			rep := Check(run)
			for _, v := range rep.Violations {
				t.Errorf("violation: %s", v)
			}
			for _, rule := range tc.counts {
				if rep.Checks[rule] == 0 {
					t.Errorf("rule %q not checked: %v", rule, rep.Checks)
				}
			}
		})
	}
}

func TestCheckCatchesViolations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Run)
		want   []string // rules that must be reported
	}{
		{"token goes down", func(r *Run) {
			edit(r, "p2", isEv(EvElected), rec(6000, EvElected, 5))
			edit(r, "p2", func(x Record) bool { return x.Token != 20 }, duty(6050, 5, true), rec(10200, EvRevoked, 5))
		}, []string{RuleTokens}},
		{"two leaders at once", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), rec(6500, EvRevoked, 10))
		}, []string{RuleOverlap}},
		{"a leader never revoked", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked))
		}, []string{RuleOverlap, RuleOneLeader}},
		{"cut-off leader revoked after the next grant", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), rec(6500, EvRevoked, 10))
			r.Cutoffs = []Span{{Proc: Proc{"p1", 1}, Kind: "proxy-stall", From: at(4000), To: at(7000)}}
		}, []string{RuleCutoff}},
		{"paused leader acts after waking", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), duty(6450, 10, true), rec(6500, EvRevoked, 10))
			r.Pauses = []Span{{Proc: Proc{"p1", 1}, Kind: "pause", From: at(3000), To: at(6400)}}
		}, []string{RuleStaleAct, RuleWake}},
		{"paused leader never learns it lost", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), rec(9500, EvRevoked, 10))
			r.Pauses = []Span{{Proc: Proc{"p1", 1}, Kind: "pause", From: at(3000), To: at(6400)}}
		}, []string{RulePausedOverlap}},
		{"act on a superseded token", func(r *Run) {
			edit(r, "p1", nil, duty(6100, 10, true))
		}, []string{RuleStaleAct}},
		{"no leader at the end", func(r *Run) {
			edit(r, "p2", isEv(EvRevoked), rec(7500, EvRevoked, 20))
		}, []string{RuleOneLeader}},
		{"leader elected too late", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), rec(5000, EvRevoked, 10))
			edit(r, "p2", func(x Record) bool { return x.Token != 20 }, rec(9000, EvElected, 20), rec(10200, EvRevoked, 20))
		}, []string{RuleOneLeader}},
		{"two leaders at the end", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), rec(5000, EvRevoked, 10), rec(8500, EvElected, 30), rec(10200, EvRevoked, 30))
		}, []string{RuleOneLeader, RuleOverlap}},
		{"leader is a killed process", func(r *Run) {
			r.Procs[1].Killed, r.Procs[1].Stopped = at(7000), false
			edit(r, "p2", isEv(EvRevoked))
			r.Procs = append(r.Procs, inc("p2", 2, rec(7500, EvStart, 0), members(7600, "p1", "p2"), rec(10300, EvExit, 0)))
		}, []string{RuleOneLeader}},
		{"watcher ends with a wrong set", func(r *Run) {
			edit(r, "p1", nil, members(9000, "p1"))
		}, []string{RuleMembers}},
		{"watcher converges too late", func(r *Run) {
			edit(r, "p2", isEv(EvMembers), members(400, "p2"), members(9000, "p1", "p2"))
		}, []string{RuleMembers}},
		{"watcher never sees a set", func(r *Run) {
			edit(r, "p2", isEv(EvMembers))
		}, []string{RuleMembers}},
		{"registration lost", func(r *Run) {
			r.Truth = []string{"p2"}
		}, []string{RuleRegistration, RuleMembers}},
		{"ghost registration", func(r *Run) {
			r.Truth = []string{"p1", "p2", "p3"}
		}, []string{RuleMembers}},
		{"goroutine leak", func(r *Run) {
			edit(r, "p2", isEv(EvExit), Record{Ev: EvExit, Wall: at(10300).UnixNano(), Leak: "found unexpected goroutines"})
		}, []string{RuleCleanExit}},
		{"panic", func(r *Run) {
			r.Procs[0].Stderr = "panic: runtime error: index out of range"
		}, []string{RuleCleanExit}},
		{"data race", func(r *Run) {
			r.Procs[1].Stderr = "WARNING: DATA RACE\nWrite at ..."
		}, []string{RuleCleanExit}},
		{"no exit record", func(r *Run) {
			edit(r, "p2", isEv(EvExit))
			r.Procs[1].Exit = -1
		}, []string{RuleCleanExit}},
		{"bad exit status", func(r *Run) {
			r.Procs[1].Exit = 3
		}, []string{RuleCleanExit}},
		{"revoked a token never held", func(r *Run) {
			edit(r, "p2", nil, rec(100, EvRevoked, 7))
		}, []string{RuleWellFormed}},
		{"records out of order", func(r *Run) {
			r.Procs[0].History[2].Seq = 9
		}, []string{RuleWellFormed}},
		{"deposed leader's guarded write commits", func(r *Run) {
			edit(r, "p1", isEv(EvRevoked), guarded(6450, 10, 300), rec(6460, EvRevoked, 10))
			edit(r, "p2", nil, guarded(6100, 20, 200))
			r.Pauses = []Span{{Proc: Proc{"p1", 1}, Kind: "pause", From: at(3000), To: at(6400)}}
		}, []string{RuleGuarded}},
		{"guarded writes out of token order in ZooKeeper's order", func(r *Run) {
			// Sent before p2's grant was stamped, but committed after p2's write.
			edit(r, "p1", nil, guarded(4990, 10, 300))
			edit(r, "p2", nil, guarded(6100, 20, 200))
		}, []string{RuleGuarded}},
		{"run too short to settle", func(r *Run) {
			r.Check = at(7500)
		}, []string{RuleOneLeader}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := goodRun()
			tc.change(&run)
			rep := Check(run)
			var got []string
			for _, v := range rep.Violations {
				got = append(got, v.Rule)
				// Every violation must say what it is about.
				if v.Msg == "" || strings.Contains(v.String(), "%!") {
					t.Errorf("badly reported: %s", v)
				}
			}
			for _, rule := range tc.want {
				if !slices.Contains(got, rule) {
					t.Errorf("want a violation of %q, got %v", rule, rep.Violations)
				}
			}
			if t.Failed() || testing.Verbose() {
				for _, v := range rep.Violations {
					t.Logf("%s", v)
				}
			}
		})
	}
}

func TestFailovers(t *testing.T) {
	run := goodRun()
	rep := Check(run)
	if len(rep.Failovers) != 1 || rep.Failovers[0] != time.Second {
		t.Errorf("failovers %v, want [1s]", rep.Failovers)
	}
	if rep.Margin != time.Second {
		t.Errorf("margin %v, want 1s", rep.Margin)
	}
	// A paused leader's leadership ends, for the failover time, when it stops.
	edit(&run, "p1", isEv(EvRevoked), rec(6460, EvRevoked, 10))
	run.Pauses = []Span{{Proc: Proc{"p1", 1}, Kind: "pause", From: at(3000), To: at(6400)}}
	if rep := Check(run); len(rep.Failovers) != 1 || rep.Failovers[0] != 3*time.Second {
		t.Errorf("failovers after a pause %v, want [3s]", rep.Failovers)
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0, 1}, {50, 3}, {90, 4}, {100, 5}} {
		if got := Percentile(ds, tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("Percentile of nothing")
	}
}

func TestWriterAndReadHistory(t *testing.T) {
	path := t.TempDir() + "/h.jsonl"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Now().Add(-time.Second)
	w := NewWriter(f, "p1", 2, epoch)
	w.Write(Record{Ev: EvElected, Token: 42})
	w.WriteAt(time.Now(), Record{Ev: EvMembers, Members: []string{"a", "b"}})
	f.Write([]byte(`{"p":"p1","inc":2,"seq":3,"ev":"dut`)) // cut short by SIGKILL
	f.Close()
	recs, err := ReadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Token != 42 || recs[0].P != "p1" || recs[0].Inc != 2 || recs[0].Seq != 1 ||
		recs[1].Seq != 2 || !slices.Equal(recs[1].Members, []string{"a", "b"}) || recs[0].Since < int64(time.Second) {
		t.Fatalf("read back %+v", recs)
	}
}

func TestCheckCountsGuardedWrites(t *testing.T) {
	run := goodRun()
	edit(&run, "p1", isEv(EvRevoked), guarded(150, 10, 100), guarded(2000, 10, 0), guarded(6450, 10, 0), rec(6460, EvRevoked, 10))
	edit(&run, "p2", nil, guarded(6100, 20, 200))
	run.Pauses = []Span{{Proc: Proc{"p1", 1}, Kind: "pause", From: at(3000), To: at(6400)}}
	rep := Check(run)
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
	if g := rep.Guarded; g.Committed != 2 || g.Refused != 2 || g.DeposedRefused != 1 {
		t.Fatalf("guarded writes counted %+v, want 2 committed, 2 refused, 1 of them deposed", g)
	}
}
