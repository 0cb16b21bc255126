// Package javapeer runs Java programs beside Go tests: Apache Curator
// clients that share a ZooKeeper with lighthouse, driven through a line
// protocol on stdin and stdout.
//
// The programs are compiled once per set of sources against Debian's Curator
// jars (libcurator-framework-java, libcurator-recipes-java,
// libcurator-discovery-java) into the user's cache directory, so a test
// binary pays for javac at most once and every later run not at all. Each
// Peer is one JVM (about half a second to start): run several checks per
// Peer where a test can.
package javapeer

import (
	"bufio"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed testdata/*.java
var sources embed.FS

// Debian's jars; their manifests pull in the rest (curator-client, guava,
// jackson, zookeeper, slf4j-api).
var jars = []string{
	"/usr/share/java/curator-recipes.jar",
	"/usr/share/java/curator-x-discovery.jar",
	"/usr/share/java/slf4j-nop.jar", // silence slf4j's "no binding" warning
}

// ErrNoCurator: Curator's jars or a JDK are missing.
var ErrNoCurator = errors.New("javapeer: Apache Curator not found: run scripts/setup (apt-get install -y libcurator-framework-java libcurator-recipes-java libcurator-discovery-java default-jdk-headless)")

// Classpath returns the classpath of Debian's Curator jars, without the
// compiled programs.
func Classpath() (string, error) {
	for _, j := range jars[:2] {
		if _, err := os.Stat(j); err != nil {
			return "", fmt.Errorf("%w (%v)", ErrNoCurator, err)
		}
	}
	cp := jars[:2]
	if _, err := os.Stat(jars[2]); err == nil {
		cp = jars
	}
	return strings.Join(cp, string(os.PathListSeparator)), nil
}

// tool finds a JDK tool: $JAVA_HOME/bin/name, else name on $PATH.
func tool(name string) (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrNoCurator, name, err)
	}
	return p, nil
}

var built struct {
	once sync.Once
	cp   string // classpath with the compiled programs first
	err  error
}

// Build compiles the programs, once per process, and returns the classpath
// to run them with.
func Build() (string, error) {
	built.once.Do(func() { built.cp, built.err = build() })
	return built.cp, built.err
}

func build() (string, error) {
	cp, err := Classpath()
	if err != nil {
		return "", err
	}
	javac, err := tool("javac")
	if err != nil {
		return "", err
	}
	names, err := sources.ReadDir("testdata")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	io.WriteString(h, cp)
	for _, n := range names {
		b, err := sources.ReadFile("testdata/" + n.Name())
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", n.Name(), len(b))
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "lighthouse-javapeer", hex.EncodeToString(h.Sum(nil))[:16])
	classes := filepath.Join(dir, "classes")
	full := classes + string(os.PathListSeparator) + cp
	if _, err := os.Stat(classes); err == nil {
		return full, nil // compiled by an earlier run
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "src")
	out := filepath.Join(tmp, "classes")
	args := []string{"-nowarn", "-encoding", "UTF-8", "-cp", cp, "-d", out}
	for _, n := range names {
		b, _ := sources.ReadFile("testdata/" + n.Name())
		p := filepath.Join(src, n.Name())
		if err := os.MkdirAll(src, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", err
		}
		args = append(args, p)
	}
	if msg, err := exec.Command(javac, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("javapeer: javac: %v\n%s", err, msg)
	}
	// Another test binary may have got there first; either copy will do.
	if err := os.Rename(out, classes); err != nil {
		if _, serr := os.Stat(classes); serr != nil {
			return "", err
		}
	}
	return full, nil
}

// Peer is one running Java program.
type Peer struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string   // stdout, one line each; closed at EOF
	read   chan struct{} // closed when stdout is drained
	exited chan struct{} // closed when the process has been waited for
	stderr *lockedBuffer
	mu     sync.Mutex
	killed bool
}

// Options configure Start.
type Options struct {
	// Class is the program's main class (default "Peer").
	Class string
	// Args follow the class name on the command line.
	Args []string
	// OnLine, if set, sees every line the program prints, on the goroutine
	// that reads them, before Await does.
	OnLine func(line string)
}

// Start runs a program and waits until it prints "ready". The program is
// ended when t ends: stdin is closed (the programs exit at EOF), then it is
// killed if it has not exited within 5 s. Its stderr is logged if t failed.
func Start(t testing.TB, o Options) *Peer {
	t.Helper()
	cp, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	java, err := tool("java")
	if err != nil {
		t.Fatal(err)
	}
	if o.Class == "" {
		o.Class = "Peer"
	}
	args := append([]string{"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-cp", cp, o.Class}, o.Args...)
	cmd := exec.Command(java, args...)
	cmd.SysProcAttr = sysProcAttr()
	p := &Peer{t: t, cmd: cmd, lines: make(chan string, 4096), read: make(chan struct{}),
		exited: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("javapeer: start %s: %v", o.Class, err)
	}
	go func() {
		defer close(p.read)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if o.OnLine != nil {
				o.OnLine(sc.Text())
			}
			select {
			case p.lines <- sc.Text():
			default:
				t.Errorf("javapeer: %s: line dropped, nobody reads: %q", o.Class, sc.Text())
			}
		}
	}()
	go func() {
		<-p.read // Wait must not race the reader
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.Kill()
		}
		<-p.exited
		if t.Failed() {
			t.Logf("javapeer: %s stderr:\n%s", o.Class, p.stderr.String())
		}
	})
	p.Await("ready", 20*time.Second)
	return p
}

// Send writes one command, its fields joined by tabs.
func (p *Peer) Send(fields ...string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, strings.Join(fields, "\t")+"\n"); err != nil {
		p.t.Fatalf("javapeer: send %q: %v", fields, err)
	}
}

// Call sends a command and waits (up to 15 s) for its "ok", returning the
// lines printed before it that start with one of the prefixes given (all
// lines if none). It fails the test on "error".
func (p *Peer) Call(prefixes []string, fields ...string) []string {
	p.t.Helper()
	p.Send(fields...)
	var out []string
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("javapeer: %q: program exited: %s", fields, p.stderr.String())
			}
			switch {
			case line == "ok":
				return out
			case strings.HasPrefix(line, "error"):
				p.t.Fatalf("javapeer: %q: %s", fields, line)
			case len(prefixes) == 0 || hasPrefix(line, prefixes):
				out = append(out, line)
			}
		case <-timer.C:
			p.t.Fatalf("javapeer: %q: no answer within 15 s", fields)
		}
	}
}

func hasPrefix(line string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(line, pre) {
			return true
		}
	}
	return false
}

// Await skips lines until one that starts with prefix, returns it, and
// fails the test if none comes within d.
func (p *Peer) Await(prefix string, d time.Duration) string {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("javapeer: exited while awaiting %q: %s", prefix, p.stderr.String())
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
			if strings.HasPrefix(line, "error") {
				p.t.Fatalf("javapeer: awaiting %q: %s", prefix, line)
			}
		case <-timer.C:
			p.t.Fatalf("javapeer: no %q within %v", prefix, d)
		}
	}
}

// Kill ends the program at once (SIGKILL), as a crash would, and waits for
// it to exit. Its ZooKeeper session lives on until the server expires it.
func (p *Peer) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.killed {
		p.killed = true
		p.cmd.Process.Kill()
	}
	<-p.exited
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(b)
	}
	return len(b), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
