package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/ranking"
	"github.com/crunchnode/crunch-node/internal/scoring"
	"github.com/crunchnode/crunch-node/internal/scoring/metric"
	"github.com/crunchnode/crunch-node/internal/script"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/telemetry"
)

// BenchmarkFeedIngest measures the backfill write path: pages of candles upserted into
// the partitioned feed_records with the watermark advance, one transaction per page.
func BenchmarkFeedIngest(b *testing.B) {
	ctx := context.Background()
	pool := dbtest.NewPool(b)
	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	deps := &Deps{Config: cfg, Logger: dbtest.Logger(b), Metrics: telemetry.New(), Pool: pool}
	synthetic, err := feed.NewSynthetic(feed.Config{})
	if err != nil {
		b.Fatal(err)
	}
	scope := FeedScope{Source: "synthetic", Subject: "BTCUSDT", Kind: "candle", Granularity: "1s"}
	const pageSize = 5000
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var pages [][]feed.Record
	for i := range 20 {
		page, err := synthetic.Fetch(ctx, feed.FetchRequest{
			Subject: "BTCUSDT", Kind: "candle", Granularity: "1s",
			Start: start.Add(time.Duration(i*pageSize) * time.Second), Limit: pageSize,
			End: start.Add(time.Duration((i+1)*pageSize-1) * time.Second),
		})
		if err != nil {
			b.Fatal(err)
		}
		pages = append(pages, page.Records)
	}
	b.ResetTimer()
	rows := 0
	began := time.Now()
	for i := range b.N {
		for _, page := range pages {
			// Shift each iteration into fresh time so every row is an insert.
			shifted := make([]feed.Record, len(page))
			for j, r := range page {
				r.TsEvent = r.TsEvent.Add(time.Duration(i) * 24 * time.Hour)
				shifted[j] = r
			}
			n, err := deps.storePage(ctx, scope, shifted, "backfill", false, nil)
			if err != nil {
				b.Fatal(err)
			}
			rows += n
		}
	}
	b.ReportMetric(float64(rows)/time.Since(began).Seconds(), "rows/s")
}

// BenchmarkPredictTick measures the predict hot path the way the feed drives it: a
// transaction stores a feed record and enqueues the tick's predict job; the clock stops
// when the tick's predictions have committed (feed_update + predict on every model over
// loopback gRPC, then one insert). The model hosts run in this process, so cpu-ms/op is
// the node's CPU and the hosts' together (Postgres is not included). Besides p50/p99 it
// reports each stage's mean (crunch_predict_stage_seconds): pick-up after the commit,
// loading the input, the model calls and storing the predictions. Run with:
//
//	go test -run '^$' -bench BenchmarkPredictTick -benchtime 30x ./jobs/
func BenchmarkPredictTick(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("models=%d", n), func(b *testing.B) { benchmarkPredictTick(b, n) })
	}
}

func benchmarkPredictTick(b *testing.B, n int) {
	ctx := context.Background()
	var models []modelrunner.ModelInfo
	for i := range n {
		example := modelhost.ExampleNames()[i%len(modelhost.ExampleNames())]
		models = append(models, startHost(b, fmt.Sprintf("m%04d", i), example, modelhost.Faults{}))
	}
	cfg := feedConfigTB(b, map[string]string{"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s"})
	committed := make(chan time.Time, 1)
	// The node's two pools: the application's, and River's own with its options.
	url := dbtest.NewURL(b)
	riverPool, err := postgres.NewPool(ctx, url, RiverPoolOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(riverPool.Close)
	bundle := setupRiverPools(b, dbtest.Connect(b, url), riverPool, cfg, func(d *Deps) {
		// Production logs at info: River's and the tick's debug lines written through
		// testing.B would be measured too.
		d.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		d.Predicting = newPredicting(b, models)
		d.TickCommitted = func(_ PredictArgs, at time.Time) { committed <- at }
	}, 50*time.Millisecond)
	if err := MirrorModels(ctx, bundle.pool, models); err != nil {
		b.Fatal(err)
	}
	schedules, err := dbsqlc.New().ScheduleListActive(ctx, bundle.pool)
	if err != nil || len(schedules) == 0 {
		b.Fatal("no schedule", err)
	}
	scope := FeedScopes(cfg)[0]
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	// A full input window, as a node that has backfilled sends every tick.
	history := &dbsqlc.FeedRecordUpsertManyParams{Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity}
	for i := range cfg.FeedCandlesWindow {
		history.TSEvents = append(history.TSEvents, base.Add(-time.Duration(10+i)*time.Second))
		history.Payloads = append(history.Payloads, json.RawMessage(fmt.Sprintf(`{"open":100,"high":101,"low":99,"close":%d.5,"volume":1}`, 100+i%7)))
		history.Metas = append(history.Metas, json.RawMessage(`{}`))
	}
	if _, err := dbsqlc.New().FeedRecordUpsertMany(ctx, bundle.pool, history); err != nil {
		b.Fatal(err)
	}
	tick := func(i int) time.Duration {
		at := base.Add(time.Duration(i) * time.Second)
		var start time.Time
		err := postgres.WithTx(ctx, bundle.pool, func(ctx context.Context, tx pgx.Tx) error {
			params := &dbsqlc.FeedRecordUpsertManyParams{
				Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity,
				TSEvents: []time.Time{at}, Payloads: []json.RawMessage{json.RawMessage(`{"open":100,"high":101,"low":99,"close":100.5,"volume":1}`)},
				Metas: []json.RawMessage{json.RawMessage(`{}`)},
			}
			// As the feed poll's page write (storePage) commits.
			if err := dbsqlc.New().TransactionCommitAsync(ctx, tx); err != nil {
				return err
			}
			if _, err := dbsqlc.New().FeedRecordUpsertMany(ctx, tx, params); err != nil {
				return err
			}
			_, err := bundle.client.InsertTx(ctx, tx, PredictArgs{ConfigID: schedules[0].ID, SlotAt: at}, nil)
			start = time.Now() // the commit follows; its cost is part of the measurement
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case done := <-committed:
			return done.Sub(start)
		case <-time.After(30 * time.Second):
			b.Fatal("tick did not commit within 30s")
			return 0
		}
	}
	// Warm up connections, pools and the partition cache outside the measurement.
	for i := range 3 {
		tick(-1 - i)
	}
	stagesBefore := stageSums(b, bundle.deps.Metrics)
	latencies := make([]time.Duration, 0, b.N)
	cpuStart := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		latencies = append(latencies, tick(i))
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpuStart)/float64(b.N)/1e6, "cpu-ms/op")
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	for stage, sum := range stageSums(b, bundle.deps.Metrics) {
		b.ReportMetric((sum-stagesBefore[stage])/float64(b.N)*1000, stage+"-ms")
	}
}

