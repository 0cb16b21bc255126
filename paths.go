package lighthouse

import (
	"cmp"
	"fmt"
	"github.com/lighthouse-zk/lighthouse/internal/zkclient"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ValidatePath reports whether p is a path ZooKeeper accepts: absolute, no
// empty segment, no trailing slash (except "/" itself), no "." or ".."
// segment, valid UTF-8 without control characters or the code points
// ZooKeeper forbids. The error wraps ErrInvalidPath.
func ValidatePath(p string) error {
	if err := validatePath(p); err != nil {
		return fmt.Errorf("lighthouse: %w", err)
	}
	return nil
}

// validatePath is ValidatePath for errors that are wrapped once more.
func validatePath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w %s: %s", ErrInvalidPath, quote(p), why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > maxPacket:
		return bad(fmt.Sprintf("%d bytes, over ZooKeeper's request limit of %d", len(p), maxPacket))
	case p[0] != '/':
		return bad("not absolute")
	case p == "/":
		return nil
	case p[len(p)-1] == '/':
		return bad("trailing slash")
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return bad("empty segment")
		case ".", "..":
			return bad("relative segment " + seg)
		}
	}
	for _, r := range p {
		if zkclient.ForbiddenInPath(r) {
			return bad(fmt.Sprintf("forbidden character %U", r))
		}
	}
	return nil
}

// validateName checks one path segment (a service name, a node ID).
func validateName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidPath, kind)
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("%w: %s %s contains '/'", ErrInvalidPath, kind, quote(name))
	}
	if err := validatePath("/" + name); err != nil {
		return fmt.Errorf("%s %s: %w", kind, quote(name), err)
	}
	return nil
}

// maxQuote bounds how much of a caller's string an error message quotes.
const maxQuote = 100

// quote quotes s for an error message, cut to maxQuote bytes: messages stay
// readable whatever the caller passed.
func quote[T string | []byte](b T) string {
	s := string(b[:min(len(b), maxQuote+utf8.UTFMax)])
	if len(b) <= maxQuote {
		return strconv.Quote(s)
	}
	cut := maxQuote
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(b))
}

// clip returns s as it is if it is short and printable, else quoted (and
// cut if long): a message never carries a caller's control characters.
func clip(s string) string {
	unprintable := func(r rune) bool { return !strconv.IsPrint(r) || r == utf8.RuneError }
	if len(s) > maxQuote || strings.IndexFunc(s, unprintable) >= 0 {
		return quote(s)
	}
	return s
}

// joinPath joins a parent path and a child name.
func joinPath(parent, child string) string {
	if parent == "/" {
		return "/" + child
	}
	return parent + "/" + child
}

// parseConnectString splits "h1:p1,h2:p2/chroot" into host:port addresses
// and a chroot ("" when none).
func parseConnectString(s string) (hosts []string, chroot string, err error) {
	hosts, chroot, err = zkclient.ParseConnectString(s)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s", ErrInvalidConnectString, strings.TrimPrefix(trimZK(err), "connect string: "))
	}
	return hosts, chroot, nil
}

// seqDigits is the width of the counter ZooKeeper appends to sequential nodes.
const seqDigits = 10

// ParseSequence splits the name of a sequential node into the name it was
// created with and its sequence number. ok is false if name does not end in
// ZooKeeper's 10-digit counter.
func ParseSequence(name string) (prefix string, seq int64, ok bool) {
	if len(name) < seqDigits {
		return "", 0, false
	}
	tail := name[len(name)-seqDigits:]
	for i := 0; i < len(tail); i++ {
		if tail[i] < '0' || tail[i] > '9' {
			return "", 0, false
		}
	}
	n, err := strconv.ParseInt(tail, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return name[:len(name)-seqDigits], n, true
}

// SortSequential sorts names of sequential nodes by their sequence number,
// whatever their prefixes (ZooKeeper numbers children of one parent from one
// counter). Names without a sequence number go last, in name order.
func SortSequential(names []string) {
	slices.SortStableFunc(names, func(a, b string) int {
		_, sa, oka := ParseSequence(a)
		_, sb, okb := ParseSequence(b)
		switch {
		case oka && okb:
			return cmp.Or(cmp.Compare(sa, sb), strings.Compare(a, b))
		case oka:
			return -1
		case okb:
			return 1
		}
		return strings.Compare(a, b)
	})
}
