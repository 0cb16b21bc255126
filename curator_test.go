package lighthouse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lighthouse-zk/lighthouse/internal/javapeer"
	"github.com/lighthouse-zk/lighthouse/zktest"
)

// curatorJSON was written by Curator 5.4.0's JsonInstanceSerializer (payload
// class Map) for ServiceInstance.builder().name("svc").id("i1")
// .address("10.0.0.1").port(8080).payload(map k=v)
// .uriSpec(new UriSpec("{scheme}://{address}:{port}")).
const curatorJSON = `{"name":"svc","id":"i1","address":"10.0.0.1","port":8080,"sslPort":null,"payload":{"@class":"java.util.HashMap","k":"v"},"registrationTimeUTC":1795649270284,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]}}`

func TestServiceInstanceJSONAsCuratorWritesIt(t *testing.T) {
	i, err := DecodeServiceInstance([]byte(curatorJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := ServiceInstance{
		Name: "svc", ID: "i1", Address: "10.0.0.1", Port: 8080,
		Payload:          json.RawMessage(`{"@class":"java.util.HashMap","k":"v"}`),
		RegistrationTime: time.UnixMilli(1795649270284).UTC(),
		ServiceType:      ServiceTypeDynamic,
		URISpec:          mustURISpec(t, "{scheme}://{address}:{port}"),
	}
	if !sameInstance(i, want) {
		t.Fatalf("decoded\n %+v\nwant\n %+v", i, want)
	}
	if uri := i.URI(); uri != "http://10.0.0.1:8080" {
		t.Fatalf("URI %q", uri)
	}
	// Encoding gives Curator's bytes back, field order and nulls included.
	b, err := json.Marshal(i)
	if err != nil || string(b) != curatorJSON {
		t.Fatalf("encoded %s (%v)\nwant    %s", b, err, curatorJSON)
	}
}

func TestServiceInstanceDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
		check    func(ServiceInstance) bool
	}{
		{"nulls", `{"name":"s","id":"i","address":null,"port":null,"sslPort":null,"payload":null,"registrationTimeUTC":0,"serviceType":null,"uriSpec":null}`, true,
			func(i ServiceInstance) bool {
				return i.Address == "" && i.Port == 0 && i.Payload == nil && i.RegistrationTime.IsZero() && i.ServiceType == "" && i.URISpec == nil
			}},
		{"missing fields and unknown ones", `{"id":"i","enabled":false,"future":[1,2]}`, true,
			func(i ServiceInstance) bool { return i.ID == "i" && i.Name == "" && i.Enabled != nil && !*i.Enabled }},
		{"string payload kept as is", `{"payload":"hello"}`, true,
			func(i ServiceInstance) bool { return string(i.Payload) == `"hello"` }},
		{"ssl port: https", `{"address":"h","sslPort":443,"uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://x","variable":false}]}}`, true,
			func(i ServiceInstance) bool { return i.URI() == "https://x" }},
		{"not json", `{"name":`, false, nil},
		{"null", `null`, false, nil},
		{"array", `[]`, false, nil},
		{"port as string", `{"port":"80"}`, false, nil},
		{"port beyond a Java int", `{"port":2147483648}`, false, nil},
		{"trailing garbage", `{} {}`, false, nil},
		{"parts not a list", `{"uriSpec":{"parts":7}}`, false, nil},
		// Jackson matches keys exactly: Curator reads this as an instance
		// without name or port. encoding/json took it for a whole one.
		{"key in another case", `{"Name":"s","id":"i","port":80}`, false, nil},
		{"key in capitals", `{"name":"s","PORT":80}`, false, nil},
		// Jackson refuses bytes that are not UTF-8; encoding/json took them.
		{"not UTF-8", "{\"name\":\"s\",\"x\":\"\xff\xfe\"}", false, nil},
		// As Jackson fills Curator's instance (a review with real Curator
		// peers found each): a null "enabled" is false, not unset.
		{"enabled null", `{"name":"s","enabled":null}`, true,
			func(i ServiceInstance) bool { return i.Enabled != nil && !*i.Enabled }},
		{"enabled escaped", `{"name":"s","en\u0061bled":false}`, true,
			func(i ServiceInstance) bool { return i.Enabled != nil && !*i.Enabled }},
		// A missing serviceType is the constructor's DYNAMIC; a null one null.
		{"service type missing", `{"name":"s"}`, true,
			func(i ServiceInstance) bool { return i.ServiceType == ServiceTypeDynamic }},
		{"service type null", `{"name":"s","serviceType":null}`, true,
			func(i ServiceInstance) bool { return i.ServiceType == "" }},
		// Jackson matches the uriSpec's keys exactly too.
		{"uriSpec key in another case", `{"uriSpec":{"Parts":[]}}`, false, nil},
		{"part key in another case", `{"uriSpec":{"parts":[{"Value":"scheme","variable":true}]}}`, false, nil},
		{"part key in capitals", `{"uriSpec":{"parts":[{"value":"scheme","VARIABLE":true}]}}`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, err := DecodeServiceInstance([]byte(tc.in))
			if tc.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidInstance) {
				t.Fatalf("err %v does not wrap ErrInvalidInstance", err)
			}
			if tc.check != nil && !tc.check(i) {
				t.Fatalf("decoded %+v", i)
			}
		})
	}
}

