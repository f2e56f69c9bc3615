package cli

import (
	"context"
	"fmt"

	"github.com/crunchnode/crunch-node/jobs"
)

// runDev is `make run`: it needs nothing but a reachable Postgres. It creates and migrates
// the database, then runs every role in one process on the embedded defaults.
func runDev(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "dev")
	dir := fs.String("workspace", "", "workspace root holding node/ (default: the working directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(env, *dir)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderrOr(env.stdout))
	if _, err := migrate(ctx, cfg, logger); err != nil {
		return err
	}
	ready := make(chan string, 1)
	go func() {
		select {
		case address := <-ready:
			fmt.Fprintf(env.stdout, "\ncrunch-node is running.\n  report API  http://%s/\n  API docs    http://%s/docs\n  health      http://%s/healthz\n  metrics     http://%s/metrics\nPress Ctrl-C to stop.\n\n",
				address, address, address, address)
		case <-ctx.Done():
		}
	}()
	return runNode(ctx, nodeOptions{cfg: cfg, logger: logger, roles: jobs.AllRoles, stdout: env.stdout, ready: ready, workspace: *dir})
}
