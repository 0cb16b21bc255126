package lighthouse

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz tests for every parser of outside input: paths (from users), connect
// strings (from configuration), node names (from ZooKeeper, written by any
// client) and election node data (likewise). Their seed corpora are in
// testdata/fuzz; run one with
//
//	go test -run '^$' -fuzz FuzzValidatePath -fuzztime 15s .

// FuzzValidatePath: ValidatePath never panics, and whatever it accepts obeys
// ZooKeeper's path rules.
func FuzzValidatePath(f *testing.F) {
	for _, p := range []string{"/", "/a", "/a/b", "", "a", "/a/", "//a", "/a/./b", "/..", "/a\x00b", "/\u00e9t\u00e9", "/\ufff0", "/\ud7ff", "/\x7f", "/\U0001F600"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := ValidatePath(p)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("ValidatePath(%q) = %v, not an ErrInvalidPath", p, err)
			}
			return
		}
		if !strings.HasPrefix(p, "/") || !utf8.ValidString(p) {
			t.Fatalf("ValidatePath accepted %q: not absolute or not UTF-8", p)
		}
		if p == "/" {
			return
		}
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("ValidatePath accepted %q: segment %q", p, seg)
			}
		}
		for _, r := range p {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) || r >= 0xfff0 {
				t.Fatalf("ValidatePath accepted %q: character %U", p, r)
			}
		}
		// A valid path's segments are valid names, and children of it are
		// valid paths.
		last := p[strings.LastIndexByte(p, '/')+1:]
		if err := validateName("id", last); err != nil {
			t.Fatalf("last segment %q of valid path %q: %v", last, p, err)
		}
		if err := ValidatePath(joinPath(p, "c")); err != nil {
			t.Fatalf("child of valid path %q: %v", p, err)
		}
	})
}

// FuzzParseConnectString: parseConnectString never panics, returns only
// host:port addresses with a port in range and a valid chroot, and is
// stable: parsing what it returns gives the same again.
func FuzzParseConnectString(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:2181", "a:1,b:2,c:3/app", "zk", "zk/", "[::1]:2181,[fe80::1%eth0]:1", "[::1]/x/y", "::1",
		"h:0", "h:65536", "h: 1", " a , b ", "a,,b", "a:1/b/", "/chroot", "a:1//", "[]:1", "a:1:2", "a:+1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, chroot, err := parseConnectString(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidConnectString) {
				t.Fatalf("parseConnectString(%q) = %v, not an ErrInvalidConnectString", s, err)
			}
			return
		}
		if len(hosts) == 0 {
			t.Fatalf("parseConnectString(%q): no hosts and no error", s)
		}
		for _, h := range hosts {
			host, port, err := net.SplitHostPort(h)
			if err != nil || host == "" {
				t.Fatalf("parseConnectString(%q): address %q: %v", s, h, err)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				t.Fatalf("parseConnectString(%q): address %q: port out of range", s, h)
			}
		}
		if chroot != "" {
			if chroot == "/" {
				t.Fatalf("parseConnectString(%q): chroot \"/\" not normalised to \"\"", s)
			}
			if err := ValidatePath(chroot); err != nil {
				t.Fatalf("parseConnectString(%q): chroot: %v", s, err)
			}
		}
		again := strings.Join(hosts, ",") + chroot
		hosts2, chroot2, err := parseConnectString(again)
		if err != nil || !slices.Equal(hosts, hosts2) || chroot != chroot2 {
			t.Fatalf("parseConnectString(%q) = %q %q, but parsing %q gives %q %q %v", s, hosts, chroot, again, hosts2, chroot2, err)
		}
	})
}

