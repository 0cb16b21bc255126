package zktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// readyTimeout bounds the wait for servers to serve when the caller's context
// has no deadline, and in Restart.
const readyTimeout = 30 * time.Second

// startAttempts is how often Start picks new ports after a port clash.
const startAttempts = 3

// errPortClash marks a start that failed because a port was taken.
var errPortClash = errors.New("port already in use")

// ErrClosed is returned by Restart on a closed Cluster, and by
// SharedCluster once Main has closed the shared server.
var ErrClosed = errors.New("zktest: cluster closed")

// Options configures Start. The zero value starts one standalone server.
type Options struct {
	Servers   int           // number of servers: 1 (default) is standalone; more form an ensemble
	TickTime  time.Duration // ZooKeeper's tick, whole milliseconds; default 100ms. Sessions may last from 2 ticks to 60s.
	Dir       string        // where servers keep config, data and logs; default a new temporary directory that Close removes
	LogOutput io.Writer     // if set, receives a copy of every server's log; writes are serialised, and a writer that fails gets nothing more
	TLS       bool          // also serve TLS on a secure client port (see SecureAddr and TLSConfig), with a certificate made by Start
}

// Cluster is a running standalone ZooKeeper server or ensemble. Its methods
// are safe for concurrent use. Servers are numbered from 0.
type Cluster struct {
	java, classpath string
	dir             string
	ownDir          bool     // dir was created by Start and is removed by Close
	owner           *os.File // locked while dir is in use; see holdDir
	tick            time.Duration
	out             io.Writer
	tls             *serverTLS // nil unless Options.TLS
	servers         []*server
	roots           atomic.Int64 // numbers the znodes made by Root

	mu     sync.Mutex // orders starting a server against Close
	closed bool
}

// Start starts opts.Servers ZooKeeper servers on free 127.0.0.1 ports and
// waits until every one of them serves clients (its `srvr` answer has a
// Mode), which for an ensemble means a leader has been elected. If ctx has no
// deadline, Start gives up after 30s. On error nothing is left running.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if ctx == nil {
		return nil, errors.New("zktest: start: nil context")
	}
	if opts.Servers == 0 {
		opts.Servers = 1
	}
	if opts.TickTime == 0 {
		opts.TickTime = 100 * time.Millisecond
	}
	if opts.Servers < 0 {
		return nil, fmt.Errorf("zktest: Servers = %d, want at least 1", opts.Servers)
	}
	if opts.TickTime < time.Millisecond || opts.TickTime%time.Millisecond != 0 {
		return nil, fmt.Errorf("zktest: TickTime = %v, want whole milliseconds", opts.TickTime)
	}
	java, err := javaPath()
	if err != nil {
		return nil, err
	}
	cp, err := Classpath()
	if err != nil {
		return nil, err
	}
	c := &Cluster{java: java, classpath: cp, dir: opts.Dir, tick: opts.TickTime}
	if opts.LogOutput != nil {
		c.out = &lockedWriter{w: opts.LogOutput}
	}
	if c.dir == "" {
		sweepStale()
		if c.dir, err = os.MkdirTemp("", "zktest-"); err != nil {
			return nil, fmt.Errorf("zktest: %w", err)
		}
		c.ownDir = true
		c.owner = holdDir(c.dir) // for sweepStale, should this process end without Close
	} else if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("zktest: %w", err)
	}
	if opts.TLS {
		if c.tls, err = newServerTLS(c.dir); err != nil {
			c.Close()
			return nil, fmt.Errorf("zktest: TLS certificate: %w", err)
		}
		c.classpath = withNetty(c.classpath)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readyTimeout)
		defer cancel()
	}
	for attempt := 1; ; attempt++ {
		err := c.launch(ctx, opts.Servers)
		if err == nil {
			return c, nil
		}
		c.killAll()
		// Ports are picked free but not reserved: another process may have
		// taken one before the JVM bound it. Try again with new ones.
		if !errors.Is(err, errPortClash) || attempt == startAttempts {
			c.Close()
			return nil, err
		}
		for _, s := range c.servers {
			os.RemoveAll(s.dir)
		}
	}
}

func (c *Cluster) killAll() {
	for _, s := range c.servers {
		_ = s.halt(syscall.SIGKILL) // errNotRunning is fine here
	}
}

// ConnectString returns the client addresses of all servers,
// "127.0.0.1:p1,127.0.0.1:p2,...", stopped ones included.
func (c *Cluster) ConnectString() string {
	addrs := make([]string, len(c.servers))
	for i, s := range c.servers {
		addrs[i] = s.addr()
	}
	return strings.Join(addrs, ",")
}

