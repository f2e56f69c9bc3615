package jobs

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/emission"
	"github.com/crunchnode/crunch-node/internal/ranking"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

func TestCheckpointAndProofs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRiver(t, nil, func(d *Deps) { d.Scoring = builtinScoring(t, "pnl") })

	base := time.Now().UTC().Add(-3 * time.Minute).Truncate(time.Second)
	closes := make([]float64, 61)
	for i := range closes {
		closes[i] = 100 + float64(i)/6
	}
	testfactory.FeedCandles(ctx, t, b.pool, [4]string{}, base, time.Second, closes)
	schedule := testfactory.Schedule(ctx, t, b.pool, nil)
	models := []*dbsqlc.Model{
		testfactory.Model(ctx, t, b.pool, nil), testfactory.Model(ctx, t, b.pool, nil), testfactory.Model(ctx, t, b.pool, nil),
	}
	for i, m := range models {
		testfactory.Prediction(ctx, t, b.pool, &testfactory.PredictionOpts{ModelID: m.ID, ScheduleID: schedule.ID, PerformedAt: &base,
			Output: map[string]any{"value": float64(i) - 0.5}})
	}
	b.runJob(t, ScoreArgs{})

	interval := time.Duration(b.deps.Config.CheckpointIntervalSeconds) * time.Second
	periodStart := slotOf(base, interval)
	b.runJob(t, CheckpointArgs{PeriodStart: periodStart})

	checkpoint, err := dbsqlc.New().CheckpointLatest(ctx, b.pool)
	require.NoError(t, err)
	require.Equal(t, "PENDING", checkpoint.Status)
	require.NotNil(t, checkpoint.MerkleRoot)
	var docs []emission.Checkpoint
	require.NoError(t, json.Unmarshal(checkpoint.Entries, &docs))
	require.Len(t, docs, 1)
	var total int64
	for _, r := range docs[0].CruncherRewards {
		total += r.RewardPct
	}
	require.EqualValues(t, emission.Frac64Multiplier, total)
	var meta struct {
		Ranking []RankedModel `json:"ranking"`
	}
	require.NoError(t, json.Unmarshal(checkpoint.Meta, &meta))
	require.Len(t, meta.Ranking, 3)
	require.Equal(t, models[2].ID, meta.Ranking[0].ModelID, "ranked by the period's value, not a constant")
	require.Greater(t, meta.Ranking[0].RankingValue, meta.Ranking[2].RankingValue)

	// A second job for the same period (a restart, a leader change) changes nothing.
	_, err = b.pool.Exec(ctx, "DELETE FROM river_job WHERE kind = 'checkpoint'")
	require.NoError(t, err)
	b.runJob(t, CheckpointArgs{PeriodStart: periodStart})
	var count int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM checkpoints").Scan(&count))
	require.Equal(t, 1, count)

	// Every overall snapshot proves all the way to the checkpoint root.
	var ids []string
	rows, err := b.pool.Query(ctx, "SELECT id FROM snapshots WHERE scope_key = ''")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.Len(t, ids, 3)
	for _, id := range ids {
		proof, err := BuildProof(ctx, b.pool, id)
		require.NoError(t, err)
		require.Equal(t, *checkpoint.MerkleRoot, proof.MerkleRoot)
		require.Equal(t, checkpoint.ID, proof.CheckpointID)
		require.NoError(t, VerifyProof(proof))
	}

	// Tampering with a committed snapshot breaks its proof.
	_, err = b.pool.Exec(ctx, `UPDATE snapshots SET result_summary = jsonb_set(result_summary, '{value}', '1e6') WHERE id = $1`, ids[0])
	require.NoError(t, err)
	proof, err := BuildProof(ctx, b.pool, ids[0])
	require.NoError(t, err)
	require.Error(t, VerifyProof(proof))
}

func TestRank(t *testing.T) {
	t.Parallel()
	rows := []*dbsqlc.CheckpointAggregateRow{
		{ModelID: "b", ResultSummary: json.RawMessage(`{"value": 2, "ic": 0.1}`)},
		{ModelID: "a", ResultSummary: json.RawMessage(`{"value": 2, "ic": 0.3}`)},
		{ModelID: "c", ResultSummary: json.RawMessage(`{"ic": 0.2}`)},
		{ModelID: "d", ResultSummary: json.RawMessage(`{"value": 5.5}`)},
	}
	ids := func(r []RankedModel) []string {
		var out []string
		for _, m := range r {
			out = append(out, m.ModelID)
		}
		return out
	}
	windows := []string{"score_recent"}
	require.Equal(t, []string{"d", "a", "b", "c"}, ids(Rank(rows, "score_recent", "value", windows, "desc")), "a window ranks by value_field; ties by id; missing last")
	require.Equal(t, []string{"a", "c", "b", "d"}, ids(Rank(rows, "ic", "value", windows, "desc")))
	require.Equal(t, []string{"a", "b", "d", "c"}, ids(Rank(rows, "score_recent", "value", windows, "asc")))
	require.Equal(t, 1, Rank(rows, "ic", "value", windows, "desc")[0].Rank)
}

func TestCheckpointRerank(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	rows := []*dbsqlc.CheckpointAggregateRow{
		{ModelID: "a", ResultSummary: json.RawMessage(`{"value": 3, "ic": 0.1}`)},
		{ModelID: "b", ResultSummary: json.RawMessage(`{"value": 2, "ic": 0.3}`)},
		{ModelID: "c", ResultSummary: json.RawMessage(`{"value": 1, "ic": 0.2}`)},
	}
	builtIn := Rank(rows, "score_recent", "value", cfg.Crunch.Aggregation.Windows.Names(), "desc")
	rerank := func(t *testing.T, ranker *ranking.Ranker) ([]string, []int, string) {
		t.Helper()
		w := &CheckpointWorker{deps: &Deps{Config: cfg, Logger: dbtest.Logger(t), Ranker: ranker}}
		out, by := w.rerank(ctx, slices.Clone(builtIn))
		var ids []string
		var ranks []int
		for _, r := range out {
			ids, ranks = append(ids, r.ModelID), append(ranks, r.Rank)
		}
		return ids, ranks, by
	}

	for _, tt := range []struct {
		name, src string
		ids       []string
		by        bool
	}{
		{"BuiltIn", "", []string{"a", "b", "c"}, false},
		{"ByAMetric", "def rank(rows):\n    return sorted(rows, key=lambda r: r[\"metrics\"][\"ic\"], reverse=True)\n", []string{"b", "c", "a"}, true},
		{"Fails", "def rank(rows):\n    return None\n", []string{"a", "b", "c"}, false},
		{"LeftOutFollow", "def rank(rows):\n    return [\"c\"]\n", []string{"c", "a", "b"}, true},
		{"WindowsAreTheValueField", "def rank(rows):\n    return sorted(rows, key=lambda r: r[\"metrics\"][\"score_recent\"])\n", []string{"c", "b", "a"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ranker *ranking.Ranker
			if tt.src != "" {
				ranker = loadRanker(t, tt.src)
			}
			ids, ranks, by := rerank(t, ranker)
			require.Equal(t, tt.ids, ids)
			require.Equal(t, []int{1, 2, 3}, ranks, "every model of the period keeps a place")
			if tt.by {
				require.Equal(t, ranker.String(), by)
			} else {
				require.Equal(t, ranking.BuiltIn, by)
			}
		})
	}
}
