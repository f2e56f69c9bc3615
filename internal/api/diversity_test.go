package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/predict"
	"github.com/crunchnode/crunch-node/internal/scoring"
	"github.com/crunchnode/crunch-node/internal/scoring/ensemble"
	"github.com/crunchnode/crunch-node/internal/scoring/metric"
	"github.com/crunchnode/crunch-node/internal/script"
	"github.com/crunchnode/crunch-node/internal/telemetry"
	"github.com/crunchnode/crunch-node/internal/testfactory"
	"github.com/crunchnode/crunch-node/jobs"
)

func TestDiversityScore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		corr float64
		want float64
	}{
		{"Independent", 0, 1},
		{"Negative", -0.25, 0.75},
		{"Perfect", 1, 0},
		{"Positive", 0.3, 0.7},
		{"Rounded", 0.123456, 0.8765},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, tc.want, diversityScore(tc.corr), 1e-12)
		})
	}
}

func TestDiversityGuidance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		metrics DiversityMetrics
		want    []string
	}{
		{"Consensus", DiversityMetrics{ModelCorrelation: 0.9, EnsembleCorrelation: 0.95, IC: 0.1, FNC: 0.05},
			[]string{"Highly correlated", "Very close to the ensemble"}},
		{"Distinctive", DiversityMetrics{ModelCorrelation: 0.1, Contribution: 0.2, FNC: 0.3, IC: 0.1},
			[]string{"Low correlation", "Positive contribution", "Positive feature-neutral"}},
		{"Harmful", DiversityMetrics{ModelCorrelation: 0.5, Contribution: -0.1, FNC: -0.2, IC: -0.3},
			[]string{"Negative contribution", "Negative feature-neutral", "Negative IC"}},
		{"Nothing", DiversityMetrics{ModelCorrelation: 0.5}, []string{"No diversity issue"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := diversityGuidance(tc.metrics)
			require.Len(t, got, len(tc.want))
			for i, prefix := range tc.want {
				require.Contains(t, got[i], prefix)
			}
		})
	}
}

func TestSortDiversity(t *testing.T) {
	t.Parallel()
	rows := []DiversityRow{{ModelID: "c", DiversityScore: 0.5}, {ModelID: "b", DiversityScore: 0.9}, {ModelID: "a", DiversityScore: 0.5}}
	sortDiversity(rows)
	require.Equal(t, []string{"b", "a", "c"}, []string{rows[0].ModelID, rows[1].ModelID, rows[2].ModelID})
}

// startExampleHost serves a built-in example model on a loopback port.
func startExampleHost(t *testing.T, id, example string) modelrunner.ModelInfo {
	t.Helper()
	factory, err := modelhost.ExampleFactory(example, modelhost.ExampleOptions{ConstantValue: 0.5})
	require.NoError(t, err)
	host, err := modelhost.New(modelhost.Config{Factory: factory})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = host.Serve(lis) }()
	t.Cleanup(func() { host.Stop(context.Background()) })
	return modelrunner.ModelInfo{
		ID: id, Name: example, PlayerID: "p-" + id, PlayerName: "cruncher-" + id,
		DeploymentID: "d-" + id, Host: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port, State: modelrunner.StateRunning,
	}
}

// getBody GETs a URL and returns the status and the raw body.
func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

func getList(t *testing.T, url string) []map[string]any {
	t.Helper()
	status, body := getBody(t, url)
	require.Equal(t, http.StatusOK, status, string(body))
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(body, &rows), string(body))
	require.NotNil(t, rows, "a list is [] never null: %s", body)
	return rows
}

func getObject(t *testing.T, url string) map[string]any {
	t.Helper()
	status, body := getBody(t, url)
	require.Equal(t, http.StatusOK, status, string(body))
	var obj map[string]any
	require.NoError(t, json.Unmarshal(body, &obj), string(body))
	return obj
}

func rowIDs(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i], _ = r["model_id"].(string)
	}
	return out
}

