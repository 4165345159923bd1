// Command pipewarden is continuous security monitoring for machine-learning pipelines: one binary
// for the daemon, the inference gateway and the CI/CD checks.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run translates the OS into the command tree: arguments, standard streams and signals in, an
// exit code out.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(&globals{version: version, stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCodeOf(err, stderr)
}

// exitError carries an exit code out of a command. A nil err means the message was already
// printed (e.g. findings at or above --fail-on).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr is exit 2: bad usage or unreadable input.
func usageErr(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func exitCodeOf(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "pipewarden: %v\n", ee.err)
		}
		return ee.code
	}
	// Errors cobra raises itself (unknown flag, bad args) and unexpected failures.
	fmt.Fprintf(stderr, "pipewarden: %v\n", err)
	return 2
}
