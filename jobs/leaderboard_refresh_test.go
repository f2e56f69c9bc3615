package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/ranking"
	"github.com/crunchnode/crunch-node/internal/script"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

// boardSnapshot is one snapshot as the leaderboard tests write and re-derive it.
type boardSnapshot struct {
	count   int
	end     time.Time
	scope   string
	summary map[string]any
	// value is the value column; nil leaves it NULL, as a snapshot written by hand.
	value *float64
}

// boardStore writes snapshots the way SnapshotRecompute does (an upsert on the natural
// key: a recomputed bucket replaces the row) and remembers them, so the expected
// leaderboard can be computed independently of the SQL.
type boardStore struct {
	pool      *pgxpool.Pool
	snapshots map[string]map[string]boardSnapshot // model → id → snapshot
	virtual   map[string]bool
}

func (s *boardStore) model(ctx context.Context, t *testing.T, id string, virtual bool) {
	t.Helper()
	testfactory.Model(ctx, t, s.pool, &testfactory.ModelOpts{ID: &id, Virtual: &virtual})
	s.virtual[id] = virtual
	s.snapshots[id] = map[string]boardSnapshot{}
}

func (s *boardStore) put(ctx context.Context, t *testing.T, modelID string, snap boardSnapshot) {
	t.Helper()
	if snap.summary == nil {
		snap.summary = map[string]any{}
		if snap.value != nil {
			snap.summary["value"] = *snap.value
		}
	}
	summary, err := json.Marshal(snap.summary)
	require.NoError(t, err)
	start := snap.end.Add(-time.Hour)
	id := fmt.Sprintf("SNAP_%s_%s_%d", modelID, snap.scope, start.Unix())
	_, err = s.pool.Exec(ctx, `INSERT INTO snapshots (id, model_id, scope_key, period_start, period_end, prediction_count, result_summary, value)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (model_id, scope_key, period_start) DO UPDATE SET
		    prediction_count = EXCLUDED.prediction_count, result_summary = EXCLUDED.result_summary, value = EXCLUDED.value`,
		id, modelID, snap.scope, start, snap.end, snap.count, summary, snap.value)
	require.NoError(t, err)
	s.snapshots[modelID][id] = snap
}

func (s *boardStore) prune(ctx context.Context, t *testing.T, before time.Time) {
	t.Helper()
	_, err := dbsqlc.New().SnapshotPrune(ctx, s.pool, before)
	require.NoError(t, err)
	for _, snaps := range s.snapshots {
		for id, snap := range snaps {
			if snap.end.Before(before) {
				delete(snaps, id)
			}
		}
	}
}

// expectedRow is the definition of a leaderboard row, computed in Go.
type expectedRow struct {
	count   int64
	latest  boardSnapshot
	rank    int
	value   *float64 // ranking value
	windows map[string]*float64
}

func (s *boardStore) expected(agg config.Aggregation, now time.Time) map[string]*expectedRow {
	out := map[string]*expectedRow{}
	for modelID, snaps := range s.snapshots {
		row := &expectedRow{windows: map[string]*float64{}}
		weighted, counted := map[string]float64{}, map[string]float64{}
		for _, snap := range snaps {
			if snap.scope != "" {
				continue
			}
			row.count += int64(snap.count)
			if row.latest.end.IsZero() || snap.end.After(row.latest.end) {
				row.latest = snap
			}
			v := snap.value
			if v == nil {
				if f, ok := snap.summary[agg.ValueField].(float64); ok {
					v = &f
				}
			}
			for _, w := range agg.Windows {
				if v != nil && !snap.end.Before(now.Add(-w.Duration.D())) {
					weighted[w.Name] += *v * float64(snap.count)
					counted[w.Name] += float64(snap.count)
				}
			}
		}
		if row.latest.end.IsZero() {
			continue // no overall snapshot: not on the leaderboard
		}
		for _, w := range agg.Windows {
			if counted[w.Name] > 0 {
				mean := weighted[w.Name] / counted[w.Name]
				row.windows[w.Name] = &mean
			} else {
				row.windows[w.Name] = nil
			}
		}
		if v, ok := row.windows[agg.RankingKey]; ok {
			row.value = v
		} else if f, ok := row.latest.summary[agg.RankingKey].(float64); ok {
			row.value = &f
		}
		out[modelID] = row
	}
	var rankable []string
	for id, row := range out {
		if !s.virtual[id] && row.count >= int64(agg.MinPredictionsToRank) && row.value != nil {
			rankable = append(rankable, id)
		}
	}
	sort.Slice(rankable, func(i, j int) bool {
		a, b := *out[rankable[i]].value, *out[rankable[j]].value
		if a != b {
			return (agg.RankingDirection == "desc") == (a > b)
		}
		return rankable[i] < rankable[j]
	})
	for i, id := range rankable {
		out[id].rank = i + 1
	}
	return out
}

