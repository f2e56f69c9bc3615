package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/emission"
	"github.com/crunchnode/crunch-node/internal/merkle"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/ranking"
)

// CheckpointArgs writes the checkpoint of one period. Periods are aligned to multiples of
// CHECKPOINT_INTERVAL_SECONDS since the epoch, so every process names the same period.
type CheckpointArgs struct {
	PeriodStart time.Time `json:"period_start"`
}

// Kind is the River job kind.
func (CheckpointArgs) Kind() string { return "checkpoint" }

// InsertOpts make a period's job unique for as long as River keeps it; the unique
// period_start of the checkpoints table makes a second checkpoint impossible anyway.
func (CheckpointArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueScore, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// lastPeriod returns the newest complete checkpoint period at now.
func lastPeriod(now time.Time, interval time.Duration) (time.Time, time.Time) {
	end := slotOf(now, interval)
	return end.Add(-interval), end
}

// RankedModel is one model of a checkpoint's ranking.
type RankedModel struct {
	CruncherName    string         `json:"cruncher_name"`
	ModelID         string         `json:"model_id"`
	ModelName       string         `json:"model_name"`
	PredictionCount int64          `json:"prediction_count"`
	Rank            int            `json:"rank"`
	RankingValue    float64        `json:"ranking_value"`
	ResultSummary   map[string]any `json:"result_summary"`
	SnapshotCount   int64          `json:"snapshot_count"`
}

// CheckpointWorker aggregates the period's snapshots per model, ranks the models, builds
// the emission, commits the period's Merkle cycles to a checkpoint tree, and stores it,
// all in one transaction with the job's completion.
type CheckpointWorker struct {
	river.WorkerDefaults[CheckpointArgs]
	deps *Deps
}

// Work writes the checkpoint, or nothing when the period has no snapshots.
func (w *CheckpointWorker) Work(ctx context.Context, job *river.Job[CheckpointArgs]) error {
	cfg := w.deps.Config
	start := job.Args.PeriodStart.UTC()
	end := start.Add(time.Duration(cfg.CheckpointIntervalSeconds) * time.Second)
	queries := dbsqlc.New()
	return postgres.WithTx(ctx, w.deps.Pool, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := queries.CheckpointAggregate(ctx, tx, &dbsqlc.CheckpointAggregateParams{PeriodStart: start, PeriodEnd: end})
		if err != nil {
			return fmt.Errorf("aggregating snapshots: %w", err)
		}
		if len(rows) > 0 {
			if err := w.write(ctx, tx, start, end, rows); err != nil {
				return err
			}
		}
		if _, err := river.JobCompleteTx[*riverDriver](ctx, tx, job); err != nil {
			return fmt.Errorf("completing job: %w", err)
		}
		return nil
	})
}

