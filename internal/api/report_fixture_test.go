package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/ranking"
	"github.com/crunchnode/crunch-node/internal/testfactory"
	"github.com/crunchnode/crunch-node/jobs"
)

// fixture writes scored history the way the score path does (predictions, scores,
// snapshot recompute, leaderboard refresh with history), through the node's own queries.
type fixture struct {
	pool     *pgxpool.Pool
	schedule *dbsqlc.ScheduledPredictionConfig
}

func newFixture(t testing.TB, pool *pgxpool.Pool) *fixture {
	t.Helper()
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for _, parent := range []string{"predictions", "scores"} {
		_, err := dbsqlc.New().PartitionEnsureRange(ctx, pool, &dbsqlc.PartitionEnsureRangeParams{
			Parent: parent, FromDay: today.AddDate(0, 0, -10), ToDay: today.AddDate(0, 0, 1),
		})
		require.NoError(t, err)
	}
	schedule := testfactory.Schedule(ctx, t, pool, &testfactory.ScheduleOpts{
		Horizon:  testfactory.Ptr(time.Minute),
		Scope:    map[string]any{"subject": "BTCUSDT"},
		ScopeKey: testfactory.Ptr("btcusdt-60s"),
	})
	return &fixture{pool: pool, schedule: schedule}
}

// model inserts a model; virtual ones are ensembles.
func (f *fixture) model(t testing.TB, id string, virtual bool) *dbsqlc.Model {
	t.Helper()
	return testfactory.Model(context.Background(), t, f.pool, &testfactory.ModelOpts{ID: &id, Virtual: &virtual})
}

// predict inserts a prediction without a score.
func (f *fixture) predict(t testing.TB, modelID string, performedAt time.Time) (string, time.Time) {
	t.Helper()
	return testfactory.Prediction(context.Background(), t, f.pool, &testfactory.PredictionOpts{
		ModelID:     modelID,
		PerformedAt: &performedAt,
		ScheduleID:  f.schedule.ID,
		Scope:       map[string]any{"source": "synthetic", "subject": "BTCUSDT"},
		ScopeKey:    &f.schedule.ScopeKey,
	})
}

// score inserts a scored prediction (a failed score when reason is set) and recomputes
// the snapshots of its hour.
func (f *fixture) score(t testing.TB, modelID string, performedAt time.Time, result map[string]float64, reason string) {
	t.Helper()
	ctx := context.Background()
	id, slot := f.predict(t, modelID, performedAt)
	testfactory.Score(ctx, t, f.pool, &testfactory.ScoreOpts{
		ModelID: modelID, PerformedAt: performedAt, PredictionID: id, Reason: reason,
		Result: result, ScopeKey: f.schedule.ScopeKey, Slot: slot,
	})
	_, err := dbsqlc.New().SnapshotRecompute(ctx, f.pool, &dbsqlc.SnapshotRecomputeParams{
		Buckets: []time.Time{performedAt.Truncate(time.Hour)}, ModelIDs: []string{modelID}, PeriodSeconds: 3600, ValueField: "value",
	})
	require.NoError(t, err)
}

// refresh refreshes the leaderboard and appends it to the history with the
// leaderboard_refresh job's own function, ranked by SQL.
func (f *fixture) refresh(t testing.TB) {
	t.Helper()
	f.refreshRanked(t, nil)
}

// refreshRanked is refresh with a LEADERBOARD_RANKER.
func (f *fixture) refreshRanked(t testing.TB, ranker *ranking.Ranker) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	deps := &jobs.Deps{Config: cfg, Logger: dbtest.Logger(t), Pool: f.pool, Ranker: ranker}
	require.NoError(t, postgres.WithTx(ctx, f.pool, func(ctx context.Context, tx pgx.Tx) error {
		return jobs.RefreshLeaderboard(ctx, tx, deps, time.Now())
	}))
}

// fetch GETs a URL and returns the status, headers and raw body.
func fetch(t testing.TB, url string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// A transport of its own, so Go does not add and strip gzip behind the test's back.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, body
}

// list GETs a list endpoint, checks it answered 200 with a JSON array (never null) and
// decodes the rows.
func list(t testing.TB, url string) []map[string]any {
	t.Helper()
	status, _, body := fetch(t, url, nil)
	require.Equal(t, http.StatusOK, status, string(body))
	require.True(t, strings.HasPrefix(string(body), "["), "a list encodes as an array: %s", body)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(body, &rows))
	return rows
}

// ids lists the model_id of each row, in order.
func ids(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, row := range rows {
		out[i], _ = row["model_id"].(string)
	}
	return out
}