func TestURISpec(t *testing.T) {
	for _, tc := range []struct{ in, uri string }{
		{"{scheme}://{address}:{port}", "http://10.0.0.1:8080"},
		{"{ scheme }://{address}/{name}/{id}?t={service-type}", "http://10.0.0.1/svc/i1?t=dynamic"},
		{"x{[}y{]}{unknown}{ssl-port}", "x{y}"},
		{"plain", "plain"},
	} {
		spec := mustURISpec(t, tc.in)
		i := ServiceInstance{Name: "svc", ID: "i1", Address: "10.0.0.1", Port: 8080, ServiceType: ServiceTypeDynamic, URISpec: spec}
		if got := i.URI(); got != tc.uri {
			t.Errorf("%q: URI %q, want %q", tc.in, got, tc.uri)
		}
		if again := mustURISpec(t, spec.String()); !slices.Equal(again, spec) {
			t.Errorf("%q: String %q parses to %v, want %v", tc.in, spec.String(), again, spec)
		}
	}
	for _, bad := range []string{"{a{b}}", "a}", "{a"} {
		if _, err := ParseURISpec(bad); !errors.Is(err, ErrInvalidInstance) || !strings.HasPrefix(err.Error(), "lighthouse: ") {
			t.Errorf("ParseURISpec(%q): %v, want ErrInvalidInstance, with the prefix", bad, err)
		}
	}
}

func mustURISpec(t testing.TB, s string) URISpec {
	t.Helper()
	u, err := ParseURISpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sameInstance compares two instances, payloads as compact JSON.
func sameInstance(a, b ServiceInstance) bool {
	pa, pb := compact(a.Payload), compact(b.Payload)
	a.Payload, b.Payload = nil, nil
	ea, eb := a.Enabled, b.Enabled
	a.Enabled, b.Enabled = nil, nil
	return pa == pb && (ea == nil) == (eb == nil) && (ea == nil || *ea == *eb) &&
		a.Name == b.Name && a.ID == b.ID && a.Address == b.Address && a.Port == b.Port &&
		a.SSLPort == b.SSLPort && a.RegistrationTime.Equal(b.RegistrationTime) &&
		a.ServiceType == b.ServiceType && (a.URISpec == nil) == (b.URISpec == nil) &&
		slices.Equal(a.URISpec, b.URISpec)
}

// compact returns JSON in a canonical form, so that payloads compare by
// meaning (encoding/json escapes '&', '<' and '>'; Jackson reads both forms).
func compact(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return string(b)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return string(b)
	}
	return string(out)
}

