package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

var binary struct {
	once sync.Once
	path string
	err  error
}

// lighthouseBin builds the command once per test binary.
func lighthouseBin(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "lighthouse-bin")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "lighthouse")
		out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = errors.New(string(out))
		}
	})
	if binary.err != nil {
		t.Fatalf("build: %v", binary.err)
	}
	return binary.path
}

// cliEnv is the environment of the built command: without our variables.
var cliEnv = append(os.Environ(), "LIGHTHOUSE_ZK=", "LIGHTHOUSE_USER=", "LIGHTHOUSE_PASSWORD=")

// cli runs the built command and returns its stdout, stderr and exit code.
// A command still running after 30 s is killed (exit -1).
func cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lighthouseBin(t), args...)
	cmd.Env = cliEnv
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func session(t *testing.T, connectString string, opts ...lighthouse.Option) *lighthouse.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := lighthouse.Connect(ctx, connectString, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func elect(t *testing.T, s *lighthouse.Session, path, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Elect(ctx, path, lighthouse.WithID(id))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ch {
		}
	}()
}

func TestLeaderAndParticipants(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	if _, stderr, code := cli(t, "leader", "--zk", root, "/jobs/leader"); code != exitNotFound {
		t.Fatalf("leader of a missing election: exit %d, want %d (%s)", code, exitNotFound, stderr)
	}
	s := session(t, root)
	elect(t, s, "/jobs/leader", "worker-a")
	elect(t, session(t, root), "/jobs/leader", "worker-b")

	out, stderr, code := cli(t, "leader", "--zk", root, "/jobs/leader")
	if code != 0 || !strings.HasPrefix(out, "worker-a\ttoken=") {
		t.Fatalf("leader: exit %d, %q %s", code, out, stderr)
	}
	out, _, code = cli(t, "leader", "--zk", root, "--json", "/jobs/leader")
	var l struct {
		ID     string `json:"id"`
		Leader bool   `json:"leader"`
		Token  int64  `json:"token"`
		Node   string `json:"node"`
	}
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || l.ID != "worker-a" || !l.Leader || l.Token <= 0 || !strings.Contains(l.Node, "-latch-") {
		t.Fatalf("leader --json: exit %d, %q (%v)", code, out, err)
	}

	out, _, code = cli(t, "participants", "--zk", root, "--json", "/jobs/leader")
	var ps []struct {
		ID     string `json:"id"`
		Leader bool   `json:"leader"`
	}
	if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil || len(ps) != 2 ||
		ps[0].ID != "worker-a" || !ps[0].Leader || ps[1].ID != "worker-b" || ps[1].Leader {
		t.Fatalf("participants --json: exit %d, %q (%v)", code, out, err)
	}
	out, _, code = cli(t, "participants", "--zk", root, "/jobs/leader")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "leader") || !strings.Contains(lines[2], "worker-b") {
		t.Fatalf("participants: exit %d, %q", code, out)
	}
}