// Addr returns the client address of server i, "127.0.0.1:port". It panics
// if i is out of range, like an index.
func (c *Cluster) Addr(i int) string { return c.servers[i].addr() }

// Len returns the number of servers.
func (c *Cluster) Len() int { return len(c.servers) }

// Dir returns the directory holding each server's config, data and log.
func (c *Cluster) Dir() string { return c.dir }

func (c *Cluster) server(i int) (*server, error) {
	if i < 0 || i >= len(c.servers) {
		return nil, fmt.Errorf("zktest: no server %d in a cluster of %d", i, len(c.servers))
	}
	return c.servers[i], nil
}

// Stop sends server i SIGTERM (and SIGCONT, in case it is paused) and waits
// until it has exited. If it has not exited after 10s, it is killed and Stop
// returns an error.
func (c *Cluster) Stop(i int) error { return c.halt(i, syscall.SIGTERM) }

// Kill sends server i SIGKILL and waits until it has exited.
func (c *Cluster) Kill(i int) error { return c.halt(i, syscall.SIGKILL) }

func (c *Cluster) halt(i int, sig syscall.Signal) error {
	s, err := c.server(i)
	if err != nil {
		return err
	}
	if err := s.halt(sig); err != nil {
		return fmt.Errorf("zktest: %v server %d: %w", sig, i, err)
	}
	return nil
}

// Pause stops server i with SIGSTOP, as a long GC pause or a hung machine
// would: its connections stay open but it answers nothing until Resume. On
// Linux, Pause returns once all the JVM's threads have stopped.
func (c *Cluster) Pause(i int) error { return c.signal(i, sigStop) }

// Resume continues a paused server i with SIGCONT.
func (c *Cluster) Resume(i int) error { return c.signal(i, sigCont) }

func (c *Cluster) signal(i int, sig syscall.Signal) error {
	s, err := c.server(i)
	if err != nil {
		return err
	}
	if err := s.signal(sig); err != nil {
		return fmt.Errorf("zktest: %v server %d: %w", sig, i, err)
	}
	return nil
}

// Restart starts server i again, after Stop or Kill or its own exit, with the
// same ports and data, and waits up to 30s until it serves; a member of an
// ensemble serves once it has joined a quorum as follower or leader.
func (c *Cluster) Restart(i int) error {
	s, err := c.server(i)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	fmt.Fprintf(logFile{s}, "--- zktest: restarting server %d ---\n", i)
	p, err := s.start(c.java, c.classpath, c.out)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("zktest: restart server %d: %w", i, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	_, err = c.waitServing(ctx, i, s, p)
	return err
}

// Leader returns the index of the ensemble's current leader, or 0 for a
// standalone server that serves. It asks every running server with `srvr`
// and fails if none says it leads.
func (c *Cluster) Leader() (int, error) {
	for i, s := range c.servers {
		if s.running() == nil {
			continue
		}
		mode, err := srvrMode(context.Background(), s.addr())
		if err == nil && (mode == "leader" || mode == "standalone") {
			return i, nil
		}
	}
	return -1, errors.New("zktest: no server is leading")
}

// Logs returns everything server i has logged so far, across restarts, or ""
// if there is no server i or its log cannot be read.
func (c *Cluster) Logs(i int) string {
	s, err := c.server(i)
	if err != nil {
		return ""
	}
	b, _ := os.ReadFile(s.logPath())
	return string(b)
}

// Close kills every server, waits until each has exited and, if Start made
// the directory, removes it. Close is idempotent; later calls return nil.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.killAll()
	if c.ownDir {
		err := os.RemoveAll(c.dir)
		if c.owner != nil {
			c.owner.Close() // after: a sweep meanwhile finds the directory held
		}
		if err != nil {
			return fmt.Errorf("zktest: %w", err)
		}
	}
	return nil
}

// logFile appends to a server's log file, to mark events such as restarts.
type logFile struct{ s *server }

func (l logFile) Write(p []byte) (int, error) {
	f, err := os.OpenFile(l.s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Write(p)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ownerFile, in a directory that Start made, is locked by the process that
// made it for as long as it uses the directory.
const ownerFile = "owner.lock"

// unprefixed is err's message without its "zktest: ", for a message that
// says it already.
func unprefixed(err error) string { return strings.TrimPrefix(err.Error(), "zktest: ") }
