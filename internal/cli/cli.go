// Package cli is the crunch-node command line. Run is the whole program behind a tiny main:
// it takes the arguments, the environment lookup and the output as parameters so tests can
// run any subcommand in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/crunchnode/crunch-node/internal/config"
)

// Version is the release version; `make build` sets it with -ldflags.
var Version = "0.1.0-dev"

// ErrUsage marks a command line that could not be understood; main exits 2 for it.
var ErrUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what every subcommand receives: the injected process surroundings.
type environment struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"backfill", "fetch a historical range into feed_records (--from, --to, --subject …) with a progress bar", runBackfill},
		{"config", "print the effective configuration, secrets redacted", runConfig},
		{"dev", "create and migrate the database, then run every role with local defaults", runDev},
		{"healthcheck", "exit 0 when the local report API answers /healthz with ok", runHealthcheck},
		{"init", "create a competition workspace: crunch-node init NAME [--pack realtime] [-o DIR]", runInit},
		{"migrate", "create the database if needed and apply all migrations (--reset drops it first)", runMigrate},
		{"model-server", "serve an example model over the CrunchDAO model-runner protocol (--model, --port, fault flags)", runModelServer},
		{"run", "run the node (--roles feed,predict,score,report; default all)", runRun},
		{"verify", "check a running node end to end: health, models, scored predictions, leaderboard, score quality", runVerify},
		{"verify-merkle", "verify a snapshot's Merkle proof against a node (--snapshot-id, --url)", runVerifyMerkle},
		{"version", "print the version", runVersion},
	}
}

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	env := &environment{getenv: getenv, stdout: stdout, stderr: stdout}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stdout)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", ErrUsage)
		}
		return nil
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] {
			err := cmd.run(ctx, env, args[1:])
			if errors.Is(err, errHelpShown) {
				return nil
			}
			return err
		}
	}
	printUsage(stdout)
	return fmt.Errorf("%w: unknown command %q", ErrUsage, args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "crunch-node runs real-time prediction competitions.")
	fmt.Fprintln(w, "\nUsage: crunch-node <command> [flags]\n\nCommands:")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w, "\nConfiguration comes from the environment, node/.local.env and node/config/crunch_config.yaml;")
	fmt.Fprintln(w, "`crunch-node config` shows the result.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(env *environment, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stdout)
	return fs
}

// errHelpShown stops a command whose flags asked for help (-h, --help): the
// flag set has printed its usage, and Run reports success without running
// the command.
var errHelpShown = errors.New("help shown")

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments: %s", ErrUsage, strings.Join(fs.Args(), " "))
	}
	return nil
}

func loadConfig(env *environment, dir string) (*config.Config, error) {
	cfg, err := config.Load(env.getenv, config.Options{Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func runVersion(_ context.Context, env *environment, _ []string) error {
	_, err := fmt.Fprintf(env.stdout, "crunch-node %s\n", Version)
	return err
}

func runConfig(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "config")
	dir := fs.String("workspace", "", "workspace root holding node/ (default: the working directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(env, *dir)
	if err != nil {
		return err
	}
	return cfg.Print(env.stdout)
}

// newLogger builds the process logger from LOG_FORMAT and LOG_LEVEL.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// stderrOr returns os.Stderr when the output is the process's stdout, so logs and command
// output can be separated, and the given writer otherwise (tests capture both).
func stderrOr(w io.Writer) io.Writer {
	if w == os.Stdout {
		return os.Stderr
	}
	return w
}
