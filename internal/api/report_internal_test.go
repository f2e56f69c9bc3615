package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

// countingDB counts the statements the cache sends and can be made to fail.
type countingDB struct {
	dbsqlc.DBTX
	fail    atomic.Bool
	queries atomic.Int64
}

var errDown = errors.New("database down")

func (c *countingDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.queries.Add(1)
	if c.fail.Load() {
		return nil, errDown
	}
	return c.DBTX.Query(ctx, sql, args...)
}

func (c *countingDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.queries.Add(1)
	if c.fail.Load() {
		return failedRow{}
	}
	return c.DBTX.QueryRow(ctx, sql, args...)
}

func (c *countingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return c.DBTX.Exec(ctx, sql, args...)
}

type failedRow struct{}

func (failedRow) Scan(...any) error { return errDown }

// fakeClock is a settable clock safe for concurrent readers.
type fakeClock struct{ nanos atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.nanos.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.nanos.Add(int64(d)) }
func newFakeClock() *fakeClock               { c := &fakeClock{}; c.nanos.Store(time.Now().UnixNano()); return c }
func modelIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(body, &rows))
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r["model_id"].(string)
	}
	return out
}

// scoreAndRefresh gives a model one scored prediction and runs the leaderboard refresh
// with its history row, as the score path and refresh job do.
func scoreAndRefresh(t *testing.T, db dbsqlc.DBTX, modelID string, virtual bool) {
	t.Helper()
	ctx := context.Background()
	queries := dbsqlc.New()
	testfactory.Model(ctx, t, db, &testfactory.ModelOpts{ID: &modelID, Virtual: &virtual})
	schedule := testfactory.Schedule(ctx, t, db, nil)
	performed := time.Now().UTC().Add(-time.Minute)
	id, slot := testfactory.Prediction(ctx, t, db, &testfactory.PredictionOpts{ModelID: modelID, PerformedAt: &performed, ScheduleID: schedule.ID})
	testfactory.Score(ctx, t, db, &testfactory.ScoreOpts{
		ModelID: modelID, PerformedAt: performed, PredictionID: id, Result: map[string]float64{"value": 1},
		ScopeKey: "scope", Slot: slot,
	})
	_, err := queries.SnapshotRecompute(ctx, db, &dbsqlc.SnapshotRecomputeParams{
		Buckets: []time.Time{performed.Truncate(time.Hour)}, ModelIDs: []string{modelID}, PeriodSeconds: 3600, ValueField: "value",
	})
	require.NoError(t, err)
	testfactory.RefreshLeaderboard(ctx, t, db, nil)
	_, err = queries.LeaderboardHistoryAppend(ctx, db, &dbsqlc.LeaderboardHistoryAppendParams{})
	require.NoError(t, err)
}

func TestLeaderboardCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	db := &countingDB{DBTX: pool}
	clock := newFakeClock()
	cache := newLeaderboardCache(db, dbtest.Logger(t), clock.now, leaderboardCacheTTL)

	body, err := cache.get(ctx, false)
	require.NoError(t, err)
	require.Equal(t, "[]", string(body.plain))
	require.EqualValues(t, 2, db.queries.Load(), "version and leaderboard")

	scoreAndRefresh(t, pool, "alpha", false)
	body, err = cache.get(ctx, false)
	require.NoError(t, err)
	require.Equal(t, "[]", string(body.plain), "a fresh copy is served without asking the database")
	require.EqualValues(t, 2, db.queries.Load())

	clock.advance(leaderboardCacheTTL)
	body, err = cache.get(ctx, false)
	require.NoError(t, err)
	require.Equal(t, []string{"alpha"}, modelIDs(t, body.plain), "a new leaderboard is loaded once the copy is stale")
	require.EqualValues(t, 4, db.queries.Load())

	clock.advance(leaderboardCacheTTL)
	_, err = cache.get(ctx, false)
	require.NoError(t, err)
	require.EqualValues(t, 5, db.queries.Load(), "an unchanged version costs one query, not a reload")

	scoreAndRefresh(t, pool, "ensemble", true)
	clock.advance(leaderboardCacheTTL)
	body, err = cache.get(ctx, true)
	require.NoError(t, err)
	require.Equal(t, []string{"alpha", "ensemble"}, modelIDs(t, body.plain))
	body, err = cache.get(ctx, false)
	require.NoError(t, err)
	require.Equal(t, []string{"alpha"}, modelIDs(t, body.plain), "one load serves both variants")
	require.EqualValues(t, 7, db.queries.Load())

	t.Run("ConcurrentReadersShareOneRefresh", func(t *testing.T) {
		before := db.queries.Load()
		clock.advance(leaderboardCacheTTL)
		bodies := make([]*leaderboardBody, 64)
		errs := make([]error, 64)
		var wg sync.WaitGroup
		for i := range bodies {
			wg.Go(func() { bodies[i], errs[i] = cache.get(ctx, i%2 == 0) })
		}
		wg.Wait()
		for i := range bodies {
			require.NoError(t, errs[i])
			require.True(t, strings.HasPrefix(string(bodies[i].plain), "[{"))
		}
		require.EqualValues(t, 1, db.queries.Load()-before, "one reader checks the version, the others are served")
	})

	t.Run("OutageServesThePreviousCopy", func(t *testing.T) {
		db.fail.Store(true)
		defer db.fail.Store(false)
		clock.advance(leaderboardCacheTTL)
		body, err := cache.get(ctx, false)
		require.NoError(t, err)
		require.Equal(t, []string{"alpha"}, modelIDs(t, body.plain))

		empty := newLeaderboardCache(db, dbtest.Logger(t), clock.now, leaderboardCacheTTL)
		_, err = empty.get(ctx, false)
		require.ErrorIs(t, err, errDown, "with nothing to serve, the error surfaces")
	})
}