// requireBoard refreshes the leaderboard as of now and compares every row with the
// definition computed in Go.
func requireBoard(ctx context.Context, t *testing.T, s *boardStore, cfg *config.Config, now time.Time) []*dbsqlc.LeaderboardListRow {
	t.Helper()
	testfactory.RefreshLeaderboard(ctx, t, s.pool, &now)
	rows, err := dbsqlc.New().LeaderboardList(ctx, s.pool, true)
	require.NoError(t, err)
	want := s.expected(cfg.Crunch.Aggregation, now)
	got := map[string]bool{}
	for _, row := range rows {
		exp, ok := want[row.ModelID]
		require.True(t, ok, "%s is not expected on the leaderboard", row.ModelID)
		got[row.ModelID] = true
		require.Equal(t, exp.count, row.PredictionCount, "%s prediction_count", row.ModelID)
		require.True(t, exp.latest.end.Equal(row.LatestPeriodEnd), "%s latest_period_end", row.ModelID)
		require.EqualValues(t, exp.rank, row.Rank, "%s rank", row.ModelID)
		require.Equal(t, exp.value != nil, row.HasRankingValue, "%s has a ranking value", row.ModelID)
		if exp.value != nil {
			require.InDelta(t, *exp.value, row.RankingValue, 1e-9, "%s ranking_value", row.ModelID)
		}
		var metrics map[string]any
		require.NoError(t, json.Unmarshal(row.Metrics, &metrics))
		for name, v := range exp.windows {
			require.Contains(t, metrics, name, "%s: every window is a key of every row", row.ModelID)
			if v == nil {
				require.Nil(t, metrics[name], "%s %s", row.ModelID, name)
			} else {
				require.InDelta(t, *v, metrics[name], 1e-9, "%s %s", row.ModelID, name)
			}
		}
		for k, v := range exp.latest.summary {
			if _, isWindow := exp.windows[k]; !isWindow {
				require.Equal(t, v, metrics[k], "%s: the latest snapshot's %s", row.ModelID, k)
			}
		}
	}
	require.Len(t, got, len(want))
	return rows
}

func ptr(f float64) *float64 { return &f }