// FuzzServiceInstance: whatever a foreign writer left in a node, decoding
// returns an instance or ErrInvalidInstance, never panics, and what decodes
// encodes and decodes again to the same instance.
func FuzzServiceInstance(f *testing.F) {
	f.Add([]byte(curatorJSON))
	f.Add([]byte(`{"name":"s","id":"i","address":null,"port":null,"sslPort":443,"payload":"x","registrationTimeUTC":1,"serviceType":"PERMANENT","uriSpec":null,"enabled":true}`))
	f.Add([]byte(`{"uriSpec":{"parts":[]},"payload":[1,{"a":null}]}`))
	f.Add([]byte(`{"port":-1,"registrationTimeUTC":-62135596800001}`))
	f.Add([]byte(`junk`))
	f.Fuzz(func(t *testing.T, data []byte) {
		i, err := DecodeServiceInstance(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidInstance) {
				t.Fatalf("error %v does not wrap ErrInvalidInstance", err)
			}
			return
		}
		b, err := json.Marshal(i)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", i, err)
		}
		again, err := DecodeServiceInstance(b)
		if err != nil {
			t.Fatalf("encoded %s does not decode: %v", b, err)
		}
		if !sameInstance(i, again) {
			t.Fatalf("round trip changed\n %+v\nto\n %+v", i, again)
		}
		_ = i.URI()
	})
}

// curatorEvents subscribes to s's events for the test.
func curatorEvents(t testing.TB, s *Session) <-chan Event {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return s.Events(ctx)
}

func TestCuratorFormatSkipsMalformedInstances(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	s := connect(t, root)
	watcher := connect(t, root)
	events := curatorEvents(t, watcher)
	format := CuratorFormat("/discovery")
	goRegister(t, s, "orders", "g1", ServiceInstance{Address: "10.0.0.1", Port: 80}, format)
	// A foreign writer's junk in Curator's registry, before and after the
	// watch starts.
	if _, err := s.Create(testCtx(t), "/discovery/orders/junk1", []byte("{not json"), Ephemeral); err != nil {
		t.Fatal(err)
	}
	ch, err := watcher.Members(testCtx(t), "orders", format)
	if err != nil {
		t.Fatal(err)
	}
	awaitIDs(t, ch, 10*time.Second, "g1")
	if e := awaitEvent(t, events, EventError, 5*time.Second); e.Path != "/discovery/orders/junk1" || !errors.Is(e.Err, ErrInvalidInstance) {
		t.Fatalf("event %v, want an error naming junk1", e)
	}
	if _, err := s.Create(testCtx(t), "/discovery/orders/junk2", []byte(`null`), Ephemeral); err != nil {
		t.Fatal(err)
	}
	if e := awaitEvent(t, events, EventError, 5*time.Second); e.Path != "/discovery/orders/junk2" {
		t.Fatalf("event %v, want an error naming junk2", e)
	}
	// The watch goes on.
	goRegister(t, s, "orders", "g2", ServiceInstance{Address: "10.0.0.2", Port: 80}, format)
	nodes := awaitIDs(t, ch, 10*time.Second, "g1", "g2")
	for _, n := range nodes {
		if i, err := DecodeServiceInstance(n.Data); err != nil || i.ID != n.ID || i.Name != "orders" {
			t.Fatalf("node %s: %+v %v", n.ID, i, err)
		}
	}
	got, err := watcher.Instances(testCtx(t), "orders", format)
	if err != nil || !slices.Equal(ids(got), []string{"g1", "g2"}) {
		t.Fatalf("Instances: %v %v", ids(got), err)
	}
	svcs, err := watcher.Services(testCtx(t), format)
	if err != nil || !slices.Equal(svcs, []string{"orders"}) {
		t.Fatalf("Services: %v %v", svcs, err)
	}
	// lighthouse's own registry is apart.
	if own, err := watcher.Instances(testCtx(t), "orders"); err != nil || len(own) != 0 {
		t.Fatalf("own registry: %v %v", ids(own), err)
	}
}

func TestCuratorFormatRegisterChecksTheInstance(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	s := connect(t, root)
	format := CuratorFormat("/discovery")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"not an instance", []byte("10.0.0.1:80")},
		{"another service", mustJSON(t, ServiceInstance{Name: "billing"})},
		{"another id", mustJSON(t, ServiceInstance{ID: "x"})},
		{"not dynamic", mustJSON(t, ServiceInstance{ServiceType: ServiceTypePermanent})},
		{"keys Curator does not read", []byte(`{"Name":"orders","ID":"o1","Address":"10.0.0.4","Port":4,"ServiceType":"DYNAMIC","RegistrationTimeUTC":5}`)},
	} {
		_, err := s.Register(testCtx(t), "orders", Node{ID: "o1", Data: tc.data}, format)
		if !errors.Is(err, ErrInvalidInstance) {
			t.Errorf("%s: %v, want ErrInvalidInstance", tc.name, err)
		}
	}
	if _, err := s.Register(testCtx(t), "orders", Node{ID: "o1"}, CuratorFormat("relative")); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("relative base path: %v, want ErrInvalidOption", err)
	}
	// Complete instances are written as given.
	given := mustJSON(t, ServiceInstance{Name: "orders", ID: "o1", ServiceType: ServiceTypeDynamic, RegistrationTime: time.UnixMilli(5), Payload: json.RawMessage(`{"x" : 1}`)})
	given = append(given[:len(given)-1], `,"extra":true}`...)
	reg, err := s.Register(testCtx(t), "orders", Node{ID: "o1", Data: given}, format)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	data, _, err := s.Get(testCtx(t), "/discovery/orders/o1")
	if err != nil || !bytes.Equal(data, given) {
		t.Fatalf("node data %s %v, want %s", data, err, given)
	}
}