func (w *CheckpointWorker) write(ctx context.Context, tx pgx.Tx, start, end time.Time, rows []*dbsqlc.CheckpointAggregateRow) error {
	cfg := w.deps.Config
	ranking := Rank(rows, cfg.Crunch.Aggregation.RankingKey, cfg.Crunch.Aggregation.ValueField,
		cfg.Crunch.Aggregation.Windows.Names(), cfg.Crunch.Aggregation.RankingDirection)
	ranking, rankedBy := w.rerank(ctx, ranking)
	build := w.deps.Emission
	if build == nil {
		var err error
		if build, err = NewEmissionBuilder(cfg.BuildEmission, ""); err != nil {
			return err
		}
	}
	doc, err := build(ctx, ranking, emission.Identities{
		Crunch: cfg.CrunchPubkey, ComputeProvider: cfg.ComputeProviderPubkey, DataProvider: cfg.DataProviderPubkey,
	})
	if err != nil {
		return fmt.Errorf("building the emission: %w", err)
	}

	queries := dbsqlc.New()
	cycles, err := queries.MerkleCycleListForPeriod(ctx, tx, &dbsqlc.MerkleCycleListForPeriodParams{PeriodStart: start, PeriodEnd: end})
	if err != nil {
		return fmt.Errorf("listing the period's cycles: %w", err)
	}
	id := "CKP_" + end.Format("20060102_150405")
	var root *string
	var tree *merkle.Tree
	if len(cycles) > 0 {
		leaves := make([]string, len(cycles))
		for i, c := range cycles {
			leaves[i] = c.ChainedRoot
		}
		if tree, err = merkle.NewTree(leaves); err != nil {
			return fmt.Errorf("building the checkpoint tree: %w", err)
		}
		r := tree.Root()
		root = &r
	}
	var snapshotCount int64
	for _, r := range ranking {
		snapshotCount += r.SnapshotCount
	}
	entriesJSON, _ := json.Marshal([]emission.Checkpoint{doc})
	meta, _ := json.Marshal(map[string]any{
		"cycle_count": len(cycles), "model_count": len(ranking), "ranked_by": rankedBy, "ranking": ranking,
		"ranking_direction": cfg.Crunch.Aggregation.RankingDirection, "ranking_key": cfg.Crunch.Aggregation.RankingKey,
		"snapshot_count": snapshotCount,
	})
	inserted, err := queries.CheckpointInsert(ctx, tx, &dbsqlc.CheckpointInsertParams{
		Entries: entriesJSON, ID: id, MerkleRoot: root, Meta: meta, PeriodEnd: end, PeriodStart: start,
	})
	if errors.Is(postgres.Interpret(err), postgres.ErrNotFound) {
		return nil // this period already has its checkpoint
	}
	if err != nil {
		return fmt.Errorf("storing checkpoint %s: %w", id, err)
	}
	if tree != nil {
		params := &dbsqlc.MerkleNodeInsertManyParams{CheckpointID: &inserted.ID}
		for _, node := range tree.Nodes() {
			appendNode(params, node, "", "")
		}
		if err := queries.MerkleNodeInsertMany(ctx, tx, params); err != nil {
			return fmt.Errorf("storing the checkpoint tree: %w", err)
		}
	}
	w.deps.Logger.InfoContext(ctx, "Checkpoint written", slog.String("checkpoint_id", inserted.ID),
		slog.Int("models", len(ranking)), slog.Int("cycles", len(cycles)))
	return nil
}

// rerank applies the LEADERBOARD_RANKER to a checkpoint's ranking, so rewards follow the
// same rule as the leaderboard, and says which ranking was used. The ranker sees each
// model's period means as its metrics, with every window name standing for value_field
// (as in [Rank]); the models it leaves out follow the ones it ranks, in the built-in
// order, because every model of a period keeps a place in the emission. A failing ranker
// is logged and the built-in ranking kept.
func (w *CheckpointWorker) rerank(ctx context.Context, ranked []RankedModel) ([]RankedModel, string) {
	ranker := w.deps.Ranker
	if ranker == nil || len(ranked) == 0 {
		return ranked, ranking.BuiltIn
	}
	agg := w.deps.Config.Crunch.Aggregation
	entries := make([]ranking.Entry, len(ranked))
	for i, r := range ranked {
		metrics := finiteNumbers(r.ResultSummary)
		for _, name := range agg.Windows.Names() {
			metrics[name] = metrics[agg.ValueField]
		}
		entries[i] = ranking.Entry{
			CruncherName: r.CruncherName, Metrics: metrics, ModelID: r.ModelID, ModelName: r.ModelName,
			PredictionCount: r.PredictionCount, Rank: r.Rank,
		}
		if v, ok := metrics[agg.RankingKey].(float64); ok {
			entries[i].RankingValue = &v
		}
	}
	order, err := ranker.Order(ctx, entries)
	if err != nil {
		w.deps.Logger.WarnContext(ctx, "Leaderboard ranker failed on a checkpoint; keeping the built-in ranking",
			slog.String("ranker", ranker.String()), slog.String("error", err.Error()))
		return ranked, ranking.BuiltIn
	}
	first, rest := ranking.Reorder(ranked, func(r RankedModel) string { return r.ModelID }, order)
	out := append(first, rest...)
	for i := range out {
		out[i].Rank = i + 1
	}
	return out, ranker.String()
}

