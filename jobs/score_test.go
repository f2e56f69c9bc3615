package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/scoring"
	"github.com/crunchnode/crunch-node/internal/scoring/metric"
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
