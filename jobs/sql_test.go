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
// their ground-truth window, scores, snapshots and the leaderboard.
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

	ticks, err := queries.ScoreQueueClaim(ctx, pool, &dbsqlc.ScoreQueueClaimParams{MaxTicks: 100})
	require.NoError(t, err)
	require.Len(t, ticks, 2, "the tick whose horizon has not passed is not due")
	pending := &dbsqlc.PredictionListPendingByTicksParams{}
	for _, tick := range ticks {
		require.True(t, tick.HasFirst)
		require.Equal(t, base, tick.FirstTS.UTC())
		require.Equal(t, base.Add(time.Minute), tick.LastTS.UTC())
		pending.ConfigIDs = append(pending.ConfigIDs, tick.PredictionConfigID)
		pending.Slots = append(pending.Slots, tick.SlotAt)
	}
	pending.MinSlot, pending.MaxSlot = slotRange(pending.Slots)
	due, err := queries.PredictionListPendingByTicks(ctx, pool, pending)
	require.NoError(t, err)
	require.Len(t, due, 2)

	var (
		scores   []*dbsqlc.ScoreCopyParams
		modelIDs []string
		buckets  []time.Time
	)
	for _, d := range due {
		var output map[string]float64
		require.NoError(t, json.Unmarshal(d.InferenceOutput, &output))
		value := output["value"] * 10
		scores = append(scores, &dbsqlc.ScoreCopyParams{
			ModelID: d.ModelID, PerformedAt: d.PerformedAt, PredictionID: d.ID, ScopeKey: d.ScopeKey,
			Result:   json.RawMessage(`{"value":` + jsonNumber(value) + `,"profit":0.1,"label":"x"}`),
			ScoredAt: time.Now(), SlotAt: d.SlotAt, Success: true, Value: &value,
		})
		modelIDs = append(modelIDs, d.ModelID)
		buckets = append(buckets, d.PerformedAt.Truncate(time.Hour))
	}
	written, err := queries.ScoreCopy(ctx, pool, scores)
	require.NoError(t, err)
	require.EqualValues(t, 2, written)
	_, err = queries.ScoreCopy(ctx, pool, scores[:1])
	require.Error(t, err, "the primary key refuses a second score for a prediction")

	snapshots, err := queries.SnapshotRecompute(ctx, pool, &dbsqlc.SnapshotRecomputeParams{
		ModelIDs: modelIDs, Buckets: buckets, PeriodSeconds: 3600, ValueField: "value",
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

	testfactory.RefreshLeaderboard(ctx, t, pool, nil)
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
