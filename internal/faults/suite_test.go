//go:build linux

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// The suite's knobs. The short run is part of the normal test suite; set
// LIGHTHOUSE_SOAK to a duration ("10m") for the long run, which repeats
// trials until that much time has passed and prints a summary.
// LIGHTHOUSE_FAULTS_SEED=<n> replays the schedule of a failed trial (the
// faults, their targets and their timing are drawn from it; the system's
// own timing is not under its control).
const (
	sessionTimeout = 2 * time.Second
	participants   = 4
	shortFaults    = 40 * time.Second // fault phase of the short run
	soakFaults     = 60 * time.Second // fault phase of each soak trial
	// eps is the slack for comparing wall clocks of different processes:
	// the stamp of a revocation can trail the revocation by a scheduling
	// delay (see Check). The library's own margin is a third of the session
	// timeout, 667 ms here.
	eps = 25 * time.Millisecond
	// settle bounds the time from the last fault's end until the system has
	// converged: a session timeout for sessions cut off to expire, plus the
	// library's longest retry backoff (5 s, +50% jitter), plus a reconnect.
	settle = sessionTimeout + 7500*time.Millisecond + time.Second
)

func TestFaults(t *testing.T) {
	soak := time.Duration(0)
	if v := os.Getenv("LIGHTHOUSE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LIGHTHOUSE_SOAK=%q: %v", v, err)
		}
		soak = d
	}
	if testing.Short() && soak == 0 {
		t.Skip("the fault suite takes about a minute")
	}
	seed := uint64(time.Now().UnixNano())
	replay := false
	if v := os.Getenv("LIGHTHOUSE_FAULTS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("LIGHTHOUSE_FAULTS_SEED=%q: %v", v, err)
		}
		seed, replay = s, true
	}
	bin := buildParticipant(t)
	zkc := zktest.StartT(t, 3)

	sum := summary{faults: map[string]int{}, checks: map[string]int{}}
	start := time.Now()
	faultTime := shortFaults
	if soak > 0 {
		faultTime = soakFaults
	}
	for trial := 1; ; trial++ {
		s := seed + uint64(trial-1)
		ok := t.Run(fmt.Sprintf("trial%d", trial), func(t *testing.T) {
			t.Logf("seed %d (replay: LIGHTHOUSE_FAULTS_SEED=%d go test -run 'TestFaults$' ./internal/faults/)", s, s)
			fmt.Fprintf(os.Stderr, "faults: trial %d seed %d\n", trial, s)
			runTrial(t, zkc, bin, s, faultTime, &sum)
		})
		sum.trials++
		if !ok || replay || soak == 0 || time.Since(start) >= soak {
			break
		}
	}
	report := sum.String(time.Since(start))
	t.Log(report)
	if soak > 0 {
		fmt.Println(report)
	}
}

// summary adds up the trials of a run.
type summary struct {
	mu         sync.Mutex
	trials     int
	faults     map[string]int
	checks     map[string]int
	violations int
	failovers  []time.Duration
	byFault    map[string][]time.Duration // failovers by the fault that began last before them
	margin     time.Duration
	guarded    struct{ Committed, Refused, DeposedRefused int }
}

func (s *summary) add(faults map[string]int, cause func(time.Time) string, rep Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byFault == nil {
		s.byFault = make(map[string][]time.Duration)
	}
	for i, d := range rep.Failovers {
		k := cause(rep.FailoverFrom[i])
		s.byFault[k] = append(s.byFault[k], d)
	}
	for k, n := range faults {
		s.faults[k] += n
	}
	for k, n := range rep.Checks {
		s.checks[k] += n
	}
	s.violations += len(rep.Violations)
	s.failovers = append(s.failovers, rep.Failovers...)
	s.guarded.Committed += rep.Guarded.Committed
	s.guarded.Refused += rep.Guarded.Refused
	s.guarded.DeposedRefused += rep.Guarded.DeposedRefused
	if s.margin == 0 || rep.Margin < s.margin {
		s.margin = rep.Margin
	}
}

