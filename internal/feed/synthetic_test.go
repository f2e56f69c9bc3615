package feed

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var synthNow = time.Date(2026, 3, 10, 12, 0, 30, 0, time.UTC)

func newTestSynthetic(t testing.TB, now time.Time, opts Options) *Synthetic {
	t.Helper()
	s, err := NewSynthetic(Config{Now: fixedClock(now), Options: opts})
	require.NoError(t, err)
	return s
}

func synthFetch(t testing.TB, s *Synthetic, req FetchRequest) Page {
	t.Helper()
	page, err := s.Fetch(context.Background(), req)
	require.NoError(t, err)
	return page
}

func TestSyntheticDeterministic(t *testing.T) {
	t.Parallel()

	start := FloorTime(synthNow, time.Minute).Add(-3 * time.Hour)
	req := FetchRequest{End: synthNow, Granularity: "1m", Kind: KindCandle, Start: start, Subject: "BTCUSDT"}
	a := synthFetch(t, newTestSynthetic(t, synthNow, nil), req)
	b := synthFetch(t, newTestSynthetic(t, synthNow, nil), req)
	require.Equal(t, 180, len(a.Records))
	require.Equal(t, a, b, "same seed, same market")

	c := synthFetch(t, newTestSynthetic(t, synthNow, Options{"seed": "7"}), req)
	require.NotEqual(t, a.Records[100].Values, c.Records[100].Values, "another seed, another market")

	d := synthFetch(t, newTestSynthetic(t, synthNow, Options{"seed": "not-a-number"}), req)
	e := synthFetch(t, newTestSynthetic(t, synthNow, Options{"seed": "not-a-number"}), req)
	require.Equal(t, d, e, "string seeds are hashed, still deterministic")

	eth := synthFetch(t, newTestSynthetic(t, synthNow, nil), FetchRequest{End: req.End, Granularity: "1m", Kind: KindCandle, Start: req.Start, Subject: "ETHUSDT"})
	require.NotEqual(t, a.Records[0].Values, eth.Records[0].Values, "subjects are independent")

	t.Run("OverlapAndOrder", func(t *testing.T) {
		t.Parallel()
		// Fetching pieces in any order, or after a "restart" (a new
		// provider), gives the same records as one big fetch.
		s := newTestSynthetic(t, synthNow, nil)
		later := synthFetch(t, s, FetchRequest{End: req.End, Granularity: "1m", Kind: KindCandle, Start: req.Start.Add(90 * time.Minute), Subject: "BTCUSDT"})
		restarted := newTestSynthetic(t, synthNow.Add(24*time.Hour), nil)
		earlier := synthFetch(t, restarted, FetchRequest{End: req.Start.Add(120 * time.Minute), Granularity: "1m", Kind: KindCandle, Start: req.Start, Subject: "BTCUSDT"})
		require.Equal(t, a.Records[90:], later.Records)
		require.Equal(t, a.Records[:121], earlier.Records)
	})

	t.Run("Latest", func(t *testing.T) {
		t.Parallel()
		s := newTestSynthetic(t, synthNow, nil)
		recs, err := s.Latest(context.Background(), "BTCUSDT", KindCandle, "1m")
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, time.Date(2026, 3, 10, 11, 59, 0, 0, time.UTC), recs[0].TsEvent, "the last closed minute")
		require.Equal(t, a.Records[len(a.Records)-1], recs[0])

		ticks, err := s.Latest(context.Background(), "BTCUSDT", KindTick, "1s")
		require.NoError(t, err)
		require.Equal(t, synthNow, ticks[0].TsEvent)

		_, err = s.Latest(context.Background(), "BTCUSDT", "depth", "1s")
		require.ErrorIs(t, err, ErrUnsupported)
		_, err = s.Latest(context.Background(), "BTCUSDT", KindTick, "1q")
		require.ErrorContains(t, err, "granularity")
	})
}

