package zkclient

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestJuteRoundTrip(t *testing.T) {
	st := &Stat{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	var e enc
	e.int32(-7)
	e.int64(1 << 40)
	e.bool(true)
	e.string("héllo")
	e.buffer(nil)
	e.buffer([]byte{})
	e.strings([]string{"a", "", "ccc"})
	e.acls([]ACL{{PermAll, "world", "anyone"}, {PermRead, "digest", "u:x"}})
	e.stat(st)

	d := dec{b: e.b}
	if v := d.int32(); v != -7 {
		t.Errorf("int32 = %d", v)
	}
	if v := d.int64(); v != 1<<40 {
		t.Errorf("int64 = %d", v)
	}
	if v := d.bool(); !v {
		t.Error("bool = false")
	}
	if v := d.string(); v != "héllo" {
		t.Errorf("string = %q", v)
	}
	if v := d.bytes(); v != nil {
		t.Errorf("null buffer = %v", v)
	}
	if v := d.bytes(); v == nil || len(v) != 0 {
		t.Errorf("empty buffer = %v", v)
	}
	if v := d.strings(); !slices.Equal(v, []string{"a", "", "ccc"}) {
		t.Errorf("strings = %q", v)
	}
	if v := d.acls(); len(v) != 2 || v[1] != (ACL{PermRead, "digest", "u:x"}) {
		t.Errorf("acls = %+v", v)
	}
	if v := d.stat(); *v != *st {
		t.Errorf("stat = %+v", v)
	}
	if d.err != nil || len(d.b) != 0 {
		t.Fatalf("err %v, %d bytes left", d.err, len(d.b))
	}
}

func TestJuteRejectsBadLengths(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		read func(*dec)
	}{
		{"short int32", []byte{0, 0, 1}, func(d *dec) { d.int32() }},
		{"short int64", []byte{0, 0, 0, 0, 1}, func(d *dec) { d.int64() }},
		{"buffer past end", []byte{0, 0, 0, 5, 'a'}, func(d *dec) { d.bytes() }},
		{"negative buffer", []byte{0xff, 0xff, 0xff, 0xfe}, func(d *dec) { d.bytes() }},
		{"huge buffer", []byte{0x7f, 0xff, 0xff, 0xff}, func(d *dec) { d.bytes() }},
		{"huge vector", []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}, func(d *dec) { d.strings() }},
		{"vector past end", []byte{0, 0, 0, 2, 0, 0, 0, 0}, func(d *dec) { d.strings() }},
		{"acl vector past end", []byte{0, 0, 0, 1, 0, 0, 0, 0}, func(d *dec) { d.acls() }},
		{"short stat", make([]byte, statSize-1), func(d *dec) { d.stat() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dec{b: tc.in}
			tc.read(&d)
			if !errors.Is(d.err, errShort) {
				t.Fatalf("err = %v, want errShort", d.err)
			}
			if d.int32() != 0 || d.err == nil {
				t.Fatal("error did not stick")
			}
		})
	}
}

func TestConnectRequestLayout(t *testing.T) {
	b := appendConnectRequest(nil, 0x1122, 3000, 0x77, []byte("pw"))
	want := []byte{
		0, 0, 0, 31, // length
		0, 0, 0, 0, // protocolVersion
		0, 0, 0, 0, 0, 0, 0x11, 0x22, // lastZxidSeen
		0, 0, 0x0b, 0xb8, // timeOut
		0, 0, 0, 0, 0, 0, 0, 0x77, // sessionId
		0, 0, 0, 2, 'p', 'w', // passwd
		0, // readOnly
	}
	if !slices.Equal(b, want) {
		t.Fatalf("ConnectRequest\n got %v\nwant %v", b, want)
	}
	resp, err := decodeConnectResponse([]byte{0, 0, 0, 0, 0, 0, 0x0b, 0xb8, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 'x'})
	if err != nil || resp.timeout != 3000 || resp.sessionID != 9 || string(resp.passwd) != "x" {
		t.Fatalf("ConnectResponse without readOnly = %+v, %v", resp, err)
	}
}

func TestCodeErrors(t *testing.T) {
	if got := ErrNoNode.Error(); got != "zk: node does not exist" {
		t.Errorf("ErrNoNode = %q", got)
	}
	if got := Code(-999).Error(); got != "zk: unknown error -999" {
		t.Errorf("unknown code = %q", got)
	}
	err := fmt.Errorf("op: %w", codeErr(-101))
	if !errors.Is(err, ErrNoNode) {
		t.Error("wrapped code does not match ErrNoNode")
	}
	me := &MultiError{Index: 2, Err: ErrBadVersion}
	if !errors.Is(me, ErrBadVersion) || me.Error() != "zk: multi op 2 failed: bad version" {
		t.Errorf("MultiError = %q", me)
	}
}

