package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/latchkey-dev/latchkey/internal/app"
	"github.com/latchkey-dev/latchkey/internal/config"
)

// errFlagParse marks a command line the flag package refused (it has said why).
var errFlagParse = errors.New("invalid command line")

// command is one subcommand's flag set over the shared configuration.
type command struct {
	fs  *flag.FlagSet
	cfg *config.Config
}

// newCommand returns a flag set for "latchkey NAME" with the configuration flags, defaulting to
// what the environment says.
func (c cli) newCommand(name, synopsis string) *command {
	cfg := config.Load(c.lookupEnv)
	fs := flag.NewFlagSet("latchkey "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: latchkey %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return &command{fs: fs, cfg: &cfg}
}

// parse parses args, which must hold only flags, and validates the configuration.
func (cmd *command) parse(args []string) error {
	if err := cmd.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlagParse
	}
	if cmd.fs.NArg() > 0 {
		return usageErrorf("%s: unexpected argument %q", cmd.fs.Name(), cmd.fs.Arg(0))
	}
	if err := cmd.cfg.Validate(); err != nil {
		return usageErrorf("invalid configuration:\n%v", err)
	}
	return nil
}

// open builds the application on the configured database, logging to stderr.
func (c cli) open(ctx context.Context, cfg config.Config) (*app.App, *slog.Logger, error) {
	log := app.NewLogger(cfg, c.stderr)
	extra, err := clockOptions(c.lookupEnv)
	if err != nil {
		return nil, nil, err
	}
	a, err := app.New(ctx, cfg, log, extra...)
	if err != nil {
		return nil, nil, err
	}
	return a, log, nil
}

// stringList is a flag that may be repeated; each use adds a value.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
