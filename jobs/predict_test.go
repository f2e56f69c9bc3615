package jobs

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/predict"
	"github.com/crunchnode/crunch-node/internal/script"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

// startHost serves an example model on a loopback port until the test ends.
func startHost(t testing.TB, id, example string, faults modelhost.Faults) modelrunner.ModelInfo {
	t.Helper()
	factory, err := modelhost.ExampleFactory(example, modelhost.ExampleOptions{ConstantValue: 0.5})
	require.NoError(t, err)
	return serveModel(t, id, example, factory, faults)
}

// scriptedModel is a test model whose predict answer is computed by the test from the
// last input feed_update delivered, so a test can see what reached the model.
type scriptedModel struct {
	answer func(ctx context.Context, input map[string]any) (any, error)
	mu     sync.Mutex
	last   map[string]any
}

func (m *scriptedModel) Method(name string) (modelhost.Method, bool) {
	switch name {
	case "feed_update":
		return modelhost.Method{Func: func(_ context.Context, args []any, _ map[string]any) (any, error) {
			input, _ := args[0].(map[string]any)
			m.mu.Lock()
			m.last = input
			m.mu.Unlock()
			return nil, nil
		}}, true
	case "predict":
		return modelhost.Method{Func: func(ctx context.Context, _ []any, _ map[string]any) (any, error) {
			m.mu.Lock()
			input := m.last
			m.mu.Unlock()
			return m.answer(ctx, input)
		}}, true
	}
	return modelhost.Method{}, false
}

// startScriptedHost serves a scriptedModel on a loopback port until the test ends.
func startScriptedHost(t testing.TB, id string, answer func(ctx context.Context, input map[string]any) (any, error)) modelrunner.ModelInfo {
	t.Helper()
	model := &scriptedModel{answer: answer}
	return serveModel(t, id, "scripted", func([]any, map[string]any) (modelhost.Model, error) { return model, nil }, modelhost.Faults{})
}

func serveModel(t testing.TB, id, name string, factory modelhost.Factory, faults modelhost.Faults) modelrunner.ModelInfo {
	t.Helper()
	host, err := modelhost.New(modelhost.Config{Factory: factory, Faults: faults})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = host.Serve(lis) }()
	t.Cleanup(func() { host.Stop(context.Background()) })
	port := lis.Addr().(*net.TCPAddr).Port
	return modelrunner.ModelInfo{
		ID: id, Name: name, PlayerID: "p-" + id, PlayerName: "cruncher-" + id,
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
	return &Predicting{Input: predict.NormalizerInput{Normalizer: normalizer}, Runner: runner, Symbols: feed.SymbolMap{"BTCUSDT": "BTC"}, Validator: validator}
}

// seedTick stores 200 one-second candles up to now (closes cycling 100…106, the last
// one 103) and returns the default schedule's current tick.
func seedTick(ctx context.Context, t testing.TB, db dbsqlc.DBTX) PredictArgs {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	closes := make([]float64, 200)
	for i := range closes {
		closes[i] = 100 + float64(i%7)
	}
	testfactory.FeedCandles(ctx, t, db, [4]string{}, now.Add(-200*time.Second), time.Second, closes)
	schedules, err := dbsqlc.New().ScheduleListActive(ctx, db)
	require.NoError(t, err)
	require.Len(t, schedules, 1, "the default config's schedule was synchronised")
	return PredictArgs{ConfigID: schedules[0].ID, SlotAt: slotOf(now, 15*time.Second)}
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
	// m-nan is not mirrored: the tick calls it before its row exists.
	require.NoError(t, MirrorModels(ctx, b.pool, models[:2]))
	// A model the source listed as running but the runner cannot reach.
	testfactory.Model(ctx, t, b.pool, &testfactory.ModelOpts{ID: testfactory.Ptr("m-gone")})

	args := seedTick(ctx, t, b.pool)

	b.runJob(t, args)

	var name, player, state string
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT name, player_name, state FROM models WHERE id = 'm-nan'").Scan(&name, &player, &state))
	require.Equal(t, []string{"constant", "cruncher-m-nan", "RUNNING"}, []string{name, player, state},
		"the tick wrote the row of the model the mirror had not")

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
	var metas, called int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(DISTINCT meta), min((meta->'timing'->>'models_called')::int) FROM predictions").Scan(&metas, &called))
	require.Equal(t, 1, metas, "every prediction of the tick carries the tick's meta")
	require.Equal(t, 3, called)

	// The same tick again (a retried job) stores nothing twice.
	_, err = b.pool.Exec(ctx, "DELETE FROM river_job WHERE kind = 'predict'")
	require.NoError(t, err)
	b.runJob(t, args)
	var count int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM predictions").Scan(&count))
	require.Equal(t, 4, count)
}

