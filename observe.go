package lighthouse

import (
	"context"
	"errors"

	"github.com/lighthouse-zk/lighthouse/internal/actor"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
)

// Reading an election without joining it.

// Participant is one participant of an election, as Participants, Leader
// and Observe report it.
type Participant struct {
	ID       string
	Data     []byte // set with WithData, nil otherwise
	IsLeader bool
	Node     string // the name of its node under the election path
	Token    int64  // the zxid that created its node: its token when it leads
}

// Participants returns the participants of the election at path in queue
// order, the leader first. It does not join the election.
func (s *Session) Participants(ctx context.Context, path string) ([]Participant, error) {
	if err := s.check(ctx, "participants", path); err != nil {
		return nil, err
	}
	children, _, err := s.zk.Children(ctx, path)
	if err != nil {
		return nil, s.opErr("participants", path, err)
	}
	var out []Participant
	for _, name := range electionNodes(children) {
		data, st, err := s.zk.Get(ctx, joinPath(path, name))
		if errors.Is(err, zkclient.ErrNoNode) {
			continue // left meanwhile
		}
		if err != nil {
			return nil, s.opErr("participants", path, err)
		}
		id, pdata := decodeParticipant(data)
		out = append(out, Participant{ID: id, Data: pdata, IsLeader: len(out) == 0, Node: name, Token: st.Czxid})
	}
	return out, nil
}

// Leader returns the leader of the election at path: ErrNoLeader if the
// election has no participant, ErrNoNode if its node does not exist (no
// participant has ever joined it, or it was deleted).
func (s *Session) Leader(ctx context.Context, path string) (Participant, error) {
	ps, err := s.Participants(ctx, path)
	if err != nil {
		return Participant{}, opError("leader", path, err)
	}
	if len(ps) == 0 {
		return Participant{}, &OpError{Op: "leader", Path: path, Err: ErrNoLeader}
	}
	return ps[0], nil
}

// Observe follows the leader of the election at path without joining it.
// The channel delivers the leader (IsLeader true) each time it changes, and
// a zero Participant while there is none; first value at once. It carries
// only the newest value and never blocks the session. It is closed when ctx
// ends or the session closes.
//
// An observer watches only the leader's node (or, with no participant, the
// election's children), so it is woken once per change of leader.
func (s *Session) Observe(ctx context.Context, path string) (<-chan Participant, error) {
	if err := validatePath(path); err != nil {
		return nil, opError("observe", "", err)
	}
	out := actor.NewOutbox[Participant](1, nil)
	if err := s.startRecipe(ctx, func(first chan<- error) { s.observe(ctx, path, out, first) }); err != nil {
		return nil, opError("observe", path, err)
	}
	return out.C(), nil
}

func (s *Session) observe(ctx context.Context, path string, out *actor.Outbox[Participant], first chan<- error) {
	defer out.Close()
	var last Participant
	started := false
	l := &loop{s: s, op: "observe", path: path}
	// With no participant, watch the children for the first; else the
	// leader alone (newcomers join at the back), with no children watch
	// left behind to fire for nothing.
	empty := false
	l.look = func() error {
		for {
			var children []string
			var ch <-chan zkclient.WatchEvent
			var err error
			if empty {
				children, _, ch, err = s.zk.ChildrenW(ctx, path)
			} else {
				children, _, err = s.zk.Children(ctx, path)
			}
			if errors.Is(err, zkclient.ErrNoNode) {
				var st *zkclient.Stat
				if st, ch, err = s.zk.ExistsW(ctx, path); err == nil && st != nil {
					continue // created meanwhile
				}
			}
			if err != nil {
				return err
			}
			queue := electionNodes(children)
			if len(queue) == 0 && ch == nil {
				empty = true // read again, with a watch
				continue
			}
			empty = len(queue) == 0
			if empty {
				l.watch[0] = ch
				s.publishLeader(out, &last, Participant{}, started)
				started = true
				return nil
			}
			// Watch the leader alone: newcomers join at the back.
			data, stat, lch, err := s.zk.GetW(ctx, joinPath(path, queue[0]))
			if errors.Is(err, zkclient.ErrNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			l.watch[0] = lch
			id, pdata := decodeParticipant(data)
			s.publishLeader(out, &last, Participant{ID: id, Data: pdata, IsLeader: true, Node: queue[0], Token: stat.Czxid}, started)
			started = true
			return nil
		}
	}
	l.run(ctx, first)
}

// publishLeader sends p if it differs from the last value sent.
func (s *Session) publishLeader(out *actor.Outbox[Participant], last *Participant, p Participant, started bool) {
	if started && p.Node == last.Node {
		return
	}
	*last = p
	out.Put(p)
}
