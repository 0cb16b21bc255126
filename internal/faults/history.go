// Package faults proves lighthouse's promises under faults, the way Jepsen
// does: participants run as separate OS processes (the participant helper
// in ./participant), each joins one election and registers under one
// service through fault-injecting proxies to a 3-node ZooKeeper ensemble,
// and writes a history line for every event it sees. A seeded random
// schedule kills, pauses and partitions participants and kills and restarts
// servers. After the run, Check reads the histories and the harness's log of
// what it did and reports every broken promise.
//
// The suite itself is in the package's tests: a short run in the normal test
// suite, a long one with LIGHTHOUSE_SOAK=10m (see suite_test.go).
package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Events a participant writes to its history.
const (
	EvStart      = "start"     // the process started (Pid)
	EvConnected  = "connected" // a session is established (Session)
	EvSuspended  = "suspended" // the connection was lost
	EvReconnect  = "reconnected"
	EvExpired    = "expired"    // the session expired
	EvElected    = "elected"    // Elect delivered a leadership (Token)
	EvRevoked    = "revoked"    // that leadership's Context ended (Token)
	EvDuty       = "duty"       // a leader's act: Valid() was checked (Token, OK)
	EvGuarded    = "guarded"    // a leader's write with Leadership.Guard, stamped when sent (Token; OK and Zxid if it committed, else Err, NotLeader)
	EvRegistered = "registered" // the registration's node was (re)created
	EvMembers    = "members"    // Members delivered a set (Members)
	EvError      = "error"      // something failed and is retried (Err)
	EvWoke       = "woke"       // the process noticed it had not run for Gap ns
	EvExit       = "exit"       // clean exit after SIGTERM (Leak: goleak's report, "" if none)
)

// Record is one line of a participant's history. Wall is the wall clock
// (Unix ns), comparable across the processes of one machine; Mono is
// monotonic time since the process started; Since is Wall minus the run's
// shared epoch, for reading.
type Record struct {
	P       string   `json:"p"`   // participant ID
	Inc     int      `json:"inc"` // incarnation: the process number for this ID, from 1
	Seq     int64    `json:"seq"` // line number in this history
	Ev      string   `json:"ev"`
	Wall    int64    `json:"wall"`
	Mono    int64    `json:"mono"`
	Since   int64    `json:"since"`
	Pid     int      `json:"pid,omitempty"`
	Session int64    `json:"session,omitempty"`
	Token   int64    `json:"token,omitempty"`
	OK      bool     `json:"ok,omitempty"`
	Members []string `json:"members,omitempty"`
	Gap     int64    `json:"gap,omitempty"`
	Err     string   `json:"err,omitempty"`
	Leak    string   `json:"leak,omitempty"`
	Zxid    int64    `json:"zxid,omitempty"` // the zxid a guarded write committed with
	// NotLeader: a guarded write failed with ErrNotLeader.
	NotLeader bool `json:"notleader,omitempty"`
}

// Time returns the record's wall-clock time.
func (r Record) Time() time.Time { return time.Unix(0, r.Wall) }

func (r Record) String() string {
	s := fmt.Sprintf("%s#%d seq=%d t=%.3fs %s", r.P, r.Inc, r.Seq, float64(r.Since)/1e9, r.Ev)
	if r.Token != 0 {
		s += fmt.Sprintf(" token=%d", r.Token)
	}
	if r.Ev == EvDuty {
		s += fmt.Sprintf(" valid=%v", r.OK)
	}
	if r.Ev == EvGuarded {
		s += fmt.Sprintf(" committed=%v", r.OK)
		if r.Zxid != 0 {
			s += fmt.Sprintf(" zxid=%d", r.Zxid)
		}
	}
	if r.Members != nil || r.Ev == EvMembers {
		s += fmt.Sprintf(" members=%v", r.Members)
	}
	if r.Gap != 0 {
		s += fmt.Sprintf(" gap=%v", time.Duration(r.Gap))
	}
	if r.Err != "" {
		s += " err=" + r.Err
	}
	if r.Leak != "" {
		s += " leak=" + r.Leak
	}
	return s
}

// Writer appends records to a history file, one JSON line per write(2), so
// that a SIGKILL loses nothing already recorded. It is safe for concurrent
// use; records are numbered in the order they are written.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	p     string
	inc   int
	epoch time.Time
	start time.Time
	seq   int64
}

// NewWriter writes the history of incarnation inc of participant p to w.
// epoch is the run's shared start.
func NewWriter(w io.Writer, p string, inc int, epoch time.Time) *Writer {
	return &Writer{w: w, p: p, inc: inc, epoch: epoch, start: time.Now()}
}

// Write records r now.
func (h *Writer) Write(r Record) { h.WriteAt(time.Time{}, r) }

// WriteAt records r as having happened at t (now if t is zero).
func (h *Writer) WriteAt(t time.Time, r Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.IsZero() {
		t = time.Now()
	}
	h.seq++
	r.P, r.Inc, r.Seq = h.p, h.inc, h.seq
	r.Wall, r.Mono, r.Since = t.UnixNano(), int64(t.Sub(h.start)), int64(t.Sub(h.epoch))
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // a Record always marshals
	}
	h.w.Write(append(b, '\n'))
}

// ReadHistory reads a history file. A last line cut short (by SIGKILL in
// the middle of a write, which one write(2) makes unlikely) is ignored.
func ReadHistory(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var bad error
	for sc.Scan() {
		if bad != nil {
			return nil, bad // a bad line in the middle
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			bad = fmt.Errorf("%s: line %d: %w", path, len(out)+1, err)
			continue
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