func TestParseConnectString(t *testing.T) {
	for _, tc := range []struct {
		in      string
		servers []string
		chroot  string
		bad     bool
	}{
		{in: "h1:1,h2", servers: []string{"h1:1", "h2:2181"}},
		{in: "h1:2182/app/x", servers: []string{"h1:2182"}, chroot: "/app/x"},
		{in: "[::1]:2181,[::2]", servers: []string{"[::1]:2181", "[::2]:2181"}},
		{in: "h/", servers: []string{"h:2181"}},
		{in: " h1 , h2:3 ", servers: []string{"h1:2181", "h2:3"}},
		{in: "h1/app/", bad: true},
		{in: "h1/a//b", bad: true},
		{in: "h1:0", bad: true},
		{in: "h1:x", bad: true},
		{in: "", bad: true},
		{in: "/app", bad: true},
	} {
		servers, chroot, err := ParseConnectString(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseConnectString(%q) = %v, %q; want an error", tc.in, servers, chroot)
			}
			continue
		}
		if err != nil || !slices.Equal(servers, tc.servers) || chroot != tc.chroot {
			t.Errorf("ParseConnectString(%q) = %v, %q, %v; want %v, %q", tc.in, servers, chroot, err, tc.servers, tc.chroot)
		}
	}
}

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		seq  bool
		ok   bool
	}{
		{"/", false, true},
		{"/a/b", false, true},
		{"/a/", true, true},
		{"/a/", false, false},
		{"a", false, false},
		{"", false, false},
		{"/a//b", false, false},
		{"/a/./b", false, false},
		{"/a/..", false, false},
		{"/a\x00b", false, false},
		{"/a\u0001", false, false},
		{"/a\ud7ff\uf900\uffef", false, true},
		{"/a\ue000", false, false},
		{"/a\U0001F600", false, false},
	} {
		if err := validatePath(tc.path, tc.seq); (err == nil) != tc.ok {
			t.Errorf("validatePath(%q, %v) = %v", tc.path, tc.seq, err)
		} else if err != nil && !errors.Is(err, ErrBadArguments) {
			t.Errorf("validatePath(%q) error %v does not match ErrBadArguments", tc.path, err)
		}
	}
	long := "/" + string(make([]byte, 1000))
	if err := validatePath(long, false); err == nil || len(err.Error()) > 300 {
		t.Errorf("long invalid path: error of %d bytes", len(err.Error()))
	}
}

func TestChrootMapping(t *testing.T) {
	for _, tc := range []struct{ chroot, in, out string }{
		{"", "/a", "/a"},
		{"/app", "/app", "/"},
		{"/app", "/app/x", "/x"},
		{"/app", "/apple", "/apple"},
	} {
		if got := stripChroot(tc.chroot, tc.in); got != tc.out {
			t.Errorf("stripChroot(%q, %q) = %q, want %q", tc.chroot, tc.in, got, tc.out)
		}
	}
	if got := fullPath("/app", "/"); got != "/app" {
		t.Errorf("fullPath(/app, /) = %q", got)
	}
}

// decodeAll runs every decoder of server input on b, as the client would.
func decodeAll(b []byte) {
	h, body, err := decodeReplyHeader(b)
	if err != nil {
		return
	}
	_ = h
	decodeWatcherEvent(body)
	decodeMulti(body, "/chroot", 8)
	decodeConnectResponse(body)
	d := dec{b: body}
	d.bytes()
	d.stat()
	d = dec{b: body}
	d.strings()
	d.stat()
	d = dec{b: body}
	d.acls()
	d.stat()
	d = dec{b: body}
	d.string()
	d.stat()
}

func FuzzDecodeReply(f *testing.F) {
	var e enc
	e.int32(-1)
	e.int64(5)
	e.int32(0)
	e.int32(int32(EventNodeDataChanged))
	e.int32(3)
	e.string("/chroot/a")
	f.Add(e.b)
	e = enc{}
	e.int32(7)
	e.int64(9)
	e.int32(0)
	for _, typ := range []int32{opCreate, opSetData, opError} {
		e.int32(typ)
		e.bool(false)
		e.int32(0)
		switch typ {
		case opCreate:
			e.string("/chroot/x")
		case opSetData:
			e.stat(&Stat{})
		case opError:
			e.int32(-101)
		}
	}
	e.int32(-1)
	e.bool(true)
	e.int32(-1)
	f.Add(e.b)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeAll(b)
	})
}
