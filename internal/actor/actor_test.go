package actor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every "this eventually happens" assertion, so a broken
// guarantee fails the test instead of hanging it.
const waitLimit = 10 * time.Second

// within fails the test unless ch is closed or receives before waitLimit.
func within[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
	}
}

// finishes runs fn in a goroutine and fails the test unless it returns
// before waitLimit (used to prove that something never blocks).
func finishes(t testing.TB, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	within(t, done, what)
}

func isClosed[T any](ch <-chan T) bool {
	select {
	case _, ok := <-ch:
		return !ok
	default:
		return false
	}
}

// drain reads ch until it is closed and returns what it read.
func drain[T any](t testing.TB, ch <-chan T) []T {
	t.Helper()
	var got []T
	deadline := time.After(waitLimit)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, v)
		case <-deadline:
			t.Fatalf("channel not closed after %v (read %d values)", waitLimit, len(got))
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Start / Actor

func TestActorStop(t *testing.T) {
	errFn := errors.New("fn error")
	tests := []struct {
		name string
		ret  error // what fn returns once its ctx is cancelled
	}{
		{"returns fn error", errFn},
		{"returns nil", nil},
		{"returns ctx error", context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{})
			var sawErr error
			a := Start(context.Background(), func(ctx context.Context) error {
				close(started)
				<-ctx.Done()
				sawErr = ctx.Err()
				return tc.ret
			})
			within(t, started, "fn to start")
			select {
			case <-a.Done():
				t.Fatal("Done closed before Stop")
			default:
			}
			if err := a.Err(); err != nil {
				t.Fatalf("Err before Done = %v, want nil", err)
			}

			var err error
			finishes(t, "Stop", func() { err = a.Stop() })
			if err != tc.ret {
				t.Fatalf("Stop = %v, want %v", err, tc.ret)
			}
			// Stop waited: fn has returned, so its writes are visible.
			if !errors.Is(sawErr, context.Canceled) {
				t.Fatalf("fn saw ctx.Err() = %v, want context.Canceled", sawErr)
			}
			if !isClosed(a.Done()) {
				t.Fatal("Done not closed after Stop")
			}
			if err := a.Err(); err != tc.ret {
				t.Fatalf("Err after Stop = %v, want %v", err, tc.ret)
			}
			if err := a.Stop(); err != tc.ret {
				t.Fatalf("second Stop = %v, want %v", err, tc.ret)
			}
		})
	}
}

func TestActorReturnsOnItsOwn(t *testing.T) {
	errFn := errors.New("finished")
	gate := make(chan struct{})
	ctxCh := make(chan context.Context, 1)
	a := Start(context.Background(), func(ctx context.Context) error {
		ctxCh <- ctx
		<-gate
		return errFn
	})
	ctx := <-ctxCh

	if err := a.Err(); err != nil {
		t.Fatalf("Err while running = %v, want nil", err)
	}
	if isClosed(a.Done()) {
		t.Fatal("Done closed while fn is running")
	}

	close(gate)
	within(t, a.Done(), "Done after fn returned")
	if err := a.Err(); err != errFn {
		t.Fatalf("Err = %v, want %v", err, errFn)
	}
	// The actor's context is released once fn returns.
	within(t, ctx.Done(), "fn's ctx to be cancelled after fn returned")
	if err := a.Stop(); err != errFn {
		t.Fatalf("Stop after return = %v, want %v", err, errFn)
	}
}

func TestActorParentCancel(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	a := Start(parent, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	cancel()
	within(t, a.Done(), "actor to end after parent cancelled")
	if err := a.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v, want context.Canceled", err)
	}
	if err := a.Stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want context.Canceled", err)
	}
}

func TestActorParentAlreadyDone(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	cancel()
	a := Start(parent, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	within(t, a.Done(), "actor with cancelled parent to end")
	if err := a.Stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want context.Canceled", err)
	}
}

