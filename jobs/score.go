package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/scoring"
	"github.com/crunchnode/crunch-node/internal/scoring/metric"
	"github.com/crunchnode/crunch-node/internal/script"
)

// ScoreArgs is the periodic scoring run.
type ScoreArgs struct{}

// Kind is the River job kind.
func (ScoreArgs) Kind() string { return "score" }

// InsertOpts keep one scoring run queued at a time; several score processes still share
// the work of one run, because each batch locks its rows with SKIP LOCKED.
func (ScoreArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueScore, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueWhileActive}}
}

// ScoreBatchSize is how many due predictions one transaction scores.
const ScoreBatchSize = 5000

// Scoring is what the score worker needs beyond the database: the operator's scorer and
// ground-truth resolver, built and dry-run at start.
type Scoring struct {
	Scorer   scoring.Scorer
	Resolver scoring.Resolver
	// FullWindow means the resolver wants every record of the window (a Starlark
	// resolver); the built-in one needs only the first and last, which the due query
	// already returns.
	FullWindow bool
	// Grace is how long after resolvable_at an unresolvable prediction is retried before
	// it is marked UNRESOLVED with its reason.
	Grace time.Duration
	// MaxStalenessFraction is the configured staleness guard, for the resolver config.
	MaxStalenessFraction float64
	// Metrics computes the configured metric names over MetricWindow (the first
	// leaderboard window) each cycle; their values are merged into the snapshots the
	// cycle writes, so the leaderboard, checkpoints and reports see them.
	Metrics      *metric.Registry
	MetricNames  []string
	MetricWindow time.Duration
}

// ScoreWorker scores due predictions in batches until none is left: ground truth from
// the feed, the scorer per prediction (isolated: one failure never stops the rest),
// scores and statuses written, the touched snapshots recomputed in SQL, and a
// leaderboard refresh enqueued, all in the batch's transaction.
type ScoreWorker struct {
	river.WorkerDefaults[ScoreArgs]
	deps *Deps

	// metricsCache keeps the last window metrics briefly: a backlog is scored in many
	// batches seconds apart, and recomputing a day's metrics for every batch would cost
	// more than scoring.
	metricsMu     sync.Mutex
	metricsAt     time.Time
	metricsValues map[string]map[string]float64
}

// metricsMaxAge is how old cached window metrics may be when merged into a snapshot.
const metricsMaxAge = 10 * time.Second

// scoreSlice is how long one run keeps taking batches, at most; a longer backlog is
// worked by the next runs, so a run never outlives River's stuck-job rescue.
const scoreSlice = time.Minute

// scoreBatchAllowance is what the timeout adds to the slice for the batch in flight.
const scoreBatchAllowance = 30 * time.Second

// Timeout bounds a scoring run: the slice plus one batch.
func (w *ScoreWorker) Timeout(*river.Job[ScoreArgs]) time.Duration {
	return w.deps.withinRescue(scoreSlice) + w.deps.withinRescue(scoreBatchAllowance)
}

// Work scores batch after batch.
func (w *ScoreWorker) Work(ctx context.Context, job *river.Job[ScoreArgs]) error {
	if w.deps.Scoring == nil {
		return errors.New("scoring is not configured in this process")
	}
	var cursor *dueCursor
	total := 0
	started, slice := time.Now(), w.deps.withinRescue(scoreSlice)
	for time.Since(started) < slice {
		n, next, err := w.scoreBatch(ctx, cursor)
		if err != nil {
			return err
		}
		total += n
		if next == nil {
			break
		}
		cursor = next
	}
	if total > 0 {
		w.deps.Logger.InfoContext(ctx, "Score: run finished", slog.Int("scored", total))
	}
	return nil
}

type dueCursor struct {
	ts time.Time
	id string
}

