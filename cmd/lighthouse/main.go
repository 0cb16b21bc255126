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
  lighthouse demo [--zk host:port,...]   watch a session ride out server faults

Run "lighthouse COMMAND --help" for a command's flags.
`

// errUsage marks errors in the command line (exit code 2).
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch args[0] {
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
