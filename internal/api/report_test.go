package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/ranking"
	"github.com/crunchnode/crunch-node/internal/script"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

// naivePattern is a chart x value: ISO 8601 without a zone (the chart appends Z itself).
var naivePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?$`)

// zonedPattern is a feed or leaderboard time: ISO 8601 in UTC with Z.
var zonedPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`)

// requireNaive checks a chart x value and returns it as a UTC time.
func requireNaive(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "a time string, got %v", v)
	require.Regexp(t, naivePattern, s)
	parsed, err := time.Parse("2006-01-02T15:04:05.999999", s)
	require.NoError(t, err)
	return parsed
}

var metricNames = []string{"hit_rate", "ic", "ic_sharpe", "max_drawdown", "model_correlation"}

// result is a score result carrying every default metric, as snapshots do once metrics run.
func result(value float64) map[string]float64 {
	r := map[string]float64{"value": value, "profit": value / 10}
	for i, m := range metricNames {
		r[m] = float64(i) / 10
	}
	return r
}

func TestReportsEmptyDatabase(t *testing.T) {
	t.Parallel()
	bundle := setup(t, dbtest.NewPool(t), nil)

	for _, path := range []string{
		"/reports/feeds",
		"/reports/feeds/tail?source=x&subject=y&kind=candle&granularity=1m&limit=20",
		"/reports/leaderboard",
		"/reports/leaderboard?include_ensembles=true",
		"/reports/models",
		"/reports/models/global?projectIds=a,b&start=2026-01-01T00:00:00.000Z&end=2026-02-01T00:00:00.000Z",
		"/reports/models/metrics",
		"/reports/models/params",
		"/reports/models/summary",
		"/reports/predictions",
		"/reports/snapshots",
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			status, _, body := fetch(t, bundle.server.URL+path, nil)
			require.Equal(t, http.StatusOK, status, string(body))
			require.Equal(t, "[]", string(bytes.TrimSpace(body)))
		})
	}
}

// TestReportLeaderboardRanker shows the leaderboard everyone reads following a
// LEADERBOARD_RANKER: a Starlark function reversing the SQL order.
func TestReportLeaderboardRanker(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	f := newFixture(t, pool)
	start := time.Now().UTC().Add(-time.Hour)
	values := map[string]float64{"alpha": 3, "beta": 1, "delta": 2, "ensemble": 10}
	for id, value := range values {
		f.model(t, id, id == "ensemble")
		for i := range 10 { // min_predictions_to_rank is 10
			f.score(t, id, start.Add(time.Duration(i)*time.Second), result(value), "")
		}
	}
	path := filepath.Join(t.TempDir(), "rank.star")
	require.NoError(t, os.WriteFile(path, []byte("def rank(rows):\n    return reversed(rows)\n"), 0o600))
	ranker, err := ranking.New(path+":rank", script.Options{})
	require.NoError(t, err)
	f.refreshRanked(t, ranker)
	bundle := setup(t, pool, nil)

	rows := list(t, bundle.server.URL+"/reports/leaderboard?include_ensembles=true")
	require.Equal(t, []string{"beta", "delta", "alpha", "ensemble"}, ids(rows), "SQL ranks alpha, delta, beta")
	for i, want := range []int{1, 2, 3, 999999} {
		require.EqualValues(t, want, rows[i]["rank"], ids(rows)[i])
	}
	require.InDelta(t, 1.0, rows[0]["score_recent"], 1e-9, "the values are the SQL definition's")
}