func TestSyntheticGranularitiesAgree(t *testing.T) {
	t.Parallel()

	s := newTestSynthetic(t, synthNow, nil)
	start := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	minutes := synthFetch(t, s, FetchRequest{End: start.Add(9 * time.Minute), Granularity: "1m", Kind: KindCandle, Start: start, Subject: "BTCUSDT"}).Records
	ticks := synthFetch(t, s, FetchRequest{End: start.Add(10 * time.Minute), Granularity: "1s", Kind: KindTick, Start: start, Subject: "BTCUSDT"}).Records
	seconds := synthFetch(t, s, FetchRequest{End: start.Add(10*time.Minute - time.Second), Granularity: "1s", Kind: KindCandle, Start: start, Subject: "BTCUSDT"}).Records
	fiveMin := synthFetch(t, s, FetchRequest{End: start.Add(5 * time.Minute), Granularity: "5m", Kind: KindCandle, Start: start, Subject: "BTCUSDT"}).Records
	require.Len(t, minutes, 10)
	require.Len(t, ticks, 601)
	require.Len(t, seconds, 600)
	require.Len(t, fiveMin, 2)

	for i, m := range minutes {
		require.Equal(t, ticks[i*60].Values["price"], m.Values["open"], "1m open = 1s price at its start")
		require.Equal(t, ticks[(i+1)*60].Values["price"], m.Values["close"], "1m close = 1s price at its end")
		require.Equal(t, seconds[i*60].Values["open"], m.Values["open"])
		if i > 0 {
			require.Equal(t, minutes[i-1].Values["close"], m.Values["open"], "close = next open")
		}
	}
	require.Equal(t, minutes[0].Values["open"], fiveMin[0].Values["open"])
	require.Equal(t, minutes[4].Values["close"], fiveMin[0].Values["close"])
}

