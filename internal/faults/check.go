package faults

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Proc names one incarnation of a participant: the Inc-th process run with
// that ID.
type Proc struct {
	ID  string
	Inc int
}

func (p Proc) String() string { return fmt.Sprintf("%s#%d", p.ID, p.Inc) }

// Span is a fault the harness applied to one process from From to To.
type Span struct {
	Proc     Proc
	Kind     string
	From, To time.Time
}

// Incarnation is one participant process as the harness saw it.
type Incarnation struct {
	Proc
	History []Record
	Killed  time.Time // when it was sent SIGKILL; zero if never
	Stopped bool      // sent SIGTERM at the end of the run
	Exit    int       // its exit status if Stopped; -1 if it did not exit in time
	Stderr  string
}

// Run is everything Check needs about one trial.
type Run struct {
	Procs []Incarnation
	// Pauses are the SIGSTOP..SIGCONT spans; Cutoffs the spans during which
	// every proxy of a participant was cut or stalled.
	Pauses, Cutoffs []Span
	// Quiet is when the last fault was undone; Check when observation ended
	// (just before every participant was sent SIGTERM). The system must have
	// settled by Quiet+Settle, and Check must be later than that.
	Quiet, Check time.Time
	Settle       time.Duration
	// Eps is the slack allowed when comparing wall-clock times written by
	// different processes (see Check).
	Eps time.Duration
	// Live are the IDs of the participants running at Check; Truth the
	// service's members read straight from ZooKeeper at Check.
	Live, Truth []string
}

// Rules Check enforces, as named in a Violation and in Report.Checks.
const (
	RuleWellFormed    = "well-formed history"
	RuleTokens        = "tokens strictly increase"
	RuleOverlap       = "no overlapping leaders"
	RulePausedOverlap = "paused leader overlapped by a higher token"
	RuleCutoff        = "cut-off leader revoked before the next is elected"
	RuleStaleAct      = "no act on a superseded leadership"
	RuleWake          = "paused leader's first act after waking is to learn it lost"
	RuleGuarded       = "no guarded write of a deposed leader commits"
	RuleOneLeader     = "exactly one leader after the faults stop"
	RuleMembers       = "member sets converge to the live participants"
	RuleRegistration  = "no registration of a live participant lost"
	RuleCleanExit     = "clean exit: no leak, no panic, no race"
)

// Violation is one broken promise, with the history records that show it.
type Violation struct {
	Rule    string
	Msg     string
	Records []Record
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", v.Rule, v.Msg)
	for _, r := range v.Records {
		fmt.Fprintf(&b, "\n\t%s", r)
	}
	return b.String()
}

// Report is what Check found.
type Report struct {
	Checks     map[string]int // instances checked, per rule
	Violations []Violation
	// Failovers are the leaderless gaps: from the end of a leadership (its
	// revocation, its process's kill or the start of its pause) to the next
	// grant.
	Failovers []time.Duration
	// FailoverFrom is when each failover began, in the order of Failovers.
	FailoverFrom []time.Time
	// Margin is the smallest time seen between a revocation and the next
	// grant to another participant (0 if there was none).
	Margin time.Duration
	// Guarded counts guarded writes: committed, refused with ErrNotLeader,
	// and of those refused, the ones sent after a higher token was granted
	// (a deposed leader's write that the guard stopped).
	Guarded struct{ Committed, Refused, DeposedRefused int }
}

// Leadership is one participant's term as it recorded it.
type Leadership struct {
	Proc  Proc
	Token int64
	// Start is the grant as recorded by the new leader; End the revocation
	// as recorded by the leader, or the harness's SIGKILL; far in the
	// future if neither happened.
	Start, End time.Time
	Elected    Record
	Revoked    *Record
}

// never is the End of a leadership that did not end.
var never = time.Unix(1<<40, 0)

