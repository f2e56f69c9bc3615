package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/schollz/progressbar/v3"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/telemetry"
	"github.com/crunchnode/crunch-node/jobs"
)

// runBackfill starts a backfill and works it in this process (any running node with the
// feed role may share the work), showing progress until it is done. Interrupting it is
// safe: the job stays queued and resumes from its cursor with the next feed worker.
func runBackfill(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "backfill")
	dir := fs.String("workspace", "", "workspace root holding node/ (default: the working directory)")
	source := fs.String("source", "", "feed source (default FEED_SOURCE)")
	subject := fs.String("subject", "", "subject, e.g. BTCUSDT (default the first of FEED_SUBJECTS)")
	kind := fs.String("kind", "", "record kind (default FEED_KIND)")
	granularity := fs.String("granularity", "", "granularity (default FEED_GRANULARITY)")
	from := fs.String("from", "", "start of the range, ISO 8601 (naive means UTC); required")
	to := fs.String("to", "", "end of the range (default now)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(env, *dir)
	if err != nil {
		return err
	}
	start, err := parseFlagTime(*from)
	if err != nil || *from == "" {
		return fmt.Errorf("%w: --from needs an ISO 8601 time such as 2026-11-01T00:00:00Z", ErrUsage)
	}
	end := time.Now().UTC()
	if *to != "" {
		if end, err = parseFlagTime(*to); err != nil {
			return fmt.Errorf("%w: --to: %w", ErrUsage, err)
		}
	}
	scope := jobs.FeedScope{Source: or(*source, cfg.FeedSource), Subject: or(*subject, cfg.FeedSubjects[0]),
		Kind: or(*kind, cfg.FeedKind), Granularity: or(*granularity, cfg.FeedGranularity)}

	logger := newLogger(cfg, io.Discard)
	pool, err := postgres.NewPool(ctx, cfg.DatabaseURL, postgres.PoolOptions{ApplicationName: "crunch-node backfill"})
	if err != nil {
		return explainConnectError(err)
	}
	defer pool.Close()
	if err := requireMigrated(ctx, pool); err != nil {
		return err
	}
	deps := &jobs.Deps{Config: cfg, Logger: logger, Metrics: telemetry.New(), Pool: pool, Feeds: jobs.NewFeeds(cfg)}
	riverConfig := jobs.ClientConfig(deps, jobs.Roles{jobs.RoleFeed})
	riverConfig.PeriodicJobs = nil
	riverConfig.LeaderElectionDisabled = true
	riverConfig.Queues = map[string]river.QueueConfig{jobs.QueueFeed: {MaxWorkers: 2}}
	client, err := river.NewClient(riverpgxv5.New(pool), riverConfig)
	if err != nil {
		return fmt.Errorf("creating River client: %w", err)
	}
	job, err := jobs.StartBackfill(ctx, pool, client, jobs.BackfillRequest{Scope: scope, Start: start, End: end})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "Backfill %s: %s from %s to %s\n", job.ID, scope, start.Format(time.RFC3339), end.Format(time.RFC3339))
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("starting River: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	}()

	bar := progressbar.NewOptions(100,
		progressbar.OptionSetWriter(env.stdout),
		progressbar.OptionSetDescription("backfill"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
	)
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(env.stdout, "\nInterrupted; the backfill resumes from its cursor when a feed worker runs (crunch-node run).\n")
			return nil
		case <-ticker.C:
		}
		row, err := dbsqlc.New().BackfillJobGet(ctx, pool, job.ID)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				continue
			}
			return fmt.Errorf("reading progress: %w", err)
		}
		_ = bar.Set(int(jobs.BackfillProgress(row)))
		switch row.Status {
		case "completed":
			_ = bar.Finish()
			fmt.Fprintf(env.stdout, "\nDone: %d records in %d pages.\n", row.RecordsWritten, row.PagesFetched)
			return nil
		case "failed":
			return fmt.Errorf("backfill failed: %s", deref(row.Error))
		}
	}
}

func parseFlagTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time", s)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