// scoreBatch scores one batch in one transaction and returns the cursor for the next, or
// nil when this was the last.
func (w *ScoreWorker) scoreBatch(ctx context.Context, cursor *dueCursor) (int, *dueCursor, error) {
	queries := dbsqlc.New()
	now := w.deps.now().UTC()
	type outcome struct {
		scored int
		next   *dueCursor
	}
	out, err := postgres.WithTxV(ctx, w.deps.Pool, func(ctx context.Context, tx pgx.Tx) (outcome, error) {
		params := &dbsqlc.ScoreDueListParams{Now: &now, MaxRows: ScoreBatchSize}
		if cursor != nil {
			params.AfterTS, params.AfterID = &cursor.ts, &cursor.id
		}
		due, err := queries.ScoreDueList(ctx, tx, params)
		if err != nil {
			return outcome{}, fmt.Errorf("listing due predictions: %w", err)
		}
		if len(due) == 0 {
			return outcome{}, nil
		}

		var (
			items      []scoring.Item
			scoredRows []*dbsqlc.ScoreDueListRow
			marks      = &dbsqlc.PredictionMarkManyParams{}
		)
		for _, row := range due {
			item, resolution, err := w.prepare(ctx, tx, row)
			if err != nil {
				return outcome{}, err
			}
			if resolution.OK() {
				items = append(items, item)
				scoredRows = append(scoredRows, row)
				continue
			}
			// Unresolvable for now: retried until the grace period ends, then marked
			// with its reason and never examined again.
			if resolution.Retryable && now.Before(row.ResolvableAt.Add(w.deps.Scoring.Grace)) {
				continue
			}
			marks.IDs = append(marks.IDs, row.ID)
			marks.Slots = append(marks.Slots, row.SlotAt)
			marks.Statuses = append(marks.Statuses, "UNRESOLVED")
			marks.Reasons = append(marks.Reasons, resolution.Code+": "+resolution.Reason)
		}

		results := scoring.ScoreBatch(ctx, w.deps.Scoring.Scorer, items)
		if err := ctx.Err(); err != nil {
			return outcome{}, fmt.Errorf("scoring interrupted: %w", err)
		}
		scores := &dbsqlc.ScoreInsertManyParams{Now: &now}
		snap := &dbsqlc.SnapshotRecomputeParams{
			PeriodSeconds: int32(w.deps.Config.SnapshotPeriodSeconds), Now: &now,
			ValueField: w.deps.Config.Crunch.Aggregation.ValueField,
		}
		period := int64(w.deps.Config.SnapshotPeriodSeconds)
		for i, result := range results {
			row := scoredRows[i]
			encoded, err := json.Marshal(result.Map())
			if err != nil {
				return outcome{}, fmt.Errorf("encoding score of %s: %w", row.ID, err)
			}
			scores.PredictionIDs = append(scores.PredictionIDs, row.ID)
			scores.Slots = append(scores.Slots, row.SlotAt)
			scores.ModelIDs = append(scores.ModelIDs, row.ModelID)
			scores.ScopeKeys = append(scores.ScopeKeys, row.ScopeKey)
			scores.PerformedAts = append(scores.PerformedAts, row.PerformedAt)
			scores.Results = append(scores.Results, encoded)
			scores.Successes = append(scores.Successes, result.Success)
			scores.ScoreValues = append(scores.ScoreValues, result.Value)
			scores.Reasons = append(scores.Reasons, result.FailedReason)
			actual, hasActual := realised(items[i].GroundTruth)
			scores.Actuals = append(scores.Actuals, actual)
			scores.HasActuals = append(scores.HasActuals, hasActual)
			marks.IDs = append(marks.IDs, row.ID)
			marks.Slots = append(marks.Slots, row.SlotAt)
			marks.Statuses = append(marks.Statuses, "SCORED")
			marks.Reasons = append(marks.Reasons, "")
			snap.ModelIDs = append(snap.ModelIDs, row.ModelID)
			snap.Buckets = append(snap.Buckets, time.Unix(row.PerformedAt.Unix()/period*period, 0).UTC())
			outcomeLabel := "success"
			if !result.Success {
				outcomeLabel = "failed"
			}
			w.deps.Metrics.Scored.WithLabelValues(outcomeLabel).Inc()
		}
		if len(scores.PredictionIDs) > 0 {
			if _, err := queries.ScoreInsertMany(ctx, tx, scores); err != nil {
				return outcome{}, fmt.Errorf("writing scores: %w", err)
			}
		}
		if len(marks.IDs) > 0 {
			if _, err := queries.PredictionMarkMany(ctx, tx, marks); err != nil {
				return outcome{}, fmt.Errorf("updating prediction statuses: %w", err)
			}
		}
		if len(snap.ModelIDs) > 0 {
			snapshots, err := queries.SnapshotRecompute(ctx, tx, snap)
			if err != nil {
				return outcome{}, fmt.Errorf("recomputing snapshots: %w", err)
			}
			if snapshots, err = w.mergeMetrics(ctx, tx, snapshots, now); err != nil {
				return outcome{}, err
			}
			if err := CommitCycle(ctx, tx, snapshots, now); err != nil {
				return outcome{}, fmt.Errorf("committing the Merkle cycle: %w", err)
			}
			if _, err := w.deps.insertTx(ctx, tx, LeaderboardRefreshArgs{}, leaderboardRefreshOpts(now)); err != nil {
				return outcome{}, fmt.Errorf("enqueuing leaderboard refresh: %w", err)
			}
		}

		last := due[len(due)-1]
		var next *dueCursor
		if len(due) == ScoreBatchSize {
			next = &dueCursor{ts: last.ResolvableAt, id: last.ID}
		}
		return outcome{scored: len(results), next: next}, nil
	})
	return out.scored, out.next, err
}

