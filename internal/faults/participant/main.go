// Command participant is one participant of the fault suite (package
// faults): it connects to ZooKeeper, joins one election, registers under
// one service, follows that service's members and writes every event it
// sees to a history file, until SIGTERM. Then it leaves cleanly, looks for
// leaked goroutines with goleak, records the result and exits (status 3 if
// it found a leak).
//
// While it leads it acts every -duty: it checks Leadership.Valid and
// records the answer, as a leader guarding a write with Valid would, and
// writes its token to the -guarded node in a transaction with
// Leadership.Guard, recording whether it committed (with its zxid). On
// waking from a pause it makes such a write at once with the newest
// leadership it held, led or not since, as a process paused mid-act would. A
// watchdog notices when the process did not run for a while (SIGSTOP, or
// starvation) and records it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/internal/faults"
	"go.uber.org/goleak"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		id       = flag.String("id", "", "participant ID (election and service)")
		inc      = flag.Int("inc", 1, "incarnation of this ID")
		servers  = flag.String("zk", "", "connect string")
		election = flag.String("election", "/election", "election path")
		service  = flag.String("service", "svc", "service name")
		timeout  = flag.Duration("session-timeout", 2*time.Second, "session timeout")
		epochNs  = flag.Int64("epoch", 0, "the run's shared start, Unix ns")
		history  = flag.String("history", "", "history file (appended)")
		duty     = flag.Duration("duty", 50*time.Millisecond, "a leader acts this often")
		guarded  = flag.String("guarded", "/guarded", "node a leader writes with a guard")
	)
	flag.Parse()
	if *id == "" || *servers == "" || *history == "" {
		fmt.Fprintln(os.Stderr, "participant: -id, -zk and -history are required")
		return 2
	}
	f, err := os.OpenFile(*history, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "participant:", err)
		return 2
	}
	defer f.Close()
	h := faults.NewWriter(f, *id, *inc, time.Unix(0, *epochNs))
	h.Write(faults.Record{Ev: faults.EvStart, Pid: os.Getpid()})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	p := &participant{h: h, id: *id}
	code := p.run(ctx, *servers, *election, *service, *guarded, *timeout, *duty)
	stop()

	// Everything the participant started has ended: what is left leaked.
	leak := ""
	if err := goleak.Find(); err != nil {
		leak = err.Error()
		code = 3
	}
	h.Write(faults.Record{Ev: faults.EvExit, Leak: leak})
	return code
}

type participant struct {
	h  *faults.Writer
	id string
}