// Check checks a run's histories against lighthouse's promises.
//
// Times from different processes are wall-clock readings (time.Now, one
// CLOCK_REALTIME on one machine), so they are comparable, but each is taken
// a little after the event it stamps: a grant after the library granted it
// and a revocation when the leadership's Context ended (context.AfterFunc,
// then a write), by up to a scheduling delay. A late grant stamp hides
// overlap; a late revocation stamp shows overlap that was not there. Eps
// absorbs the latter: an overlap or a stale act counts only beyond Eps. (The
// library's real margin is a third of the session timeout, see Report.Margin;
// Eps is far below it.)
//
// A process stopped between receiving its grant and stamping it stamps it
// after it wakes: a grant stamped within Eps+100ms of the end of a pause of
// its process, with a higher token granted during the pause, counts from the
// start of that pause.
func Check(run Run) Report {
	c := &checker{run: run, rep: Report{Checks: make(map[string]int), Margin: never.Sub(time.Unix(0, 0))}}
	c.pauses()
	c.wellFormed()
	c.leaderships()
	c.tokens()
	c.overlaps()
	c.acts()
	c.guards()
	c.oneLeader()
	c.members()
	c.exits()
	if c.rep.Margin == never.Sub(time.Unix(0, 0)) {
		c.rep.Margin = 0
	}
	return c.rep
}

type checker struct {
	run    Run
	rep    Report
	paused map[Proc][]Span // harness pauses and pauses the process noticed
	terms  []Leadership    // by Start
}

func (c *checker) fail(rule, msg string, recs ...Record) {
	c.rep.Violations = append(c.rep.Violations, Violation{Rule: rule, Msg: msg, Records: recs})
}

func (c *checker) count(rule string) { c.rep.Checks[rule]++ }

// pauses gathers every span during which a process did not run.
func (c *checker) pauses() {
	c.paused = make(map[Proc][]Span)
	for _, s := range c.run.Pauses {
		c.paused[s.Proc] = append(c.paused[s.Proc], s)
	}
	for _, p := range c.run.Procs {
		for _, r := range p.History {
			if r.Ev == EvWoke {
				t := r.Time()
				c.paused[p.Proc] = append(c.paused[p.Proc], Span{Proc: p.Proc, Kind: "woke", From: t.Add(-time.Duration(r.Gap)), To: t})
			}
		}
	}
}

// pausedAt returns the pause of p that spans t, if any.
func (c *checker) pausedAt(p Proc, t time.Time) (Span, bool) {
	for _, s := range c.paused[p] {
		if !t.Before(s.From.Add(-c.run.Eps)) && !t.After(s.To.Add(c.run.Eps)) {
			return s, true
		}
	}
	return Span{}, false
}

func (c *checker) wellFormed() {
	for _, p := range c.run.Procs {
		c.count(RuleWellFormed)
		open := map[int64]bool{}
		for i, r := range p.History {
			if r.P != p.ID || r.Inc != p.Inc || r.Seq != int64(i+1) {
				c.fail(RuleWellFormed, fmt.Sprintf("%s: record %d out of place", p.Proc, i+1), r)
				break
			}
			switch r.Ev {
			case EvElected:
				if open[r.Token] {
					c.fail(RuleWellFormed, fmt.Sprintf("%s elected twice with token %d without a revocation", p.Proc, r.Token), r)
				}
				open[r.Token] = true
			case EvRevoked:
				if !open[r.Token] {
					c.fail(RuleWellFormed, fmt.Sprintf("%s revoked token %d it did not hold", p.Proc, r.Token), r)
				}
				delete(open, r.Token)
			}
		}
	}
}

// leaderships pairs each grant with its revocation.
func (c *checker) leaderships() {
	for _, p := range c.run.Procs {
		open := map[int64]int{} // token -> index in terms
		for _, r := range p.History {
			switch r.Ev {
			case EvElected:
				open[r.Token] = len(c.terms)
				c.terms = append(c.terms, Leadership{Proc: p.Proc, Token: r.Token, Start: r.Time(), End: never, Elected: r})
			case EvRevoked:
				if i, ok := open[r.Token]; ok {
					r := r
					c.terms[i].End, c.terms[i].Revoked = r.Time(), &r
					delete(open, r.Token)
				}
			}
		}
		for _, i := range open {
			if !p.Killed.IsZero() {
				c.terms[i].End = p.Killed
			}
		}
	}
	// A grant stamped just after its process woke, while a higher token was
	// granted during the pause, was received before the pause.
	for i, a := range c.terms {
		for _, s := range c.paused[a.Proc] {
			if a.Start.Before(s.To) || a.Start.Sub(s.To) > c.run.Eps+100*time.Millisecond {
				continue
			}
			for _, b := range c.terms {
				if b.Token > a.Token && !b.Start.Before(s.From) && !b.Start.After(s.To) {
					c.terms[i].Start = s.From
				}
			}
		}
	}
	slices.SortStableFunc(c.terms, func(a, b Leadership) int { return a.Start.Compare(b.Start) })
}

