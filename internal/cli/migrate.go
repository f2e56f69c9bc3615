package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/crunchnode/crunch-node/db"
	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

func runMigrate(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "migrate")
	dir := fs.String("workspace", "", "workspace root holding node/ (default: the working directory)")
	reset := fs.Bool("reset", false, "drop the database first (development only: all data is lost)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(env, *dir)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderrOr(env.stdout))
	if *reset {
		if err := db.DropDatabase(ctx, cfg.DatabaseURL); err != nil {
			return explainConnectError(err)
		}
		fmt.Fprintln(env.stdout, "Database dropped.")
	}
	result, err := migrate(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if len(result.Ours)+len(result.River) == 0 {
		fmt.Fprintln(env.stdout, "Database is up to date.")
		return nil
	}
	fmt.Fprintf(env.stdout, "Applied %d River and %d crunch-node migrations.\n", len(result.River), len(result.Ours))
	return nil
}

// migrate creates the database when needed and applies every migration.
func migrate(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*db.Result, error) {
	created, err := db.EnsureDatabase(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, explainConnectError(err)
	}
	if created {
		logger.InfoContext(ctx, "Database created")
	}
	pool, err := postgres.NewPool(ctx, cfg.DatabaseURL, postgres.PoolOptions{ApplicationName: "crunch-node migrate"})
	if err != nil {
		return nil, explainConnectError(err)
	}
	defer pool.Close()
	return db.Migrate(ctx, pool, logger)
}

// explainConnectError adds what to do when Postgres cannot be reached, the most common
// first-run problem.
func explainConnectError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "connect") || strings.Contains(msg, "dial") || strings.Contains(msg, "refused") {
		return fmt.Errorf("%w\n\nPostgres is not reachable. Start one and point DATABASE_URL at it, for example:\n"+
			"  pg_ctlcluster --skip-systemctl-redirect 15 main start    (a local Debian PostgreSQL 15)\n"+
			"  docker compose up -d postgres                             (the compose.yaml in this repository)\n"+
			"The default is postgres://postgres@127.0.0.1:5432/crunch_node", err)
	}
	return err
}
