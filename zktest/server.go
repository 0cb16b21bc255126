package zktest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// errNotRunning is returned by the signalling methods for a server that has
// been stopped or killed, or has exited by itself.
var errNotRunning = errors.New("not running")

// stopGrace bounds how long Stop waits after SIGTERM before it uses SIGKILL.
const stopGrace = 10 * time.Second

// server is one ZooKeeper JVM of a Cluster. Its ports and directory stay the
// same across restarts.
type server struct {
	id                                   int // ZooKeeper's myid: index+1
	dir                                  string
	clientPort, quorumPort, electionPort int
	securePort                           int // 0 without Options.TLS

	mu   sync.Mutex
	proc *process // nil when not started, stopped or killed
}

// process is one run of a server's JVM.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait has reaped the JVM
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (s *server) addr() string    { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.clientPort)) }
func (s *server) cfgPath() string { return filepath.Join(s.dir, "zoo.cfg") }
func (s *server) logPath() string { return filepath.Join(s.dir, "zookeeper.log") }

// start launches the JVM, appending its output to the server's log file and,
// if out is not nil, to out. It does not wait for the server to serve.
func (s *server) start(java, classpath string, out io.Writer) (*process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.exited() {
		return nil, errors.New("already running")
	}
	f, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	var w io.Writer = f
	if out != nil {
		w = io.MultiWriter(f, out)
	}
	cmd := exec.Command(java,
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Dznode.container.checkIntervalMs=100",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
		"-cp", classpath,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", s.cfgPath())
	cmd.Dir = s.dir
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // a killed server's exit status says nothing new
		f.Close()
		close(p.done)
	}()
	s.proc = p
	return p, nil
}

// running returns the current process, or nil if there is none or it has
// exited.
func (s *server) running() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return nil
	}
	return s.proc
}

// signal sends sig to the running JVM. After SIGSTOP it waits until the
// JVM has stopped.
func (s *server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return errNotRunning
	}
	// Process.Signal, unlike kill(2) on the pid, cannot hit a reused pid.
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		return err
	}
	if sig == sigStop {
		return waitStopped(s.proc.cmd.Process.Pid, 5*time.Second)
	}
	return nil
}

// halt ends the JVM with sig (SIGTERM or SIGKILL) and waits until it has been
// reaped. After SIGTERM it waits up to stopGrace, then kills. A server that
// exited by itself is reaped without error.
func (s *server) halt(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return errNotRunning
	}
	s.proc = nil
	if sig == syscall.SIGKILL {
		_ = p.cmd.Process.Kill() // fails only if the JVM is gone already
		<-p.done
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	_ = p.cmd.Process.Signal(sigCont) // a paused JVM cannot handle SIGTERM
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("no exit within %v of %v; killed", stopGrace, sig)
	}
}

// lockedWriter serialises writes from several servers to one io.Writer.
// lockedWriter serialises the servers' writes to Options.LogOutput. It
// never fails: after the caller's writer fails once it gets nothing more,
// so that the copy to the server's own log goes on and the server never
// blocks on a full pipe.
type lockedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	failed bool
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failed {
		if _, err := l.w.Write(p); err != nil {
			l.failed = true
		}
	}
	return len(p), nil
}