// tokens: each grant's token is above every earlier grant's, except that a
// leader whose connection came back may lead again with the same token if
// no one led in between.
func (c *checker) tokens() {
	for i := 1; i < len(c.terms); i++ {
		a, b := c.terms[i-1], c.terms[i]
		c.count(RuleTokens)
		if b.Token > a.Token || (b.Token == a.Token && b.Proc == a.Proc) {
			continue
		}
		c.fail(RuleTokens, fmt.Sprintf("%s got token %d after %s got %d", b.Proc, b.Token, a.Proc, a.Token), a.Elected, b.Elected)
	}
}

// overlaps: no two participants lead at once, unless the earlier one was
// paused when the later one was elected (and the later token is higher);
// a leader that was cut off must have been revoked before the next grant.
func (c *checker) overlaps() {
	for j, b := range c.terms {
		for i := range j {
			a := c.terms[i]
			if a.Proc == b.Proc {
				continue
			}
			cut := c.cutoffAt(a.Proc, b.Start)
			if i == j-1 || a.End.After(b.Start) {
				c.count(RuleOverlap)
				if cut {
					c.count(RuleCutoff)
				}
			}
			margin := b.Start.Sub(a.End)
			if margin >= -c.run.Eps {
				if i == j-1 && a.End != never {
					c.rep.Margin = min(c.rep.Margin, margin)
				}
				continue
			}
			if s, ok := c.pausedAt(a.Proc, b.Start); ok && b.Token > a.Token {
				c.count(RulePausedOverlap)
				if a.End.After(s.To.Add(c.run.Settle)) {
					c.fail(RulePausedOverlap, fmt.Sprintf("%s (token %d) woke at %s but learned it lost only %v later",
						a.Proc, a.Token, s.To.Format("15:04:05.000"), a.End.Sub(s.To)), a.Elected, b.Elected)
				}
				continue
			}
			recs := []Record{a.Elected}
			if a.Revoked != nil {
				recs = append(recs, *a.Revoked)
			}
			recs = append(recs, b.Elected)
			rule, what := RuleOverlap, "still led"
			if cut {
				rule, what = RuleCutoff, "was cut off but still led"
			}
			end := "never revoked"
			if a.End != never {
				end = fmt.Sprintf("revoked %v later", a.End.Sub(b.Start))
			}
			c.fail(rule, fmt.Sprintf("%s (token %d) %s when %s was elected (token %d): %s", a.Proc, a.Token, what, b.Proc, b.Token, end), recs...)
		}
	}
	for j := 1; j < len(c.terms); j++ {
		a, b := c.terms[j-1], c.terms[j]
		end := a.End
		for _, s := range c.paused[a.Proc] {
			if s.From.After(a.Start) && s.From.Before(end) {
				end = s.From
			}
		}
		if gap := b.Start.Sub(end); gap >= 0 && end != never {
			c.rep.Failovers = append(c.rep.Failovers, gap)
			c.rep.FailoverFrom = append(c.rep.FailoverFrom, end)
		}
	}
}

// cutoffAt reports whether every proxy of p was cut or stalled at t.
func (c *checker) cutoffAt(p Proc, t time.Time) bool {
	for _, s := range c.run.Cutoffs {
		if s.Proc == p && !t.Before(s.From) && !t.After(s.To) {
			return true
		}
	}
	return false
}