// prepare resolves a due prediction's ground truth and builds its scoring item.
func (w *ScoreWorker) prepare(ctx context.Context, tx pgx.Tx, row *dbsqlc.ScoreDueListRow) (scoring.Item, scoring.Resolution, error) {
	var prediction map[string]any
	if err := json.Unmarshal(row.InferenceOutput, &prediction); err != nil || prediction == nil {
		return scoring.Item{}, scoring.Resolution{Code: "bad_output", Reason: "stored inference output is not an object"}, nil
	}
	var scope map[string]any
	_ = json.Unmarshal(row.Scope, &scope)
	item := scoring.Item{ModelID: row.ModelID, Prediction: prediction, PredictionID: row.ID}

	// Horizon 0 resolves against the stored input, as the Python engine's immediate path.
	if !row.ResolvableAt.After(row.PerformedAt) {
		input, err := dbsqlc.New().InputGet(ctx, tx, row.InputID)
		if err != nil {
			return item, scoring.Resolution{}, fmt.Errorf("reading input %s: %w", row.InputID, err)
		}
		var raw map[string]any
		if err := json.Unmarshal(input.RawData, &raw); err != nil || raw == nil {
			return item, scoring.Resolution{Code: "bad_input", Reason: "stored input is not an object"}, nil
		}
		item.GroundTruth = raw
		return item, scoring.Resolution{GroundTruth: raw}, nil
	}

	subject, _ := scope["subject"].(string)
	granularity, _ := scope["granularity"].(string)
	in := scoring.ResolveInput{PerformedAt: row.PerformedAt, Prediction: prediction, ResolvableAt: row.ResolvableAt}
	if w.deps.Scoring.FullWindow {
		records, err := dbsqlc.New().FeedRecordListRange(ctx, tx, &dbsqlc.FeedRecordListRangeParams{
			Source: str(scope["source"]), Subject: subject, Kind: str(scope["kind"]), Granularity: granularity,
			StartTS: row.PerformedAt, EndTS: row.ResolvableAt, MaxRows: 100_000,
		})
		if err != nil {
			return item, scoring.Resolution{}, fmt.Errorf("reading the ground-truth window of %s: %w", row.ID, err)
		}
		for _, r := range records {
			in.Records = append(in.Records, feedPoint(subject, r.TSEvent, r.Payload))
		}
	} else {
		if row.HasFirst {
			in.Records = append(in.Records, feedPoint(subject, row.FirstTS, row.FirstPayload))
		}
		if row.HasLast && (!row.HasFirst || !row.LastTS.Equal(row.FirstTS)) {
			in.Records = append(in.Records, feedPoint(subject, row.LastTS, row.LastPayload))
		}
	}
	resolution, err := w.resolver(granularity).Resolve(ctx, in)
	if err != nil {
		// A broken operator resolver is this prediction's problem, not the batch's.
		return item, scoring.Resolution{Code: "resolver_error", Reason: err.Error()}, nil
	}
	item.GroundTruth = resolution.GroundTruth
	return item, resolution, nil
}

// resolver returns the configured resolver; the built-in one is specialised to the
// scope's granularity for its staleness guard.
func (w *ScoreWorker) resolver(granularity string) scoring.Resolver {
	if _, builtin := w.deps.Scoring.Resolver.(scoring.DefaultResolver); !builtin {
		return w.deps.Scoring.Resolver
	}
	step, _ := config.ParseDuration(granularity)
	return scoring.DefaultResolver{Config: scoring.GroundTruthConfig{
		Granularity: step, MaxStalenessFraction: w.deps.Scoring.MaxStalenessFraction,
	}}
}