func TestActorConcurrentStop(t *testing.T) {
	errFn := errors.New("fn error")
	for _, n := range []int{2, 16, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a := Start(context.Background(), func(ctx context.Context) error {
				<-ctx.Done()
				return errFn
			})
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					errs[i] = a.Stop()
					_ = a.Err()
					<-a.Done()
				})
			}
			finishes(t, "concurrent Stops", wg.Wait)
			for i, err := range errs {
				if err != errFn {
					t.Fatalf("Stop #%d = %v, want %v", i, err, errFn)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Mailbox

func TestMailboxZeroValue(t *testing.T) {
	var m Mailbox[string]
	if got := m.Take(); len(got) != 0 {
		t.Fatalf("Take on zero value = %v, want empty", got)
	}
	// Ready obtained before the first Put must be the channel Put signals.
	ready := m.Ready()
	select {
	case <-ready:
		t.Fatal("Ready fired with nothing put")
	default:
	}
	m.Put("a")
	m.Put("b")
	m.Put("c")
	within(t, ready, "Ready after Put")
	// One wake-up may stand for several messages.
	if got := m.Take(); !equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Take = %v, want [a b c]", got)
	}
	if got := m.Take(); len(got) != 0 {
		t.Fatalf("second Take = %v, want empty", got)
	}
	if m.Ready() != ready {
		t.Fatal("Ready returned a different channel")
	}
}

func TestMailboxPutNeverBlocks(t *testing.T) {
	const n = 100_000
	var m Mailbox[int]
	finishes(t, fmt.Sprintf("%d Puts with no receiver", n), func() {
		for i := range n {
			m.Put(i)
		}
	})
	within(t, m.Ready(), "Ready after Puts")
	if got := m.Take(); !equal(got, seq(0, n-1)) {
		t.Fatalf("Take returned %d messages, not 0..%d in order", len(got), n-1)
	}
}

func TestMailboxFIFOAcrossTakes(t *testing.T) {
	tests := []struct {
		name    string
		batches []int // how many to Put before each Take
	}{
		{"single", []int{1}},
		{"one batch", []int{10}},
		{"several", []int{3, 1, 7, 0, 5}},
		{"empty takes", []int{0, 0, 2, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Mailbox[int]
			var got []int
			next := 0
			for _, k := range tc.batches {
				for range k {
					m.Put(next)
					next++
				}
				got = append(got, m.Take()...)
			}
			if !equal(got, seq(0, next-1)) {
				t.Fatalf("got %v, want 0..%d in order", got, next-1)
			}
		})
	}
}

// receive runs a receiver loop (wait on Ready, Take) until it has n messages.
func receive[M any](t testing.TB, m *Mailbox[M], n int) []M {
	t.Helper()
	var got []M
	deadline := time.After(waitLimit)
	for len(got) < n {
		select {
		case <-m.Ready():
			got = append(got, m.Take()...)
		case <-deadline:
			t.Fatalf("received %d of %d messages before timeout", len(got), n)
		}
	}
	if extra := m.Take(); len(extra) != 0 {
		t.Fatalf("%d unexpected extra messages", len(extra))
	}
	return got
}

func TestMailboxConcurrentReceiverFIFO(t *testing.T) {
	const n = 50_000
	var m Mailbox[int]
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			m.Put(i)
		}
	})
	got := receive(t, &m, n)
	wg.Wait()
	if !equal(got, seq(0, n-1)) {
		t.Fatalf("receiver got %d messages, not 0..%d in order", len(got), n-1)
	}
}

func TestMailboxConcurrentProducers(t *testing.T) {
	type msg struct{ producer, i int }
	tests := []struct{ producers, each int }{
		{2, 10_000},
		{16, 2_000},
		{100, 500},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%dx%d", tc.producers, tc.each), func(t *testing.T) {
			var m Mailbox[msg]
			start := make(chan struct{})
			var wg sync.WaitGroup
			for p := range tc.producers {
				wg.Go(func() {
					<-start
					for i := range tc.each {
						m.Put(msg{p, i})
					}
				})
			}
			close(start)
			got := receive(t, &m, tc.producers*tc.each)
			wg.Wait()

			next := make([]int, tc.producers)
			for _, g := range got {
				if g.i != next[g.producer] {
					t.Fatalf("producer %d: got message %d, want %d", g.producer, g.i, next[g.producer])
				}
				next[g.producer]++
			}
			for p, k := range next {
				if k != tc.each {
					t.Fatalf("producer %d: got %d messages, want %d", p, k, tc.each)
				}
			}
		})
	}
}

func TestMailboxReadyWakesWaitingReceiver(t *testing.T) {
	var m Mailbox[int]
	waiting := make(chan struct{})
	got := make(chan []int)
	go func() {
		ready := m.Ready()
		close(waiting)
		<-ready
		got <- m.Take()
	}()
	<-waiting
	m.Put(42)
	select {
	case msgs := <-got:
		if !equal(msgs, []int{42}) {
			t.Fatalf("receiver took %v, want [42]", msgs)
		}
	case <-time.After(waitLimit):
		t.Fatal("waiting receiver was not woken by Put")
	}
}