// acts: a leader acts (Valid() true) only while no higher token has been
// granted: a paused leader's first act after waking must be to learn that
// it lost (its Context ends, or Valid() is false).
func (c *checker) acts() {
	for _, p := range c.run.Procs {
		for _, r := range p.History {
			if r.Ev != EvDuty || !r.OK {
				continue
			}
			c.count(RuleStaleAct)
			t := r.Time()
			for _, b := range c.terms {
				if b.Token > r.Token && b.Start.Add(c.run.Eps).Before(t) {
					c.fail(RuleStaleAct, fmt.Sprintf("%s acted as leader (Valid() true, token %d) %v after %s was elected with token %d",
						p.Proc, r.Token, t.Sub(b.Start), b.Proc, b.Token), b.Elected, r)
					break
				}
			}
		}
	}
	// The same, seen from each pause that a leader slept through while
	// another was elected.
	for _, a := range c.terms {
		for _, s := range c.paused[a.Proc] {
			if !(a.Start.Before(s.From) && a.End.After(s.To)) {
				continue
			}
			var next *Leadership
			for i, b := range c.terms {
				if b.Proc != a.Proc && !b.Start.Before(s.From) && !b.Start.After(s.To) {
					next = &c.terms[i]
					break
				}
			}
			if next == nil {
				continue
			}
			c.count(RuleWake)
			for _, p := range c.run.Procs {
				if p.Proc != a.Proc {
					continue
				}
				for _, r := range p.History {
					if r.Time().Before(s.To.Add(-c.run.Eps)) || r.Token != a.Token {
						continue
					}
					if r.Ev == EvDuty && r.OK {
						c.fail(RuleWake, fmt.Sprintf("%s slept through %s's election and then acted as leader", a.Proc, next.Proc), next.Elected, r)
					}
					if r.Ev == EvRevoked || r.Ev == EvDuty {
						break
					}
				}
			}
		}
	}
}

// guards: a guarded write commits only while its leader's node exists, so
// none sent after a higher token was granted (the grant is stamped after the
// library saw the old leader's node gone) commits; and in ZooKeeper's order
// (the zxids the writes committed with) tokens never go down.
func (c *checker) guards() {
	var committed []Record
	for _, p := range c.run.Procs {
		for _, r := range p.History {
			if r.Ev != EvGuarded {
				continue
			}
			t := r.Time()
			var deposedBy *Leadership
			for i, b := range c.terms {
				if b.Token > r.Token && b.Start.Add(c.run.Eps).Before(t) {
					deposedBy = &c.terms[i]
					break
				}
			}
			switch {
			case r.OK:
				c.count(RuleGuarded)
				c.rep.Guarded.Committed++
				committed = append(committed, r)
				if deposedBy != nil {
					c.fail(RuleGuarded, fmt.Sprintf("%s's guarded write (token %d) sent %v after %s was elected with token %d committed",
						p.Proc, r.Token, t.Sub(deposedBy.Start), deposedBy.Proc, deposedBy.Token), deposedBy.Elected, r)
				}
			case r.NotLeader:
				c.rep.Guarded.Refused++
				if deposedBy != nil {
					c.rep.Guarded.DeposedRefused++
				}
			}
		}
	}
	slices.SortFunc(committed, func(a, b Record) int { return cmp.Compare(a.Zxid, b.Zxid) })
	for i := 1; i < len(committed); i++ {
		a, b := committed[i-1], committed[i]
		if b.Token < a.Token {
			c.fail(RuleGuarded, fmt.Sprintf("%s#%d's guarded write (token %d) committed after %s#%d's (token %d) in ZooKeeper's order",
				b.P, b.Inc, b.Token, a.P, a.Inc, a.Token), a, b)
		}
	}
}

// window is when the system must have settled.
func (c *checker) window() (from, to time.Time, ok bool) {
	from, to = c.run.Quiet.Add(c.run.Settle), c.run.Check
	return from, to, !to.Before(from)
}

// oneLeader: from Quiet+Settle to Check exactly one live participant leads,
// throughout.
func (c *checker) oneLeader() {
	from, to, ok := c.window()
	c.count(RuleOneLeader)
	if !ok {
		c.fail(RuleOneLeader, fmt.Sprintf("the run ended %v after the faults stopped, before the %v it must allow", c.run.Check.Sub(c.run.Quiet), c.run.Settle))
		return
	}
	var in []Leadership
	for _, t := range c.terms {
		if t.Start.Before(to) && t.End.After(from) {
			in = append(in, t)
		}
	}
	switch {
	case len(in) == 0:
		c.fail(RuleOneLeader, fmt.Sprintf("no leader from %v after the faults stopped to the end", c.run.Settle))
	case len(in) > 1:
		var recs []Record
		for _, t := range in {
			recs = append(recs, t.Elected)
		}
		c.fail(RuleOneLeader, fmt.Sprintf("%d leaderships from %v after the faults stopped to the end", len(in), c.run.Settle), recs...)
	case in[0].Start.After(from) || in[0].End.Before(to):
		c.fail(RuleOneLeader, fmt.Sprintf("%s led only from %.3fs to %.3fs of a window of %.3fs to %.3fs", in[0].Proc,
			c.since(in[0].Start), c.since(in[0].End), c.since(from), c.since(to)), in[0].Elected)
	case !slices.Contains(c.run.Live, in[0].Proc.ID) || !c.latest(in[0].Proc):
		c.fail(RuleOneLeader, fmt.Sprintf("the leader %s is not a live participant", in[0].Proc), in[0].Elected)
	}
}

