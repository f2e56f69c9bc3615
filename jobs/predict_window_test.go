package jobs

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/feed"
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

// TestInputWindow reads a scope's window as a tick does while its records come, arrive
// late, change and go, and checks every read against the unbounded query, the bound each
// read used and which values it decoded again.
func TestInputWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	deps := &Deps{}
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	at := func(seconds float64) time.Time { return base.Add(time.Duration(seconds * float64(time.Second))) }
	scope := FeedScope{Granularity: "1s", Kind: "candle", Source: "synthetic", Subject: "BTCUSDT"}
	const maxRows = 5

	// read returns the window's timestamps and the bounds its reads used.
	var last []feed.Record
	read := func(t *testing.T) ([]time.Time, []*time.Time) {
		t.Helper()
		db := &sinceRecorder{DBTX: pool}
		window, err := deps.inputWindow(ctx, db, scope, maxRows)
		require.NoError(t, err)
		want, err := dbsqlc.New().FeedRecordListNewest(ctx, pool, &dbsqlc.FeedRecordListNewestParams{
			Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity, MaxRows: maxRows,
		})
		require.NoError(t, err)
		require.Len(t, window, len(want))
		stamps := make([]time.Time, len(window))
		for i, r := range window {
			w := want[len(want)-1-i]
			var values map[string]float64
			require.NoError(t, json.Unmarshal(w.Payload, &values))
			require.Equal(t, w.TSEvent, r.TsEvent, "the window is the unbounded query's, oldest first")
			require.Equal(t, FeedScope{Granularity: r.Granularity, Kind: r.Kind, Source: r.Source, Subject: r.Subject}, scope)
			require.Equal(t, values, r.Values)
			stamps[i] = r.TsEvent.UTC()
		}
		last = window
		return stamps, db.sinces
	}
	// decodedAgain lists the records of the window just read whose values are not the
	// map an earlier read decoded.
	decodedAgain := func(t *testing.T, before []feed.Record) []time.Time {
		t.Helper()
		earlier := map[time.Time]uintptr{}
		for _, r := range before {
			earlier[r.TsEvent.UTC()] = reflect.ValueOf(r.Values).Pointer()
		}
		var out []time.Time
		for _, r := range last {
			if earlier[r.TsEvent.UTC()] != reflect.ValueOf(r.Values).Pointer() {
				out = append(out, r.TsEvent.UTC())
			}
		}
		return out
	}
	var none *time.Time
	bound := func(seconds float64) *time.Time {
		b := at(seconds)
		return &b
	}

	// A partial window: nothing to bound the next read with.
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(0), time.Second, []float64{1, 2, 3})
	window, sinces := read(t)
	require.Equal(t, []time.Time{at(0), at(1), at(2)}, window)
	require.Equal(t, []*time.Time{none}, sinces)
	window, sinces = read(t)
	require.Len(t, window, 3)
	require.Equal(t, []*time.Time{none}, sinces)

	// The window fills up; its oldest record bounds the next read.
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(3), time.Second, []float64{4, 5, 6, 7, 8, 9, 10})
	window, sinces = read(t)
	require.Equal(t, []time.Time{at(5), at(6), at(7), at(8), at(9)}, window)
	require.Equal(t, []*time.Time{none}, sinces)

	// New records, one arriving late inside the window and one corrected: the bounded
	// read has them all, and decodes only those.
	previous := last
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(10), time.Second, []float64{11, 12})
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(7.5), time.Second, []float64{8})
	testfactory.FeedCandles(ctx, t, pool, [4]string{}, at(9), time.Second, []float64{42})
	window, sinces = read(t)
	require.Equal(t, []time.Time{at(7.5), at(8), at(9), at(10), at(11)}, window)
	require.Equal(t, []*time.Time{bound(5)}, sinces)
	require.Equal(t, []time.Time{at(7.5), at(9), at(10), at(11)}, decodedAgain(t, previous))

	// The window's newest records gone: the bounded read comes back short and the window
	// is read again without the bound, reaching back past it.
	_, err := pool.Exec(ctx, "DELETE FROM feed_records WHERE ts_event >= $1", at(8))
	require.NoError(t, err)
	window, sinces = read(t)
	require.Equal(t, []time.Time{at(4), at(5), at(6), at(7), at(7.5)}, window)
	require.Equal(t, []*time.Time{bound(7.5), none}, sinces)
	_, sinces = read(t)
	require.Equal(t, []*time.Time{bound(4)}, sinces)
}
