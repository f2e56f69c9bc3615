package jobs

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/scoring"
	"github.com/crunchnode/crunch-node/internal/scoring/metric"
	"github.com/crunchnode/crunch-node/internal/telemetry"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

func builtinScoring(t *testing.T, name string) *Scoring {
	t.Helper()
	scorer, err := scoring.NewRegistry().Scorer(name, scriptOptions())
	require.NoError(t, err)
	return &Scoring{
		Scorer:               scorer,
		Resolver:             scoring.DefaultResolver{},
		Grace:                5 * time.Minute,
		MaxStalenessFraction: 0.2,
		Metrics:              metric.NewRegistry(),
		MetricNames:          metric.DefaultNames(),
		MetricWindow:         24 * time.Hour,
	}
}

type statusRow struct {
	Status string
	Reason *string
}

func predictionStatus(t *testing.T, b *testBundle, id string) statusRow {
	t.Helper()
	var row statusRow
	require.NoError(t, b.pool.QueryRow(context.Background(),
		"SELECT status, failed_reason FROM predictions WHERE id = $1", id).Scan(&row.Status, &row.Reason))
	return row
}

func TestScoreWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRiver(t, nil, func(d *Deps) {
		d.Scoring = builtinScoring(t, "pnl")
		d.Config.Crunch.Aggregation.MinPredictionsToRank = 1
	})

	// A feed that rises from 100 to 110 over the minute after `base`.
	base := time.Now().UTC().Add(-3 * time.Minute).Truncate(time.Second)
	closes := make([]float64, 61)
	for i := range closes {
		closes[i] = 100 + float64(i)/6
	}
	testfactory.FeedCandles(ctx, t, b.pool, [4]string{}, base, time.Second, closes)
	schedule := testfactory.Schedule(ctx, t, b.pool, nil)
	up := testfactory.Model(ctx, t, b.pool, nil)
	down := testfactory.Model(ctx, t, b.pool, nil)
	poisoned := testfactory.Model(ctx, t, b.pool, nil)

	upID, _ := testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: up.ID, ScheduleID: schedule.ID, PerformedAt: &base, Output: map[string]any{"value": 1.0}})
	downID, _ := testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: down.ID, ScheduleID: schedule.ID, PerformedAt: &base, Output: map[string]any{"value": -0.5}})
	// A prediction whose output cannot be scored must not stop the others.
	poisonID, _ := testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: poisoned.ID, ScheduleID: schedule.ID, PerformedAt: &base, Output: map[string]any{"value": "lots"}})
	// No feed data at all for this scope: past its grace period it is marked, not rescanned.
	old := time.Now().UTC().Add(-time.Hour)
	goneID, _ := testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: up.ID, ScheduleID: schedule.ID, PerformedAt: &old,
		Scope: map[string]any{"source": "synthetic", "subject": "NOPE", "kind": "candle", "granularity": "1s"}})
	// Same, but recent: it stays PENDING, the feed may still catch up.
	recent := time.Now().UTC().Add(-61 * time.Second)
	waitingID, _ := testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: down.ID, ScheduleID: schedule.ID, PerformedAt: &recent,
		Scope: map[string]any{"source": "synthetic", "subject": "NOPE", "kind": "candle", "granularity": "1s"}})

	event := b.runJob(t, ScoreArgs{})
	require.Equal(t, river.EventKindJobCompleted, event.Kind)
	b.waitKind(t, LeaderboardRefreshArgs{}.Kind())

	require.Equal(t, "SCORED", predictionStatus(t, b, upID).Status)
	require.Equal(t, "SCORED", predictionStatus(t, b, downID).Status)
	require.Equal(t, "SCORED", predictionStatus(t, b, poisonID).Status)
	gone := predictionStatus(t, b, goneID)
	require.Equal(t, "UNRESOLVED", gone.Status)
	require.Contains(t, *gone.Reason, "no_records")
	require.Equal(t, "PENDING", predictionStatus(t, b, waitingID).Status)

	var success bool
	var reason *string
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT success, failed_reason FROM scores WHERE prediction_id = $1", poisonID).Scan(&success, &reason))
	require.False(t, success)
	require.NotEmpty(t, *reason)

	var value float64
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT value FROM scores WHERE prediction_id = $1", upID).Scan(&value))
	require.InDelta(t, 1.0*0.1*10_000, value, 1e-6, "pnl = value × profit × 10,000 with profit = (110−100)/100")

	rows, err := dbsqlc.New().LeaderboardList(ctx, b.pool, false)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(rows), 2)
	require.Equal(t, up.ID, rows[0].ModelID)
	require.EqualValues(t, 1, rows[0].Rank)

	// A second run finds nothing new to score and changes nothing.
	var scores int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM scores").Scan(&scores))
	b.runJob(t, ScoreArgs{})
	var again int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM scores").Scan(&again))
	require.Equal(t, scores, again)

	var summary json.RawMessage
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT result_summary FROM snapshots WHERE model_id = $1 AND scope_key = ''", up.ID).Scan(&summary))
	require.Contains(t, string(summary), `"value"`)
	for _, name := range metric.DefaultNames() {
		require.Contains(t, string(summary), `"`+name+`"`, "window metrics are merged into the snapshot")
	}
	var actual *float64
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT actual FROM scores WHERE prediction_id = $1", upID).Scan(&actual))
	require.NotNil(t, actual)
	require.InDelta(t, 0.1, *actual, 1e-9, "the realised return is kept with the score")
}

