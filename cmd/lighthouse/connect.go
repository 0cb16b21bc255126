package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/lighthouse-zk/lighthouse"
)

// connect opens a session within timeout. Connect itself fails when the
// chroot of the connect string does not exist.
func connect(ctx context.Context, zkAddr string, timeout time.Duration, opts ...lighthouse.Option) (*lighthouse.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sess, err := lighthouse.Connect(ctx, zkAddr, opts...)
	switch {
	case errors.Is(err, lighthouse.ErrInvalidOption),
		errors.Is(err, lighthouse.ErrInvalidConnectString) && malformed(zkAddr):
		return nil, mark(errUsage, err)
	case errors.Is(err, lighthouse.ErrAuthFailed):
		return nil, err
	case errors.Is(err, lighthouse.ErrNoNode): // the chroot does not exist
		return nil, mark(errNotFound, err)
	case err != nil:
		within := fmt.Sprintf("within %v", timeout)
		if errors.Is(err, context.Canceled) {
			within = "before the interrupt"
		}
		return nil, fmt.Errorf("%w at %s %s: %w", errUnreachable, zkAddr, within, err)
	}
	return sess, nil
}

// withPort adds ZooKeeper's default port to a host that has none.
func withPort(h string) string {
	if !strings.Contains(h, ":") || strings.HasSuffix(h, "]") {
		return h + ":2181"
	}
	return h
}

// malformed reports whether connect string s fails to parse. Connect's
// ErrInvalidConnectString also covers a host name that does not resolve,
// which is no usage error: this tells the two apart.
func malformed(s string) bool {
	hosts, chroot, ok := strings.Cut(strings.TrimSpace(s), "/")
	if ok && lighthouse.ValidatePath("/"+chroot) != nil {
		return true
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(withPort(strings.TrimSpace(h)))
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || strings.ContainsAny(host, " \t[]") || perr != nil || n < 1 || n > 65535 {
			return true
		}
	}
	return false
}