func TestReportLeaderboard(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	f := newFixture(t, pool)
	now := time.Now().UTC()
	for _, m := range []struct {
		id      string
		virtual bool
		value   float64
		age     time.Duration
	}{
		{"alpha", false, 3, time.Hour},
		{"beta", false, 1, time.Hour},
		{"gamma", false, 2, 48 * time.Hour}, // nothing in the ranking window: unranked
		{"ensemble", true, 10, time.Hour},
	} {
		f.model(t, m.id, m.virtual)
		f.score(t, m.id, now.Add(-m.age), result(m.value), "")
	}
	f.refresh(t)
	bundle := setup(t, pool, nil)

	t.Run("SortedByRankEnsemblesHidden", func(t *testing.T) {
		t.Parallel()
		rows := list(t, bundle.server.URL+"/reports/leaderboard")
		require.Equal(t, []string{"alpha", "beta", "gamma"}, ids(rows))
		require.EqualValues(t, 1, rows[0]["rank"])
		require.EqualValues(t, 2, rows[1]["rank"])
		require.EqualValues(t, 999999, rows[2]["rank"])
	})

	t.Run("IncludeEnsembles", func(t *testing.T) {
		t.Parallel()
		rows := list(t, bundle.server.URL+"/reports/leaderboard?include_ensembles=true")
		require.Equal(t, []string{"alpha", "beta", "ensemble", "gamma"}, ids(rows))
		require.EqualValues(t, 999999, rows[2]["rank"], "ensembles are never ranked")
	})

	t.Run("Fields", func(t *testing.T) {
		t.Parallel()
		rows := list(t, bundle.server.URL+"/reports/leaderboard?unknown=1")
		alpha := rows[0]
		require.Equal(t, "name-alpha", alpha["model_name"])
		require.Equal(t, "cruncher-alpha", alpha["cruncher_name"])
		require.Regexp(t, zonedPattern, alpha["created_at"])
		require.Equal(t, map[string]any{"key": "score_recent", "value": 3.0, "direction": "desc"}, alpha["score_ranking"])
		metrics, ok := alpha["score_metrics"].(map[string]any)
		require.True(t, ok)
		require.InDelta(t, 3.0, metrics["score_recent"], 1e-9)
		require.InDelta(t, 3.0, alpha["score_recent"], 1e-9, "window values are flattened")
		require.InDelta(t, 0.3, alpha["profit"], 1e-9, "snapshot fields are flattened")
		for k := range metrics {
			require.Contains(t, alpha, k, "every metric is flattened")
		}
	})

	t.Run("ColumnsOfTheSchemaAreRowKeys", func(t *testing.T) {
		t.Parallel()
		rows := list(t, bundle.server.URL+"/reports/leaderboard")
		columns := list(t, bundle.server.URL+"/reports/schema/leaderboard-columns")
		require.Len(t, columns, 1+3+len(metricNames))
		for _, row := range rows[:2] {
			for _, column := range columns {
				require.Contains(t, row, column["property"], "column %v", column["displayName"])
			}
		}
	})

	t.Run("Gzip", func(t *testing.T) {
		t.Parallel()
		_, _, plain := fetch(t, bundle.server.URL+"/reports/leaderboard", nil)
		status, header, body := fetch(t, bundle.server.URL+"/reports/leaderboard", map[string]string{"Accept-Encoding": "br, gzip"})
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "gzip", header.Get("Content-Encoding"))
		require.Equal(t, "application/json", header.Get("Content-Type"))
		reader, err := gzip.NewReader(bytes.NewReader(body))
		require.NoError(t, err)
		unzipped, err := io.ReadAll(reader)
		require.NoError(t, err)
		require.Equal(t, plain, unzipped)

		_, header, _ = fetch(t, bundle.server.URL+"/reports/leaderboard", map[string]string{"Accept-Encoding": "gzip;q=0"})
		require.Empty(t, header.Get("Content-Encoding"), "q=0 refuses gzip")
	})

	t.Run("BadBooleanIs422", func(t *testing.T) {
		t.Parallel()
		status, _, _ := fetch(t, bundle.server.URL+"/reports/leaderboard?include_ensembles=maybe", nil)
		require.Equal(t, http.StatusUnprocessableEntity, status)
	})
}