// Rank orders a period's models by the ranking key. A key naming a leaderboard window is
// ranked by the period's value_field (a window is that field's mean over time, and a
// checkpoint period is such a window); any other key is read from the aggregated
// summary. This fixes the Python engine, which looked the window name up in snapshots
// that never contain it, so every model tied. Ties break by model id; a model without a
// value ranks last.
func Rank(rows []*dbsqlc.CheckpointAggregateRow, key, valueField string, windows []string, direction string) []RankedModel {
	field := key
	if slices.Contains(windows, key) {
		field = valueField
	}
	ranked := make([]RankedModel, 0, len(rows))
	for _, row := range rows {
		summary, _ := decodeSummary(row.ResultSummary)
		value := number(summary[field])
		if math.IsNaN(value) {
			value = math.Inf(-1)
			if direction == "asc" {
				value = math.Inf(1)
			}
		}
		ranked = append(ranked, RankedModel{
			CruncherName: row.CruncherName, ModelID: row.ModelID, ModelName: row.ModelName,
			PredictionCount: row.PredictionCount, RankingValue: value, ResultSummary: summary, SnapshotCount: row.SnapshotCount,
		})
	}
	sort.SliceStable(ranked, func(i, j int) bool {
		a, b := ranked[i].RankingValue, ranked[j].RankingValue
		if a != b {
			if direction == "asc" {
				return a < b
			}
			return a > b
		}
		return ranked[i].ModelID < ranked[j].ModelID
	})
	for i := range ranked {
		ranked[i].Rank = i + 1
		if math.IsInf(ranked[i].RankingValue, 0) {
			ranked[i].RankingValue = 0
		}
	}
	return ranked
}

// number reads a JSON number (float64 or json.Number); anything else is NaN.
func number(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case json.Number:
		f, err := x.Float64()
		if err == nil {
			return f
		}
	}
	return math.NaN()
}

// finiteNumbers keeps the finite numeric fields of a summary, as float64: what a script
// can be given.
func finiteNumbers(summary map[string]any) map[string]any {
	out := make(map[string]any, len(summary))
	for k, v := range summary {
		if f := number(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
			out[k] = f
		}
	}
	return out
}

// CheckpointScheduleArgs enqueues the checkpoint of the newest complete period.
type CheckpointScheduleArgs struct{}

// Kind is the River job kind.
func (CheckpointScheduleArgs) Kind() string { return "checkpoint_schedule" }

// InsertOpts keep one at a time.
func (CheckpointScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueScore, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueWhileActive}}
}

// CheckpointScheduleWorker enqueues the newest complete period's checkpoint job; the job's
// uniqueness makes repeated enqueues harmless, so a restart or a leader change mid-period
// can never produce two checkpoints.
type CheckpointScheduleWorker struct {
	river.WorkerDefaults[CheckpointScheduleArgs]
	deps *Deps
}

// maxCatchUpPeriods bounds how many missed periods one run enqueues after downtime.
const maxCatchUpPeriods = 48

// Work enqueues the newest complete period and, after downtime, the periods missed since
// the newest checkpoint (a period without data completes without a checkpoint).
func (w *CheckpointScheduleWorker) Work(ctx context.Context, job *river.Job[CheckpointScheduleArgs]) error {
	interval := time.Duration(w.deps.Config.CheckpointIntervalSeconds) * time.Second
	newest, _ := lastPeriod(w.deps.now().UTC(), interval)
	first := newest
	if latest, err := dbsqlc.New().CheckpointLatest(ctx, w.deps.Pool); err == nil {
		first = maxTime(latest.PeriodEnd.UTC(), newest.Add(-maxCatchUpPeriods*interval))
	}
	var params []river.InsertManyParams
	for start := first; !start.After(newest); start = start.Add(interval) {
		params = append(params, river.InsertManyParams{Args: CheckpointArgs{PeriodStart: start}})
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("no River client in context: %w", err)
	}
	if _, err := client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueuing checkpoints: %w", err)
	}
	return nil
}