// TestLeaderboardValues checks the leaderboard against its definition (the issue's): per
// configured window the prediction-count-weighted mean of value_field over the model's
// overall snapshots in the window, the latest snapshot's fields, the all-time prediction
// count, the rank with min_predictions_to_rank, ensembles and models without a value
// unranked. It holds as snapshots are recomputed, arrive late, are written by hand,
// pruned, and as the windows slide.
func TestLeaderboardValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	agg := &cfg.Crunch.Aggregation
	agg.MinPredictionsToRank = 50
	// Two windows of one length, so two names share a bucket boundary.
	agg.Windows = config.WindowSet{
		{Name: "score_recent", Duration: config.Duration(24 * time.Hour)},
		{Name: "score_day", Duration: config.Duration(24 * time.Hour)},
		{Name: "score_steady", Duration: config.Duration(72 * time.Hour)},
		{Name: "score_anchor", Duration: config.Duration(168 * time.Hour)},
	}
	require.NoError(t, SyncConfig(ctx, pool, cfg, dbtest.Logger(t)))
	s := &boardStore{pool: pool, snapshots: map[string]map[string]boardSnapshot{}, virtual: map[string]bool{}}

	now := time.Now().UTC().Truncate(time.Hour).Add(17 * time.Minute)
	hourEnd := func(hoursAgo int) time.Time {
		return now.Truncate(time.Hour).Add(time.Duration(1-hoursAgo) * time.Hour)
	}
	for _, id := range []string{"alpha", "beta", "gamma", "newcomer", "stale", "handwritten"} {
		s.model(ctx, t, id, false)
	}
	s.model(ctx, t, "ensemble", true)
	s.model(ctx, t, "silent", false) // no overall snapshot: not listed
	// Ten days of hourly snapshots with varied values and counts: every window sees a
	// different mean, and some snapshots fall out of every window.
	for h := range 240 {
		for i, id := range []string{"alpha", "beta", "gamma", "ensemble"} {
			v := math.Sin(float64(h*(i+3))/7) + float64(i)/10
			s.put(ctx, t, id, boardSnapshot{count: 1 + (h*7+i)%13, end: hourEnd(h), value: ptr(v),
				summary: map[string]any{"value": v, "ic": float64(h%5) / 10}})
		}
	}
	// Per-scope snapshots never count.
	s.put(ctx, t, "alpha", boardSnapshot{count: 1000, end: hourEnd(0), scope: "btc-60s", value: ptr(1e6)})
	// A newcomer below min_predictions_to_rank, with the best value: listed, unranked.
	s.put(ctx, t, "newcomer", boardSnapshot{count: 3, end: hourEnd(1), value: ptr(50)})
	// Nothing in the ranking window: null there, a value further back; unranked.
	s.put(ctx, t, "stale", boardSnapshot{count: 80, end: hourEnd(100), value: ptr(2)})
	// Written by hand without the value column: value_field is read from the summary.
	s.put(ctx, t, "handwritten", boardSnapshot{count: 60, end: hourEnd(2), summary: map[string]any{"value": 0.25, "note": "by hand"}})
	s.put(ctx, t, "handwritten", boardSnapshot{count: 9, end: hourEnd(3), summary: map[string]any{"other": 1.0}})

	rows := requireBoard(ctx, t, s, cfg, now)
	// The subtests below run in order on the same snapshots, each changing them.
	ranked := map[string]int32{}
	for _, row := range rows {
		ranked[row.ModelID] = row.Rank
	}
	require.Zero(t, ranked["newcomer"], "below min_predictions_to_rank")
	require.Zero(t, ranked["stale"], "no value in the ranking window")
	require.Zero(t, ranked["ensemble"], "ensembles are never ranked")
	require.NotZero(t, ranked["handwritten"])

	t.Run("RecomputedBucketReplaces", func(t *testing.T) {
		// The open bucket recomputed twice (more scores arrived), and a late score in a
		// bucket two days old: counts are replaced, never added.
		s.put(ctx, t, "beta", boardSnapshot{count: 40, end: hourEnd(0), value: ptr(9), summary: map[string]any{"value": 9.0, "ic": 0.9}})
		s.put(ctx, t, "beta", boardSnapshot{count: 41, end: hourEnd(0), value: ptr(8), summary: map[string]any{"value": 8.0, "ic": 0.8}})
		s.put(ctx, t, "gamma", boardSnapshot{count: 500, end: hourEnd(48), value: ptr(-3)})
		s.put(ctx, t, "newcomer", boardSnapshot{count: 60, end: hourEnd(1), value: ptr(50)})
		rows := requireBoard(ctx, t, s, cfg, now)
		require.Equal(t, "newcomer", rows[0].ModelID, "enough predictions now: ranked first")
	})

	t.Run("WindowsSlide", func(t *testing.T) {
		for _, later := range []time.Duration{time.Hour, 25 * time.Hour, 200 * time.Hour, 400 * time.Hour} {
			requireBoard(ctx, t, s, cfg, now.Add(later))
		}
	})

	t.Run("Prune", func(t *testing.T) {
		s.prune(ctx, t, hourEnd(50))
		requireBoard(ctx, t, s, cfg, now)
		var totals int64
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM snapshot_totals WHERE model_id = 'stale'").Scan(&totals))
		require.Zero(t, totals, "a model whose snapshots are all pruned leaves the totals")
	})
}

// loadRanker writes a Starlark LEADERBOARD_RANKER `rank` and loads it.
func loadRanker(t *testing.T, src string) *ranking.Ranker {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rank.star")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	r, err := ranking.New(path+":rank", script.Options{})
	require.NoError(t, err)
	return r
}