// TestCuratorFormatCompletesKeepingUnknownFields: Register fills in what an
// instance lacks (here the registration time) and keeps the members it
// does not know, in their order, as it does for a complete instance.
// Before, filling in re-marshalled the instance and dropped them.
func TestCuratorFormatCompletesKeepingUnknownFields(t *testing.T) {
	o, err := newRegistryOptions([]RegistryOption{CuratorFormat("/discovery")})
	if err != nil {
		t.Fatal(err)
	}
	data, err := o.encode("svc", "i2", []byte(`{"name":"svc","id":"i2","extra":"keep me","serviceType":"DYNAMIC","more":{"a":[1,2]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if string(got["extra"]) != `"keep me"` || string(got["more"]) != `{"a":[1,2]}` {
		t.Errorf("unknown members not kept: %s", data)
	}
	if i, err := DecodeServiceInstance(data); err != nil || i.RegistrationTime.IsZero() || i.Name != "svc" || i.ID != "i2" {
		t.Errorf("completed instance %+v, %v", i, err)
	}
	if e, m := bytes.Index(data, []byte(`"extra"`)), bytes.Index(data, []byte(`"more"`)); e > m {
		t.Errorf("unknown members reordered: %s", data)
	}
}

func mustJSON(t testing.TB, i ServiceInstance) []byte {
	t.Helper()
	b, err := json.Marshal(i)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goRegister registers instance id of service with the given fields.
func goRegister(t testing.TB, s *Session, service, id string, i ServiceInstance, opts ...RegistryOption) *Registration {
	t.Helper()
	reg, err := s.Register(testCtx(t), service, Node{ID: id, Data: mustJSON(t, i)}, opts...)
	if err != nil {
		t.Fatalf("Register %s/%s: %v", service, id, err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// Session timeouts of these tests: long enough that a loaded machine does
// not expire a session and reorder an election, except for a Java peer that
// is killed, whose nodes are gone killedSessionTimeout after its death.
const (
	javaTestTimeout      = 10 * time.Second
	killedSessionTimeout = 2 * time.Second
)

// startJava runs a Curator peer on root for the test.
func startJava(t *testing.T, root string, sessionTimeout time.Duration, onLine func(string)) *javapeer.Peer {
	t.Helper()
	return javapeer.Start(t, javapeer.Options{
		Args:   []string{root, strconv.Itoa(int(sessionTimeout / time.Millisecond))},
		OnLine: onLine,
	})
}

// stint is one leadership: who led from start until end (zero: still leads).
type stint struct {
	who        string
	start, end time.Time
}

// bench records the leaderships of Go and Java participants of one
// election on one clock (Java prints its wall clock, which is the machine's)
// and checks that no two overlap. A leadership's start is taken when it is
// seen (late) and its end when it is given up (early), so the check never
// fails a correct run; a Java latch's end is printed before its node goes.
type bench struct {
	t      *testing.T
	r      *referee
	mu     sync.Mutex
	stints []stint
}

func newBench(t *testing.T) *bench { return &bench{t: t, r: newReferee(t)} }

func (b *bench) begin(who string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stints = append(b.stints, stint{who: who, start: at})
}

func (b *bench) end(who string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.stints) - 1; i >= 0; i-- {
		if b.stints[i].who == who && b.stints[i].end.IsZero() {
			b.stints[i].end = at
			return
		}
	}
}

// javaLine takes a Java peer's "leader" lines.
func (b *bench) javaLine(line string) {
	f := strings.Split(line, "\t")
	if len(f) != 4 || f[0] != "leader" {
		return
	}
	ns, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		b.t.Errorf("bad line %q", line)
		return
	}
	if f[2] == "true" {
		b.begin(f[1], time.Unix(0, ns))
	} else {
		b.end(f[1], time.Unix(0, ns))
	}
}

// elect joins a Go participant, feeding the referee and the bench.
func (b *bench) elect(s *Session, path, id string) (leave func()) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.t.Cleanup(cancel)
	ch, err := s.Elect(ctx, path, WithID(id))
	if err != nil {
		b.t.Fatalf("Elect %s: %v", id, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var token int64
		for l := range ch {
			if l.IsLeader && l.Token != token {
				b.begin(id, time.Now())
				token = l.Token
			}
			b.r.see(l)
		}
	}()
	return func() {
		b.end(id, time.Now())
		cancel()
		awaitClosed(b.t, done, id)
	}
}

// awaitLeader waits until who (a Java participant) is the newest stint.
func (b *bench) awaitLeader(who string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		b.mu.Lock()
		n := len(b.stints)
		ok := n > 0 && b.stints[n-1].who == who && b.stints[n-1].end.IsZero()
		b.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s does not lead within %v (stints %v)", who, d, b.order())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// order returns who led, in order.
func (b *bench) order() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, s := range b.stints {
		out = append(out, s.who)
	}
	return out
}

// check fails the test if two leaderships overlap.
func (b *bench) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	forever := time.Unix(1<<40, 0)
	endOf := func(s stint) time.Time {
		if s.end.IsZero() {
			return forever
		}
		return s.end
	}
	for i, x := range b.stints {
		for _, y := range b.stints[i+1:] {
			if x.start.Before(endOf(y)) && y.start.Before(endOf(x)) {
				b.t.Errorf("%s led %v..%v while %s led %v..%v", x.who, x.start, x.end, y.who, y.start, y.end)
			}
		}
	}
}

// participantIDs lists the election's participants as Go sees them,
// the leader marked with '*' as the Java peer marks it.
func participantIDs(t *testing.T, s *Session, path string) string {
	t.Helper()
	ps, err := s.Participants(testCtx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		id := p.ID
		if p.IsLeader {
			id += "*"
		}
		out = append(out, id)
	}
	return strings.Join(out, ",")
}

// awaitParticipants polls both sides until they list want.
func awaitParticipants(t *testing.T, s *Session, java *javapeer.Peer, javaID, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		goSees := participantIDs(t, s, path)
		javaSees := strings.TrimPrefix(java.Call([]string{"participants"}, "participants", javaID)[0], "participants\t")
		if goSees == want && javaSees == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("participants: Go sees %q, Java sees %q, want %q", goSees, javaSees, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Go leads first; a Curator LeaderLatch queues behind it and leads when the
// Go leader resigns; a Go participant behind the latch leads when the latch
// is closed.
func TestJavaLatchBehindGo(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	b := newBench(t)
	java := startJava(t, root, javaTestTimeout, b.javaLine)
	leave1 := b.elect(connect(t, root, WithSessionTimeout(javaTestTimeout)), "/leader", "go-1")
	b.r.awaitGrant("go-1", 10*time.Second)

	java.Call(nil, "latch", "/leader", "java-1")
	s2 := connect(t, root, WithSessionTimeout(javaTestTimeout))
	leave2 := b.elect(s2, "/leader", "go-2")
	defer leave2()
	awaitParticipants(t, s2, java, "java-1", "/leader", "go-1*,java-1,go-2")
	b.r.await("go-2", func(l Leadership) bool { return !l.IsLeader && l.Leader == "go-1" })

	leave1() // Go -> Java
	b.awaitLeader("java-1", 10*time.Second)
	awaitParticipants(t, s2, java, "java-1", "/leader", "java-1*,go-2")

	java.Call(nil, "unlatch", "java-1") // Java -> Go
	b.r.awaitGrant("go-2", 10*time.Second)
	if got := participantIDs(t, s2, "/leader"); got != "go-2*" {
		t.Fatalf("participants %q", got)
	}
	if got := b.order(); !slices.Equal(got, []string{"go-1", "java-1", "go-2"}) {
		t.Fatalf("led in order %v, want creation order", got)
	}
	b.check()
}

// A Curator LeaderLatch leads first; Go participants queue behind it,
// knowing who leads, and the first takes over when the Java process is
// killed (once its session expires).
func TestJavaLatchLeadsThenDies(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	b := newBench(t)
	java := startJava(t, root, killedSessionTimeout, b.javaLine)
	java.Call(nil, "latch", "/leader", "java-1")
	b.awaitLeader("java-1", 10*time.Second)

	s1 := connect(t, root, WithSessionTimeout(javaTestTimeout))
	defer b.elect(s1, "/leader", "go-1")()
	defer b.elect(connect(t, root, WithSessionTimeout(javaTestTimeout)), "/leader", "go-2")()
	b.r.await("go-1", func(l Leadership) bool { return !l.IsLeader && l.Leader == "java-1" })
	awaitParticipants(t, s1, java, "java-1", "/leader", "java-1*,go-1,go-2")

	b.end("java-1", time.Now())
	java.Kill()
	b.r.awaitGrant("go-1", killedSessionTimeout+10*time.Second)
	if got := participantIDs(t, s1, "/leader"); got != "go-1*,go-2" {
		t.Fatalf("participants after the Java peer died: %q", got)
	}
	if got := b.order(); !slices.Equal(got, []string{"java-1", "go-1"}) {
		t.Fatalf("led in order %v", got)
	}
	b.check()
}

// javaInstance is one "instance" line of the Java peer: the fields of a
// ServiceInstance as Curator read them.
type javaInstance struct {
	name, id, address, port, sslPort, payload, regTime, serviceType, uri, enabled string
}

func javaQuery(t *testing.T, java *javapeer.Peer, base, service string) []javaInstance {
	t.Helper()
	var out []javaInstance
	for _, line := range java.Call([]string{"instance"}, "query", base, service) {
		f := strings.Split(line, "\t")
		if len(f) != 11 {
			t.Fatalf("bad line %q", line)
		}
		out = append(out, javaInstance{f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10]})
	}
	return out
}

// Go registers in Curator's registry: Curator's queryForInstances reads
// the same fields, and a Curator ServiceCache follows Go instances as they
// come and go.
func TestJavaSeesGoInstances(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	java := startJava(t, root, javaTestTimeout, nil)
	format := CuratorFormat("/discovery")
	if got := java.Call([]string{"cache"}, "cache", "/discovery", "orders"); !slices.Contains(got, "cache\torders\t") {
		t.Fatalf("cache starts with %q, want it empty", got)
	}

	s := connect(t, root, WithSessionTimeout(javaTestTimeout))
	uri := mustURISpec(t, "{scheme}://{address}:{port}")
	registered := time.UnixMilli(time.Now().UnixMilli())
	reg1 := goRegister(t, s, "orders", "g1", ServiceInstance{
		Address: "10.0.0.7", Port: 8080, Payload: json.RawMessage(`{"zone":"eu-1","weight":3}`),
		RegistrationTime: registered, URISpec: uri,
	}, format)
	java.Await("cache\torders\tg1", 10*time.Second)
	got := javaQuery(t, java, "/discovery", "orders")
	want := []javaInstance{{
		name: "orders", id: "g1", address: "10.0.0.7", port: "8080", sslPort: "null",
		payload: `java.util.LinkedHashMap {"zone":"eu-1","weight":3}`,
		regTime: strconv.FormatInt(registered.UnixMilli(), 10), serviceType: "DYNAMIC",
		uri: "http://10.0.0.7:8080", enabled: "true",
	}}
	if !slices.Equal(got, want) {
		t.Fatalf("Java reads\n %+v\nwant\n %+v", got, want)
	}

	// Defaults filled in by Register; a payload with Jackson's class tag.
	goRegister(t, s, "orders", "g2", ServiceInstance{
		Address: "10.0.0.8", SSLPort: 8443, URISpec: uri,
		Payload: json.RawMessage(`{"@class":"java.util.TreeMap","b":1,"a":2}`),
	}, format)
	java.Await("cache\torders\tg1,g2", 10*time.Second)
	got = javaQuery(t, java, "/discovery", "orders")
	if len(got) != 2 || got[1].id != "g2" || got[1].name != "orders" || got[1].port != "null" ||
		got[1].sslPort != "8443" || got[1].payload != `java.util.TreeMap {"a":2,"b":1}` ||
		got[1].serviceType != "DYNAMIC" || got[1].uri != "https://10.0.0.8:" || got[1].regTime == "0" {
		t.Fatalf("Java reads g2 as %+v", got)
	}
	if err := reg1.Close(); err != nil {
		t.Fatal(err)
	}
	java.Await("cache\torders\tg2", 10*time.Second)
	s.Close()
	java.Await("cache\torders\t", 10*time.Second)
}

// Curator registers: Go's Members and Instances see its instances, fields
// and all, and its leaving.
func TestGoSeesJavaInstances(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	java := startJava(t, root, javaTestTimeout, nil)
	format := CuratorFormat("/discovery")
	s := connect(t, root, WithSessionTimeout(javaTestTimeout))
	ch, err := s.Members(testCtx(t), "orders", format)
	if err != nil {
		t.Fatal(err)
	}
	awaitIDs(t, ch, 5*time.Second)
	before := time.Now().Add(-time.Second)
	java.Call(nil, "register", "/discovery", "orders", "j1", "10.0.0.9", "9090", `{"zone":"eu-2"}`)
	goRegister(t, s, "orders", "g1", ServiceInstance{Address: "10.0.0.7", Port: 8080}, format)
	nodes := awaitIDs(t, ch, 10*time.Second, "g1", "j1")
	i, err := DecodeServiceInstance(nodes[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]string
	if err := json.Unmarshal(i.Payload, &payload); err != nil || payload["zone"] != "eu-2" {
		t.Fatalf("payload %s: %v", i.Payload, err)
	}
	if i.Name != "orders" || i.ID != "j1" || i.Address != "10.0.0.9" || i.Port != 9090 || i.SSLPort != 0 ||
		i.ServiceType != ServiceTypeDynamic || i.URI() != "http://10.0.0.9:9090" ||
		i.RegistrationTime.Before(before) || i.RegistrationTime.After(time.Now()) {
		t.Fatalf("Go reads j1 as %+v", i)
	}
	all, err := s.Instances(testCtx(t), "orders", format)
	if err != nil || !slices.Equal(ids(all), []string{"g1", "j1"}) || !bytes.Equal(all[1].Data, nodes[1].Data) {
		t.Fatalf("Instances: %v %v", ids(all), err)
	}
	java.Call(nil, "unregister", "/discovery", "orders", "j1")
	awaitIDs(t, ch, 10*time.Second, "g1")
}

func TestBalancerFollowsCuratorRegistry(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	s := connect(t, root)
	format := CuratorFormat("/discovery")
	reg, err := s.Register(testCtx(t), "orders", Node{ID: "o1", Data: mustJSON(t, ServiceInstance{Address: "10.0.0.7", Port: 8080})}, format)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// Junk beside it is left out, not picked.
	if _, err := s.Create(testCtx(t), "/discovery/orders/junk", []byte("{not json"), Ephemeral); err != nil {
		t.Fatal(err)
	}
	b, err := s.Balancer(testCtx(t), "orders", RoundRobin(), WithRegistry(format))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 4 {
		n, ok := b.Pick("")
		if !ok || n.ID != "o1" {
			t.Fatalf("Pick: %+v %v, want o1", n, ok)
		}
		inst, err := DecodeServiceInstance(n.Data)
		if err != nil || inst.Address != "10.0.0.7" || inst.Port != 8080 {
			t.Fatalf("picked instance %+v %v", inst, err)
		}
	}
}

// A Curator-format Balancer leaves out instances marked disabled, as
// Curator's ServiceProvider does; it picked them.
func TestBalancerLeavesOutDisabledInstances(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	s := connect(t, root)
	format := CuratorFormat("/discovery")
	goRegister(t, s, "orders", "o1", ServiceInstance{Address: "10.0.0.1"}, format)
	o2 := goRegister(t, s, "orders", "o2", ServiceInstance{Address: "10.0.0.2"}, format)
	b, err := s.Balancer(testCtx(t), "orders", RoundRobin(), WithRegistry(format))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	awaitPicks(t, b, "o1", "o2")
	off, on := false, true
	set := func(enabled *bool) {
		t.Helper()
		data := mustJSON(t, ServiceInstance{Name: "orders", ID: "o2", Address: "10.0.0.2", ServiceType: ServiceTypeDynamic, RegistrationTime: time.UnixMilli(1), Enabled: enabled})
		if err := o2.Update(testCtx(t), data); err != nil {
			t.Fatal(err)
		}
	}
	set(&off)
	awaitPicks(t, b, "o1")
	set(&on)
	awaitPicks(t, b, "o1", "o2")
}

// TestDisabledAsCuratorReadsIt: the Balancer leaves out what Curator's
// ServiceProvider leaves out, a null flag and an escaped key included.
func TestDisabledAsCuratorReadsIt(t *testing.T) {
	for in, want := range map[string]bool{
		`{"name":"s"}`:           false,
		`{"enabled":true}`:       false,
		`{"enabled":false}`:      true,
		`{"enabled":null}`:       true,
		`{"en\u0061bled":false}`: true,
	} {
		if got := disabled([]byte(in)); got != want {
			t.Errorf("disabled(%s) = %v, want %v", in, got, want)
		}
	}
}

// Curator's updateService and Go's Update are the same change: Go's
// Members delivers a Java update, Java's queryForInstances reads a Go one.
func TestCuratorUpdateServiceBothWays(t *testing.T) {
	root := zktest.Shared(t).Root(t)
	java := startJava(t, root, javaTestTimeout, nil)
	format := CuratorFormat("/discovery")
	s := connect(t, root, WithSessionTimeout(javaTestTimeout))
	ch, err := s.Members(testCtx(t), "orders", format)
	if err != nil {
		t.Fatal(err)
	}
	awaitIDs(t, ch, 5*time.Second)
	java.Call(nil, "register", "/discovery", "orders", "j1", "10.0.0.9", "9090", "null")
	awaitIDs(t, ch, 10*time.Second, "j1")
	before := s.memberReads.Load()
	java.Call(nil, "update", "/discovery", "orders", "j1", "10.0.0.10", "9191", `{"zone":"eu-3"}`)
	nodes := awaitUpdated(t, ch, 10*time.Second, func(n []Node) bool {
		i, err := DecodeServiceInstance(n[0].Data)
		return err == nil && i.Address == "10.0.0.10" && i.Port == 9191 && strings.Contains(string(i.Payload), `"zone":"eu-3"`)
	})
	if n := s.memberReads.Load() - before; n != 1 {
		t.Errorf("Java's updateService cost %d reads, want 1", n)
	}
	if len(nodes) != 1 {
		t.Fatalf("after updateService: %v", ids(nodes))
	}

	reg := goRegister(t, s, "orders", "g1", ServiceInstance{Address: "10.0.0.7", Port: 8080}, format)
	awaitIDs(t, ch, 10*time.Second, "g1", "j1")
	if err := reg.Update(testCtx(t), mustJSON(t, ServiceInstance{Address: "10.0.0.8", Port: 8081, Payload: json.RawMessage(`{"w":2}`)})); err != nil {
		t.Fatal(err)
	}
	got := javaQuery(t, java, "/discovery", "orders")
	if len(got) != 2 || got[0].id != "g1" || got[0].address != "10.0.0.8" || got[0].port != "8081" ||
		got[0].payload != `java.util.LinkedHashMap {"w":2}` || got[0].name != "orders" || got[0].serviceType != "DYNAMIC" {
		t.Fatalf("Java reads the updated g1 as %+v", got)
	}
	// An Update is checked as Register checks its instance.
	if err := reg.Update(testCtx(t), mustJSON(t, ServiceInstance{Name: "payments"})); !errors.Is(err, ErrInvalidInstance) {
		t.Fatalf("Update to another service: %v, want ErrInvalidInstance", err)
	}
}

// awaitUpdated reads sets from ch until ok accepts one, failing the test
// if none comes within d.
func awaitUpdated(t testing.TB, ch <-chan []Node, d time.Duration, ok func([]Node) bool) []Node {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case nodes, open := <-ch:
			if !open {
				t.Fatal("members closed")
			}
			if len(nodes) > 0 && ok(nodes) {
				return nodes
			}
		case <-timer.C:
			t.Fatalf("no such set within %v", d)
		}
	}
}
