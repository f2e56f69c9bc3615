package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// PartitionedTables are the tables range-partitioned by day. Order matters for retention:
// scores reference predictions, so their partitions go first.
var PartitionedTables = []string{"scores", "predictions", "feed_records"}

// partitionsAhead is how many days of partitions exist beyond today, so a stalled
// maintenance job has a week before writes could fail.
const partitionsAhead = 7

// MaintenanceArgs runs the periodic housekeeping: partitions ahead and retention.
type MaintenanceArgs struct{}

// Kind is the River job kind.
func (MaintenanceArgs) Kind() string { return "maintenance" }

// InsertOpts keeps one maintenance job queued at a time.
func (MaintenanceArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:      QueueMaintenance,
		UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute},
	}
}

// MaintenanceWorker creates partitions ahead and drops expired ones.
type MaintenanceWorker struct {
	river.WorkerDefaults[MaintenanceArgs]
	deps *Deps
}

// Work is idempotent: every step may run any number of times.
func (w *MaintenanceWorker) Work(ctx context.Context, job *river.Job[MaintenanceArgs]) error {
	now := w.deps.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	queries := dbsqlc.New()
	for _, table := range PartitionedTables {
		created, err := queries.PartitionEnsureRange(ctx, w.deps.Pool, &dbsqlc.PartitionEnsureRangeParams{
			Parent:  table,
			FromDay: today,
			ToDay:   today.AddDate(0, 0, partitionsAhead),
		})
		if err != nil {
			return fmt.Errorf("creating partitions of %s: %w", table, err)
		}
		if created > 0 {
			w.deps.Logger.InfoContext(ctx, "Maintenance: partitions created",
				slog.String("table", table), slog.Int("count", int(created)))
		}
	}

	cfg := w.deps.Config
	retention := map[string]time.Duration{
		"feed_records": time.Duration(cfg.FeedRecordTTLDays) * 24 * time.Hour,
		"predictions":  cfg.Crunch.Retention.Predictions.D(),
		"scores":       cfg.Crunch.Retention.Predictions.D(),
	}
	for _, table := range PartitionedTables {
		// A partition is dropped only when its whole day is older than the TTL.
		cutoff := today.Add(-retention[table])
		dropped, err := queries.PartitionDropBefore(ctx, w.deps.Pool, &dbsqlc.PartitionDropBeforeParams{
			Parent: table,
			Cutoff: cutoff,
		})
		if err != nil {
			return fmt.Errorf("dropping expired partitions of %s: %w", table, err)
		}
		if dropped > 0 {
			w.deps.Logger.InfoContext(ctx, "Maintenance: expired partitions dropped",
				slog.String("table", table), slog.Int("count", int(dropped)), slog.Time("before", cutoff))
		}
	}
	return w.prune(ctx, now)
}

// prune deletes the rows that are not partitioned: snapshots, leaderboard history and
// model inputs past their retention.
func (w *MaintenanceWorker) prune(ctx context.Context, now time.Time) error {
	queries := dbsqlc.New()
	r := w.deps.Config.Crunch.Retention
	steps := []struct {
		what string
		run  func() (int64, error)
	}{
		{"snapshots", func() (int64, error) { return queries.SnapshotPrune(ctx, w.deps.Pool, now.Add(-r.Snapshots.D())) }},
		{"leaderboard history", func() (int64, error) {
			return queries.LeaderboardHistoryPrune(ctx, w.deps.Pool, now.Add(-r.LeaderboardHistory.D()))
		}},
		{"inputs", func() (int64, error) {
			return queries.InputPrune(ctx, w.deps.Pool, now.Add(-r.Predictions.D()-48*time.Hour))
		}},
	}
	for _, step := range steps {
		n, err := step.run()
		if err != nil {
			return fmt.Errorf("pruning %s: %w", step.what, err)
		}
		if n > 0 {
			w.deps.Logger.InfoContext(ctx, "Maintenance: pruned", slog.String("what", step.what), slog.Int64("rows", n))
		}
	}
	return nil
}