func (s *summary) String(elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "fault suite: %d trials in %v, %d participants, session timeout %v\n", s.trials, elapsed.Round(time.Second), participants, sessionTimeout)
	fmt.Fprintf(&b, "faults injected:")
	total := 0
	for _, k := range sortedKeys(s.faults) {
		fmt.Fprintf(&b, " %s=%d", k, s.faults[k])
		total += s.faults[k]
	}
	fmt.Fprintf(&b, " (total %d)\nchecks done:\n", total)
	for _, k := range sortedKeys(s.checks) {
		fmt.Fprintf(&b, "  %6d  %s\n", s.checks[k], k)
	}
	fmt.Fprintf(&b, "guarded writes: %d committed, %d refused as not the leader (%d of them sent by a deposed leader)\n",
		s.guarded.Committed, s.guarded.Refused, s.guarded.DeposedRefused)
	fmt.Fprintf(&b, "violations: %d\n", s.violations)
	fmt.Fprintf(&b, "failovers (end of a leadership to the next grant): n=%d p50=%v p90=%v max=%v\n", len(s.failovers),
		Percentile(s.failovers, 50).Round(time.Millisecond), Percentile(s.failovers, 90).Round(time.Millisecond),
		Percentile(s.failovers, 100).Round(time.Millisecond))
	fmt.Fprintf(&b, "failovers by the fault that began last before them (max should stay within the session timeout, the ensemble's recovery and 1 s):\n")
	for _, k := range sortedKeys(s.byFault) {
		d := s.byFault[k]
		fmt.Fprintf(&b, "  %-16s n=%-3d p50=%-8v max=%v\n", k, len(d), Percentile(d, 50).Round(time.Millisecond), Percentile(d, 100).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "smallest margin from a revocation to the next grant: %v", s.margin.Round(time.Millisecond))
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// buildParticipant builds the participant helper once, with the race
// detector if the test has it.
func buildParticipant(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "participant")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "./participant")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build participant: %v\n%s", err, out)
	}
	return bin
}

// trial is one run of participants under a fault schedule.
type trial struct {
	t       *testing.T
	zk      *zktest.Cluster
	bin     string
	dir     string
	servers string // the chroot, "/TestFaults_trial1-1"
	epoch   time.Time
	sess    *lighthouse.Session // straight to the ensemble, for the harness

	mu       sync.Mutex
	members  map[string]*member
	procs    []*incarnation
	pauses   []Span
	cutoffs  []Span
	injected map[string]int
	began    []began  // every fault, in the order they began
	log      []string // what the harness did, for a failure's report
}

// member is one participant ID, with its proxies (one per server) and its
// current process.
type member struct {
	id      string
	proxies []*zktest.Proxy
	cur     *incarnation
}

type incarnation struct {
	Proc
	cmd     *exec.Cmd
	history string
	stderr  string
	killed  time.Time
	stopped bool
	exit    int
	done    chan struct{}
}

