package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/latchkey-dev/latchkey/internal/app"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command was understood but failed
	exitUsage   = 2 // the command line or the configuration is wrong
)

// cli is what every command gets: where to write and how to read the environment.
type cli struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

const usageText = `latchkey is an authentication server that speaks SSOJet's HTTP API.

Usage:
  latchkey serve [flags]                 run the server
  latchkey migrate [flags]               bring the database schema up to date
  latchkey project create --name NAME [--origin URL]... [--redirect-uri URL]... [--json]
  latchkey project list [--json]
  latchkey project update --client-id ID [--name NAME] [--origin URL]... [--redirect-uri URL]... [--settings JSON]
  latchkey project rotate-secret --client-id ID [--grace 24h] [--json]
  latchkey keys list --client-id ID [--json]
  latchkey keys rotate --client-id ID [--algorithm ALG] [--activate-in 1m] [--json]
  latchkey keys rotate-master             re-encrypt secrets under a new master key
  latchkey version

Every command accepts the configuration flags (--addr, --database-url, --data-dir,
--public-url, --log-level, --log-format, --shutdown-timeout), each also read from its
LATCHKEY_* environment variable; flags win. Run "latchkey COMMAND -h" for a command's flags.
`

// run executes one command line and returns the process's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	c := cli{stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = c.serve(ctx, args[1:])
	case "migrate":
		err = c.migrate(ctx, args[1:])
	case "project":
		err = c.project(ctx, args[1:])
	case "keys":
		err = c.keys(ctx, args[1:])
	case "version", "--version", "-version":
		err = c.version(args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		err = usageErrorf("unknown command %q", args[0])
	}
	return c.exitCode(err)
}

// usageError is a wrong command line or configuration: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func (c cli) exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "latchkey: %v\nRun \"latchkey help\" for usage.\n", err)
		return exitUsage
	case errors.Is(err, errFlagParse):
		return exitUsage // the flag package has already printed the problem and the usage
	case errors.Is(err, app.ErrWrongMasterKey):
		fmt.Fprintf(c.stderr, "latchkey: %v\n", err)
		return exitUsage // the configuration names the wrong key; the message says which to set
	}
	fmt.Fprintf(c.stderr, "latchkey: %v\n", err)
	return exitFailure
}
