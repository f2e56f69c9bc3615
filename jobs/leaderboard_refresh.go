package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/ranking"
)

// LeaderboardRefreshArgs refreshes the leaderboard and appends it to the history.
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

// LeaderboardRefreshWorker runs REFRESH MATERIALIZED VIEW CONCURRENTLY on the leaderboard,
// lets the LEADERBOARD_RANKER re-rank it when one is configured, and records the result in
// the leaderboards history, all in one transaction: readers see the previous leaderboard
// until the new one is complete, never a half-ranked one, and never wait.
type LeaderboardRefreshWorker struct {
	river.WorkerDefaults[LeaderboardRefreshArgs]
	deps *Deps
}

// Work refreshes, re-ranks and appends history in one transaction with the job's
// completion.
func (w *LeaderboardRefreshWorker) Work(ctx context.Context, job *river.Job[LeaderboardRefreshArgs]) error {
	return postgres.WithTx(ctx, w.deps.Pool, func(ctx context.Context, tx pgx.Tx) error {
		if err := RefreshLeaderboard(ctx, tx, w.deps, w.deps.now()); err != nil {
			return err
		}
		if _, err := river.JobCompleteTx[*riverDriver](ctx, tx, job); err != nil {
			return fmt.Errorf("completing job: %w", err)
		}
		return nil
	})
}

// RefreshLeaderboard is the leaderboard_refresh job's work in tx: the leaderboard view
// refreshed as of now, re-ranked by deps.Ranker when there is one, and appended to the
// history. Fixtures call it to build exactly the leaderboard the job would.
func RefreshLeaderboard(ctx context.Context, tx pgx.Tx, deps *Deps, now time.Time) error {
	if err := refreshLeaderboardView(ctx, tx, now, nil); err != nil {
		return err
	}
	queries := dbsqlc.New()
	history := &dbsqlc.LeaderboardHistoryAppendParams{Now: &now}
	if err := rerankLeaderboard(ctx, tx, deps, history); err != nil {
		return err
	}
	if _, err := queries.LeaderboardHistoryAppend(ctx, tx, history); err != nil {
		return fmt.Errorf("appending leaderboard history: %w", err)
	}
	return nil
}

// refreshLeaderboardView refreshes the leaderboard view as of now, with a ranker's ranks
// ({model_id: rank}) or, when ranks is nil, the SQL ranking.
func refreshLeaderboardView(ctx context.Context, tx pgx.Tx, now time.Time, ranks json.RawMessage) error {
	queries := dbsqlc.New()
	if err := queries.LeaderboardRefreshPrepare(ctx, tx, &dbsqlc.LeaderboardRefreshPrepareParams{Now: &now, Ranks: ranks}); err != nil {
		return fmt.Errorf("setting the leaderboard's clock: %w", err)
	}
	if err := queries.LeaderboardRefresh(ctx, tx); err != nil {
		return fmt.Errorf("refreshing the leaderboard: %w", err)
	}
	return nil
}

// rerankLeaderboard applies the configured ranker to the refreshed leaderboard and says
// in history which ranking is in force. A ranker that fails is logged and recorded, and
// the SQL ranking stays: an operator's script must never stop the leaderboard. Database
// errors are returned, so the job is retried.
func rerankLeaderboard(ctx context.Context, tx pgx.Tx, deps *Deps, history *dbsqlc.LeaderboardHistoryAppendParams) error {
	ranker := deps.Ranker
	if ranker == nil {
		return nil
	}
	queries := dbsqlc.New()
	rows, err := queries.LeaderboardList(ctx, tx, true)
	if err != nil {
		return fmt.Errorf("reading the leaderboard to re-rank: %w", err)
	}
	entries := leaderboardEntries(rows, deps.Config.Crunch.Aggregation.MinPredictionsToRank)
	order, err := ranker.Order(ctx, entries)
	if err != nil {
		deps.Logger.WarnContext(ctx, "Leaderboard ranker failed; keeping the SQL ranking",
			slog.String("ranker", ranker.String()), slog.String("error", err.Error()))
		msg := err.Error()
		history.RankerError = &msg
		return nil
	}
	// The view takes its ranks from leaderboard_refresh; a second refresh applies them.
	ranks := make(map[string]int, len(order))
	for i, id := range order {
		ranks[id] = i + 1
	}
	encoded, err := json.Marshal(ranks)
	if err != nil {
		return fmt.Errorf("encoding the ranker's ranks: %w", err)
	}
	if err := refreshLeaderboardView(ctx, tx, *history.Now, encoded); err != nil {
		return err
	}
	rankedBy := ranker.String()
	history.RankedBy = &rankedBy
	return nil
}

// leaderboardEntries are the rows a ranker may rank, in the SQL order: real models with at
// least minPredictions predictions, whether or not the SQL ranking could rank them.
func leaderboardEntries(rows []*dbsqlc.LeaderboardListRow, minPredictions int) []ranking.Entry {
	entries := make([]ranking.Entry, 0, len(rows))
	for _, row := range rows {
		if row.Virtual || row.PredictionCount < int64(minPredictions) {
			continue
		}
		var metrics map[string]any
		_ = json.Unmarshal(row.Metrics, &metrics) // a jsonb object; nil (empty) otherwise
		entry := ranking.Entry{
			CruncherName: row.CruncherName, Metrics: metrics, ModelID: row.ModelID, ModelName: row.ModelName,
			PredictionCount: row.PredictionCount, Rank: int(row.Rank),
		}
		if row.HasRankingValue {
			entry.RankingValue = &row.RankingValue
		}
		entries = append(entries, entry)
	}
	return entries
}
