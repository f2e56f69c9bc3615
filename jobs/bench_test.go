package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/postgres"

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
			n, err := deps.storePage(ctx, scope, shifted, "backfill", nil)
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
// when River reports the job completed, that is after the tick's predictions committed
// (feed_update + predict on every model over loopback gRPC, then one insert).
func BenchmarkPredictTick(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("models=%d", n), func(b *testing.B) { benchmarkPredictTick(b, n) })
	}
}

func benchmarkPredictTick(b *testing.B, n int) {
	ctx := context.Background()
	var models []modelrunner.ModelInfo
	for i := range n {
		example := modelhost.ExampleNames()[i%len(modelhost.ExampleNames())]
		models = append(models, startHost(b, fmt.Sprintf("m%03d", i), example, modelhost.Faults{}))
	}
	cfg := feedConfigTB(b, map[string]string{"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s"})
	committed := make(chan time.Time, 1)
	bundle := setupRiver(b, cfg, func(d *Deps) {
		d.Predicting = newPredicting(b, models)
		d.TickCommitted = func(_ PredictArgs, at time.Time) { committed <- at }
	})
	if err := MirrorModels(ctx, bundle.pool, models); err != nil {
		b.Fatal(err)
	}
	schedules, err := dbsqlc.New().ScheduleListActive(ctx, bundle.pool)
	if err != nil || len(schedules) == 0 {
		b.Fatal("no schedule", err)
	}
	scope := FeedScopes(cfg)[0]
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var latencies []time.Duration
	b.ResetTimer()
	for i := range b.N {
		at := base.Add(time.Duration(i) * time.Second)
		record := []feed.Record{{TsEvent: at, Values: map[string]float64{"open": 100, "high": 101, "low": 99, "close": 100.5, "volume": 1}}}
		var start time.Time
		err := postgres.WithTx(ctx, bundle.pool, func(ctx context.Context, tx pgx.Tx) error {
			params := &dbsqlc.FeedRecordUpsertManyParams{Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity}
			for _, r := range record {
				params.TSEvents = append(params.TSEvents, r.TsEvent)
				params.Payloads = append(params.Payloads, json.RawMessage(`{"open":100,"high":101,"low":99,"close":100.5,"volume":1}`))
				params.Metas = append(params.Metas, json.RawMessage(`{}`))
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
			latencies = append(latencies, done.Sub(start))
		case <-time.After(30 * time.Second):
			b.Fatal("tick did not commit within 30s")
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