// stageSums reads the summed seconds of each predict stage from the metrics registry.
func stageSums(b *testing.B, m *telemetry.Metrics) map[string]float64 {
	b.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	sums := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "crunch_predict_stage_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, label := range metric.GetLabel() {
				if label.GetName() == "stage" && label.GetValue() != "end_to_end" {
					sums[label.GetValue()] = metric.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return sums
}

// cpuTime is the process's user+system CPU time in nanoseconds; on a shared machine it is
// steadier than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkLeaderboardRefresh measures the leaderboard_refresh job's transaction (REFRESH
// MATERIALIZED VIEW CONCURRENTLY, the ranker and a second refresh with its ranks when
// there is one, the history row, the commit) over 1,000 models × 7 days of hourly snapshots (168,000 rows), the budget's
// size. Before each iteration, untimed, the newest hour's snapshots are recomputed as the
// score job does, so every row changes as in production. The pool is the node's own
// (postgres.NewPool: JIT off), not the tests' default one.
func BenchmarkLeaderboardRefresh(b *testing.B) {
	b.Run("ranker=sql", func(b *testing.B) { benchmarkLeaderboardRefresh(b, nil) })
	b.Run("ranker=starlark", func(b *testing.B) {
		fn, err := script.LoadSource("rank.star", []byte(`
def rank(rows):
    return sorted(rows, key=lambda r: r["metrics"].get("ic") or 0, reverse=True)
`), "rank", scriptOptions())
		if err != nil {
			b.Fatal(err)
		}
		ranker, err := ranking.NewFromFunc(fn)
		if err != nil {
			b.Fatal(err)
		}
		benchmarkLeaderboardRefresh(b, ranker)
	})
}

func benchmarkLeaderboardRefresh(b *testing.B, ranker *ranking.Ranker) {
	ctx := context.Background()
	pool, err := postgres.NewPool(ctx, dbtest.NewURL(b), postgres.PoolOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := SyncConfig(ctx, pool, cfg, dbtest.Logger(b)); err != nil {
		b.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO models (id, name, player_name, state) SELECT 'm' || g, 'model ' || g, 'c' || g, 'RUNNING' FROM generate_series(1, 1000) g`,
		// Hour-major, as the score job writes them.
		`INSERT INTO snapshots (id, model_id, period_start, period_end, prediction_count, result_summary, value)
		 SELECT id, model_id, period_start, period_end, 240, jsonb_build_object('value', v, 'ic', random() - 0.5, 'hit_rate', random()), v
		 FROM (SELECT 'SNAP_m' || m || '_' || h AS id, 'm' || m AS model_id,
		              date_trunc('hour', now()) - h * interval '1 hour' AS period_start,
		              date_trunc('hour', now()) - (h - 1) * interval '1 hour' AS period_end, random() - 0.5 AS v
		       FROM generate_series(167, 0, -1) h, generate_series(1, 1000) m) g`,
		`VACUUM ANALYZE snapshots`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			b.Fatal(err)
		}
	}
	deps := &Deps{Config: cfg, Logger: dbtest.Logger(b), Pool: pool, Ranker: ranker}
	var durations []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if _, err := pool.Exec(ctx, `UPDATE snapshots SET prediction_count = prediction_count + 1, value = value + 0.001,
			result_summary = result_summary || jsonb_build_object('ic', random() - 0.5)
			WHERE scope_key = '' AND period_start = date_trunc('hour', now())`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := postgres.WithTx(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
			return RefreshLeaderboard(ctx, tx, deps, time.Now())
		}); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkScore measures the score path end to end on 100,000 due predictions (100 models
// × 1,000 ticks): due ticks claimed with their ground truth found in SQL, the built-in pnl
// scorer (or the same in Starlark), scores and statuses written in batches of about
// ScoreBatchSize by scoreLoops loops, then the snapshots recomputed, window metrics merged and the Merkle cycle
// committed.
func BenchmarkScore(b *testing.B) {
	for _, scorer := range []string{"pnl", "../internal/scoring/testdata/pnl.star:score"} {
		name := scorer
		if strings.Contains(name, ".star") {
			name = "starlark"
		}
		b.Run("scorer="+name, func(b *testing.B) { benchmarkScore(b, scorer) })
	}
}

func benchmarkScore(b *testing.B, scorerRef string) {
	ctx := context.Background()
	pool := dbtest.NewPool(b)
	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := SyncConfig(ctx, pool, cfg, dbtest.Logger(b)); err != nil {
		b.Fatal(err)
	}
	scorer, err := scoring.NewRegistry().Scorer(scorerRef, scriptOptions())
	if err != nil {
		b.Fatal(err)
	}
	deps := &Deps{Config: cfg, Logger: dbtest.Logger(b), Metrics: telemetry.New(), Pool: pool, Scoring: &Scoring{
		Scorer: scorer, Resolver: scoring.DefaultResolver{}, Grace: time.Hour, MaxStalenessFraction: 0.5,
		Metrics: metric.NewRegistry(), MetricNames: metric.DefaultNames(), MetricWindow: 24 * time.Hour,
	}}
	worker := &ScoreWorker{deps: deps}
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{SkipUnknownJobCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx = rivertest.WorkContext(ctx, inserter)
	const models, slots = 100, 1000 // 100,000 predictions
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	for _, stmt := range []string{
		fmt.Sprintf(`INSERT INTO models (id, name, state) SELECT 'm' || g, 'm' || g, 'RUNNING' FROM generate_series(1, %d) g`, models),
		`INSERT INTO inputs (id, raw_data, received_at) VALUES ('INP', '{}', now())`,
		`INSERT INTO feed_records (source, subject, kind, granularity, ts_event, payload)
		 SELECT 'synthetic', 'BTCUSDT', 'candle', '1s', $1::timestamptz + g * interval '1 second',
		        jsonb_build_object('open', 100 + sin(g / 10.0), 'high', 101, 'low', 99, 'close', 100 + sin((g + 1) / 10.0), 'volume', 1)
		 FROM generate_series(0, 7200) g`,
		fmt.Sprintf(`INSERT INTO predictions (id, slot_at, input_id, model_id, prediction_config_id, scope_key, scope, status,
		        inference_output, performed_at, resolvable_at)
		 SELECT 'P_' || m || '_' || s, $1::timestamptz + s * interval '5 second', 'INP', 'm' || m,
		        (SELECT id FROM scheduled_prediction_configs LIMIT 1), 'k',
		        '{"source":"synthetic","subject":"BTCUSDT","kind":"candle","granularity":"1s"}',
		        'PENDING', jsonb_build_object('value', random() * 2 - 1),
		        $1::timestamptz + s * interval '5 second', $1::timestamptz + s * interval '5 second' + interval '60 second'
		 FROM generate_series(1, %d) m, generate_series(0, %d) s`, models, slots-1),
		`INSERT INTO score_queue (prediction_config_id, slot_at, input_id, scope, performed_at, resolvable_at, not_before)
		 SELECT DISTINCT prediction_config_id, slot_at, input_id, scope, performed_at, resolvable_at, resolvable_at FROM predictions`,
		`ANALYZE`,
	} {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = append(args, base)
		}
		if _, err := pool.Exec(ctx, stmt, args...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	scored, _, err := worker.scoreRound(ctx, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	scoring := time.Since(start)
	if err := worker.recomputeSnapshots(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if scored != models*slots {
		b.Fatalf("scored %d, want %d", scored, models*slots)
	}
	// preds/s covers everything a run does: scores, statuses, snapshots, window metrics and
	// the Merkle cycle; scoring-preds/s stops before the snapshots.
	b.ReportMetric(float64(scored)/elapsed.Seconds(), "preds/s")
	b.ReportMetric(float64(scored)/scoring.Seconds(), "scoring-preds/s")
}