// ---------------------------------------------------------------------------
// Outbox

func TestOutboxKeepsNewest(t *testing.T) {
	tests := []struct {
		capacity, puts int
		want           []int
	}{
		{capacity: 1, puts: 1000, want: []int{1000}},
		{capacity: 0, puts: 1000, want: []int{1000}},  // capacity is at least 1
		{capacity: -5, puts: 1000, want: []int{1000}}, // capacity is at least 1
		{capacity: 3, puts: 1000, want: []int{998, 999, 1000}},
		{capacity: 10, puts: 1000, want: seq(991, 1000)},
		{capacity: 10, puts: 4, want: seq(1, 4)},
		{capacity: 4, puts: 4, want: seq(1, 4)},
		{capacity: 1, puts: 0, want: nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("cap%d/puts%d", tc.capacity, tc.puts), func(t *testing.T) {
			o := NewOutbox[int](tc.capacity, nil)
			finishes(t, "Puts with no reader", func() {
				for i := 1; i <= tc.puts; i++ {
					o.Put(i)
				}
			})
			o.Close()
			if got := drain(t, o.C()); !equal(got, tc.want) {
				t.Fatalf("reader got %v, want %v", got, tc.want)
			}
		})
	}
}

type marked struct{ v, missed int }

func markMissed(m marked, n int) marked {
	m.missed = n
	return m
}

func TestOutboxMarkCapacityOne(t *testing.T) {
	// Each step puts some values, then the reader takes what is there.
	tests := []struct {
		name  string
		steps [][]int
		want  []marked
	}{
		{"nothing dropped", [][]int{{1}, {2}, {3}}, []marked{{1, 0}, {2, 0}, {3, 0}}},
		{"one dropped", [][]int{{1, 2}}, []marked{{2, 1}}},
		{"many dropped", [][]int{seq(1, 1000)}, []marked{{1000, 999}}},
		{"count restarts after delivery", [][]int{{1, 2, 3}, {4}, {5, 6}, {7}},
			[]marked{{3, 2}, {4, 0}, {6, 1}, {7, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOutbox(1, markMissed)
			var got []marked
			for _, step := range tc.steps {
				for _, v := range step {
					o.Put(marked{v: v})
				}
				got = append(got, <-o.C())
			}
			o.Close()
			got = append(got, drain(t, o.C())...)
			if !equal(got, tc.want) {
				t.Fatalf("reader got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOutboxMarkCapacityN(t *testing.T) {
	// With a larger capacity the reader still learns that it missed values:
	// the first value it gets after a gap is marked, and nothing is marked
	// when nothing was dropped.
	tests := []struct {
		capacity, puts int
		wantVals       []int
		wantMarked     bool
	}{
		{capacity: 3, puts: 3, wantVals: seq(1, 3), wantMarked: false},
		{capacity: 3, puts: 4, wantVals: seq(2, 4), wantMarked: true},
		{capacity: 3, puts: 1000, wantVals: seq(998, 1000), wantMarked: true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("cap%d/puts%d", tc.capacity, tc.puts), func(t *testing.T) {
			o := NewOutbox(tc.capacity, markMissed)
			for i := 1; i <= tc.puts; i++ {
				o.Put(marked{v: i})
			}
			o.Close()
			got := drain(t, o.C())
			var vals []int
			for _, g := range got {
				vals = append(vals, g.v)
			}
			if !equal(vals, tc.wantVals) {
				t.Fatalf("values = %v, want %v", vals, tc.wantVals)
			}
			if tc.wantMarked && got[len(got)-1].missed == 0 {
				t.Fatalf("reader was not told it missed values: %v", got)
			}
			if !tc.wantMarked {
				for _, g := range got {
					if g.missed != 0 {
						t.Fatalf("value marked although nothing was dropped: %v", got)
					}
				}
			}
		})
	}
}

func TestOutboxConcurrentReaderSeesIncreasing(t *testing.T) {
	const n = 100_000
	for _, capacity := range []int{1, 2, 8, 64} {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			o := NewOutbox[int](capacity, nil)
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 1; i <= n; i++ {
					o.Put(i)
				}
				o.Close()
			})
			got := drain(t, o.C())
			wg.Wait()
			if len(got) == 0 {
				t.Fatal("reader got nothing")
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("reader got %d after %d", got[i], got[i-1])
				}
			}
			if last := got[len(got)-1]; last != n {
				t.Fatalf("last value = %d, want %d", last, n)
			}
		})
	}
}

func TestOutboxConcurrentReaderExactMark(t *testing.T) {
	// With capacity 1, each value tells exactly how many were missed since
	// the previous one the reader got, even while the reader races the owner.
	const n = 100_000
	o := NewOutbox(1, markMissed)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; i <= n; i++ {
			o.Put(marked{v: i})
		}
		o.Close()
	})
	got := drain(t, o.C())
	wg.Wait()
	prev := 0
	for _, g := range got {
		if g.v-prev-1 != g.missed {
			t.Fatalf("got %+v after %d: missed %d, marked %d", g, prev, g.v-prev-1, g.missed)
		}
		prev = g.v
	}
	if prev != n {
		t.Fatalf("last value = %d, want %d", prev, n)
	}
}