func TestMembersAndServices(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	out, _, code := cli(t, "services", "--zk", root, "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("services with none: exit %d, %q", code, out)
	}
	s := session(t, root)
	ctx := context.Background()
	for _, id := range []string{"b", "a"} {
		reg, err := s.Register(ctx, "users", lighthouse.Node{ID: id, Data: []byte("10.0.0." + id)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { reg.Close() })
	}
	out, _, code = cli(t, "services", "--zk", root)
	if code != 0 || strings.TrimSpace(out) != "users" {
		t.Fatalf("services: exit %d, %q", code, out)
	}
	out, _, code = cli(t, "members", "--zk", root, "--json", "users")
	var nodes []struct{ ID, Data string }
	if err := json.Unmarshal([]byte(out), &nodes); code != 0 || err != nil || len(nodes) != 2 || nodes[0].ID != "a" || nodes[0].Data != "10.0.0.a" {
		t.Fatalf("members --json: exit %d, %q (%v)", code, out, err)
	}
	if _, _, code := cli(t, "members", "--zk", root, "bad/name"); code != exitUsage {
		t.Fatalf("members with an invalid name: exit %d, want %d", code, exitUsage)
	}
}

func TestMembersWatch(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	next, stop := cliWatch(t, "members", "--zk", root, "--watch", "--json", "orders")
	if l := next(); l != "[]" {
		t.Fatalf("first line %q, want []", l)
	}
	reg, err := session(t, root).Register(context.Background(), "orders", lighthouse.Node{ID: "o1", Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if l := next(); l != `[{"id":"o1","data":"x"}]` {
		t.Fatalf("after a join: %q", l)
	}
	reg.Close()
	if l := next(); l != "[]" {
		t.Fatalf("after a leave: %q", l)
	}
	if err := stop(); err != nil {
		t.Fatalf("members --watch after Ctrl-C: %v", err)
	}
}

// cliWatch starts the built command, which is to keep running. next returns
// its next line of output (failing t after 10 s without one); stop sends it
// Ctrl-C and returns its exit status.
func cliWatch(t *testing.T, args ...string) (next func() string, stop func() error) {
	t.Helper()
	cmd := exec.Command(lighthouseBin(t), args...)
	cmd.Env = cliEnv
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGINT)
		for range lines {
		}
		return cmd.Wait()
	}
	t.Cleanup(func() { stop() })
	next = func() string {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatalf("%q printed nothing", args)
		}
		return ""
	}
	return next, stop
}

func TestInspectErrors(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	if _, stderr, code := cli(t, "leader", "--zk", "127.0.0.1:1", "--timeout", "500ms", "/x"); code != exitUnreachable || !strings.Contains(stderr, "cannot reach ZooKeeper") {
		t.Fatalf("unreachable: exit %d, %q", code, stderr)
	}
	if _, _, code := cli(t, "leader", "--zk", root, "not-absolute"); code != exitUsage {
		t.Fatalf("bad path: exit %d", code)
	}
	if _, _, code := cli(t, "leader", "--zk", "", "/x"); code != exitUsage {
		t.Fatalf("empty --zk: exit %d", code)
	}
	if _, _, code := cli(t, "leader"); code != exitUsage {
		t.Fatalf("missing argument: exit %d", code)
	}
	if out, stderr, code := cli(t, "leader", "--help"); code != 0 || !strings.Contains(stderr+out, "--watch") {
		t.Fatalf("--help: exit %d, %q", code, stderr)
	}
	// An election readable only by its owner.
	owner := session(t, root, lighthouse.WithDigestAuth("ops", "pw"),
		lighthouse.WithACL(lighthouse.DigestACL(lighthouse.PermAll, "ops", "pw")...))
	elect(t, owner, "/private", "secret-worker")
	if _, stderr, code := cli(t, "participants", "--zk", root, "/private"); code != exitNoAuth {
		t.Fatalf("without credentials: exit %d, want %d (%s)", code, exitNoAuth, stderr)
	}
	if out, stderr, code := cli(t, "participants", "--zk", root, "--user", "ops", "--password", "pw", "/private"); code != 0 || !strings.Contains(out, "secret-worker") {
		t.Fatalf("with credentials: exit %d, %q %s", code, out, stderr)
	}
}

