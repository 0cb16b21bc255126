// Command lighthouse shows lighthouse at work.
//
//	lighthouse demo [--zk host:port,...]
//
// With no --zk, demo starts a local ZooKeeper (Debian's package, through the
// same launcher the tests use) in a temporary directory and removes it on exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/lighthouse-zk/lighthouse"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "lighthouse:", err)
		}
		os.Exit(exitCode(err))
	}
}

const usage = `lighthouse: ZooKeeper coordination recipes for Go

Usage:
  lighthouse demo [--zk host:port,...]   watch lighthouse ride out faults on a live cluster
  lighthouse leader PATH                 the leader of the election at PATH
  lighthouse participants PATH           the election's participants, leader first
  lighthouse members SERVICE             the live instances of SERVICE
  lighthouse services                    the registered services

The inspecting commands take --zk (or LIGHTHOUSE_ZK), --user/--password for
digest auth, --timeout, --watch to follow changes, and --json for scripts.
Run "lighthouse COMMAND --help" for a command's flags.
`

// errUsage marks errors in the command line (exit code 2).
var errUsage = errors.New("usage")

func exitCode(err error) int {
	switch {
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return exitUsage
	case errors.Is(err, errUnreachable):
		return exitUnreachable
	case errors.Is(err, errNotFound):
		return exitNotFound
	case errors.Is(err, lighthouse.ErrNoAuth):
		return exitNoAuth
	}
	return exitFailure
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch args[0] {
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "leader", "participants", "members", "services":
		return inspect(ctx, args[0], args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