func TestSyntheticRealistic(t *testing.T) {
	t.Parallel()

	anchor := synthDefaultAnchor
	s := newTestSynthetic(t, anchor.Add(8*24*time.Hour), nil)

	atAnchor := synthFetch(t, s, FetchRequest{End: anchor, Granularity: "1s", Kind: KindTick, Start: anchor, Subject: "BTCUSDT"}).Records
	require.InDelta(t, 60000, atAnchor[0].Values["price"], 1e-6, "price equals the start price at the anchor")
	eth := synthFetch(t, s, FetchRequest{End: anchor, Granularity: "1s", Kind: KindTick, Start: anchor, Subject: "Crypto.ETH/USD"}).Records
	require.InDelta(t, 3000, eth[0].Values["price"], 1e-6)
	other := synthFetch(t, s, FetchRequest{End: anchor, Granularity: "1s", Kind: KindTick, Start: anchor, Subject: "FOO"}).Records
	require.InDelta(t, 100, other[0].Values["price"], 1e-9)

	// A week of 1m candles: sane OHLC and the configured volatility.
	var logReturns []float64
	var prev float64
	err := FetchAll(context.Background(), s, FetchRequest{End: anchor.Add(7*24*time.Hour - time.Minute), Granularity: "1m", Kind: KindCandle, Start: anchor, Subject: "BTCUSDT"}, func(page []Record, _ bool) error {
		for _, r := range page {
			v := r.Values
			for _, k := range []string{"open", "high", "low", "close", "volume"} {
				require.True(t, finite(v[k]) && v[k] > 0, "%s = %g", k, v[k])
			}
			require.GreaterOrEqual(t, v["high"], math.Max(v["open"], v["close"]))
			require.LessOrEqual(t, v["low"], math.Min(v["open"], v["close"]))
			require.Greater(t, v["close"], 30000.0)
			require.Less(t, v["close"], 120000.0)
			if prev != 0 {
				require.Equal(t, prev, v["open"])
			}
			prev = v["close"]
			logReturns = append(logReturns, math.Log(v["close"]/v["open"]))
		}
		return nil
	})
	require.NoError(t, err)
	require.Len(t, logReturns, 7*24*60)
	var sum, sumSq float64
	for _, r := range logReturns {
		sum += r
		sumSq += r * r
	}
	n := float64(len(logReturns))
	variance := sumSq/n - (sum/n)*(sum/n)
	annualVol := math.Sqrt(variance * secondsPerYear / 60)
	require.InDelta(t, 0.6, annualVol, 0.03, "realised volatility matches the option")

	t.Run("Options", func(t *testing.T) {
		t.Parallel()
		s := newTestSynthetic(t, anchor.Add(time.Hour), Options{"start_price_btcusdt": "100000", "start_price": "5", "volatility": "0"})
		btc := synthFetch(t, s, FetchRequest{End: anchor.Add(30 * time.Minute), Granularity: "1m", Kind: KindCandle, Start: anchor, Subject: "BTCUSDT"}).Records
		for _, r := range btc {
			require.InDelta(t, 100000, r.Values["close"], 1e-6, "zero volatility, zero drift: flat")
			require.InDelta(t, 100000, r.Values["high"], 1e-6)
		}
		other := synthFetch(t, s, FetchRequest{End: anchor, Granularity: "1s", Kind: KindTick, Start: anchor, Subject: "SOLUSDT"}).Records
		require.InDelta(t, 5, other[0].Values["price"], 1e-9)

		drift := newTestSynthetic(t, anchor.Add(400*24*time.Hour), Options{"drift": "0.5", "volatility": "0"})
		yearLater := anchor.Add(time.Duration(secondsPerYear) * time.Second)
		recs := synthFetch(t, drift, FetchRequest{End: yearLater, Granularity: "1s", Kind: KindTick, Start: yearLater, Subject: "BTCUSDT"}).Records
		require.InDelta(t, 60000*math.Exp(0.5), recs[0].Values["price"], 1e-6)

		anchored := newTestSynthetic(t, synthNow, Options{"anchor": "2026-03-10T00:00:00Z"})
		at := synthFetch(t, anchored, FetchRequest{End: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), Granularity: "1h", Kind: KindTick, Start: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), Subject: "BTCUSDT"}).Records
		require.InDelta(t, 60000, at[0].Values["price"], 1e-6)
	})
}