func TestLeaderboardRefreshRanker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	setup := func(t *testing.T, ranker *ranking.Ranker) *boardStore {
		t.Helper()
		cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: t.TempDir()})
		require.NoError(t, err)
		b := setupRiver(t, cfg, func(d *Deps) { d.Ranker = ranker })
		s := &boardStore{pool: b.pool, snapshots: map[string]map[string]boardSnapshot{}, virtual: map[string]bool{}}
		end := time.Now().UTC().Truncate(time.Hour)
		for i, id := range []string{"m1", "m2", "m3", "m4"} {
			s.model(ctx, t, id, false)
			s.put(ctx, t, id, boardSnapshot{count: 100, end: end, value: ptr(float64(10 - i))})
		}
		s.model(ctx, t, "newcomer", false)
		s.put(ctx, t, "newcomer", boardSnapshot{count: 1, end: end, value: ptr(100)})
		s.model(ctx, t, "ensemble", true)
		s.put(ctx, t, "ensemble", boardSnapshot{count: 100, end: end, value: ptr(100)})
		event := b.runJob(t, LeaderboardRefreshArgs{})
		require.Equal(t, river.EventKindJobCompleted, event.Kind, "a ranker never fails the job")
		return s
	}
	board := func(t *testing.T, b *boardStore) (ids []string, ranks []int32) {
		t.Helper()
		rows, err := dbsqlc.New().LeaderboardList(ctx, b.pool, true)
		require.NoError(t, err)
		for _, row := range rows {
			ids, ranks = append(ids, row.ModelID), append(ranks, row.Rank)
		}
		return ids, ranks
	}
	history := func(t *testing.T, b *boardStore) (ids []string, meta map[string]any) {
		t.Helper()
		var entries, rawMeta json.RawMessage
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT entries, meta FROM leaderboards ORDER BY id DESC LIMIT 1").Scan(&entries, &rawMeta))
		var rows []struct {
			ModelID string `json:"model_id"`
		}
		require.NoError(t, json.Unmarshal(entries, &rows))
		for _, r := range rows {
			ids = append(ids, r.ModelID)
		}
		require.NoError(t, json.Unmarshal(rawMeta, &meta))
		return ids, meta
	}
	unranked := []string{"ensemble", "newcomer"} // by ranking value, then id

	t.Run("Reversed", func(t *testing.T) {
		t.Parallel()
		ranker := loadRanker(t, "def rank(rows):\n    return reversed(rows)\n")
		b := setup(t, ranker)
		ids, ranks := board(t, b)
		require.Equal(t, append([]string{"m4", "m3", "m2", "m1"}, unranked...), ids,
			"the ranker reverses the SQL order; ensembles and newcomers stay unranked")
		require.Equal(t, []int32{1, 2, 3, 4, 0, 0}, ranks)
		historyIDs, meta := history(t, b)
		require.Equal(t, ids, historyIDs, "the history records the ranker's order")
		require.Equal(t, ranker.String(), meta["ranked_by"])
		require.NotContains(t, meta, "ranker_error")
	})

	t.Run("LeavesModelsOut", func(t *testing.T) {
		t.Parallel()
		b := setup(t, loadRanker(t, "def rank(rows):\n    return [r for r in rows if r[\"model_id\"] != \"m2\"]\n"))
		ids, ranks := board(t, b)
		require.Equal(t, []string{"m1", "m3", "m4", "ensemble", "newcomer", "m2"}, ids, "unranked rows follow by ranking value")
		require.Equal(t, []int32{1, 2, 3, 0, 0, 0}, ranks)
	})

	t.Run("FailingRankerKeepsSQLRanking", func(t *testing.T) {
		t.Parallel()
		b := setup(t, loadRanker(t, "def rank(rows):\n    return [\"ensemble\"]\n"))
		ids, ranks := board(t, b)
		require.Equal(t, append([]string{"m1", "m2", "m3", "m4"}, unranked...), ids)
		require.Equal(t, []int32{1, 2, 3, 4, 0, 0}, ranks)
		_, meta := history(t, b)
		require.Equal(t, ranking.BuiltIn, meta["ranked_by"])
		require.Contains(t, meta["ranker_error"], `"ensemble" is not one of the models given to rank`)
	})

	t.Run("NoRanker", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		ids, ranks := board(t, b)
		require.Equal(t, append([]string{"m1", "m2", "m3", "m4"}, unranked...), ids)
		require.Equal(t, []int32{1, 2, 3, 4, 0, 0}, ranks)
		_, meta := history(t, b)
		require.Equal(t, map[string]any{"generated_by": "crunch-node leaderboard_refresh", "model_count": 6.0, "ranked_by": "sql"}, meta)
	})
}
