package jobs

import (
	"context"
	"testing"
	"time"

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