// run does the participant's work until ctx ends, then leaves and closes
// the session and waits for every goroutine it started.
func (p *participant) run(ctx context.Context, servers, election, service, guarded string, timeout, duty time.Duration) int {
	var wg sync.WaitGroup
	defer wg.Wait()
	woke := make(chan struct{}, 1)
	wg.Go(func() { p.watchdog(ctx, woke) })

	sess, err := lighthouse.Connect(ctx, servers, lighthouse.WithSessionTimeout(timeout))
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "participant: connect:", err)
			return 1
		}
		return 0
	}
	defer sess.Close()
	events := sess.Events(ctx)
	p.h.Write(faults.Record{Ev: faults.EvConnected, Session: sess.SessionID()})
	wg.Go(func() { p.follow(events) })

	if _, err := retry(ctx, p, "create guarded node", func() (string, error) {
		path, err := sess.Create(ctx, guarded, nil, lighthouse.Persistent)
		if errors.Is(err, lighthouse.ErrNodeExists) {
			err = nil
		}
		return path, err
	}); err != nil {
		return 0
	}
	leadership, err := retry(ctx, p, "elect", func() (<-chan lighthouse.Leadership, error) {
		return sess.Elect(ctx, election, lighthouse.WithID(p.id))
	})
	if err != nil {
		return 0 // stopped
	}
	reg, err := retry(ctx, p, "register", func() (*lighthouse.Registration, error) {
		return sess.Register(ctx, service, lighthouse.Node{ID: p.id, Data: []byte(fmt.Sprint(os.Getpid()))})
	})
	if err != nil {
		return 0
	}
	defer reg.Close()
	members, err := retry(ctx, p, "members", func() (<-chan []lighthouse.Node, error) {
		return sess.Members(ctx, service)
	})
	if err != nil {
		return 0
	}

	tick := time.NewTicker(duty)
	defer tick.Stop()
	var cur lighthouse.Leadership
	var revoked func() // records cur's revocation, once
	writing := false   // a guarded write is in flight
	written := make(chan struct{}, 1)
	var led lighthouse.Leadership // the newest leadership held, for a write on waking
	wakeWrite := false            // woke while a write was in flight: write after it
	write := func(l lighthouse.Leadership, untilAnswered bool) {
		writing = true
		wg.Go(func() {
			// On waking, the connection the pause broke answers first: try
			// again until the server itself answers.
			for range 100 {
				err := p.guardedWrite(ctx, sess, l, guarded)
				if !untilAnswered || !errors.Is(err, lighthouse.ErrConnectionLoss) && !errors.Is(err, lighthouse.ErrSessionExpired) {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
			written <- struct{}{}
		})
	}
	for {
		select {
		case <-ctx.Done():
			return 0
		case l, ok := <-leadership:
			if !ok {
				return 0
			}
			if l.IsLeader && !(cur.IsLeader && cur.Token == l.Token && cur.Context == l.Context) {
				// A revocation is recorded the moment the Context ends (the
				// session's Close ends it too, after the run is checked), and
				// always before the next grant.
				if revoked != nil && cur.Context.Err() != nil {
					revoked()
				}
				p.h.Write(faults.Record{Ev: faults.EvElected, Token: l.Token})
				token := l.Token
				revoked = sync.OnceFunc(func() { p.h.Write(faults.Record{Ev: faults.EvRevoked, Token: token}) })
				context.AfterFunc(l.Context, revoked)
			}
			if l.IsLeader {
				led = l
			}
			cur = l
		case ms, ok := <-members:
			if !ok {
				return 0
			}
			ids := make([]string, len(ms))
			for i, m := range ms {
				ids[i] = m.ID
			}
			p.h.Write(faults.Record{Ev: faults.EvMembers, Members: ids})
		case <-tick.C:
			if cur.IsLeader && cur.Context.Err() == nil {
				// The time is read before Valid: the act happens no earlier.
				t := time.Now()
				ok := cur.Valid()
				p.h.WriteAt(t, faults.Record{Ev: faults.EvDuty, Token: cur.Token, OK: ok})
				if !writing { // one at a time, off the loop: it may wait for a timeout
					write(cur, false)
				}
			}
		case <-woke:
			// A process paused between deciding to write and writing: it
			// writes with the leadership it held, whatever happened since.
			if led.IsLeader {
				if writing {
					wakeWrite = true
				} else {
					write(led, true)
				}
			}
		case <-written:
			writing = false
			if wakeWrite {
				wakeWrite = false
				write(led, true)
			}
		}
	}
}

// guardedWrite writes l's token to path, guarded by l, and records the
// outcome, stamped when it was sent.
func (p *participant) guardedWrite(ctx context.Context, sess *lighthouse.Session, l lighthouse.Leadership, path string) error {
	t := time.Now()
	res, err := sess.Txn(ctx, l.Guard(), lighthouse.SetOp(path, []byte(strconv.FormatInt(l.Token, 10)), lighthouse.AnyVersion))
	r := faults.Record{Ev: faults.EvGuarded, Token: l.Token}
	if err == nil {
		r.OK, r.Zxid = true, res[1].Stat.Mzxid
	} else {
		r.Err, r.NotLeader = err.Error(), errors.Is(err, lighthouse.ErrNotLeader)
	}
	p.h.WriteAt(t, r)
	return err
}

// follow records the session's events until the channel closes.
func (p *participant) follow(events <-chan lighthouse.Event) {
	for ev := range events {
		r := faults.Record{Session: ev.SessionID}
		switch ev.Type {
		case lighthouse.EventConnected:
			r.Ev = faults.EvConnected
		case lighthouse.EventSuspended:
			r.Ev = faults.EvSuspended
		case lighthouse.EventReconnected:
			r.Ev = faults.EvReconnect
		case lighthouse.EventExpired:
			r.Ev = faults.EvExpired
		case lighthouse.EventRegistered:
			r.Ev = faults.EvRegistered
		case lighthouse.EventError:
			r.Ev, r.Err = faults.EvError, fmt.Sprint(ev.Err)
		default:
			continue
		}
		p.h.WriteAt(ev.Time, r)
	}
}

// watchdog records each time the process did not run for a while, and
// tells woke (without waiting).
func (p *participant) watchdog(ctx context.Context, woke chan<- struct{}) {
	const every, slack = 10 * time.Millisecond, 200 * time.Millisecond
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			now = time.Now() // the tick's time may be from before a pause
			if gap := now.Sub(last); gap > slack {
				p.h.Write(faults.Record{Ev: faults.EvWoke, Gap: int64(gap)})
				select {
				case woke <- struct{}{}:
				default:
				}
			}
			last = now
		}
	}
}

// retry calls f until it succeeds or ctx ends, recording each failure.
func retry[T any](ctx context.Context, p *participant, what string, f func() (T, error)) (T, error) {
	for {
		v, err := f()
		if err == nil {
			return v, nil
		}
		p.h.Write(faults.Record{Ev: faults.EvError, Err: what + ": " + err.Error()})
		select {
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
