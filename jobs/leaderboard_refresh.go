package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

// LeaderboardRefreshArgs refreshes the leaderboard view and appends it to the history.
type LeaderboardRefreshArgs struct{}

// Kind is the River job kind.
func (LeaderboardRefreshArgs) Kind() string { return "leaderboard_refresh" }

// InsertOpts debounce refreshes: while one is waiting or running, enqueuing another is a
// no-op, so a burst of scoring cycles causes one refresh, not one each.
func (LeaderboardRefreshArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:      QueueScore,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueWhileActive},
	}
}

// leaderboardDebounce is how long a refresh waits after the first scoring cycle that asked
// for it, collecting the cycles that follow.
const leaderboardDebounce = 500 * time.Millisecond

// leaderboardRefreshOpts schedules a debounced refresh.
func leaderboardRefreshOpts(now time.Time) *river.InsertOpts {
	return &river.InsertOpts{ScheduledAt: now.Add(leaderboardDebounce)}
}

// LeaderboardRefreshWorker runs REFRESH MATERIALIZED VIEW CONCURRENTLY, so readers are
// never blocked, then records the ranked entries in the leaderboards history.
type LeaderboardRefreshWorker struct {
	river.WorkerDefaults[LeaderboardRefreshArgs]
	deps *Deps
}

// Work refreshes and appends history in one transaction with the job's completion.
func (w *LeaderboardRefreshWorker) Work(ctx context.Context, job *river.Job[LeaderboardRefreshArgs]) error {
	queries := dbsqlc.New()
	return postgres.WithTx(ctx, w.deps.Pool, func(ctx context.Context, tx pgx.Tx) error {
		if err := queries.LeaderboardRefresh(ctx, tx); err != nil {
			return fmt.Errorf("refreshing the leaderboard: %w", err)
		}
		if _, err := queries.LeaderboardHistoryAppend(ctx, tx, nil); err != nil {
			return fmt.Errorf("appending leaderboard history: %w", err)
		}
		if _, err := river.JobCompleteTx[*riverDriver](ctx, tx, job); err != nil {
			return fmt.Errorf("completing job: %w", err)
		}
		return nil
	})
}