// TestEnsembleEndToEnd runs real model hosts through three predict ticks and a scoring
// run with an ensemble configured, then reads the reports: the ensemble's combined
// prediction is stored next to the real ones, scored against the same feed ground
// truth, fed to the ensemble metrics, hidden from the leaderboard unless asked for, and
// the diversity endpoints list every real model.
func TestEnsembleEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	env := map[string]string{"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s"}
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	cfg.Crunch.Ensembles = []config.Ensemble{{Name: "main", Strategy: "equal_weight"}}
	cfg.Crunch.Aggregation.MinPredictionsToRank = 1
	virtualID := ensemble.VirtualModelID("main")

	models := []modelrunner.ModelInfo{startExampleHost(t, "m-constant", "constant"), startExampleHost(t, "m-momentum", "momentum")}
	runner := modelrunner.NewRunner(modelrunner.RunnerOptions{Client: modelrunner.ClientOptions{CallTimeout: 2 * time.Second}})
	t.Cleanup(runner.Close)
	runner.Update(models)
	require.Eventually(t, func() bool {
		ready := 0
		for _, m := range runner.Models() {
			if m.Stats.State == modelrunner.ClientReady {
				ready++
			}
		}
		return ready == len(models)
	}, 20*time.Second, 20*time.Millisecond)
	normalizer, err := feed.NormalizerByName("candle")
	require.NoError(t, err)
	validator, err := predict.NewSchemaValidator(map[string]any{
		"type": "object", "required": []any{"value"}, "properties": map[string]any{"value": map[string]any{"type": "number"}},
	})
	require.NoError(t, err)
	scorer, err := scoring.NewRegistry().Scorer("pnl", script.Options{MaxSteps: script.DefaultMaxSteps, Timeout: script.DefaultTimeout})
	require.NoError(t, err)

	var clock atomic.Int64
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	clock.Store(base.UnixNano())
	deps := &jobs.Deps{
		Config: cfg, Logger: dbtest.Logger(t), Metrics: telemetry.New(), Pool: pool,
		Now:        func() time.Time { return time.Unix(0, clock.Load()).UTC() },
		Predicting: &jobs.Predicting{Input: predict.NormalizerInput{Normalizer: normalizer}, Runner: runner, Symbols: feed.SymbolMap{"BTCUSDT": "BTC"}, Validator: validator},
		Scoring: &jobs.Scoring{
			Scorer: scorer, Resolver: scoring.DefaultResolver{}, Grace: 5 * time.Minute, MaxStalenessFraction: 0.2,
			Metrics:      metric.NewRegistry(),
			MetricNames:  []string{metric.Contribution, metric.EnsembleCorrelation, metric.FNC, metric.IC, metric.ModelCorrelation},
			MetricWindow: 24 * time.Hour,
		},
	}
	require.NoError(t, jobs.SyncConfig(ctx, pool, cfg, deps.Logger))
	require.NoError(t, jobs.MirrorModels(ctx, pool, models))
	virtual, err := dbsqlc.New().ModelGet(ctx, pool, virtualID)
	require.NoError(t, err)
	require.True(t, virtual.Virtual, "the ensemble is a virtual model row")

	riverConfig := jobs.ClientConfig(deps, jobs.AllRoles)
	riverConfig.PeriodicJobs = nil
	riverConfig.FetchCooldown = 5 * time.Millisecond
	riverConfig.FetchPollInterval = 50 * time.Millisecond
	client, err := river.NewClient(riverpgxv5.New(pool), riverConfig)
	require.NoError(t, err)
	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	t.Cleanup(cancel)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = client.Stop(stopCtx)
	})
	waitFor := func(match func(*river.Event) bool) *river.Event {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case event := <-events:
				if match(event) {
					return event
				}
			case <-timeout:
				t.Fatal("job did not finish within 30s")
			}
		}
	}
	run := func(args river.JobArgs) {
		t.Helper()
		inserted, err := client.Insert(ctx, args, nil)
		require.NoError(t, err)
		event := waitFor(func(e *river.Event) bool { return e.Job.ID == inserted.Job.ID })
		require.Equal(t, river.EventKindJobCompleted, event.Kind)
	}

	schedules, err := dbsqlc.New().ScheduleListActive(ctx, pool)
	require.NoError(t, err)
	require.Len(t, schedules, 1)
	schedule := schedules[0]

	// History, then three ticks 15 s apart, each after a differently shaped stretch of
	// feed, so momentum answers three different values.
	flat := make([]float64, 100)
	for i := range flat {
		flat[i] = 100 + float64(i%3)
	}
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, base.Add(-115*time.Second), time.Second, flat)
	var slots []time.Time
	for k, step := range []float64{1, -2, 0.4} {
		at := base.Add(time.Duration(15*k) * time.Second)
		closes := make([]float64, 15)
		for i := range closes {
			closes[i] = 101 + float64(k) + step*float64(i)
		}
		testfactory.FeedCandles(ctx, t, pool, [4]string{}, at.Add(-14*time.Second), time.Second, closes)
		clock.Store(at.UnixNano())
		slots = append(slots, at)
		run(jobs.PredictArgs{ConfigID: schedule.ID, SlotAt: at})
	}
	// The minute after the ticks, the ground truth of every prediction.
	after := make([]float64, 100)
	for i := range after {
		after[i] = 102 + float64(i)/10
	}
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, base.Add(31*time.Second), time.Second, after)

	type stored struct {
		status, inputID, scopeKey string
		resolvable                time.Time
		value                     float64
		weights                   map[string]float64
	}
	read := func(modelID string, slot time.Time) stored {
		t.Helper()
		var s stored
		var output, meta json.RawMessage
		require.NoError(t, pool.QueryRow(ctx, `SELECT status, input_id, scope_key, resolvable_at, inference_output, meta
			FROM predictions WHERE model_id = $1 AND slot_at = $2`, modelID, slot).
			Scan(&s.status, &s.inputID, &s.scopeKey, &s.resolvable, &output, &meta))
		var out struct{ Value float64 }
		require.NoError(t, json.Unmarshal(output, &out))
		s.value = out.Value
		var m struct{ Weights map[string]float64 }
		require.NoError(t, json.Unmarshal(meta, &m))
		s.weights = m.Weights
		return s
	}
	for _, slot := range slots {
		ens := read(virtualID, slot)
		constant, momentum := read("m-constant", slot), read("m-momentum", slot)
		require.Equal(t, "PENDING", ens.status)
		require.Equal(t, constant.inputID, ens.inputID, "same input")
		require.Equal(t, constant.scopeKey, ens.scopeKey, "same scope")
		require.True(t, constant.resolvable.Equal(ens.resolvable), "same horizon")
		require.Equal(t, map[string]float64{"m-constant": 0.5, "m-momentum": 0.5}, ens.weights)
		require.InDelta(t, (constant.value+momentum.value)/2, ens.value, 1e-12, "equal-weight mean")
		require.Equal(t, predict.PredictionID(predict.StatusPending, virtualID, ens.scopeKey, slot),
			func() string {
				var id string
				require.NoError(t, pool.QueryRow(ctx, "SELECT id FROM predictions WHERE model_id = $1 AND slot_at = $2", virtualID, slot).Scan(&id))
				return id
			}(), "deterministic id")
	}
	momentumValues := map[float64]bool{}
	for _, slot := range slots {
		momentumValues[read("m-momentum", slot).value] = true
	}
	require.Len(t, momentumValues, 3, "the feed shapes give momentum three distinct answers")

	// Score with the clock past every horizon.
	clock.Store(base.Add(2 * time.Minute).UnixNano())
	run(jobs.ScoreArgs{})
	waitFor(func(e *river.Event) bool { return e.Job.Kind == (jobs.LeaderboardRefreshArgs{}).Kind() })

	for _, slot := range slots {
		var status string
		var value, ensActual, realActual float64
		require.NoError(t, pool.QueryRow(ctx, `SELECT p.status, s.value, s.actual FROM predictions p
			JOIN scores s ON s.prediction_id = p.id AND s.slot_at = p.slot_at
			WHERE p.model_id = $1 AND p.slot_at = $2 AND s.success`, virtualID, slot).Scan(&status, &value, &ensActual))
		require.Equal(t, "SCORED", status)
		require.NoError(t, pool.QueryRow(ctx, `SELECT s.actual FROM scores s WHERE s.model_id = 'm-momentum' AND s.slot_at = $1`, slot).Scan(&realActual))
		require.InDelta(t, realActual, ensActual, 1e-12, "scored against the same feed ground truth as the real predictions")
		require.NotZero(t, realActual, "the ground truth is the feed window, not the input")
		require.InDelta(t, read(virtualID, slot).value*ensActual*10_000, value, 1e-6, "pnl of the combined value")
	}
	var summary json.RawMessage
	require.NoError(t, pool.QueryRow(ctx, "SELECT result_summary FROM snapshots WHERE model_id = 'm-momentum' AND scope_key = ''").Scan(&summary))
	var metrics map[string]float64
	require.NoError(t, json.Unmarshal(summary, &metrics))
	require.InDelta(t, 1, metrics["ensemble_correlation"], 1e-9,
		"the ensemble is a monotone function of momentum's signal, so the metric sees the ensemble's points")

	handler, _ := NewHandler(Deps{Config: cfg, Logger: dbtest.Logger(t), Metrics: telemetry.New(), Pool: pool, Version: "test"})
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	url := server.URL

	t.Run("LeaderboardHidesEnsembles", func(t *testing.T) {
		t.Parallel()
		require.ElementsMatch(t, []string{"m-constant", "m-momentum"}, rowIDs(getList(t, url+"/reports/leaderboard")))
		require.ElementsMatch(t, []string{"m-constant", "m-momentum", virtualID},
			rowIDs(getList(t, url+"/reports/leaderboard?include_ensembles=true")))
	})

	t.Run("DiversityListsEveryRealModel", func(t *testing.T) {
		t.Parallel()
		rows := getList(t, url+"/reports/diversity?projectIds=x&start=2020-01-01T00:00:00Z")
		require.ElementsMatch(t, []string{"m-constant", "m-momentum"}, rowIDs(rows))
		for _, r := range rows {
			for _, key := range []string{"period_end", "model_correlation", "ensemble_correlation", "contribution", "fnc", "diversity_score", "ic"} {
				require.Contains(t, r, key)
			}
			requireNaiveString(t, r["period_end"])
		}
		require.GreaterOrEqual(t, rows[0]["diversity_score"], rows[1]["diversity_score"], "most diverse first")
		require.Len(t, getList(t, url+"/reports/diversity?limit=1"), 1)
	})

	t.Run("ModelDiversity", func(t *testing.T) {
		t.Parallel()
		body := getObject(t, url+"/reports/models/m-momentum/diversity")
		require.Equal(t, "m-momentum", body["model_id"])
		require.Contains(t, body, "rank")
		m, ok := body["metrics"].(map[string]any)
		require.True(t, ok)
		require.InDelta(t, 1, m["ensemble_correlation"], 1e-9)
		corr, _ := m["model_correlation"].(float64)
		require.InDelta(t, diversityScore(corr), body["diversity_score"], 1e-12)
		require.NotEmpty(t, body["guidance"])
		require.NotEmpty(t, body["snapshot_period_end"])

		status, _ := getBody(t, url+"/reports/models/nobody/diversity")
		require.Equal(t, http.StatusNotFound, status)
	})

	t.Run("EnsembleHistory", func(t *testing.T) {
		t.Parallel()
		rows := getList(t, url+"/reports/ensemble/history?ensemble_name=main")
		require.Len(t, rows, 1)
		require.Equal(t, "main", rows[0]["ensemble_name"])
		require.Equal(t, virtualID, rows[0]["model_id"])
		require.EqualValues(t, 3, rows[0]["prediction_count"])
		require.Contains(t, rows[0], "value", "numeric summary keys are flattened")
		requireNaiveString(t, rows[0]["period_end"])
		require.Empty(t, getList(t, url+"/reports/ensemble/history?ensemble_name=other"))
	})

	t.Run("Signals", func(t *testing.T) {
		t.Parallel()
		list := getList(t, url+"/signals/ensemble")
		require.Len(t, list, 1)
		require.Equal(t, "main", list[0]["name"])
		require.Equal(t, "equal_weight", list[0]["strategy"])
		require.Contains(t, list[0]["metrics"], "value")

		latest := getObject(t, url+"/signals/ensemble/main")
		require.Equal(t, slots[2].Format(time.RFC3339), latest["slot_at"])
		require.InDelta(t, read(virtualID, slots[2]).value, latest["value"], 1e-12)
		require.Equal(t, map[string]any{"m-constant": 0.5, "m-momentum": 0.5}, latest["weights"])
		require.NotNil(t, latest["score_value"])

		history := getList(t, url+"/signals/ensemble/main/history?limit=2")
		require.Len(t, history, 2)
		require.Len(t, getList(t, url+"/signals/ensemble/main/history?since="+slots[1].Format(time.RFC3339)), 2)
		status, _ := getBody(t, url+"/signals/ensemble/nope")
		require.Equal(t, http.StatusNotFound, status)
	})
}

func requireNaiveString(t *testing.T, v any) {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok)
	_, err := time.Parse("2006-01-02T15:04:05", s)
	require.NoError(t, err, "naive time: %s", s)
}
