package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

// sinceRecorder notes the lower bound of every newest-records read it passes on.
type sinceRecorder struct {
	dbsqlc.DBTX
	sinces []*time.Time
}

func (r *sinceRecorder) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	since := args[5].(*time.Time) // FeedRecordListNewest's since
	if since != nil {
		utc := since.UTC()
		since = &utc
	}
	r.sinces = append(r.sinces, since)
	return r.DBTX.Query(ctx, sql, args...)
}

// TestNewestRecordsBound reads a scope's window as a tick does while its records come,
// arrive late and go, and checks every read against the unbounded query and the bound
// each read used.
func TestNewestRecordsBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	deps := &Deps{}
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	at := func(seconds float64) time.Time { return base.Add(time.Duration(seconds * float64(time.Second))) }
	params := dbsqlc.FeedRecordListNewestParams{Source: "synthetic", Subject: "BTCUSDT", Kind: "candle", Granularity: "1s", MaxRows: 5}

	// read returns the window's timestamps and the bounds its reads used.
	read := func(t *testing.T) ([]time.Time, []*time.Time) {
		t.Helper()
		db := &sinceRecorder{DBTX: pool}
		got, err := deps.newestRecords(ctx, db, params)
		require.NoError(t, err)
		want, err := dbsqlc.New().FeedRecordListNewest(ctx, pool, &params)
		require.NoError(t, err)
		stamps := func(records []*dbsqlc.FeedRecord) []time.Time {
			out := make([]time.Time, len(records))
			for i, r := range records {
				out[i] = r.TSEvent.UTC()
			}
			return out
		}
		require.Equal(t, stamps(want), stamps(got), "the window is the unbounded query's")
		return stamps(got), db.sinces
	}
	var none *time.Time
	bound := func(seconds float64) *time.Time {
		b := at(seconds)
		return &b
	}

	// A partial window: nothing to bound the next read with.
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(0), time.Second, []float64{1, 2, 3})
	window, sinces := read(t)
	require.Equal(t, []time.Time{at(2), at(1), at(0)}, window)
	require.Equal(t, []*time.Time{none}, sinces)
	window, sinces = read(t)
	require.Len(t, window, 3)
	require.Equal(t, []*time.Time{none}, sinces)

	// The window fills up; its oldest record bounds the next read.
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(3), time.Second, []float64{4, 5, 6, 7, 8, 9, 10})
	window, sinces = read(t)
	require.Equal(t, []time.Time{at(9), at(8), at(7), at(6), at(5)}, window)
	require.Equal(t, []*time.Time{none}, sinces)

	// New records and one arriving late inside the window: the bounded read has them all.
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(10), time.Second, []float64{11, 12})
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(7.5), time.Second, []float64{8})
	window, sinces = read(t)
	require.Equal(t, []time.Time{at(11), at(10), at(9), at(8), at(7.5)}, window)
	require.Equal(t, []*time.Time{bound(5)}, sinces)

	// The window's newest records gone: the bounded read comes back short and the window
	// is read again without the bound, reaching back past it.
	_, err := pool.Exec(ctx, "DELETE FROM feed_records WHERE ts_event >= $1", at(8))
	require.NoError(t, err)
	window, sinces = read(t)
	require.Equal(t, []time.Time{at(7.5), at(7), at(6), at(5), at(4)}, window)
	require.Equal(t, []*time.Time{bound(7.5), none}, sinces)
	_, sinces = read(t)
	require.Equal(t, []*time.Time{bound(4)}, sinces)
}