func TestParseTimeParam(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		value string
		want  time.Time
	}{
		{"DateOnly", "2026-03-20", want.Truncate(24 * time.Hour)},
		{"JavaScriptISO", "2026-03-20T12:00:00.000Z", want},
		{"Naive", "2026-03-20T12:00:00", want},
		{"NaiveMicros", "2026-03-20T12:00:00.000001", want.Add(time.Microsecond)},
		{"NoSeconds", "2026-03-20T12:00", want},
		{"Offset", "2026-03-20T14:00:00+02:00", want},
		{"PlusDecodedAsSpace", "2026-03-20T14:00:00 02:00", want},
		{"SpaceSeparated", "2026-03-20 12:00:00", want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseTimeParam("start", tc.value)
			require.NoError(t, err)
			require.True(t, tc.want.Equal(got), "got %s", got)
			require.Equal(t, time.UTC, got.Location())
		})
	}
	_, err := parseTimeParam("end", "soon")
	require.ErrorIs(t, err, ErrInvalid)
	require.EqualError(t, err, `end: "soon" is not an ISO 8601 date-time`)
}

func TestNaiveTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 20, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	for _, tc := range []struct {
		name string
		in   time.Time
		want string
	}{
		{"Micros", at.Add(1500 * time.Microsecond), `"2026-03-20T10:00:00.001500"`},
		{"NanosTruncated", at.Add(999), `"2026-03-20T10:00:00"`},
		{"WholeSeconds", at, `"2026-03-20T10:00:00"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(naiveTime(tc.in))
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func TestMarshalFlat(t *testing.T) {
	t.Parallel()
	row := ModelSummaryRow{ModelID: "m", Flat: map[string]any{"model_id": "overwritten?", "b": 2.0, "a": nil}}
	got, err := json.Marshal(row)
	require.NoError(t, err)
	require.Equal(t, `{"model_id":"m","a":null,"b":2}`, string(got), "fixed fields win; extras sorted")

	got, err = json.Marshal(ModelSummaryRow{ModelID: "m"})
	require.NoError(t, err)
	require.Equal(t, `{"model_id":"m"}`, string(got))
}

func TestMetricValue(t *testing.T) {
	t.Parallel()
	one, half := 1.0, 0.5
	for _, tc := range []struct {
		name string
		in   any
		want *float64
	}{
		{"Bool", true, &one},
		{"Null", nil, nil},
		{"Number", 0.5, &half},
		{"NumericString", " 0.5 ", &half},
		{"Object", map[string]any{}, nil},
		{"Text", "n/a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, metricValue(tc.in))
		})
	}
}

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]bool{
		"":                  false,
		"br":                false,
		"deflate, gzip":     true,
		"GZIP":              true,
		"gzip;q=0":          false,
		"gzip; q=0.5, br":   true,
		"x-gzip, identity":  false,
		"identity;q=1,gzip": true,
	} {
		require.Equal(t, want, acceptsGzip(header), header)
	}
}

func TestFeedRecordCount(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		row       dbsqlc.FeedScopeStatsGetRow
		want      int64
		wantExact bool
	}{
		{"Empty", dbsqlc.FeedScopeStatsGetRow{}, 0, true},
		{"BelowCap", dbsqlc.FeedScopeStatsGetRow{HasRecords: true, Counted: 99, OldestTS: base, NewestTS: base.Add(time.Hour)}, 99, true},
		{
			// 100 records a second apart counted back from the newest, the scope spanning
			// 1000 s: a gap-free 1 s feed holds 1001 records.
			"Extrapolated",
			dbsqlc.FeedScopeStatsGetRow{HasRecords: true, Counted: 100, CapTS: base.Add(901 * time.Second), OldestTS: base, NewestTS: base.Add(1000 * time.Second)},
			1001, false,
		},
		{"CapCoversTheSpan", dbsqlc.FeedScopeStatsGetRow{HasRecords: true, Counted: 100, CapTS: base, OldestTS: base, NewestTS: base.Add(99 * time.Second)}, 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, exact := feedRecordCount(&tc.row, 100)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantExact, exact)
		})
	}
}

func TestRollingWindows(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
	point := func(model string, hours int, value float64, count int32) seriesPoint {
		return seriesPoint{count: count, end: base.Add(time.Duration(hours) * time.Hour), hasValue: true, modelID: model, value: value}
	}
	points := []seriesPoint{
		point("a", 0, 1, 1),
		point("a", 1, 4, 3),
		point("a", 3, 10, 1),
		{count: 5, end: base.Add(4 * time.Hour), modelID: "a"}, // no value field: weighs nothing
		point("b", 3, 7, 2),
	}
	windows := config.WindowSet{
		{Name: "short", Duration: config.Duration(2 * time.Hour)},
		{Name: "long", Duration: config.Duration(24 * time.Hour)},
	}
	got := rollingWindows(points, windows)
	want := []map[string]any{
		{"short": 1.0, "long": 1.0},
		{"short": 13.0 / 4, "long": 13.0 / 4},
		{"short": 10.0, "long": 23.0 / 5}, // the 1 h point ended exactly 2 h before: outside
		{"short": 10.0, "long": 23.0 / 5}, // only valued points count
		{"short": 7.0, "long": 7.0},       // another model starts afresh
	}
	require.Len(t, got, len(want))
	for i := range want {
		for name, v := range want[i] {
			require.InDelta(t, v, got[i][name], 1e-12, "point %d window %s", i, name)
		}
	}
}

func TestReportSchemaOptionalWidgets(t *testing.T) {
	t.Parallel()
	crunch, err := config.ParseCrunchConfig(config.DefaultCrunchConfigYAML())
	require.NoError(t, err)
	crunch.Metrics = []string{"ic", "hit_rate"}
	crunch.Ensembles = []config.Ensemble{{Name: "top"}}
	crunch.Aggregation.Windows = config.WindowSet{{Name: "score_fast", Duration: config.Duration(90 * time.Minute)}}
	schema := buildReportSchema(crunch)

	var endpoints []string
	for _, w := range schema.MetricsWidgets {
		endpoints = append(endpoints, w.EndpointURL)
	}
	require.Equal(t, []string{
		"/reports/models/metrics", "/reports/snapshots", "/reports/predictions", "/reports/models/params",
		"/reports/ensemble/history", "/reports/checkpoints/rewards",
	}, endpoints, "no diversity metric, one ensemble")
	require.Equal(t, "Rolling score over 1h30m0s", *schema.LeaderboardColumns[1].Tooltip)
	require.Equal(t, "Score Fast", schema.LeaderboardColumns[1].DisplayName)
	require.Len(t, schema.MetricsWidgets[4].NativeConfiguration.YAxis.Series, 2)

	crunch.Metrics = []string{}
	schema = buildReportSchema(crunch)
	require.Equal(t, "/reports/predictions", schema.MetricsWidgets[1].EndpointURL)
	require.Equal(t, 2, schema.MetricsWidgets[1].ID, "ids follow the Python engine's numbering")
}