func TestReportModels(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	f := newFixture(t, pool)
	now := time.Now().UTC().Truncate(time.Second)
	f.model(t, "alpha", false)
	f.model(t, "beta", false)
	f.model(t, "gamma", false)
	f.model(t, "ensemble", true)
	f.score(t, "alpha", now.Add(-48*time.Hour), result(1), "")
	f.score(t, "alpha", now.Add(-time.Hour), result(3), "")
	f.score(t, "alpha", now.Add(-30*time.Minute), result(100), "ground truth missing") // failed: no value
	f.predict(t, "beta", now.Add(-time.Hour))                                          // never scored
	f.score(t, "gamma", now.Add(-48*time.Hour), result(2), "")
	f.score(t, "ensemble", now.Add(-time.Hour), result(5), "")
	bundle := setup(t, pool, nil)
	base := bundle.server.URL

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/models")
		require.Equal(t, []string{"alpha", "beta", "gamma"}, ids(rows))
		require.Equal(t, map[string]any{
			"model_id": "alpha", "model_name": "name-alpha", "cruncher_name": "cruncher-alpha",
			"cruncher_id": "player-alpha", "deployment_id": "",
		}, rows[0])
		require.Len(t, list(t, base+"/reports/models?include_ensembles=true"), 4)
	})

	t.Run("Global", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/models/global")
		require.Equal(t, []string{"alpha", "gamma"}, ids(rows), "only models with a successful score")
		alpha := rows[0]
		require.InDelta(t, 3.0, alpha["score_recent"], 1e-9)
		require.InDelta(t, 2.0, alpha["score_steady"], 1e-9)
		require.InDelta(t, 2.0, alpha["score_anchor"], 1e-9)
		require.InDelta(t, 0.1, alpha["ic"], 1e-9, "the latest snapshot's fields are merged")
		require.Equal(t, map[string]any{"key": "score_recent", "value": 3.0, "direction": "desc"}, alpha["score_ranking"])
		require.Equal(t, now.Add(-time.Hour), requireNaive(t, alpha["performed_at"]))
		require.InDelta(t, 3.0, alpha["score_metrics"].(map[string]any)["score_recent"], 1e-9)
		require.InDelta(t, 0.0, rows[1]["score_recent"], 1e-9, "an empty window is 0")
	})

	t.Run("GlobalRange", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"start": {now.Add(-30 * time.Hour).Format(time.RFC3339)}, "end": {now.Format("2006-01-02T15:04:05")}}
		rows := list(t, base+"/reports/models/global?"+q.Encode())
		require.Equal(t, []string{"alpha"}, ids(rows))
		require.InDelta(t, 3.0, rows[0]["score_steady"], 1e-9, "scores before start are left out")
	})

	t.Run("GlobalBadTimeIs422", func(t *testing.T) {
		t.Parallel()
		status, _, body := fetch(t, base+"/reports/models/global?start=yesterday", nil)
		require.Equal(t, http.StatusUnprocessableEntity, status)
		require.Contains(t, string(body), "start")
	})

	t.Run("ProjectIDsForms", func(t *testing.T) {
		t.Parallel()
		for _, query := range []string{"projectIds=gamma,ensemble", "projectIds=gamma&projectIds=ensemble", "projectIds=gamma%2Censemble&foo=bar"} {
			require.Equal(t, []string{"gamma"}, ids(list(t, base+"/reports/models/global?"+query)), query)
		}
		rows := list(t, base+"/reports/models/global?projectIds=gamma,ensemble&include_ensembles=true")
		require.Equal(t, []string{"ensemble", "gamma"}, ids(rows))
	})

	t.Run("Params", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/models/params?projectIds=alpha")
		require.Len(t, rows, 1)
		row := rows[0]
		require.Equal(t, "btcusdt-60s", row["scope_key"])
		require.Equal(t, "btcusdt-60s", row["param"])
		require.EqualValues(t, 60, row["horizon"])
		require.Equal(t, "BTCUSDT", row["subject"], "scope fields are flattened")
		require.Equal(t, map[string]any{"source": "synthetic", "subject": "BTCUSDT"}, row["scope"])
		require.InDelta(t, 2.0, row["score_steady"], 1e-9)
		require.InDelta(t, 0.1, row["ic"], 1e-9, "the scope's snapshot fields are merged")
		requireNaive(t, row["performed_at"])
	})

	t.Run("Metrics", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/models/metrics")
		require.Equal(t, []string{"alpha", "gamma", "alpha"}, ids(rows), "one row per snapshot, by time")
		var previous time.Time
		for _, row := range rows {
			at := requireNaive(t, row["performed_at"])
			require.False(t, at.Before(previous))
			previous = at
			require.EqualValues(t, 1, row["prediction_count"])
		}
		latest := rows[2]
		require.InDelta(t, 3.0, latest["value"], 1e-9)
		require.InDelta(t, 3.0, latest["score_recent"], 1e-9)
		require.InDelta(t, 2.0, latest["score_steady"], 1e-9, "windows look back from each point")
		require.InDelta(t, 1.0, rows[0]["score_recent"], 1e-9, "an old point's window ends at the point")

		widgets := list(t, base+"/reports/schema/metrics-widgets")
		require.Equal(t, "/reports/models/metrics", widgets[0]["endpointUrl"])
		series := widgets[0]["nativeConfiguration"].(map[string]any)["yAxis"].(map[string]any)["series"].([]any)
		for _, s := range series {
			require.Contains(t, latest, s.(map[string]any)["name"], "the chart's series are row keys")
		}
	})

	t.Run("Summary", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/models/summary?projectIds=alpha")
		require.Len(t, rows, 1)
		require.InDelta(t, 3.0, rows[0]["value"], 1e-9, "the latest snapshot")
		require.InDelta(t, 0.3, rows[0]["profit"], 1e-9)
	})
}