// FuzzParseSequence: ParseSequence never panics and splits a name into a
// prefix and the number ZooKeeper wrote, which print back as the name.
func FuzzParseSequence(f *testing.F) {
	for _, s := range []string{
		"_c_0f8e5b47-1a2b-4c3d-8e9f-0123456789ab-latch-0000000007", "latch-0000000000", "0000000001", "x-9999999999",
		"x-000000001", "x--000000001", "x-+000000001", "x-00000000ab", "", "x-2147483648", "\xff0000000001",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		prefix, seq, ok := ParseSequence(name)
		if !ok {
			if prefix != "" || seq != 0 {
				t.Fatalf("ParseSequence(%q) failed but returned %q %d", name, prefix, seq)
			}
			return
		}
		if seq < 0 || prefix+fmt.Sprintf("%0*d", seqDigits, seq) != name {
			t.Fatalf("ParseSequence(%q) = %q %d", name, prefix, seq)
		}
	})
}

// FuzzSortSequential: whatever names a parent has (newline-separated here),
// SortSequential never panics and returns the same names, numbered ones
// first by number, the rest by name, whatever order they came in; the
// election's queue keeps only latch nodes, in that order.
func FuzzSortSequential(f *testing.F) {
	f.Add("a-latch-0000000003\nb-latch-0000000001\nzzz\nc-latch-0000000002")
	f.Add("x-0000000001\ny-0000000001\nx-0000000001\n\nlatch-")
	f.Add("_c_1-latch-0000000010\n_c_2-latch-0000000009\nlock-0000000001\nfoo")
	f.Fuzz(func(t *testing.T, list string) {
		names := strings.Split(list, "\n")
		sorted := slices.Clone(names)
		SortSequential(sorted)
		reversed := slices.Clone(names)
		slices.Reverse(reversed)
		SortSequential(reversed)
		if !slices.Equal(sorted, reversed) {
			t.Fatalf("SortSequential depends on the input order:\n%q\n%q", sorted, reversed)
		}
		a, b := slices.Clone(names), slices.Clone(sorted)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("SortSequential(%q) = %q: not a permutation", names, sorted)
		}
		for i := 1; i < len(sorted); i++ {
			_, sa, oka := ParseSequence(sorted[i-1])
			_, sb, okb := ParseSequence(sorted[i])
			switch {
			case !oka && okb:
				t.Fatalf("SortSequential: %q before %q", sorted[i-1], sorted[i])
			case oka && okb && sa > sb, !oka && !okb && sorted[i-1] > sorted[i]:
				t.Fatalf("SortSequential: %q before %q", sorted[i-1], sorted[i])
			}
		}
		queue := electionNodes(names)
		for i, n := range queue {
			prefix, _, ok := ParseSequence(n)
			if !ok || !strings.HasSuffix(prefix, latchName) {
				t.Fatalf("electionNodes kept %q", n)
			}
			if i > 0 && slices.Index(sorted, queue[i-1]) > slices.Index(sorted, n) {
				t.Fatalf("electionNodes out of order: %q", queue)
			}
		}
	})
}

// FuzzDecodeParticipant: any node data decodes without panic into an ID
// without NUL and data, which encode back to the same bytes; and what
// encodeParticipant writes decodes to what it was given.
func FuzzDecodeParticipant(f *testing.F) {
	f.Add([]byte("node-1"), "node-1", []byte(nil))
	f.Add([]byte("node-1\x0010.0.0.1:80"), "node-1", []byte("10.0.0.1:80"))
	f.Add([]byte("a\x00"), "a", []byte{})
	f.Add([]byte("\x00\x00\x00"), "x", []byte{0, 0})
	f.Add([]byte{}, "h\u00e9", []byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte, id string, data []byte) {
		gotID, gotData := decodeParticipant(b)
		if strings.IndexByte(gotID, 0) >= 0 {
			t.Fatalf("decodeParticipant(%q): ID %q has a NUL", b, gotID)
		}
		if back := encodeParticipant(gotID, gotData); !bytes.Equal(back, b) {
			t.Fatalf("decodeParticipant(%q) = %q %q, which encode to %q", b, gotID, gotData, back)
		}
		if validateID(id) != nil {
			return
		}
		gotID, gotData = decodeParticipant(encodeParticipant(id, data))
		if gotID != id || !bytes.Equal(gotData, data) || (data == nil) != (gotData == nil) {
			t.Fatalf("encode/decode %q %q: got %q %q", id, data, gotID, gotData)
		}
	})
}
