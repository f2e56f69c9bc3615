package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/crunchnode/crunch-node/internal/scaffold"
	"github.com/crunchnode/crunch-node/internal/verify"
)

// runInit is `crunch-node init NAME [--pack realtime] [-o DIR]`: it writes a
// self-contained competition workspace to DIR/NAME from the templates in the binary.
func runInit(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "init")
	pack := fs.String("pack", scaffold.DefaultPack, "competition pack: "+strings.Join(scaffold.Packs(), ", "))
	out := fs.String("o", ".", "folder to create the workspace in")
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("%w: crunch-node init NAME [--pack realtime] [-o DIR]", ErrUsage)
	}
	dir, err := scaffold.Generate(scaffold.Options{Dir: filepath.Join(*out, name), Name: name, Pack: *pack})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "Created %s.\n\nRun it:\n  crunch-node dev --workspace %s\n\nThen check it end to end:\n  crunch-node verify\n", dir, dir)
	return nil
}

// runVerify is the end-to-end check of a running node: health, models, scored
// predictions, a leaderboard, and scores that are neither all zero nor all identical.
func runVerify(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "verify")
	base := fs.String("url", "", "report API base URL (default http://127.0.0.1:$REPORT_API_PORT)")
	apiKey := fs.String("api-key", "", "API key (default API_KEY)")
	timeout := fs.Duration("timeout", verify.DefaultTimeout, "how long the node gets to pass")
	poll := fs.Duration("poll", verify.DefaultPoll, "wait between checks")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *base == "" {
		*base = "http://127.0.0.1:" + or(env.getenv("REPORT_API_PORT"), "8000")
	}
	err := verify.Run(ctx, verify.Options{
		APIKey: or(*apiKey, env.getenv("API_KEY")), Out: env.stdout, Poll: *poll, Timeout: *timeout, URL: *base,
	})
	if err != nil && !errors.Is(err, verify.ErrFailed) {
		return fmt.Errorf("verify: %w", err)
	}
	return err
}