func TestReportPredictions(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	f := newFixture(t, pool)
	now := time.Now().UTC().Truncate(time.Second)
	f.model(t, "alpha", false)
	f.model(t, "beta", false)
	f.model(t, "ensemble", true)
	f.score(t, "alpha", now.Add(-2*time.Hour), result(3), "")
	f.score(t, "alpha", now.Add(-time.Hour), result(0), "ground truth missing")
	f.predict(t, "beta", now.Add(-90*time.Minute))
	f.score(t, "ensemble", now.Add(-time.Hour), result(5), "")
	f.score(t, "alpha", now.Add(-10*24*time.Hour+time.Hour), result(1), "") // outside the default 7 days
	bundle := setup(t, pool, nil)
	base := bundle.server.URL

	t.Run("SortedWithScores", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/predictions")
		require.Equal(t, []string{"alpha", "beta", "alpha"}, ids(rows))

		scored := rows[0]
		require.Equal(t, now.Add(-2*time.Hour), requireNaive(t, scored["performed_at"]))
		requireNaive(t, scored["scored_at"])
		require.InDelta(t, 3.0, scored["score_value"], 1e-9)
		require.Equal(t, true, scored["score_success"])
		require.Equal(t, false, scored["score_failed"])
		require.Nil(t, scored["score_failed_reason"])
		require.EqualValues(t, 60, scored["horizon"])
		require.Equal(t, "btcusdt-60s", scored["param"])
		require.Equal(t, "btcusdt-60s", scored["scope_key"])
		require.Equal(t, "BTCUSDT", scored["subject"])
		require.Equal(t, map[string]any{"source": "synthetic", "subject": "BTCUSDT"}, scored["scope"])
		require.EqualValues(t, f.schedule.ID, scored["prediction_config_id"])

		unscored := rows[1]
		require.Nil(t, unscored["score_value"])
		require.Nil(t, unscored["scored_at"])
		require.Equal(t, true, unscored["score_failed"])
		require.Equal(t, false, unscored["score_success"])
		require.Equal(t, "Prediction not scored", unscored["score_failed_reason"])
		require.Equal(t, "PENDING", unscored["status"])

		failed := rows[2]
		require.Nil(t, failed["score_value"])
		require.Equal(t, true, failed["score_failed"])
		require.Equal(t, "ground truth missing", failed["score_failed_reason"])
	})

	t.Run("ProjectIDsForms", func(t *testing.T) {
		t.Parallel()
		for _, query := range []string{"projectIds=beta,ensemble", "projectIds=beta&projectIds=ensemble", "projectIds=beta&foo=1"} {
			require.Equal(t, []string{"beta"}, ids(list(t, base+"/reports/predictions?"+query)), query)
		}
		require.Equal(t, []string{"beta", "ensemble"},
			ids(list(t, base+"/reports/predictions?projectIds=beta,ensemble&include_ensembles=true")))
	})

	t.Run("RangeAndLimitKeepTheNewest", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"start": {now.Add(-11 * 24 * time.Hour).Format(time.RFC3339Nano)}, "projectIds": {"alpha"}}
		require.Len(t, list(t, base+"/reports/predictions?"+q.Encode()), 3)
		q.Set("limit", "2")
		rows := list(t, base+"/reports/predictions?"+q.Encode())
		require.Len(t, rows, 2)
		require.Equal(t, now.Add(-2*time.Hour), requireNaive(t, rows[0]["performed_at"]), "the newest two, oldest first")
		require.Equal(t, now.Add(-time.Hour), requireNaive(t, rows[1]["performed_at"]))
	})
}