// TestScoreWorkerAggregator runs an operator's MODEL_SCORE_AGGREGATOR in place of the SQL
// mean: it sees every score of the bucket, failed ones included.
func TestScoreWorkerAggregator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	aggregator, err := scoring.NewAggregator("../internal/scoring/testdata/aggregate.star:penalised_mean", scriptOptions())
	require.NoError(t, err)
	b := setupRiver(t, nil, func(d *Deps) {
		d.Scoring = builtinScoring(t, "pnl")
		d.Scoring.Aggregator = aggregator
	})

	// Two minutes in one hourly bucket (unless the hour turns in between: then start
	// earlier, so both predictions share a bucket).
	base := time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Second)
	if base.Truncate(time.Hour) != base.Add(2*time.Minute).Truncate(time.Hour) {
		base = base.Add(-10 * time.Minute)
	}
	closes := make([]float64, 121)
	for i := range closes {
		closes[i] = 100 + float64(i)/12
	}
	testfactory.FeedCandles(ctx, t, b.pool, [4]string{}, base, time.Second, closes)
	schedule := testfactory.Schedule(ctx, t, b.pool, nil)
	model := testfactory.Model(ctx, t, b.pool, nil)
	later := base.Add(time.Minute)
	testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: model.ID, ScheduleID: schedule.ID, PerformedAt: &base, Output: map[string]any{"value": 1.0}})
	testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: model.ID, ScheduleID: schedule.ID, PerformedAt: &later, Output: map[string]any{"value": "not a number"}})

	require.Equal(t, river.EventKindJobCompleted, b.runJob(t, ScoreArgs{}).Kind)

	var (
		count   int
		summary map[string]any
		raw     json.RawMessage
	)
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT prediction_count, result_summary FROM snapshots WHERE model_id = $1 AND scope_key = ''", model.ID).Scan(&count, &raw))
	require.NoError(t, json.Unmarshal(raw, &summary))
	require.EqualValues(t, 2, summary["n"], "the aggregator sees the failed score too")
	// pnl of the first: 1 × (105 − 100)/100 × 10,000 = 500; the failed one counts −1.
	require.InDelta(t, (500.0-1.0)/2, summary["value"], 1e-6)
	require.Equal(t, 1, count, "prediction_count counts scored predictions, as the SQL mean does")
}

