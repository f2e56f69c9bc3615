package jobs

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/predict"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

// startHost serves an example model on a loopback port until the test ends.
func startHost(t testing.TB, id, example string, faults modelhost.Faults) modelrunner.ModelInfo {
	t.Helper()
	factory, err := modelhost.ExampleFactory(example, modelhost.ExampleOptions{ConstantValue: 0.5})
	require.NoError(t, err)
	host, err := modelhost.New(modelhost.Config{Factory: factory, Faults: faults})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = host.Serve(lis) }()
	t.Cleanup(func() { host.Stop(context.Background()) })
	port := lis.Addr().(*net.TCPAddr).Port
	return modelrunner.ModelInfo{
		ID: id, Name: example, PlayerID: "p-" + id, PlayerName: "cruncher-" + id,
		DeploymentID: "d-" + id, Host: "127.0.0.1", Port: port, State: modelrunner.StateRunning,
	}
}

func newPredicting(t testing.TB, models []modelrunner.ModelInfo) *Predicting {
	t.Helper()
	runner := modelrunner.NewRunner(modelrunner.RunnerOptions{Client: modelrunner.ClientOptions{CallTimeout: 2 * time.Second}})
	t.Cleanup(runner.Close)
	runner.Update(models)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ready := 0
		for _, m := range runner.Models() {
			if m.Stats.State == modelrunner.ClientReady {
				ready++
			}
		}
		if ready == len(models) {
			break
		}
		require.True(t, time.Now().Before(deadline), "models not ready: %+v", runner.Models())
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	normalizer, err := feed.NormalizerByName("candle")
	require.NoError(t, err)
	validator, err := predict.NewSchemaValidator(map[string]any{
		"type": "object", "required": []any{"value"}, "properties": map[string]any{"value": map[string]any{"type": "number"}},
	})
	require.NoError(t, err)
	return &Predicting{Normalizer: normalizer, Runner: runner, Symbols: feed.SymbolMap{"BTCUSDT": "BTC"}, Validator: validator}
}

func TestPredictWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	models := []modelrunner.ModelInfo{
		startHost(t, "m-momentum", "momentum", modelhost.Faults{}),
		startHost(t, "m-reversion", "mean-reversion", modelhost.Faults{}),
		startHost(t, "m-nan", "constant", modelhost.Faults{NaN: true}),
	}
	cfg := feedConfig(t, map[string]string{"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s"})
	b := setupRiver(t, cfg, func(d *Deps) { d.Predicting = newPredicting(t, models) })
	require.NoError(t, MirrorModels(ctx, b.pool, models))
	// A model the source listed as running but the runner cannot reach.
	testfactory.Model(ctx, t, b.pool, &testfactory.ModelOpts{ID: testfactory.Ptr("m-gone")})

	now := time.Now().UTC().Truncate(time.Second)
	closes := make([]float64, 200)
	for i := range closes {
		closes[i] = 100 + float64(i%7)
	}
	testfactory.FeedCandles(ctx, t, b.pool, [4]string{}, now.Add(-200*time.Second), time.Second, closes)
	schedules, err := dbsqlc.New().ScheduleListActive(ctx, b.pool)
	require.NoError(t, err)
	require.Len(t, schedules, 1, "the default config's schedule was synchronised")
	slot := slotOf(now, 15*time.Second)

	b.runJob(t, PredictArgs{ConfigID: schedules[0].ID, SlotAt: slot})

	rows, err := b.pool.Query(ctx, "SELECT model_id, status, coalesce(failed_reason, ''), resolvable_at - performed_at FROM predictions ORDER BY model_id")
	require.NoError(t, err)
	type row struct {
		status, reason string
		horizon        time.Duration
	}
	got := map[string]row{}
	for rows.Next() {
		var id string
		var r row
		require.NoError(t, rows.Scan(&id, &r.status, &r.reason, &r.horizon))
		got[id] = r
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 4)
	require.Equal(t, "PENDING", got["m-momentum"].status)
	require.Equal(t, "PENDING", got["m-reversion"].status)
	require.Equal(t, time.Minute, got["m-momentum"].horizon)
	require.Equal(t, "FAILED", got["m-nan"].status)
	require.Contains(t, got["m-nan"].reason, "non-finite")
	require.Equal(t, "ABSENT", got["m-gone"].status)

	var input string
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT raw_data->>'symbol' FROM inputs").Scan(&input))
	require.Equal(t, "BTC", input, "the subject mapping names the symbol models see")

	// The same tick again (a retried job) stores nothing twice.
	_, err = b.pool.Exec(ctx, "DELETE FROM river_job WHERE kind = 'predict'")
	require.NoError(t, err)
	b.runJob(t, PredictArgs{ConfigID: schedules[0].ID, SlotAt: slot})
	var count int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM predictions").Scan(&count))
	require.Equal(t, 4, count)
}

// TestPredictPickup checks that a tick enqueued right after another starts at once. River
// sends one insert notification per queue per client fetch cooldown (100 ms by default);
// a job whose notification was skipped waited for the next fetch poll, a second later.
// The client here polls once a minute, so only notifications and the predict queue's own
// poll can start the jobs.
func TestPredictPickup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// No model runner: each tick fails at once, which is enough to see it start.
	b := setupRiverPolling(t, nil, nil, time.Minute)
	schedules, err := dbsqlc.New().ScheduleListActive(ctx, b.pool)
	require.NoError(t, err)
	require.NotEmpty(t, schedules)

	slot := time.Now().UTC().Truncate(time.Minute)
	for i := range 3 { // as several subjects' feed polls commit in quick succession
		inserted := time.Now()
		job, err := b.client.Insert(ctx, PredictArgs{ConfigID: schedules[0].ID, SlotAt: slot.Add(time.Duration(i) * time.Second)}, nil)
		require.NoError(t, err)
		event := b.waitJob(t, job.Job.ID)
		require.Equal(t, river.EventKindJobFailed, event.Kind)
		require.Less(t, time.Since(inserted), 500*time.Millisecond, "tick %d was not picked up promptly", i)
	}
}