// TestExitCodes pins the exit code and message of each kind of failure. No
// message says "lighthouse:" twice.
func TestExitCodes(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	missingRoot := zkc.Addr(0) + "/no-such-chroot"
	owner := session(t, root, lighthouse.WithDigestAuth("ops", "pw"),
		lighthouse.WithACL(lighthouse.DigestACL(lighthouse.PermAll, "ops", "pw")...))
	elect(t, owner, "/private", "secret-worker")
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"leader", "--zk", root, "--timeout", "0", "/x"}, exitUsage, "--timeout"},
		{[]string{"leader", "--zk", root, "--timeout", "-1s", "/x"}, exitUsage, "--timeout"},
		{[]string{"leader", "--zk", root, "--password", "pw", "/x"}, exitUsage, "--user"},
		{[]string{"leader", "--zk", root, "--user", "ops", "--password", "", "/x"}, exitUsage, "--password"},
		{[]string{"leader", "--zk", "127.0.0.1:99999", "/x"}, exitUsage, "connect string"},
		{[]string{"leader", "--zk", "127.0.0.1:2181,", "/x"}, exitUsage, "connect string"},
		{[]string{"leader", "--zk", "no-such-host.invalid:2181", "--timeout", "2s", "/x"}, exitUnreachable, "cannot reach ZooKeeper"},
		{[]string{"leader", "--zk", root, "not-absolute"}, exitUsage, "invalid path"},
		{[]string{"leader", "--zk", root, "/missing"}, exitNotFound, "no election at /missing"},
		{[]string{"leader", "--zk", root, "--watch", "/missing"}, exitNotFound, "no election at /missing"},
		{[]string{"participants", "--zk", root, "/missing"}, exitNotFound, "no election at /missing"},
		{[]string{"participants", "--zk", root, "--watch", "/missing"}, exitNotFound, "no election at /missing"},
		{[]string{"leader", "--zk", root, "/private"}, exitNoAuth, "leader /private"},
		{[]string{"services", "--zk", missingRoot}, exitNotFound, "chroot /no-such-chroot does not exist"},
		{[]string{"members", "--zk", missingRoot, "users"}, exitNotFound, "chroot /no-such-chroot does not exist"},
		{[]string{"leader", "--zk", missingRoot, "/x"}, exitNotFound, "chroot /no-such-chroot does not exist"},
		{[]string{"participants", "--zk", missingRoot, "--watch", "/x"}, exitNotFound, "chroot /no-such-chroot does not exist"},
	} {
		_, stderr, code := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, want %d with %q; stderr %q", tc.args, code, tc.code, tc.want, stderr)
		}
		if strings.Count(stderr, "lighthouse:") > 1 || tc.args[0] != "participants" && strings.Contains(stderr, "participants") {
			t.Errorf("%q: stderr %q says \"lighthouse:\" twice or names the wrong command", tc.args, stderr)
		}
	}
	// A host that does not resolve beside one that works: never a usage error.
	if _, stderr, code := cli(t, "services", "--zk", "no-such-host.invalid:2181,"+root, "--timeout", "2s"); code == exitUsage {
		t.Errorf("an unresolvable host among good ones: exit %d (%s)", code, stderr)
	}
}

func TestHelpStatesExitCodes(t *testing.T) {
	for _, c := range []string{"demo", "leader", "participants", "members", "services"} {
		out, stderr, code := cli(t, c, "--help")
		if code != 0 || !strings.Contains(out+stderr, "Exit codes:") {
			t.Errorf("%s --help: exit %d, no exit codes in %q", c, code, out+stderr)
		}
	}
}

