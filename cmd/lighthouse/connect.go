package main

import (
	"context"
	"errors"
	"fmt"
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
	case errors.Is(err, lighthouse.ErrInvalidOption), errors.Is(err, lighthouse.ErrInvalidConnectString):
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