func TestReportSnapshots(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	f := newFixture(t, pool)
	now := time.Now().UTC()
	f.model(t, "alpha", false)
	f.model(t, "beta", false)
	f.model(t, "ensemble", true)
	f.score(t, "alpha", now.Add(-50*time.Hour), result(1), "")
	f.score(t, "beta", now.Add(-26*time.Hour), result(2), "")
	f.score(t, "alpha", now.Add(-2*time.Hour), result(3), "")
	f.score(t, "ensemble", now.Add(-time.Hour), result(4), "")
	bundle := setup(t, pool, nil)
	base := bundle.server.URL

	t.Run("NewestFirst", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/snapshots")
		require.Equal(t, []string{"alpha", "beta", "alpha"}, ids(rows))
		row := rows[0]
		start := requireNaive(t, row["period_start"])
		require.Equal(t, start.Add(time.Hour), requireNaive(t, row["period_end"]))
		requireNaive(t, row["created_at"])
		require.Regexp(t, `^SNAP_alpha_`, row["id"])
		require.Equal(t, "", row["scope_key"])
		require.EqualValues(t, 1, row["prediction_count"])
		require.InDelta(t, 3.0, row["result_summary"].(map[string]any)["value"], 1e-9)
		require.InDelta(t, 3.0, row["value"], 1e-9, "summary fields are flattened for the bar chart")
		require.InDelta(t, 0.1, row["ic"], 1e-9)
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, []string{"alpha"}, ids(list(t, base+"/reports/snapshots?limit=1")))
		require.Equal(t, []string{"alpha", "alpha"}, ids(list(t, base+"/reports/snapshots?model_id=alpha")))
		require.Equal(t, []string{"ensemble"}, ids(list(t, base+"/reports/snapshots?model_id=ensemble")))
		require.Equal(t, []string{"ensemble", "alpha", "beta", "alpha"}, ids(list(t, base+"/reports/snapshots?include_ensembles=true")))
		require.Equal(t, []string{"beta"}, ids(list(t, base+"/reports/snapshots?projectIds=beta&start=2020-01-01T00:00:00.000Z")))
		since := url.Values{"since": {now.Add(-30 * time.Hour).Format(time.RFC3339)}}
		require.Equal(t, []string{"alpha", "beta"}, ids(list(t, base+"/reports/snapshots?"+since.Encode())))
		until := url.Values{"until": {now.Add(-40 * time.Hour).Format("2006-01-02T15:04:05")}}
		require.Equal(t, []string{"alpha"}, ids(list(t, base+"/reports/snapshots?"+until.Encode())))
		perScope := list(t, base+"/reports/snapshots?scope_key=btcusdt-60s&model_id=beta")
		require.Len(t, perScope, 1)
		require.Equal(t, "btcusdt-60s", perScope[0]["scope_key"])
	})

	t.Run("LimitBounds", func(t *testing.T) {
		t.Parallel()
		for _, limit := range []string{"0", "1001"} {
			status, _, _ := fetch(t, base+"/reports/snapshots?limit="+limit, nil)
			require.Equal(t, http.StatusUnprocessableEntity, status, limit)
		}
	})
}

func TestReportFeeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, start, time.Second, []float64{100, 101, 102, 103, 104})
	_, err := dbsqlc.New().FeedStateAdvance(ctx, pool, &dbsqlc.FeedStateAdvanceParams{
		Granularity: "1s", Kind: "candle", LastEventTS: testfactory.Ptr(start.Add(4 * time.Second)), Meta: json.RawMessage(`{}`),
		Source: "synthetic", Subject: "BTCUSDT",
	})
	require.NoError(t, err)
	// A scope with a watermark and no records yet.
	_, err = dbsqlc.New().FeedStateAdvance(ctx, pool, &dbsqlc.FeedStateAdvanceParams{
		Granularity: "1m", Kind: "candle", LastEventTS: &start, Meta: json.RawMessage(`{}`),
		Source: "synthetic", Subject: "ETHUSDT",
	})
	require.NoError(t, err)
	bundle := setup(t, pool, nil)
	base := bundle.server.URL

	t.Run("Summary", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/feeds")
		require.Len(t, rows, 2)
		btc := rows[0]
		require.Equal(t, "BTCUSDT", btc["subject"])
		require.Equal(t, "candle", btc["kind"])
		require.Equal(t, "1s", btc["granularity"])
		require.Equal(t, "synthetic", btc["source"])
		require.Equal(t, 5.0, btc["record_count"], "record_count is a JSON number")
		require.Equal(t, true, btc["record_count_exact"])
		for _, key := range []string{"oldest_ts", "newest_ts", "watermark_ts", "watermark_updated_at"} {
			require.Regexp(t, zonedPattern, btc[key], key)
		}
		require.Equal(t, start.Format(time.RFC3339), btc["oldest_ts"])
		require.Equal(t, start.Add(4*time.Second).Format(time.RFC3339), btc["newest_ts"])
		require.Equal(t, start.Add(4*time.Second).Format(time.RFC3339), btc["watermark_ts"])

		eth := rows[1]
		require.Equal(t, 0.0, eth["record_count"])
		require.Nil(t, eth["oldest_ts"])
		require.Nil(t, eth["newest_ts"])
		require.Regexp(t, zonedPattern, eth["watermark_ts"])
	})

	t.Run("Tail", func(t *testing.T) {
		t.Parallel()
		rows := list(t, base+"/reports/feeds/tail?source=synthetic&subject=BTCUSDT&kind=candle&granularity=1s&limit=2")
		require.Len(t, rows, 2)
		require.Equal(t, start.Add(4*time.Second).Format(time.RFC3339), rows[0]["ts_event"], "newest first")
		require.Equal(t, start.Add(3*time.Second).Format(time.RFC3339), rows[1]["ts_event"])
		require.Regexp(t, zonedPattern, rows[0]["ts_ingested"])
		require.Equal(t, map[string]any{"open": 103.0, "high": 104.0, "low": 103.0, "close": 104.0, "volume": 1.0}, rows[0]["values"])
		require.Equal(t, map[string]any{}, rows[0]["meta"])
		require.Equal(t, "synthetic", rows[0]["source"])
		require.Equal(t, "1s", rows[0]["granularity"])

		require.Len(t, list(t, base+"/reports/feeds/tail?source=synthetic&subject=BTCUSDT&kind=candle&granularity=1s"), 5, "default limit 20")
		require.Empty(t, list(t, base+"/reports/feeds/tail?subject=ETHUSDT"))
		require.Len(t, list(t, base+"/reports/feeds/tail?subject=BTCUSDT&limit=3"), 3, "scope parameters are optional")
	})

	t.Run("TailLimitBounds", func(t *testing.T) {
		t.Parallel()
		for _, limit := range []string{"0", "201"} {
			status, _, _ := fetch(t, base+"/reports/feeds/tail?limit="+limit, nil)
			require.Equal(t, http.StatusUnprocessableEntity, status, limit)
		}
	})
}