func feedPoint(subject string, ts time.Time, payload json.RawMessage) scoring.FeedPoint {
	values := map[string]float64{}
	_ = json.Unmarshal(payload, &values)
	return scoring.FeedPoint{Subject: subject, TsEvent: ts, Values: values}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// scriptOptions are the limits operator scripts run under.
func scriptOptions() script.Options {
	return script.Options{MaxSteps: script.DefaultMaxSteps, Timeout: script.DefaultTimeout}
}

// realised reads the outcome a prediction was scored against: the ground truth's
// actual_return, else its profit.
func realised(gt map[string]any) (float64, bool) {
	for _, key := range []string{"actual_return", "profit"} {
		if f, ok := gt[key].(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	}
	return 0, false
}

// mergeMetrics computes the configured metrics over the metric window for the models
// whose overall snapshots this cycle wrote, merges them into those snapshots, and returns
// the snapshots as stored (so their content hashes cover the metrics).
func (w *ScoreWorker) mergeMetrics(ctx context.Context, tx pgx.Tx, snapshots []*dbsqlc.Snapshot, now time.Time) ([]*dbsqlc.Snapshot, error) {
	sc := w.deps.Scoring
	if sc.Metrics == nil || len(sc.MetricNames) == 0 {
		return snapshots, nil
	}
	queries := dbsqlc.New()
	values, err := w.windowMetrics(ctx, tx, now)
	if err != nil {
		return nil, err
	}
	params := &dbsqlc.SnapshotMergeMetricsParams{}
	ids := make([]string, 0, len(snapshots))
	for _, s := range snapshots {
		ids = append(ids, s.ID)
		modelValues, ok := values[s.ModelID]
		if s.ScopeKey != "" || !ok {
			continue
		}
		encoded, err := json.Marshal(modelValues)
		if err != nil {
			return nil, fmt.Errorf("encoding metrics of %s: %w", s.ModelID, err)
		}
		params.IDs = append(params.IDs, s.ID)
		params.Metrics = append(params.Metrics, encoded)
	}
	if len(params.IDs) == 0 {
		return snapshots, nil
	}
	if err := queries.SnapshotMergeMetrics(ctx, tx, params); err != nil {
		return nil, fmt.Errorf("storing metrics: %w", err)
	}
	return queries.SnapshotListByIDs(ctx, tx, ids)
}

// windowMetrics returns every model's metrics over the metric window, from the cache when
// it is fresh enough.
func (w *ScoreWorker) windowMetrics(ctx context.Context, tx pgx.Tx, now time.Time) (map[string]map[string]float64, error) {
	w.metricsMu.Lock()
	defer w.metricsMu.Unlock()
	if w.metricsValues != nil && now.Sub(w.metricsAt) < metricsMaxAge && now.After(w.metricsAt) {
		return w.metricsValues, nil
	}
	sc := w.deps.Scoring
	rows, err := dbsqlc.New().MetricPointList(ctx, tx, now.Add(-sc.MetricWindow))
	if err != nil {
		return nil, fmt.Errorf("reading metric points: %w", err)
	}
	window := metric.Window{Models: map[string][]metric.Point{}}
	for _, r := range rows {
		window.Models[r.ModelID] = append(window.Models[r.ModelID], metric.Point{
			Actual: r.Actual, At: r.PerformedAt, Key: r.SlotAt.UTC().Format(time.RFC3339Nano) + "|" + r.ScopeKey,
			Scope: r.ScopeKey, Score: r.Score, Signal: r.Signal,
		})
	}
	// Models holds real models only (MetricPointList skips virtual ones); the first
	// ensemble's points are the reference of ensemble_correlation, contribution and fnc.
	if id, ok := referenceEnsemble(w.deps.Config); ok {
		points, err := dbsqlc.New().MetricEnsemblePointList(ctx, tx, &dbsqlc.MetricEnsemblePointListParams{
			ModelID: id, Since: now.Add(-sc.MetricWindow),
		})
		if err != nil {
			return nil, fmt.Errorf("reading ensemble metric points: %w", err)
		}
		for _, r := range points {
			window.Ensemble = append(window.Ensemble, metric.Point{
				Actual: r.Actual, At: r.PerformedAt, Key: r.SlotAt.UTC().Format(time.RFC3339Nano) + "|" + r.ScopeKey,
				Scope: r.ScopeKey, Score: r.Score, Signal: r.Signal,
			})
		}
	}
	result, err := sc.Metrics.Compute(ctx, sc.MetricNames, window)
	if err != nil {
		return nil, fmt.Errorf("computing metrics: %w", err)
	}
	for _, f := range result.Failures {
		w.deps.Logger.WarnContext(ctx, "Score: metric failed", slog.String("metric", f.Metric), slog.String("model_id", f.ModelID), slog.String("error", f.Err.Error()))
	}
	w.metricsAt, w.metricsValues = now, result.Values
	return result.Values, nil
}