func TestPredictWorkerCallables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// setup starts River with the given models and callables on a fresh database seeded
	// by seedTick, and returns the tick's arguments.
	setup := func(t *testing.T, models []modelrunner.ModelInfo, builder, validator string) (*testBundle, PredictArgs) {
		t.Helper()
		dir := t.TempDir()
		star := func(name, src string) string {
			if src == "" {
				return ""
			}
			path := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
			return path + ":" + strings.TrimSuffix(name, ".star")
		}
		input, err := predict.NewInputBuilder(star("build.star", builder), "candle", script.Options{})
		require.NoError(t, err)
		check, err := predict.NewValidator(star("check.star", validator), nil, script.Options{})
		require.NoError(t, err)
		cfg := feedConfig(t, map[string]string{"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s"})
		b := setupRiver(t, cfg, func(d *Deps) {
			d.Predicting = newPredicting(t, models)
			d.Predicting.Input = input
			d.Predicting.Validator = check
		})
		require.NoError(t, MirrorModels(ctx, b.pool, models))
		return b, seedTick(ctx, t, b.pool)
	}
	// echo predicts the input's last_close, so its stored answer shows what it was sent.
	echo := func(_ context.Context, input map[string]any) (any, error) {
		return map[string]any{"value": input["last_close"]}, nil
	}

	t.Run("BuilderErrorFailsTheJob", func(t *testing.T) {
		t.Parallel()
		models := []modelrunner.ModelInfo{startScriptedHost(t, "m-echo", echo)}
		b, args := setup(t, models, "def build(records):\n    fail(\"no usable candle\")\n", "")

		event := b.runJob(t, args)

		require.Equal(t, river.EventKindJobFailed, event.Kind)
		require.Equal(t, rivertype.JobStateAvailable, event.Job.State, "retried soon, the tick is not lost")
		require.Len(t, event.Job.Errors, 1)
		require.Contains(t, event.Job.Errors[0].Error, "tick btcusdt-60s at ")
		require.Contains(t, event.Job.Errors[0].Error, "building the model input: calling ")
		require.Contains(t, event.Job.Errors[0].Error, "fail: no usable candle")
		var predictions, inputs int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM predictions), (SELECT count(*) FROM inputs)").Scan(&predictions, &inputs))
		require.Zero(t, predictions)
		require.Zero(t, inputs)
	})

	t.Run("StarlarkBuilderAndValidator", func(t *testing.T) {
		t.Parallel()
		models := []modelrunner.ModelInfo{
			startScriptedHost(t, "m-echo", echo),
			startHost(t, "m-constant", "constant", modelhost.Faults{}),
		}
		builder := `def build(records, context):
    return {
        "last_close": records[-1]["values"]["close"],
        "records": len(records),
        "scope_key": context["scope_key"],
        "symbol": context["symbol"],
    }
`
		validator := `def check(output, context):
    value = output.get("value")
    if type(value) != "float" or abs(value) > 1:
        return "value %r is outside [-1, 1] (last close %r)" % (value, context["input"]["last_close"])
    return None
`
		b, args := setup(t, models, builder, validator)

		event := b.runJob(t, args)
		require.Equal(t, river.EventKindJobCompleted, event.Kind)

		var input map[string]any
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT raw_data FROM inputs").Scan(&input))
		require.Equal(t, map[string]any{"last_close": 103.0, "records": 120.0, "scope_key": "btcusdt-60s", "symbol": "BTC"}, input,
			"the builder's dict is the stored input (FEED_CANDLES_WINDOW records)")

		type row struct {
			output map[string]any
			reason string
			status string
		}
		got := map[string]row{}
		rows, err := b.pool.Query(ctx, "SELECT model_id, status, coalesce(failed_reason, ''), inference_output FROM predictions")
		require.NoError(t, err)
		for rows.Next() {
			var id string
			var r row
			require.NoError(t, rows.Scan(&id, &r.status, &r.reason, &r.output))
			got[id] = r
		}
		require.NoError(t, rows.Err())
		require.Len(t, got, 2)
		require.Equal(t, row{output: map[string]any{"value": 0.5}, status: "PENDING"}, got["m-constant"])
		wantReason := "output fails validation: value 103.0 is outside [-1, 1] (last close 103.0)"
		require.Equal(t, row{
			output: map[string]any{"_validation_error": wantReason, "raw_output": map[string]any{"value": 103.0}},
			reason: wantReason,
			status: "FAILED",
		}, got["m-echo"], "the echo model answered the builder's last_close, which the validator rejected")
	})
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
