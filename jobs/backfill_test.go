package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/feed"
)

// flakyProvider fails one Fetch call, like a process that dies in the middle of a
// backfill: the pages before it are written, the rest must follow on the retry.
type flakyProvider struct {
	feed.Provider
	calls  atomic.Int32
	failAt int32
}

func (p *flakyProvider) Fetch(ctx context.Context, req feed.FetchRequest) (feed.Page, error) {
	if p.calls.Add(1) == p.failAt {
		return feed.Page{}, errors.New("connection reset by peer")
	}
	return p.Provider.Fetch(ctx, req)
}

func TestBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := feedConfig(t, map[string]string{"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s"})
	flaky := &flakyProvider{failAt: 3}
	b := setupRiver(t, cfg, func(d *Deps) {
		d.Feeds = &Feeds{New: func(name string) (feed.Provider, error) {
			p, err := feed.New(name, feed.Config{})
			flaky.Provider = p
			return flaky, err
		}}
	})
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	scope := FeedScope{Source: "synthetic", Subject: "ETHUSDT", Kind: "candle", Granularity: "1s"}

	job, err := StartBackfill(ctx, b.pool, b.client, BackfillRequest{Scope: scope, Start: start, End: end})
	require.NoError(t, err)

	_, err = StartBackfill(ctx, b.pool, b.client, BackfillRequest{Scope: scope, Start: start, End: end})
	require.ErrorIs(t, err, ErrBackfillActive, "one active backfill per scope")

	deadline := time.Now().Add(60 * time.Second)
	var row *dbsqlc.BackfillJob
	for {
		row, err = dbsqlc.New().BackfillJobGet(ctx, b.pool, job.ID)
		require.NoError(t, err)
		if row.Status == "completed" || row.Status == "failed" {
			break
		}
		require.True(t, time.Now().Before(deadline), "backfill still %s", row.Status)
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	require.Equal(t, "completed", row.Status)
	require.GreaterOrEqual(t, flaky.calls.Load(), int32(3), "the failure happened mid-way")

	var count int
	require.NoError(t, b.pool.QueryRow(ctx,
		"SELECT count(*) FROM feed_records WHERE subject = 'ETHUSDT' AND ts_event BETWEEN $1 AND $2", start, end).Scan(&count))
	require.Equal(t, 3601, count, "every second of the hour, inclusive, exactly once")
	require.EqualValues(t, count, row.RecordsWritten, "pages written before the failure were not fetched again")

	// The scope is free again.
	_, err = StartBackfill(ctx, b.pool, b.client, BackfillRequest{Scope: scope, Start: end, End: end.Add(time.Minute)})
	require.NoError(t, err)
}

func TestBackfillProgress(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	job := func(status string, cursor *time.Time) *dbsqlc.BackfillJob {
		return &dbsqlc.BackfillJob{Status: status, StartTS: start, EndTS: start.Add(100 * time.Hour), CursorTS: cursor}
	}
	at := func(h int) *time.Time { t := start.Add(time.Duration(h) * time.Hour); return &t }
	require.Zero(t, BackfillProgress(job("pending", nil)))
	require.InDelta(t, 25, BackfillProgress(job("running", at(25))), 1e-9)
	require.Equal(t, 100.0, BackfillProgress(job("running", at(150))), "clamped")
	require.Equal(t, 100.0, BackfillProgress(job("completed", at(90))))
}
