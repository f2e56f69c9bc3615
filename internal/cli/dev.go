package cli

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/jobs"
)

//go:embed devfiles/crunch_config.yaml
var devCrunchConfig []byte

//go:embed devfiles/models.dev.yml
var devModels []byte

// devDefaults make `crunch-node dev` a complete competition on one machine with no
// network: the synthetic feed at one-second candles, the Go example models started as
// local model hosts, and short intervals so a leaderboard forms within a minute. Anything
// set in the environment or node/.local.env wins.
var devDefaults = map[string]string{
	"CHECKPOINT_INTERVAL_SECONDS":  "60",
	"FEED_BACKFILL_MINUTES":        "10",
	"FEED_GRANULARITY":             "1s",
	"FEED_KIND":                    "candle",
	"FEED_POLL_SECONDS":            "1",
	"FEED_SOURCE":                  "synthetic",
	"MODEL_RUNNER_TIMEOUT_SECONDS": "5",
	"MODEL_SOURCE":                 "local",
	"REPORT_API_HOST":              "127.0.0.1",
	"SCORE_INTERVAL_SECONDS":       "2",
}

// runDev is `make run`: it needs nothing but a reachable Postgres. It creates and migrates
// the database, then runs every role in one process, prints where to look, and a status
// line every few seconds.
func runDev(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "dev")
	dir := fs.String("workspace", "", "workspace root holding node/ (default: the working directory)")
	quiet := fs.Bool("quiet", false, "do not print the status line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	defaults, cleanup, err := devSettings(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	cfg, err := config.Load(env.getenv, config.Options{Dir: *dir, Defaults: defaults, DefaultCrunchYAML: devCrunchConfig})
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	logFile, logger := devLogger(cfg, *dir, env)
	defer logFile.Close()
	if _, err := migrate(ctx, cfg, logger); err != nil {
		return err
	}
	ready := make(chan string, 1)
	go func() {
		select {
		case address := <-ready:
			fmt.Fprintf(env.stdout, "\ncrunch-node is running (%s feed, %s models).\n"+
				"  dashboard    http://%s/\n  report API   http://%s/reports/leaderboard\n  API docs     http://%s/docs\n"+
				"  River UI     http://%s/riverui/\n  health       http://%s/healthz\n  psql         psql %s -c 'SELECT model_name, rank, ranking_value FROM leaderboard ORDER BY rank'\n"+
				"Logs go to %s. Press Ctrl-C to stop.\n\n",
				cfg.FeedSource, cfg.ModelSource, address, address, address, address, address, cfg.DatabaseURL, logFile.Name())
			if !*quiet {
				go printStatus(ctx, cfg, env.stdout)
			}
		case <-ctx.Done():
		}
	}()
	return runNode(ctx, nodeOptions{cfg: cfg, logger: logger, roles: jobs.AllRoles, stdout: env.stdout, ready: ready, workspace: *dir})
}

// devSettings returns the dev defaults, writing the built-in models file to a temporary
// place when the workspace has none.
func devSettings(dir string) (map[string]string, func(), error) {
	defaults := map[string]string{}
	for k, v := range devDefaults {
		defaults[k] = v
	}
	cleanup := func() {}
	if _, err := os.Stat(filepath.Join(dir, "node/config/models.dev.yml")); err == nil {
		return defaults, cleanup, nil
	}
	tmp, err := os.MkdirTemp("", "crunch-node-dev")
	if err != nil {
		return nil, nil, fmt.Errorf("creating a folder for the dev models file: %w", err)
	}
	path := filepath.Join(tmp, "models.dev.yml")
	if err := os.WriteFile(path, devModels, 0o644); err != nil {
		return nil, nil, fmt.Errorf("writing the dev models file: %w", err)
	}
	defaults["MODELS_FILE"] = path
	return defaults, func() { _ = os.RemoveAll(tmp) }, nil
}

// devLogger sends logs to a file so the terminal shows the URLs and the status line; the
// file is named in the banner.
func devLogger(cfg *config.Config, dir string, env *environment) (*os.File, *slog.Logger) {
	path := filepath.Join(dir, "crunch-node-dev.log")
	file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		file = os.Stderr
	}
	return file, newLogger(cfg, io.MultiWriter(file))
}

// printStatus prints one line every five seconds: models ready, predictions, scored, and
// the leaderboard's top three.
func printStatus(ctx context.Context, cfg *config.Config, out io.Writer) {
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return
	}
	defer pool.Close()
	ticker := time.NewTicker(5 * time.Second)
	defer ticker.Stop()
	queries := dbsqlc.New()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		status, err := queries.NodeStatus(ctx, pool)
		if err != nil {
			continue
		}
		board, _ := queries.LeaderboardList(ctx, pool, false)
		var top []string
		for _, row := range board {
			if row.Rank > 0 && len(top) < 3 {
				top = append(top, fmt.Sprintf("#%d %s %.2f", row.Rank, row.ModelName, row.RankingValue))
			}
		}
		leader := "not ranked yet"
		if len(top) > 0 {
			leader = strings.Join(top, "  ")
		}
		fmt.Fprintf(out, "%s  models %d  predictions %d  scored %d  failed/absent %d  |  %s\n",
			time.Now().Format("15:04:05"), status.ModelsRunning, status.Predictions, status.Scored, status.NotScorable, leader)
	}
}