func TestOutboxClose(t *testing.T) {
	o := NewOutbox[int](4, nil)
	o.Put(1)
	o.Put(2)
	o.Close()
	o.Close() // idempotent
	o.Put(3)  // no-op, must not panic
	o.Close()
	if got := drain(t, o.C()); !equal(got, []int{1, 2}) {
		t.Fatalf("after Close reader got %v, want [1 2]", got)
	}
	if !isClosed(o.C()) {
		t.Fatal("C not closed")
	}
}

// ---------------------------------------------------------------------------
// Broadcast

func TestBroadcastIndependentSubscribers(t *testing.T) {
	const n = 50
	b := NewBroadcast[int](n, false, nil)
	const subs = 4
	chans := make([]<-chan int, subs)
	unsubs := make([]func(), subs)
	for i := range chans {
		chans[i], unsubs[i] = b.Subscribe()
	}
	// Subscriber 0 reads everything as it goes; the others read afterwards.
	for i := 1; i <= n; i++ {
		b.Publish(i)
		if v := <-chans[0]; v != i {
			t.Fatalf("subscriber 0 got %d, want %d", v, i)
		}
	}
	b.Close()
	if got := drain(t, chans[0]); len(got) != 0 {
		t.Fatalf("subscriber 0 got extra %v", got)
	}
	for i := 1; i < subs; i++ {
		if got := drain(t, chans[i]); !equal(got, seq(1, n)) {
			t.Fatalf("subscriber %d got %v, want 1..%d", i, got, n)
		}
	}
	for _, u := range unsubs {
		u() // after Close: no-op, no double close
	}
}

func TestBroadcastSlowSubscriber(t *testing.T) {
	const n = 20_000
	for _, capacity := range []int{1, 16} {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			b := NewBroadcast[int](capacity, false, nil)
			slow, unsubSlow := b.Subscribe() // never read until the end
			defer unsubSlow()
			fast, unsubFast := b.Subscribe()
			defer unsubFast()

			var fastGot []int
			var wg sync.WaitGroup
			wg.Go(func() {
				for v := range fast {
					fastGot = append(fastGot, v)
					if v == n {
						return
					}
				}
			})
			finishes(t, "Publish with a subscriber that never reads", func() {
				for i := 1; i <= n; i++ {
					b.Publish(i)
				}
			})
			finishes(t, "fast subscriber to see the last value", wg.Wait)
			for i := 1; i < len(fastGot); i++ {
				if fastGot[i] <= fastGot[i-1] {
					t.Fatalf("fast subscriber got %d after %d", fastGot[i], fastGot[i-1])
				}
			}
			b.Close()
			if got := drain(t, slow); !equal(got, seq(n-capacity+1, n)) {
				t.Fatalf("slow subscriber got %v, want the newest %d", got, capacity)
			}
		})
	}
}

