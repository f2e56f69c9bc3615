package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/feed"
)

func feedConfig(t *testing.T, env map[string]string) *config.Config {
	return feedConfigTB(t, env)
}

func feedConfigTB(t testing.TB, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	return cfg
}

func TestFeedPoll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("SyntheticCatchUpThenIncremental", func(t *testing.T) {
		t.Parallel()
		cfg := feedConfig(t, map[string]string{
			"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s", "FEED_BACKFILL_MINUTES": "10",
		})
		now := time.Now().UTC().Truncate(time.Second)
		b := setupRiver(t, cfg, func(d *Deps) {
			// The provider and the job share one pinned clock, so which candles are
			// closed does not change between the two polls.
			d.Feeds = &Feeds{New: func(name string) (feed.Provider, error) {
				return feed.New(name, feed.Config{Now: func() time.Time { return now }})
			}}
			d.Now = func() time.Time { return now }
		})
		scope := FeedScopes(cfg)[0]
		b.runJob(t, FeedPollArgs{FeedScope: scope})

		var count int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM feed_records").Scan(&count))
		// Ten minutes of closed one-second candles, without a row cap.
		require.InDelta(t, 600, count, 2)
		state, err := dbsqlc.New().FeedStateGet(ctx, b.pool, &dbsqlc.FeedStateGetParams{
			Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity,
		})
		require.NoError(t, err)
		require.NotNil(t, state.LastEventTS)
		require.WithinDuration(t, now, *state.LastEventTS, 3*time.Second)

		// The same poll again stores nothing twice.
		b.runJob(t, FeedPollArgs{FeedScope: scope})
		var again int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM feed_records").Scan(&again))
		require.Equal(t, count, again)

		// The default schedule (subject BTCUSDT) got its predict job in the same transaction.
		var predictJobs int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'predict'").Scan(&predictJobs))
		require.Equal(t, 1, predictJobs)
	})

	t.Run("OnlyTheLastPageCommitsAsynchronously", func(t *testing.T) {
		t.Parallel()
		// Thirty minutes of one-second candles: two pages of feedPageSize.
		cfg := feedConfig(t, map[string]string{
			"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s", "FEED_BACKFILL_MINUTES": "30",
		})
		var (
			mu         sync.Mutex
			statements []string
		)
		queryName := regexp.MustCompile(`-- name: (\w+)`)
		record := func(sql string) {
			if m := queryName.FindStringSubmatch(sql); m != nil {
				mu.Lock()
				statements = append(statements, m[1])
				mu.Unlock()
			}
		}
		tracer := &appTracer{failures: make(chan error, 16)}
		tracer.beforeQuery.Store(&record)
		poolConfig, err := pgxpool.ParseConfig(dbtest.NewURL(t))
		require.NoError(t, err)
		poolConfig.ConnConfig.Tracer = tracer
		pool, err := pgxpool.NewWithConfig(ctx, poolConfig)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		b := setupRiverPools(t, pool, pool, cfg, func(d *Deps) { d.Feeds = NewFeeds(cfg) }, 50*time.Millisecond)

		b.runJob(t, FeedPollArgs{FeedScope: FeedScopes(cfg)[0]})
		mu.Lock()
		defer mu.Unlock()
		var pageWrites []bool // per page: whether its transaction committed asynchronously
		async := false
		for _, name := range statements {
			switch name {
			case "TransactionCommitAsync":
				async = true
			case "FeedStateAdvance":
				pageWrites = append(pageWrites, async)
				async = false
			}
		}
		require.Equal(t, []bool{false, true}, pageWrites, statements)
	})

	t.Run("ProviderErrorsAreRecordedNotFatal", func(t *testing.T) {
		t.Parallel()
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"code":-1003,"msg":"Too many requests."}`))
		}))
		t.Cleanup(server.Close)
		cfg := feedConfig(t, map[string]string{"FEED_SOURCE": "binance", "FEED_OPT_BASE_URL": server.URL})
		b := setupRiver(t, cfg, func(d *Deps) { d.Feeds = NewFeeds(cfg) })
		scope := FeedScopes(cfg)[0]

		event := b.runJob(t, FeedPollArgs{FeedScope: scope})
		require.Equal(t, "completed", string(event.Job.State))

		state, err := dbsqlc.New().FeedStateGet(ctx, b.pool, &dbsqlc.FeedStateGetParams{
			Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity,
		})
		require.NoError(t, err)
		require.Contains(t, string(state.Meta), "backoff_until")
		require.Contains(t, string(state.Meta), "last_error")
		require.False(t, backoffUntil(state.Meta).IsZero())
	})
}

func TestSlotOf(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 12, 0, 37, 500, time.UTC)
	require.Equal(t, time.Date(2026, 11, 24, 12, 0, 30, 0, time.UTC), slotOf(at, 15*time.Second))
	require.Equal(t, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), slotOf(at, time.Minute))
}
