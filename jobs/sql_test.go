package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

// TestScoringSQL drives the set-based SQL of the score path by hand: due predictions with
// their ground-truth window, scores, snapshots and the leaderboard view.
func TestScoringSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	queries := dbsqlc.New()

	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	cfg.Crunch.Aggregation.MinPredictionsToRank = 1
	require.NoError(t, SyncConfig(ctx, pool, cfg, dbtest.Logger(t)))

	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	// Prices rise 100 → 110 over 60 s, one candle a second.
	closes := make([]float64, 61)
	for i := range closes {
		closes[i] = 100 + float64(i)/6
	}
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, base, time.Second, closes)

	schedule := testfactory.Schedule(ctx, t, pool, nil)
	bull := testfactory.Model(ctx, t, pool, nil)
	bear := testfactory.Model(ctx, t, pool, nil)
	late := testfactory.Model(ctx, t, pool, nil)
	testfactory.Prediction(ctx, t, pool, &testfactory.PredictionOpts{ModelID: bull.ID, ScheduleID: schedule.ID, PerformedAt: &base, Output: map[string]any{"value": 1.0}})
	testfactory.Prediction(ctx, t, pool, &testfactory.PredictionOpts{ModelID: bear.ID, ScheduleID: schedule.ID, PerformedAt: &base, Output: map[string]any{"value": -1.0}})
	future := time.Now().UTC()
	testfactory.Prediction(ctx, t, pool, &testfactory.PredictionOpts{ModelID: late.ID, ScheduleID: schedule.ID, PerformedAt: &future})

	due, err := queries.ScoreDueList(ctx, pool, &dbsqlc.ScoreDueListParams{MaxRows: 100})
	require.NoError(t, err)
	require.Len(t, due, 2, "the prediction whose horizon has not passed is not due")
	for _, d := range due {
		require.True(t, d.HasFirst)
		require.Equal(t, base, d.FirstTS.UTC())
		require.Equal(t, base.Add(time.Minute), d.LastTS.UTC())
	}

	params := &dbsqlc.ScoreInsertManyParams{}
	var buckets []time.Time
	for _, d := range due {
		var output map[string]float64
		require.NoError(t, json.Unmarshal(d.InferenceOutput, &output))
		value := output["value"] * 10
		params.PredictionIDs = append(params.PredictionIDs, d.ID)
		params.Slots = append(params.Slots, d.SlotAt)
		params.ModelIDs = append(params.ModelIDs, d.ModelID)
		params.ScopeKeys = append(params.ScopeKeys, d.ScopeKey)
		params.PerformedAts = append(params.PerformedAts, d.PerformedAt)
		params.Results = append(params.Results, json.RawMessage(`{"value":`+jsonNumber(value)+`,"profit":0.1,"label":"x"}`))
		params.Successes = append(params.Successes, true)
		params.ScoreValues = append(params.ScoreValues, value)
		params.Reasons = append(params.Reasons, "")
		buckets = append(buckets, d.PerformedAt.Truncate(time.Hour))
	}
	written, err := queries.ScoreInsertMany(ctx, pool, params)
	require.NoError(t, err)
	require.EqualValues(t, 2, written)
	again, err := queries.ScoreInsertMany(ctx, pool, params)
	require.NoError(t, err)
	require.Zero(t, again, "scores are written once per prediction")

	snapshots, err := queries.SnapshotRecompute(ctx, pool, &dbsqlc.SnapshotRecomputeParams{
		ModelIDs: params.ModelIDs, Buckets: buckets, PeriodSeconds: 3600, ValueField: "value",
	})
	require.NoError(t, err)
	require.Len(t, snapshots, 4, "an overall and a per-scope snapshot per model")
	for _, s := range snapshots {
		var summary map[string]any
		require.NoError(t, json.Unmarshal(s.ResultSummary, &summary))
		require.Contains(t, summary, "value")
		require.Contains(t, summary, "profit")
		require.NotContains(t, summary, "label", "non-numeric fields are not averaged")
		require.EqualValues(t, 1, s.PredictionCount)
	}

	require.NoError(t, queries.LeaderboardRefresh(ctx, pool))
	rows, err := queries.LeaderboardList(ctx, pool, false)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, bull.ID, rows[0].ModelID)
	require.EqualValues(t, 1, rows[0].Rank)
	require.Equal(t, bear.ID, rows[1].ModelID)
	require.EqualValues(t, 2, rows[1].Rank)
	var metrics map[string]float64
	require.NoError(t, json.Unmarshal(rows[0].Metrics, &metrics))
	require.InDelta(t, 10, metrics["score_recent"], 1e-9)
	require.InDelta(t, 10, rows[0].RankingValue, 1e-9)
}

func jsonNumber(f float64) string {
	data, _ := json.Marshal(f)
	return string(data)
}