// TestHostileNames: IDs and data with control characters or bytes that are
// not UTF-8 are escaped in text and never pass for text in JSON.
func TestHostileNames(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := session(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const evil = "evil\x1b[2J\nline"
	ch, err := s.Elect(ctx, "/e", lighthouse.WithID(evil), lighthouse.WithData([]byte{0xff, 0xfe}))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ch {
		}
	}()
	// Service and member names are paths, which exclude control characters;
	// member data may hold anything.
	for _, n := range []lighthouse.Node{{ID: "bytes", Data: []byte{0xff, 0x00, 'x'}}, {ID: "plain", Data: []byte("\a\x1b[2J\nnext")}} {
		reg, err := s.Register(ctx, "svc", n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { reg.Close() })
	}
	for _, args := range [][]string{{"leader", "/e"}, {"participants", "/e"}, {"members", "svc"}} {
		out, stderr, code := cli(t, append([]string{args[0], "--zk", root}, args[1:]...)...)
		if code != 0 || strings.ContainsAny(out, "\x1b\a") || strings.Count(out, "\n") > 3 {
			t.Errorf("%q: exit %d, raw control characters in %q (%s)", args, code, out, stderr)
		}
		if args[0] == "members" && !strings.Contains(out, "plain\t") {
			t.Errorf("%q: printable ID quoted: %q", args, out)
		}
	}
	out, _, code := cli(t, "members", "--zk", root, "--json", "svc")
	var nodes []map[string]any
	if err := json.Unmarshal([]byte(out), &nodes); code != 0 || err != nil || len(nodes) != 2 {
		t.Fatalf("members --json: exit %d, %q (%v)", code, out, err)
	}
	if _, ok := nodes[0]["data"]; ok || nodes[0]["data_base64"] != "/wB4" || nodes[1]["data"] != "\a\x1b[2J\nnext" || nodes[1]["data_base64"] != nil {
		t.Errorf("members --json: %q", out)
	}
	out, _, _ = cli(t, "leader", "--zk", root, "--json", "/e")
	var l map[string]any
	if err := json.Unmarshal([]byte(out), &l); err != nil || l["id"] != evil || l["data_base64"] != "//4=" || l["data"] != nil || l["id_base64"] != nil {
		t.Errorf("leader --json: %q (%v)", out, err)
	}

	// A participant's ID that is not UTF-8 keeps its bytes in JSON,
	// base64-encoded, as data does (a JSON string would turn them into
	// U+FFFD).
	const bytesID = "id\xff\xfe"
	bch, err := s.Elect(ctx, "/b", lighthouse.WithID(bytesID))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range bch {
		}
	}()
	// (Member IDs are node names: UTF-8.)
	for _, args := range [][]string{{"leader", "/b"}, {"participants", "/b"}} {
		out, _, code := cli(t, append([]string{args[0], "--zk", root, "--json"}, args[1:]...)...)
		var one map[string]any
		if args[0] != "leader" {
			var list []map[string]any
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
				t.Errorf("%q: exit %d, %q (%v)", args, code, out, err)
				continue
			}
			one = list[0]
		} else if err := json.Unmarshal([]byte(out), &one); err != nil {
			t.Errorf("%q: exit %d, %q (%v)", args, code, out, err)
			continue
		}
		if _, ok := one["id"]; ok || one["id_base64"] != "aWT//g==" {
			t.Errorf("%q: %q, want id_base64 aWT//g== and no id", args, out)
		}
	}
}

// TestLeaderToken: leader --json carries the fencing token, the czxid of
// the leader's node, with and without --watch.
func TestLeaderToken(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := session(t, root)
	elect(t, s, "/jobs", "a")
	ps, err := s.Participants(context.Background(), "/jobs")
	if err != nil || len(ps) != 1 {
		t.Fatalf("participants: %v %v", ps, err)
	}
	_, st, err := s.Exists(context.Background(), "/jobs/"+ps[0].Node)
	if err != nil {
		t.Fatal(err)
	}
	var l struct{ Token int64 }
	out, _, code := cli(t, "leader", "--zk", root, "--json", "/jobs")
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || l.Token != st.Czxid {
		t.Fatalf("leader --json: exit %d, %q, want token %d (%v)", code, out, st.Czxid, err)
	}
	next, _ := cliWatch(t, "leader", "--zk", root, "--json", "--watch", "/jobs")
	if out := next(); json.Unmarshal([]byte(out), &l) != nil || l.Token != st.Czxid {
		t.Fatalf("leader --json --watch: %q, want token %d", out, st.Czxid)
	}
}

// TestOutputWriteErrors: an output that cannot be written fails the
// command (exit 1), also with --watch, which stops at once. The commands
// exited 0 before, and --watch went on until interrupted.
func TestOutputWriteErrors(t *testing.T) {
	zkc := zktest.Shared(t)
	root := zkc.Root(t)
	s := session(t, root)
	elect(t, s, "/e", "a")
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	reg, err := s.Register(ctx, "svc", lighthouse.Node{ID: "i"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	for _, args := range [][]string{
		{"leader", "/e"}, {"participants", "/e"}, {"members", "svc"}, {"services"},
		{"participants", "--watch", "/e"}, {"members", "--watch", "svc"}, {"leader", "--watch", "/e"}, {"services", "--watch"},
		{"members", "--json", "svc"},
	} {
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		cmdCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		cmd := exec.CommandContext(cmdCtx, lighthouseBin(t), append([]string{args[0], "--zk", root}, args[1:]...)...)
		cmd.Env = cliEnv
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = full, &stderr
		err = cmd.Run()
		cancel()
		full.Close()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != exitFailure || !strings.Contains(stderr.String(), "writing the output") {
			t.Errorf("%q to /dev/full: %v, %q; want exit %d, saying the output could not be written", args, err, stderr.String(), exitFailure)
		}
	}
}