func TestBroadcastReplay(t *testing.T) {
	tests := []struct {
		name      string
		replay    bool
		published []int
		want      []int // what a subscriber arriving now has waiting
	}{
		{"replay last", true, []int{1, 2, 3}, []int{3}},
		{"replay nothing published", true, nil, nil},
		{"no replay", false, []int{1, 2, 3}, nil},
		{"replay zero value", true, []int{0}, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBroadcast[int](8, tc.replay, nil)
			defer b.Close()
			for _, v := range tc.published {
				b.Publish(v)
			}
			ch, unsub := b.Subscribe()
			unsub() // closes ch; what was delivered can still be read
			if got := drain(t, ch); !equal(got, tc.want) {
				t.Fatalf("late subscriber got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBroadcastUnsubscribe(t *testing.T) {
	b := NewBroadcast[int](8, false, nil)
	defer b.Close()
	gone, unsub := b.Subscribe()
	stay, unsubStay := b.Subscribe()
	defer unsubStay()

	b.Publish(1)
	unsub()
	unsub() // idempotent
	b.Publish(2)

	if got := drain(t, gone); !equal(got, []int{1}) {
		t.Fatalf("unsubscribed channel got %v, want [1] then closed", got)
	}
	for _, want := range []int{1, 2} {
		if v := <-stay; v != want {
			t.Fatalf("remaining subscriber got %d, want %d", v, want)
		}
	}
}

func TestBroadcastClose(t *testing.T) {
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("replay=%v", replay), func(t *testing.T) {
			b := NewBroadcast[int](4, replay, nil)
			var chans []<-chan int
			var unsubs []func()
			for range 3 {
				ch, u := b.Subscribe()
				chans = append(chans, ch)
				unsubs = append(unsubs, u)
			}
			b.Publish(7)
			b.Close()
			b.Close()    // idempotent
			b.Publish(8) // no-op
			for i, ch := range chans {
				if got := drain(t, ch); !equal(got, []int{7}) {
					t.Fatalf("subscriber %d got %v, want [7] then closed", i, got)
				}
			}
			for _, u := range unsubs {
				u() // must not close again
			}

			late, unsubLate := b.Subscribe()
			var want []int
			if replay {
				want = []int{7} // the last value published before Close
			}
			if got := drain(t, late); !equal(got, want) {
				t.Fatalf("Subscribe after Close got %v, want %v then closed", got, want)
			}
			unsubLate()
			unsubLate()
		})
	}
}

func TestBroadcastConcurrent(t *testing.T) {
	const (
		publishers  = 4
		perPub      = 5_000
		subscribers = 8
		resubscribe = 20
	)
	for _, capacity := range []int{1, 4} {
		t.Run(fmt.Sprintf("cap%d", capacity), func(t *testing.T) {
			b := NewBroadcast[int](capacity, true, nil)
			start := make(chan struct{})
			var pubs, subs sync.WaitGroup
			for p := range publishers {
				pubs.Go(func() {
					<-start
					for i := 1; i <= perPub; i++ {
						b.Publish(p*perPub*10 + i)
					}
				})
			}
			// Each subscriber repeatedly subscribes, reads a while (checking
			// that each publisher's values only increase), and unsubscribes;
			// its last subscription lasts until Close.
			errs := make(chan error, subscribers)
			for s := range subscribers {
				subs.Go(func() {
					<-start
					for r := 0; r <= resubscribe; r++ {
						ch, unsub := b.Subscribe()
						last := make([]int, publishers)
						reads := 0
						for v := range ch {
							p, i := v/(perPub*10), v%(perPub*10)
							if i <= last[p] {
								errs <- fmt.Errorf("subscriber %d: publisher %d value %d after %d", s, p, i, last[p])
								unsub()
								return
							}
							last[p] = i
							reads++
							if r < resubscribe && reads == 50 {
								break
							}
						}
						unsub()
						unsub()
					}
				})
			}
			close(start)
			finishes(t, "publishers", pubs.Wait)
			b.Close()
			finishes(t, "subscribers to see Close", subs.Wait)
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Benchmarks

func BenchmarkOutboxPut(b *testing.B) {
	for _, capacity := range []int{1, 16} {
		b.Run(fmt.Sprintf("cap%d/noreader", capacity), func(b *testing.B) {
			o := NewOutbox[int](capacity, nil)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				o.Put(i)
			}
			o.Close()
		})
		b.Run(fmt.Sprintf("cap%d/mark", capacity), func(b *testing.B) {
			o := NewOutbox(capacity, markMissed)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				o.Put(marked{v: i})
			}
			o.Close()
		})
	}
}

func BenchmarkBroadcastPublish(b *testing.B) {
	const subscribers = 10
	for _, capacity := range []int{1, 16} {
		b.Run(fmt.Sprintf("cap%d/subs%d", capacity, subscribers), func(b *testing.B) {
			br := NewBroadcast[int](capacity, true, nil)
			for range subscribers {
				br.Subscribe() // never read: every Publish overflows
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				br.Publish(i)
			}
			br.Close()
		})
	}
}