// newTrial makes a trial under a root of its own, with the harness's session
// to the ensemble.
func newTrial(t *testing.T, zkc *zktest.Cluster, bin string) *trial {
	root := zkc.Root(t)
	tr := &trial{
		t: t, zk: zkc, bin: bin, dir: t.TempDir(), epoch: time.Now(),
		servers: root[strings.IndexByte(root, '/'):], members: map[string]*member{}, injected: map[string]int{},
	}
	sess, err := lighthouse.Connect(context.Background(), root, lighthouse.WithSessionTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	tr.sess = sess
	return tr
}

func runTrial(t *testing.T, zkc *zktest.Cluster, bin string, seed uint64, faultTime time.Duration, sum *summary) {
	tr := newTrial(t, zkc, bin)

	for i := range participants {
		m := &member{id: fmt.Sprintf("p%d", i+1)}
		for s := range zkc.Len() {
			m.proxies = append(m.proxies, zktest.ProxyT(t, zkc.Addr(s)))
		}
		tr.members[m.id] = m
	}
	t.Cleanup(tr.killAll)
	for _, m := range tr.members {
		if err := tr.start(m); err != nil {
			t.Fatal(err)
		}
	}

	// Two lanes of faults, one on participants and one on servers, each
	// undoing its own fault before drawing the next.
	deadline := time.Now().Add(faultTime)
	var wg sync.WaitGroup
	wg.Go(func() { tr.participantLane(rand.New(rand.NewPCG(seed, 1)), deadline) })
	wg.Go(func() { tr.serverLane(rand.New(rand.NewPCG(seed, 2)), deadline) })
	wg.Wait()
	quiet := time.Now()
	tr.note("faults stopped; settling for %v", settle+time.Second)
	time.Sleep(settle + time.Second)
	check := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	nodes, err := tr.sess.Instances(ctx, "svc")
	cancel()
	if err != nil {
		t.Fatalf("instances at the end: %v", err)
	}
	var truth []string
	for _, n := range nodes {
		truth = append(truth, n.ID)
	}
	tr.stopAll()

	run := Run{Pauses: tr.pauses, Cutoffs: tr.cutoffs, Quiet: quiet, Check: check, Settle: settle, Eps: eps, Truth: truth}
	for _, m := range tr.members {
		run.Live = append(run.Live, m.id)
	}
	for _, p := range tr.procs {
		hist, err := ReadHistory(p.history)
		if err != nil {
			t.Fatalf("%s: %v", p.Proc, err)
		}
		run.Procs = append(run.Procs, Incarnation{Proc: p.Proc, History: hist, Killed: p.killed, Stopped: p.stopped, Exit: p.exit, Stderr: p.stderr})
	}
	rep := Check(run)
	sum.add(tr.injected, tr.cause, rep)
	t.Logf("faults: %v; checks: %v; failovers: n=%d p50=%v max=%v; margin %v; guarded writes %+v", tr.injected, rep.Checks, len(rep.Failovers),
		Percentile(rep.Failovers, 50).Round(time.Millisecond), Percentile(rep.Failovers, 100).Round(time.Millisecond), rep.Margin.Round(time.Millisecond), rep.Guarded)
	if len(rep.Violations) > 0 {
		t.Logf("what the harness did (seconds since the trial's start):\n%s", strings.Join(tr.log, "\n"))
		for _, v := range rep.Violations {
			t.Errorf("violation: %s", v)
		}
		t.Logf("histories are in %s (kept: LIGHTHOUSE_FAULTS_KEEP=1)", tr.dir)
		if os.Getenv("LIGHTHOUSE_FAULTS_KEEP") != "" {
			keep, _ := os.MkdirTemp("", "faults-histories-")
			exec.Command("cp", "-r", tr.dir+"/.", keep).Run()
			t.Logf("histories copied to %s", keep)
		}
	}
}

func (tr *trial) note(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.log = append(tr.log, fmt.Sprintf("%8.3f  ", time.Since(tr.epoch).Seconds())+fmt.Sprintf(format, args...))
}

func (tr *trial) inject(kind string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.injected[kind]++
	tr.began = append(tr.began, began{time.Now(), kind})
}

// cause names the fault that began last at or before t ("none" if none did).
func (tr *trial) cause(t time.Time) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	k := "none"
	for _, b := range tr.began {
		if !b.at.After(t) {
			k = b.kind
		}
	}
	return k
}

// began is when a fault of a kind began.
type began struct {
	at   time.Time
	kind string
}

// start starts a new incarnation of m.
func (tr *trial) start(m *member) error {
	inc := 1
	if m.cur != nil {
		inc = m.cur.Inc + 1
	}
	var addrs []string
	for _, p := range m.proxies {
		addrs = append(addrs, p.Addr())
	}
	p := &incarnation{
		Proc:    Proc{ID: m.id, Inc: inc},
		history: filepath.Join(tr.dir, fmt.Sprintf("%s-%d.jsonl", m.id, inc)),
		done:    make(chan struct{}),
	}
	stderr, err := os.Create(filepath.Join(tr.dir, fmt.Sprintf("%s-%d.stderr", m.id, inc)))
	if err != nil {
		return err
	}
	p.cmd = exec.Command(tr.bin,
		"-id", m.id, "-inc", strconv.Itoa(inc),
		"-zk", strings.Join(addrs, ",")+tr.servers,
		"-session-timeout", sessionTimeout.String(),
		"-epoch", strconv.FormatInt(tr.epoch.UnixNano(), 10),
		"-history", p.history)
	p.cmd.Stdout, p.cmd.Stderr = stderr, stderr
	// If the test dies, so do its participants.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("start %s: %w", p.Proc, err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		stderr.Close()
		b, _ := os.ReadFile(stderr.Name())
		tr.mu.Lock()
		defer tr.mu.Unlock()
		p.stderr = string(b)
		p.exit = p.cmd.ProcessState.ExitCode()
		if err != nil && p.exit == -1 && p.killed.IsZero() && !p.stopped {
			p.stderr += fmt.Sprintf("\nunexpected end: %v", err)
		}
	}()
	tr.mu.Lock()
	m.cur = p
	tr.procs = append(tr.procs, p)
	tr.mu.Unlock()
	tr.note("start %s (pid %d)", p.Proc, p.cmd.Process.Pid)
	return nil
}

