// Command lighthouse shows lighthouse at work.
//
//	lighthouse demo [--zk host:port,...[/chroot]]
//	lighthouse leader|participants|members|services ...
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
	"strings"
	"syscall"

	"github.com/lighthouse-zk/lighthouse"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) { // help is no failure
		fmt.Fprintln(os.Stderr, message(err))
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
` + exitCodesHelp

// The kinds of error with an exit code of their own. Errors of the command
// line are errUsage's; mark gives another error a kind.
var (
	errUsage       = errors.New("usage")
	errUnreachable = errors.New("cannot reach ZooKeeper")
	errNotFound    = errors.New("not found")
)

// mark gives err the exit code of kind and keeps its message.
func mark(kind, err error) error { return kindError{kind, err} }

type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

func usagef(format string, args ...any) error { return mark(errUsage, fmt.Errorf(format, args...)) }

// message is err as printed: with one "lighthouse: " prefix. The library's
// errors start with it, and the CLI's own messages wrap them ("cannot reach
// ZooKeeper at ...: lighthouse: connect ..."): say it once, in front.
func message(err error) string {
	msg := strings.TrimPrefix(err.Error(), "lighthouse: ")
	return "lighthouse: " + strings.ReplaceAll(msg, ": lighthouse: ", ": ")
}

func exitCode(err error) int {
	switch {
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errUnreachable):
		return exitUnreachable
	case errors.Is(err, errNotFound):
		return exitNotFound
	case errors.Is(err, lighthouse.ErrNoAuth), errors.Is(err, lighthouse.ErrAuthFailed):
		return exitNoAuth
	}
	return exitFailure
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command")
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
	return usagef("unknown command %q", args[0])
}