// since returns t in seconds from the first record of the run, for messages.
func (c *checker) since(t time.Time) float64 {
	for _, p := range c.run.Procs {
		for _, r := range p.History {
			return float64(t.UnixNano()-(r.Wall-r.Since)) / 1e9
		}
	}
	return float64(t.UnixNano()) / 1e9
}

// latest reports whether p is the newest incarnation of its ID and was not
// killed.
func (c *checker) latest(p Proc) bool {
	for _, q := range c.run.Procs {
		if q.ID == p.ID && (q.Inc > p.Inc || (q.Inc == p.Inc && !q.Killed.IsZero())) {
			return false
		}
	}
	return true
}

// members: every live participant's member set equals the live set
// throughout Quiet+Settle to Check, and so does ZooKeeper's.
func (c *checker) members() {
	live := slices.Clone(c.run.Live)
	slices.Sort(live)
	from, to, ok := c.window()
	if !ok {
		return // reported by oneLeader
	}
	c.count(RuleRegistration)
	truth := slices.Clone(c.run.Truth)
	slices.Sort(truth)
	for _, id := range live {
		if !slices.Contains(truth, id) {
			c.fail(RuleRegistration, fmt.Sprintf("live participant %s is not registered at the end (ZooKeeper has %v)", id, truth))
		}
	}
	if !slices.Equal(truth, live) {
		c.fail(RuleMembers, fmt.Sprintf("ZooKeeper lists %v at the end, the live participants are %v", truth, live))
	}
	for _, p := range c.run.Procs {
		if !slices.Contains(live, p.ID) || !c.latest(p.Proc) {
			continue
		}
		c.count(RuleMembers)
		var last *Record
		for i, r := range p.History {
			if r.Ev != EvMembers || r.Time().After(to) {
				continue
			}
			if r.Time().After(from) && !slices.Equal(r.Members, live) {
				c.fail(RuleMembers, fmt.Sprintf("%s saw %v after the system should have settled, want %v", p.Proc, r.Members, live), r)
			}
			last = &p.History[i]
		}
		switch {
		case last == nil:
			c.fail(RuleMembers, fmt.Sprintf("%s never saw a member set", p.Proc))
		case !slices.Equal(last.Members, live):
			c.fail(RuleMembers, fmt.Sprintf("%s ends with %v, want %v", p.Proc, last.Members, live), *last)
		case last.Time().After(from):
			c.fail(RuleMembers, fmt.Sprintf("%s saw the live set only %v after the faults stopped (bound %v)", p.Proc, last.Time().Sub(c.run.Quiet), c.run.Settle), *last)
		}
	}
}

// exits: participants stopped with SIGTERM exit 0 with no leaked goroutine;
// none panics or races.
func (c *checker) exits() {
	for _, p := range c.run.Procs {
		c.count(RuleCleanExit)
		for _, bad := range []string{"panic:", "fatal error:", "WARNING: DATA RACE"} {
			if strings.Contains(p.Stderr, bad) {
				c.fail(RuleCleanExit, fmt.Sprintf("%s wrote %q to stderr:\n%s", p.Proc, bad, p.Stderr))
			}
		}
		if !p.Stopped {
			continue
		}
		var exit *Record
		for i, r := range p.History {
			if r.Ev == EvExit {
				exit = &p.History[i]
			}
		}
		switch {
		case exit == nil:
			c.fail(RuleCleanExit, fmt.Sprintf("%s did not record a clean exit (status %d)", p.Proc, p.Exit))
		case exit.Leak != "":
			c.fail(RuleCleanExit, fmt.Sprintf("%s leaked goroutines", p.Proc), *exit)
		case p.Exit != 0:
			c.fail(RuleCleanExit, fmt.Sprintf("%s exited with status %d", p.Proc, p.Exit), *exit)
		}
	}
}

// Percentile returns the p-th percentile (0..100) of ds, 0 if empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.SortFunc(s, cmp.Compare)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