// deleteNodes deletes id's election and registration nodes from the
// harness's session and says what it deleted.
func (tr *trial) deleteNodes(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var done []string
	ps, err := tr.sess.Participants(ctx, "/election")
	if err != nil {
		return err.Error()
	}
	for _, p := range ps {
		if p.ID == id {
			if err := tr.sess.Delete(ctx, "/election/"+p.Node, lighthouse.AnyVersion); err == nil {
				done = append(done, p.Node)
			}
		}
	}
	if err := tr.sess.Delete(ctx, "/services/svc/"+id, lighthouse.AnyVersion); err == nil {
		done = append(done, "/services/svc/"+id)
	}
	return strings.Join(done, ", ")
}

// leader returns the election's leader as ZooKeeper has it, "" if none.
func (tr *trial) leader() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, err := tr.sess.Leader(ctx, "/election")
	if err != nil {
		return ""
	}
	return p.ID
}

// pick returns a participant: the leader half the time.
func (tr *trial) pick(rng *rand.Rand) *member {
	ids := sortedKeys(tr.members)
	id := ids[rng.IntN(len(ids))]
	if rng.IntN(2) == 0 {
		if l := tr.leader(); l != "" {
			id = l
		}
	}
	return tr.members[id]
}

// between draws a duration uniformly from [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

var participantFaults = []string{"sigkill", "pause-long", "pause-short", "proxy-cut", "proxy-stall", "proxy-cut-one", "proxy-delay", "delete-nodes"}

func (tr *trial) participantLane(rng *rand.Rand, deadline time.Time) {
	time.Sleep(between(rng, 500*time.Millisecond, 1500*time.Millisecond))
	for time.Now().Before(deadline) {
		kind := participantFaults[rng.IntN(len(participantFaults))]
		m := tr.pick(rng)
		p := m.cur
		tr.inject(kind)
		switch kind {
		case "sigkill":
			hold := between(rng, 0, 2*sessionTimeout)
			tr.mu.Lock()
			p.killed = time.Now()
			tr.mu.Unlock()
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			tr.note("SIGKILL %s; restart in %v", p.Proc, hold)
			time.Sleep(hold)
			if err := tr.start(m); err != nil {
				tr.t.Error(err)
				return
			}
		case "pause-long", "pause-short":
			hold := between(rng, sessionTimeout*3/2, sessionTimeout*5/2)
			if kind == "pause-short" {
				hold = between(rng, 50*time.Millisecond, sessionTimeout/3)
			}
			from := time.Now()
			p.cmd.Process.Signal(syscall.SIGSTOP)
			tr.note("SIGSTOP %s for %v", p.Proc, hold)
			time.Sleep(hold)
			p.cmd.Process.Signal(syscall.SIGCONT)
			to := time.Now()
			tr.mu.Lock()
			tr.pauses = append(tr.pauses, Span{Proc: p.Proc, Kind: kind, From: from, To: to})
			tr.mu.Unlock()
			tr.note("SIGCONT %s", p.Proc)
		case "proxy-cut", "proxy-stall":
			hold := between(rng, sessionTimeout/4, 2*sessionTimeout)
			from := time.Now()
			for _, px := range m.proxies {
				if kind == "proxy-cut" {
					px.Cut()
				} else {
					px.Stall()
				}
			}
			tr.note("%s %s for %v", kind, p.Proc, hold)
			time.Sleep(hold)
			for _, px := range m.proxies {
				px.Heal()
			}
			tr.mu.Lock()
			tr.cutoffs = append(tr.cutoffs, Span{Proc: p.Proc, Kind: kind, From: from, To: time.Now()})
			tr.mu.Unlock()
			tr.note("heal %s", p.Proc)
		case "proxy-cut-one":
			i := rng.IntN(len(m.proxies))
			hold := between(rng, 200*time.Millisecond, 2*sessionTimeout)
			m.proxies[i].Cut()
			tr.note("cut %s's proxy to server %d for %v", p.Proc, i, hold)
			time.Sleep(hold)
			m.proxies[i].Heal()
		case "delete-nodes":
			// An operator deletes the participant's election and
			// registration nodes from another session: the participant
			// must stop leading at once and come back on new nodes.
			tr.note("delete %s's nodes: %s", p.Proc, tr.deleteNodes(m.id))
		case "proxy-delay":
			d := between(rng, 10*time.Millisecond, 300*time.Millisecond)
			hold := between(rng, 500*time.Millisecond, 3*time.Second)
			for _, px := range m.proxies {
				px.Delay(d)
			}
			tr.note("delay %s by %v for %v", p.Proc, d, hold)
			time.Sleep(hold)
			for _, px := range m.proxies {
				px.Delay(0)
			}
		}
		time.Sleep(between(rng, 100*time.Millisecond, time.Second))
	}
}

