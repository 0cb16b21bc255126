package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/lighthouse-zk/lighthouse"
)

// Exit codes of the operator commands.
const (
	exitFailure     = 1 // anything else
	exitUsage       = 2
	exitUnreachable = 3 // no session could be established in time
	exitNotFound    = 4 // no such election, service, or no leader
	exitNoAuth      = 5 // the credentials do not allow it
)

// inspectFlags are the flags every operator command takes.
type inspectFlags struct {
	zk       string
	user     string
	password string
	timeout  time.Duration
	watch    bool
	json     bool
}

func newInspectFlags(name string, stderr io.Writer, usage string) (*flag.FlagSet, *inspectFlags) {
	f := &inspectFlags{}
	fs := newFlagSet(name, usage, stderr)
	fs.StringVar(&f.zk, "zk", envOr("LIGHTHOUSE_ZK", "127.0.0.1:2181"), "ZooKeeper ensemble `host:port,...[/chroot]` (env LIGHTHOUSE_ZK)")
	fs.StringVar(&f.user, "user", os.Getenv("LIGHTHOUSE_USER"), "digest auth user (env LIGHTHOUSE_USER)")
	fs.StringVar(&f.password, "password", os.Getenv("LIGHTHOUSE_PASSWORD"), "digest auth password (env LIGHTHOUSE_PASSWORD; prefer it to the flag)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for ZooKeeper (connect and each read)")
	fs.BoolVar(&f.watch, "watch", false, "keep running and print every change (Ctrl-C to stop)")
	fs.BoolVar(&f.json, "json", false, "print JSON (one document per line with --watch)")
	return fs, f
}

// newFlagSet returns the flag set of a command. Its help, on stderr, ends
// with the exit codes; its errors are left to main to print, once.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: lighthouse %s [flags]\n\n%s\n\nFlags:\n", name, usage)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprint(stderr, exitCodesHelp)
	}
	return fs
}

const exitCodesHelp = `
Exit codes: 0 ok, 1 failure, 2 usage, 3 ZooKeeper unreachable, 4 not found
(an election, its leader, or the chroot of --zk; a service with no members is
listed empty), 5 not authorized.
`

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (f *inspectFlags) validate() error {
	switch {
	case f.timeout <= 0:
		return usagef("--timeout must be positive, not %v", f.timeout)
	case f.user == "" && f.password != "":
		return usagef("--password (or LIGHTHOUSE_PASSWORD) needs --user")
	case f.user != "" && f.password == "":
		return usagef("--user needs a non-empty --password (or LIGHTHOUSE_PASSWORD)")
	}
	return nil
}

func (f *inspectFlags) connect(ctx context.Context) (*lighthouse.Session, error) {
	opts := []lighthouse.Option{lighthouse.WithSessionTimeout(max(f.timeout, 2*time.Second))}
	if f.user != "" {
		opts = append(opts, lighthouse.WithDigestAuth(f.user, f.password))
	}
	return connect(ctx, f.zk, f.timeout, opts...)
}

// inspect runs one operator command: connect, then one read or a watch.
func inspect(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	spec, ok := inspectors[name]
	if !ok {
		return usagef("unknown command %q", name)
	}
	fs, f := newInspectFlags(name, stderr, spec.usage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != spec.args {
		fs.Usage()
		return usagef("%s takes %d argument(s), got %d", name, spec.args, fs.NArg())
	}
	if err := f.validate(); err != nil {
		return err
	}
	sess, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()
	out := &emitter{w: stdout, json: f.json}
	if err := spec.run(ctx, sess, fs.Arg(0), f, out); err != nil || out.err == nil {
		return mapErr(err)
	}
	return out.err
}

// parse parses a command's flags: an error is a usage error, except
// flag.ErrHelp after the help was printed.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return mark(errUsage, err)
}

// mapErr gives library errors the command's error kinds.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lighthouse.ErrInvalidPath), errors.Is(err, lighthouse.ErrInvalidID):
		return mark(errUsage, err)
	case errors.Is(err, lighthouse.ErrNoNode), errors.Is(err, lighthouse.ErrNoLeader):
		return mark(errNotFound, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, lighthouse.ErrConnectionLoss):
		return mark(errUnreachable, err)
	}
	return err
}

type inspector struct {
	args  int
	usage string
	run   func(ctx context.Context, s *lighthouse.Session, arg string, f *inspectFlags, out *emitter) error
}

var inspectors = map[string]inspector{
	"leader": {1, `Prints the leader of the election at PATH: lighthouse leader PATH

With --json: {"id", "leader": true, "token", "node", "data" or "data_base64"},
or null (--watch, while nobody leads). The token is the leader's fencing
token: the zxid that created its node.` + dataHelp, runLeader},
	"participants": {1, `Prints the participants of the election at PATH in queue order, the leader
first: lighthouse participants PATH

With --json: a list of {"id", "leader", "token", "node", "data" or
"data_base64"}.` + dataHelp, runParticipants},
	"members": {1, `Prints the live instances registered under SERVICE: lighthouse members SERVICE

With --json: a list of {"id", "data" or "data_base64"}.` + dataHelp, runMembers},
	"services": {0, `Prints the registered service names: lighthouse services

With --json: a list of names.` + dataHelp, runServices},
}

const dataHelp = `
Text output quotes, Go-style, names and data that are not printable UTF-8.
In JSON, "data" is a node's data as a string if it is UTF-8; otherwise
"data_base64" holds it base64-encoded and "data" is absent. The same goes
for "id" and "id_base64".`

