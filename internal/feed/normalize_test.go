package feed

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func candleRec(subject string, ts time.Time, o, h, l, c, v float64) Record {
	return Record{
		Source: "binance", Subject: subject, Kind: KindCandle, Granularity: "1m", TsEvent: ts,
		Values: map[string]float64{"open": o, "high": h, "low": l, "close": c, "volume": v},
	}
}

func tickRec(subject string, ts time.Time, price float64) Record {
	return Record{Source: "pyth", Subject: subject, Kind: KindTick, Granularity: "1s", TsEvent: ts, Values: map[string]float64{"price": price}}
}

func TestNormalizerByName(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "", want: NormalizerCandle},
		{in: " Candle ", want: NormalizerCandle},
		{in: "candle", want: NormalizerCandle},
		{in: "depth", wantErr: true},
		{in: "tick", want: NormalizerTick},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			n, err := NormalizerByName(tt.in)
			if tt.wantErr {
				require.ErrorContains(t, err, `unknown feed normalizer "depth", want candle or tick`)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, n.Name())
		})
	}
}

func TestCandleNormalizer(t *testing.T) {
	t.Parallel()

	n, err := NormalizerByName(NormalizerCandle)
	require.NoError(t, err)
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	symbols := SymbolMap{"btcusdt": "BTC"}

	t.Run("Candles", func(t *testing.T) {
		t.Parallel()
		records := []Record{
			candleRec("BTCUSDT", t0.Add(time.Minute), 2, 3, 1, 2.5, 10),
			candleRec("BTCUSDT", t0, 1, 2, 0.5, 1.5, 5),
			candleRec("ETHUSDT", t0, 100, 100, 100, 100, 1),                                                                  // other subject
			candleRec("BTCUSDT", t0.Add(time.Minute), 2, 3, 1, 2.75, 11),                                                     // duplicate: last wins
			{Subject: "BTCUSDT", Kind: KindCandle, TsEvent: t0.Add(2 * time.Minute), Values: map[string]float64{"price": 3}}, // only a price
			candleRec("BTCUSDT", t0.Add(3*time.Minute), 1, 1, 1, math.NaN(), 1),                                              // no usable price
			tickRec("BTCUSDT", t0, 99),                                                                                       // ticks ignored when candles exist
		}
		got := n.Normalize("BTCUSDT", records, symbols)
		require.Equal(t, map[string]any{
			"asof_ts": t0.Add(2 * time.Minute).Unix(),
			"candles_1m": []any{
				map[string]any{"ts": t0.Unix(), "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 5.0},
				map[string]any{"ts": t0.Add(time.Minute).Unix(), "open": 2.0, "high": 3.0, "low": 1.0, "close": 2.75, "volume": 11.0},
				map[string]any{"ts": t0.Add(2 * time.Minute).Unix(), "open": 3.0, "high": 3.0, "low": 3.0, "close": 3.0, "volume": 0.0},
			},
			"symbol": "BTC",
		}, got)
	})

	t.Run("FromTicks", func(t *testing.T) {
		t.Parallel()
		records := []Record{
			tickRec("BTC", t0.Add(5*time.Second), 10),
			tickRec("BTC", t0.Add(20*time.Second), 12),
			tickRec("BTC", t0.Add(40*time.Second), 9),
			tickRec("BTC", t0.Add(59*time.Second), 11),
			tickRec("BTC", t0.Add(61*time.Second), 13),
			{Subject: "BTC", Kind: KindTick, TsEvent: t0.Add(62 * time.Second), Values: map[string]float64{"price": -1}},
		}
		got := n.Normalize("BTC", records, nil)
		require.Equal(t, map[string]any{
			"asof_ts": t0.Add(time.Minute).Unix(),
			"candles_1m": []any{
				map[string]any{"ts": t0.Unix(), "open": 10.0, "high": 12.0, "low": 9.0, "close": 11.0, "volume": 0.0},
				map[string]any{"ts": t0.Add(time.Minute).Unix(), "open": 13.0, "high": 13.0, "low": 13.0, "close": 13.0, "volume": 0.0},
			},
			"symbol": "BTC",
		}, got)
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		got := n.Normalize("BTCUSDT", nil, symbols)
		b, err := json.Marshal(got)
		require.NoError(t, err)
		require.JSONEq(t, `{"asof_ts":0,"candles_1m":[],"symbol":"BTC"}`, string(b))
	})
}

func TestTickNormalizer(t *testing.T) {
	t.Parallel()

	n, err := NormalizerByName(NormalizerTick)
	require.NoError(t, err)
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

	t.Run("Ticks", func(t *testing.T) {
		t.Parallel()
		got := n.Normalize("BTC", []Record{
			tickRec("BTC", t0.Add(2*time.Second), 11),
			tickRec("BTC", t0, 10),
			{Subject: "BTC", Kind: KindTick, TsEvent: t0.Add(3 * time.Second), Values: map[string]float64{"price": math.Inf(1)}},
			candleRec("BTC", t0, 1, 1, 1, 1, 1),
		}, SymbolMap{"BTC": "BTC-PERP"})
		require.Equal(t, map[string]any{
			"asof_ts": t0.Add(2 * time.Second).Unix(),
			"symbol":  "BTC-PERP",
			"ticks": []any{
				map[string]any{"ts": t0.Unix(), "price": 10.0},
				map[string]any{"ts": t0.Add(2 * time.Second).Unix(), "price": 11.0},
			},
		}, got)
	})

	t.Run("FromCandlesUsesCloseAtCloseTime", func(t *testing.T) {
		t.Parallel()
		got := n.Normalize("BTCUSDT", []Record{
			candleRec("BTCUSDT", t0.Add(time.Minute), 2, 3, 1, 2.5, 10),
			candleRec("BTCUSDT", t0, 1, 2, 0.5, 1.5, 5),
		}, nil)
		require.Equal(t, map[string]any{
			"asof_ts": t0.Add(2 * time.Minute).Unix(),
			"symbol":  "BTCUSDT",
			"ticks": []any{
				map[string]any{"ts": t0.Add(time.Minute).Unix(), "price": 1.5},
				map[string]any{"ts": t0.Add(2 * time.Minute).Unix(), "price": 2.5},
			},
		}, got)
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(n.Normalize("X", nil, nil))
		require.NoError(t, err)
		require.JSONEq(t, `{"asof_ts":0,"ticks":[],"symbol":"X"}`, string(b))
	})
}

func TestSymbolMap(t *testing.T) {
	t.Parallel()

	m := SymbolMap{"BTCUSDT": "BTC", "ethusdt": "ETH", "EMPTY": ""}
	require.Equal(t, "BTC", m.Symbol("BTCUSDT"))
	require.Equal(t, "BTC", m.Symbol("btcusdt"))
	require.Equal(t, "ETH", m.Symbol("ETHUSDT"))
	require.Equal(t, "EMPTY", m.Symbol("EMPTY"))
	require.Equal(t, "SOL", m.Symbol("SOL"))
	require.Equal(t, "SOL", SymbolMap(nil).Symbol("SOL"))
}