var serverFaults = []string{"kill-follower", "kill-zk-leader", "rolling-restart"}

func (tr *trial) serverLane(rng *rand.Rand, deadline time.Time) {
	time.Sleep(between(rng, time.Second, 3*time.Second))
	for time.Now().Before(deadline) {
		kind := serverFaults[rng.IntN(len(serverFaults))]
		if kind == "rolling-restart" && rng.IntN(2) == 0 {
			kind = serverFaults[rng.IntN(2)] // rarer: it takes a while
		}
		tr.inject(kind)
		switch kind {
		case "kill-follower", "kill-zk-leader":
			leader, err := tr.zk.Leader()
			if err != nil {
				tr.t.Errorf("no ZooKeeper leader: %v", err)
				return
			}
			i := leader
			if kind == "kill-follower" {
				i = (leader + 1 + rng.IntN(2)) % 3
			}
			hold := between(rng, 200*time.Millisecond, 3*time.Second)
			if err := tr.zk.Kill(i); err != nil {
				tr.t.Errorf("kill server %d: %v", i, err)
			}
			tr.note("%s: killed server %d for %v", kind, i, hold)
			time.Sleep(hold)
			if !tr.restart(i) {
				return
			}
		case "rolling-restart":
			tr.note("rolling restart")
			for i := range tr.zk.Len() {
				if err := tr.zk.Stop(i); err != nil {
					tr.t.Errorf("stop server %d: %v", i, err)
				}
				if !tr.restart(i) {
					return
				}
			}
		}
		time.Sleep(between(rng, time.Second, 4*time.Second))
	}
}

// restart restarts server i and reports whether it serves again.
func (tr *trial) restart(i int) bool {
	for attempt := 1; ; attempt++ {
		err := tr.zk.Restart(i)
		if err == nil {
			tr.note("server %d serves again", i)
			return true
		}
		if attempt == 3 {
			tr.t.Errorf("restart server %d: %v", i, err)
			return false
		}
		tr.note("restart server %d: %v; again", i, err)
	}
}

// stopAll sends every participant SIGTERM and waits for it to exit.
func (tr *trial) stopAll() {
	var wg sync.WaitGroup
	for _, m := range tr.members {
		p := m.cur
		tr.mu.Lock()
		p.stopped = true
		tr.mu.Unlock()
		p.cmd.Process.Signal(syscall.SIGTERM)
		wg.Go(func() {
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Signal(syscall.SIGKILL)
				<-p.done
				tr.mu.Lock()
				p.exit = -1
				tr.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// killAll makes sure no participant outlives the trial.
func (tr *trial) killAll() {
	for _, p := range tr.procs {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGKILL)
			p.cmd.Process.Signal(syscall.SIGCONT)
			<-p.done
		}
	}
}