func TestReportSchema(t *testing.T) {
	t.Parallel()
	bundle := setup(t, dbtest.NewPool(t), nil)
	base := bundle.server.URL

	status, _, body := fetch(t, base+"/reports/schema", nil)
	require.Equal(t, http.StatusOK, status)
	var schema struct {
		LeaderboardColumns []map[string]any `json:"leaderboard_columns"`
		MetricsWidgets     []map[string]any `json:"metrics_widgets"`
		SchemaVersion      string           `json:"schema_version"`
	}
	require.NoError(t, json.Unmarshal(body, &schema))
	require.Equal(t, "1", schema.SchemaVersion)

	var properties []string
	var orders []float64
	for _, c := range schema.LeaderboardColumns {
		properties = append(properties, c["property"].(string))
		orders = append(orders, c["order"].(float64))
	}
	require.Equal(t, []string{"model_id", "score_recent", "score_steady", "score_anchor", "ic", "ic_sharpe", "hit_rate", "max_drawdown", "model_correlation"}, properties)
	require.Equal(t, []float64{0, 10, 20, 30, 100, 110, 120, 130, 140}, orders)
	model := schema.LeaderboardColumns[0]
	require.Equal(t, "MODEL", model["type"])
	require.Nil(t, model["format"])
	require.Equal(t, map[string]any{"type": "model", "statusProperty": "status"}, model["nativeConfiguration"])
	recent := schema.LeaderboardColumns[1]
	require.Equal(t, map[string]any{
		"id": 2.0, "type": "VALUE", "property": "score_recent", "format": "decimal-2", "displayName": "Score Recent",
		"tooltip": "Rolling score over 24h", "nativeConfiguration": nil, "order": 10.0,
	}, recent)
	require.Equal(t, "decimal-2", schema.LeaderboardColumns[6]["format"], "hit_rate")
	require.Equal(t, "IC", schema.LeaderboardColumns[4]["displayName"])

	var endpoints []string
	for _, w := range schema.MetricsWidgets {
		endpoints = append(endpoints, w["endpointUrl"].(string))
		require.Equal(t, "CHART", w["type"])
	}
	require.Equal(t, []string{
		"/reports/models/metrics", "/reports/snapshots", "/reports/predictions", "/reports/models/params",
		"/reports/diversity", "/reports/checkpoints/rewards",
	}, endpoints)
	predictions := schema.MetricsWidgets[2]["nativeConfiguration"].(map[string]any)
	require.Equal(t, map[string]any{"field": "score_success", "reasonField": "score_failed_reason"}, predictions["alertConfig"])
	require.Equal(t, "param", predictions["groupByProperty"])

	columns := list(t, base+"/reports/schema/leaderboard-columns")
	require.Equal(t, schema.LeaderboardColumns, columns)
	widgets := list(t, base+"/reports/schema/metrics-widgets")
	require.Equal(t, schema.MetricsWidgets, widgets)
}