// TestTwoScoreProcesses runs two score workers, each with its own connection pool and two
// batch loops, against one database at once: every prediction is scored exactly once.
func TestTwoScoreProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRiver(t, nil, func(d *Deps) { d.Scoring = builtinScoring(t, "pnl") })
	ctx = rivertest.WorkContext(ctx, b.client)

	const models, ticks = 20, 60
	base := time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Second)
	closes := make([]float64, 10*60)
	for i := range closes {
		closes[i] = 100 + float64(i%50)/10
	}
	testfactory.FeedCandles(ctx, t, b.pool, [4]string{}, base, time.Second, closes)
	schedule := testfactory.Schedule(ctx, t, b.pool, nil)
	for range models {
		m := testfactory.Model(ctx, t, b.pool, nil)
		for tick := range ticks {
			at := base.Add(time.Duration(tick) * time.Second)
			testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: m.ID, ScheduleID: schedule.ID, PerformedAt: &at, Output: map[string]any{"value": 0.5}})
		}
	}

	other, err := pgxpool.New(ctx, b.pool.Config().ConnString())
	require.NoError(t, err)
	t.Cleanup(other.Close)
	workers := []*ScoreWorker{
		{deps: b.deps},
		{deps: &Deps{Config: b.deps.Config, Logger: b.deps.Logger, Metrics: telemetry.New(), Pool: other, Scoring: b.deps.Scoring}},
	}
	scored := make([]int, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		// One tick per batch, so the workers' claims interleave as much as they can.
		w.predictionsPerTick.Store(ScoreBatchSize)
		wg.Go(func() {
			n, _, err := w.scoreRound(ctx, time.Minute)
			assert.NoError(t, err)
			scored[i] = n
		})
	}
	wg.Wait()
	t.Logf("scored per worker: %v", scored)
	total := models * ticks
	require.Equal(t, total, scored[0]+scored[1], "each prediction scored by exactly one worker")

	var rows, distinct, pending, queued int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT prediction_id) FROM scores").Scan(&rows, &distinct))
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM predictions WHERE status <> 'SCORED'").Scan(&pending))
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM score_queue").Scan(&queued))
	require.Equal(t, total, rows)
	require.Equal(t, total, distinct)
	require.Zero(t, pending)
	require.Zero(t, queued)

	require.NoError(t, workers[1].recomputeSnapshots(ctx))
	var snapshotted int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT coalesce(sum(prediction_count), 0) FROM snapshots WHERE scope_key = ''").Scan(&snapshotted))
	require.Equal(t, total, snapshotted, "the dirty buckets of both workers were recomputed")
}

// TestRecomputeSnapshotsTakesEveryMark: marks are deduplicated when taken, so a batch of
// marks that repeat one bucket must not end the recomputation while other marks wait.
func TestRecomputeSnapshotsTakesEveryMark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRiver(t, nil, func(d *Deps) { d.Scoring = builtinScoring(t, "pnl") })
	ctx = rivertest.WorkContext(ctx, b.client)
	bucket := time.Now().UTC().Truncate(time.Hour)
	_, err := b.pool.Exec(ctx, `INSERT INTO snapshot_dirty (model_id, bucket) SELECT 'busy', $1 FROM generate_series(1, $2::integer)`, bucket, snapshotBatch+1)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO snapshot_dirty (model_id, bucket) VALUES ('quiet', $1)`, bucket)
	require.NoError(t, err)

	require.NoError(t, (&ScoreWorker{deps: b.deps}).recomputeSnapshots(ctx))

	var left int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM snapshot_dirty").Scan(&left))
	require.Zero(t, left)
}

// TestScoreWorkerAggregatorFails: an aggregator that fails at run time leaves the bucket's
// snapshot unwritten and the run completes; the scores themselves are stored.
func TestScoreWorkerAggregatorFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	aggregator, err := scoring.NewAggregator("../internal/scoring/testdata/aggregate.star:not_a_dict", scriptOptions())
	require.NoError(t, err)
	b := setupRiver(t, nil, func(d *Deps) {
		d.Scoring = builtinScoring(t, "pnl")
		d.Scoring.Aggregator = aggregator
	})
	base := time.Now().UTC().Add(-3 * time.Minute).Truncate(time.Second)
	closes := make([]float64, 61)
	for i := range closes {
		closes[i] = 100 + float64(i)/6
	}
	testfactory.FeedCandles(ctx, t, b.pool, [4]string{}, base, time.Second, closes)
	schedule := testfactory.Schedule(ctx, t, b.pool, nil)
	model := testfactory.Model(ctx, t, b.pool, nil)
	testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: model.ID, ScheduleID: schedule.ID, PerformedAt: &base, Output: map[string]any{"value": 1.0}})

	require.Equal(t, river.EventKindJobCompleted, b.runJob(t, ScoreArgs{}).Kind)

	var scores, snapshots int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM scores), (SELECT count(*) FROM snapshots)").Scan(&scores, &snapshots))
	require.Equal(t, 1, scores)
	require.Zero(t, snapshots, "a failing aggregator writes no snapshot")
}