func TestSyntheticRange(t *testing.T) {
	t.Parallel()

	s := newTestSynthetic(t, synthNow, nil)
	tests := []struct {
		name      string
		req       FetchRequest
		wantLen   int
		wantFirst time.Time
		wantLast  time.Time
		wantMore  bool
	}{
		{
			name:    "FutureCapped",
			req:     FetchRequest{End: synthNow.Add(time.Hour), Granularity: "1m", Kind: KindCandle, Start: synthNow.Add(-10 * time.Minute), Subject: "X"},
			wantLen: 9, wantFirst: time.Date(2026, 3, 10, 11, 51, 0, 0, time.UTC), wantLast: time.Date(2026, 3, 10, 11, 59, 0, 0, time.UTC),
		},
		{
			name:    "LimitAndMore",
			req:     FetchRequest{Granularity: "1m", Kind: KindCandle, Limit: 5, Start: synthNow.Add(-10 * time.Minute), Subject: "X"},
			wantLen: 5, wantFirst: time.Date(2026, 3, 10, 11, 51, 0, 0, time.UTC), wantLast: time.Date(2026, 3, 10, 11, 55, 0, 0, time.UTC), wantMore: true,
		},
		{
			name:    "NoStart",
			req:     FetchRequest{Granularity: "1h", Kind: KindCandle, Limit: 3, Subject: "X"},
			wantLen: 3, wantFirst: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), wantLast: time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC),
		},
		{
			name:    "StartInFuture",
			req:     FetchRequest{Granularity: "1m", Kind: KindCandle, Start: synthNow.Add(time.Minute), Subject: "X"},
			wantLen: 0,
		},
		{
			name:    "TicksIncludeCurrentSecond",
			req:     FetchRequest{Granularity: "1s", Kind: KindTick, Start: synthNow.Add(-2 * time.Second), Subject: "X"},
			wantLen: 3, wantFirst: synthNow.Add(-2 * time.Second), wantLast: synthNow,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page := synthFetch(t, s, tt.req)
			require.Equal(t, tt.wantLen, len(page.Records))
			require.Equal(t, tt.wantMore, page.More)
			if tt.wantLen > 0 {
				require.Equal(t, tt.wantFirst, page.Records[0].TsEvent)
				require.Equal(t, tt.wantLast, page.Records[tt.wantLen-1].TsEvent)
			}
			if page.More {
				require.Equal(t, page.Records[len(page.Records)-1].TsEvent.Add(time.Minute), page.Next)
			}
		})
	}

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		_, err := s.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: "depth", Subject: "X"})
		require.ErrorIs(t, err, ErrUnsupported)
		_, err = s.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle})
		require.ErrorContains(t, err, "subject is empty")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = s.Fetch(ctx, FetchRequest{Granularity: "1m", Kind: KindCandle, Subject: "X"})
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestNewSyntheticOptions(t *testing.T) {
	t.Parallel()

	for name, opts := range map[string]Options{
		"AnchorGarbage":     {"anchor": "yesterday"},
		"AnchorNegative":    {"anchor": "-5"},
		"DriftHuge":         {"drift": "100"},
		"NotionalNegative":  {"notional_per_second": "-1"},
		"StartPriceBad":     {"start_price_btc": "-3"},
		"StartPriceNeg":     {"start_price": "-1"},
		"VolatilityNotNum":  {"volatility": "high"},
		"VolatilityNegativ": {"volatility": "-0.1"},
	} {
		_, err := NewSynthetic(Config{Options: opts})
		require.Error(t, err, name)
		require.ErrorContains(t, err, "configuring synthetic", name)
	}

	s := newTestSynthetic(t, synthNow, Options{"subjects": " BTC , ,SOLUSDT"})
	subjects, err := s.ListSubjects(context.Background())
	require.NoError(t, err)
	require.Len(t, subjects, 2)
	require.Equal(t, "BTC", subjects[0].Symbol)
	require.InDelta(t, 150.0, subjects[1].Meta["start_price"], 0)
}

func TestBrownianWalkerCacheIsTransparent(t *testing.T) {
	t.Parallel()

	// The cached walker must return exactly what a fresh walk returns, in
	// any query order.
	points := []uint64{1_773_144_030, 5, 1_773_144_031, 1_773_144_030, 1<<40 + 3, 0, 1_773_100_000, 1<<41 - 1}
	cached := brownianWalker{key: 99}
	for _, n := range points {
		fresh := brownianWalker{key: 99}
		require.Equal(t, fresh.at(n), cached.at(n), "n=%d", n)
	}
	fresh := brownianWalker{key: 99}
	require.Zero(t, fresh.at(0), "W(0) = 0")
}

func BenchmarkSyntheticFetch(b *testing.B) {
	for _, gran := range []string{"1s", "1m", "1d"} {
		b.Run(gran, func(b *testing.B) {
			s := newTestSynthetic(b, synthNow, nil)
			step, err := ParseGranularity(gran)
			require.NoError(b, err)
			req := FetchRequest{Granularity: gran, Kind: KindCandle, Limit: 1000, Start: synthNow.Add(-1001 * step), Subject: "BTCUSDT"}
			b.ReportAllocs()
			for b.Loop() {
				page, err := s.Fetch(context.Background(), req)
				if err != nil || len(page.Records) != 1000 {
					b.Fatalf("fetch: %v, %d records", err, len(page.Records))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/candle")
		})
	}
}