func runLeader(ctx context.Context, s *lighthouse.Session, path string, f *inspectFlags, out *emitter) error {
	show := func(p lighthouse.Participant) {
		if p.ID == "" && p.Node == "" {
			out.print(nil, func(w io.Writer) { fmt.Fprintln(w, "(no leader)") })
			return
		}
		out.print(toParticipantJSON(p), func(w io.Writer) {
			fmt.Fprintf(w, "%s\ttoken=%d\tnode=%s\n", text(p.ID), p.Token, text(p.Node))
		})
	}
	// The first read also checks, for --watch, that the election exists.
	p, err := readCtx(ctx, f, func(ctx context.Context) (lighthouse.Participant, error) { return s.Leader(ctx, path) })
	var opErr *lighthouse.OpError
	if errors.As(err, &opErr) && opErr.Op == "participants" {
		// Leader reads through Participants, and its errors say so.
		e := *opErr
		e.Op, err = "leader", &e
	}
	switch {
	case err != nil && !(f.watch && errors.Is(err, lighthouse.ErrNoLeader)):
		return electionErr(path, err)
	case !f.watch:
		show(p)
		return nil
	}
	ch, err := s.Observe(ctx, path)
	if err != nil {
		return err
	}
	for p := range ch {
		if show(p); out.err != nil {
			return out.err
		}
	}
	return nil
}

func runParticipants(ctx context.Context, s *lighthouse.Session, path string, f *inspectFlags, out *emitter) error {
	show := func(ps []lighthouse.Participant) {
		js := make([]participantJSON, 0, len(ps))
		for _, p := range ps {
			js = append(js, toParticipantJSON(p))
		}
		out.print(js, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tID\tTOKEN\tNODE")
			for _, p := range ps {
				role := "follower"
				if p.IsLeader {
					role = "leader"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", role, text(p.ID), p.Token, text(p.Node))
			}
			tw.Flush()
		})
	}
	read := func() ([]lighthouse.Participant, error) {
		ps, err := readCtx(ctx, f, func(ctx context.Context) ([]lighthouse.Participant, error) { return s.Participants(ctx, path) })
		return ps, electionErr(path, err)
	}
	ps, err := read()
	if err != nil {
		return err
	}
	if show(ps); !f.watch || out.err != nil {
		return nil // inspect reports out.err
	}
	return followChildren(ctx, s, path, func() error {
		ps, err := read()
		if err == nil {
			show(ps)
			err = out.err
		}
		return err
	})
}

// electionErr says "no election at path" for ErrNoNode: elections are
// persistent nodes, so a missing one is a mistake rather than something to
// wait for, with or without --watch.
func electionErr(path string, err error) error {
	if errors.Is(err, lighthouse.ErrNoNode) {
		return mark(errNotFound, fmt.Errorf("no election at %s", path))
	}
	return err
}

func showNodes(out *emitter, nodes []lighthouse.Node) {
	js := make([]nodeJSON, 0, len(nodes))
	for _, n := range nodes {
		js = append(js, nodeJSON{newJSONID(n.ID), newJSONData(n.Data)})
	}
	out.print(js, func(w io.Writer) {
		if len(nodes) == 0 {
			fmt.Fprintln(w, "(no members)")
		}
		for _, n := range nodes {
			fmt.Fprintf(w, "%s\t%s\n", text(n.ID), text(string(n.Data)))
		}
	})
}

func runMembers(ctx context.Context, s *lighthouse.Session, service string, f *inspectFlags, out *emitter) error {
	if !f.watch {
		nodes, err := readCtx(ctx, f, func(ctx context.Context) ([]lighthouse.Node, error) { return s.Instances(ctx, service) })
		if err != nil {
			return err
		}
		showNodes(out, nodes)
		return nil
	}
	ch, err := s.Members(ctx, service)
	if err != nil {
		return err
	}
	for nodes := range ch {
		if showNodes(out, nodes); out.err != nil {
			return out.err
		}
	}
	return nil
}

func runServices(ctx context.Context, s *lighthouse.Session, _ string, f *inspectFlags, out *emitter) error {
	show := func(names []string) {
		out.print(append([]string{}, names...), func(w io.Writer) {
			if len(names) == 0 {
				fmt.Fprintln(w, "(no services)")
			}
			for _, n := range names {
				fmt.Fprintln(w, text(n))
			}
		})
	}
	read := func() ([]string, error) {
		return readCtx(ctx, f, func(ctx context.Context) ([]string, error) { return s.Services(ctx) })
	}
	names, err := read()
	if err != nil {
		return err
	}
	if show(names); !f.watch || out.err != nil {
		return nil // inspect reports out.err
	}
	return followChildren(ctx, s, "/services", func() error {
		names, err := read()
		if err == nil {
			show(names)
			err = out.err
		}
		return err
	})
}

// followChildren calls update each time the children of path change, or
// path comes into existence, until ctx ends: the loop behind --watch.
func followChildren(ctx context.Context, s *lighthouse.Session, path string, update func() error) error {
	for {
		_, changed, err := s.ChildrenW(ctx, path)
		if errors.Is(err, lighthouse.ErrNoNode) {
			_, _, changed, err = s.ExistsW(ctx, path)
		}
		if err != nil {
			return ignoreCancel(ctx, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
		if err := update(); err != nil {
			return ignoreCancel(ctx, err)
		}
	}
}

// readCtx bounds one read by --timeout.
func readCtx[T any](ctx context.Context, f *inspectFlags, read func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return read(ctx)
}

// ignoreCancel treats the end of a watch by Ctrl-C as success.
func ignoreCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
