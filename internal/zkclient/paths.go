package zkclient

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// defaultPort is ZooKeeper's client port.
const defaultPort = "2181"

// ParseConnectString splits a ZooKeeper connect string such as
// "h1:2181,h2,[::1]:2182/app" into "host:port" servers (port 2181 when
// absent) and a chroot ("" or a valid path such as "/app"; "/" is "").
// Spaces around hosts are ignored; an empty host is an error.
func ParseConnectString(s string) (servers []string, chroot string, err error) {
	bad := func(why string) error { return fmt.Errorf("zk: connect string: %s", why) }
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, "", bad("empty")
	}
	hosts := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		hosts, chroot = s[:i], s[i:]
		if chroot == "/" {
			chroot = ""
		} else if why := pathProblem(chroot, false); why != "" {
			return nil, "", bad(fmt.Sprintf("chroot %s: %s", quote(chroot), why))
		}
	}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, "", bad("empty host")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// No port: take the default, unless it looks like a bare IPv6
			// address, an unclosed bracket or something else SplitHostPort
			// rejects for cause.
			bracketed := strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]")
			if strings.Contains(h, ":") && !bracketed {
				return nil, "", bad(fmt.Sprintf("host %s: %s", quote(h), strings.TrimPrefix(err.Error(), "address "+h+": ")))
			}
			host, port = h, defaultPort
			if bracketed {
				host = h[1 : len(h)-1]
			}
		}
		if host == "" || strings.IndexFunc(host, badHostRune) >= 0 {
			return nil, "", bad(fmt.Sprintf("host %s", quote(h)))
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, "", bad(fmt.Sprintf("port %s", quote(port)))
		}
		servers = append(servers, net.JoinHostPort(host, port))
	}
	return servers, chroot, nil
}

// badHostRune reports whether r has no place in a host name or address:
// spaces, brackets, control characters, bytes that are not UTF-8.
func badHostRune(r rune) bool {
	return r <= ' ' || r == '[' || r == ']' || r == 0x7f || r == utf8.RuneError
}

// validatePath checks a znode path as ZooKeeper's PathUtils does: absolute,
// no empty, "." or ".." component, no trailing slash (unless sequential,
// where the server appends the number), no NUL or control characters.
func validatePath(p string, sequential bool) error {
	if why := pathProblem(p, sequential); why != "" {
		return fmt.Errorf("%w: path %s: %s", ErrBadArguments, quote(p), why)
	}
	return nil
}

// pathProblem says what is wrong with p for validatePath, "" if nothing.
func pathProblem(p string, sequential bool) string {
	if p == "" || p[0] != '/' {
		return "must start with /"
	}
	if p == "/" {
		return ""
	}
	body := p[1:]
	if strings.HasSuffix(p, "/") {
		if !sequential {
			return "must not end with /"
		}
		body = body[:len(body)-1]
	}
	for part := range strings.SplitSeq(body, "/") {
		switch part {
		case "":
			return "empty component"
		case ".", "..":
			return "relative component"
		}
	}
	for _, r := range p {
		if ForbiddenInPath(r) {
			return "invalid character"
		}
	}
	return ""
}

// ForbiddenInPath reports whether ZooKeeper refuses r in a path: control
// characters, and what Java sees in the surrogate and private use ranges
// (D800-F8FF) or at FFF0-FFFF. A character above FFFF is a surrogate pair
// in Java, so it is refused too.
func ForbiddenInPath(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f || r >= 0xd800 && r <= 0xf8ff || r >= 0xfff0
}

// fullPath prefixes the chroot.
func fullPath(chroot, p string) string {
	if chroot == "" {
		return p
	}
	if p == "/" {
		return chroot
	}
	return chroot + p
}

// stripChroot maps a server path back into the chroot; the chroot itself is
// "/". A path outside the chroot is returned as is.
func stripChroot(chroot, p string) string {
	if chroot == "" {
		return p
	}
	if p == chroot {
		return "/"
	}
	if strings.HasPrefix(p, chroot) && len(p) > len(chroot) && p[len(chroot)] == '/' {
		return p[len(chroot):]
	}
	return p
}
