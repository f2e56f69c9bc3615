package feed

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"
)

func writeRead(t *testing.T, records []Record) []Record {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, WriteParquet(&buf, records))
	got, err := ReadParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	return got
}

func TestParquetRoundTrip(t *testing.T) {
	t.Parallel()

	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	candle := func(ts time.Time, c float64) Record {
		return Record{
			Source: "binance", Subject: "BTCUSDT", Kind: KindCandle, Granularity: "1m", TsEvent: ts,
			Values: map[string]float64{"open": 1, "high": 2, "low": 0.5, "close": c, "volume": 3},
			Meta:   map[string]any{"close_time": int64(ts.Add(time.Minute).UnixMilli() - 1), "trades": 7.0},
		}
	}
	records := []Record{
		candle(t0.Add(2*time.Minute), 1.3),
		candle(t0, 1.1),
		candle(t0.Add(time.Minute), 1.2),
		candle(t0, 1.15), // same ts_event: the last one wins
	}
	got := writeRead(t, records)
	require.Len(t, got, 3)
	require.Equal(t, []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)}, []time.Time{got[0].TsEvent, got[1].TsEvent, got[2].TsEvent})
	require.Equal(t, Record{
		Source: "binance", Subject: "BTCUSDT", Kind: KindCandle, Granularity: "1m", TsEvent: t0,
		Values: map[string]float64{"open": 1, "high": 2, "low": 0.5, "close": 1.15, "volume": 3},
		Meta:   map[string]any{"close_time": float64(t0.Add(time.Minute).UnixMilli() - 1), "trades": 7.0},
	}, got[0])

	t.Run("TicksAndNulls", func(t *testing.T) {
		t.Parallel()
		ts := time.Date(2026, 3, 10, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
		got := writeRead(t, []Record{
			{Source: "pyth", Subject: "BTC", Kind: KindTick, Granularity: "1s", TsEvent: ts, Values: map[string]float64{"price": 61369.9, "conf": math.NaN(), "close": math.Inf(1)}},
		})
		require.Len(t, got, 1)
		require.Equal(t, ts.UTC().Truncate(time.Microsecond), got[0].TsEvent, "microseconds, UTC")
		require.Equal(t, map[string]float64{"price": 61369.9}, got[0].Values, "non-finite values become null")
		require.Equal(t, map[string]any{"conf": nil}, got[0].Meta)
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		require.Empty(t, writeRead(t, nil))
	})

	t.Run("BadMeta", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		err := WriteParquet(&buf, []Record{{TsEvent: t0, Meta: map[string]any{"ch": make(chan int)}}})
		require.ErrorContains(t, err, "encoding meta")
	})

	t.Run("NotParquet", func(t *testing.T) {
		t.Parallel()
		_, err := ReadParquet(bytes.NewReader([]byte("PAR1 nope")), 9)
		require.ErrorContains(t, err, "reading parquet")
	})

	t.Run("Merge", func(t *testing.T) {
		t.Parallel()
		old := writeRead(t, []Record{candle(t0, 1.0), candle(t0.Add(time.Minute), 1.0)})
		merged := writeRead(t, append(old, candle(t0.Add(time.Minute), 2.0), candle(t0.Add(2*time.Minute), 3.0)))
		require.Len(t, merged, 3)
		require.InDelta(t, 2.0, merged[1].Values["close"], 0)
	})
}

func TestParquetSchema(t *testing.T) {
	t.Parallel()

	var buf bytes.Buffer
	require.NoError(t, WriteParquet(&buf, []Record{{Source: "s", Subject: "x", Kind: KindCandle, Granularity: "1m", TsEvent: time.Unix(1, 0), Values: map[string]float64{"close": 1}}}))
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)

	var names []string
	for _, field := range f.Schema().Fields() {
		names = append(names, field.Name())
	}
	require.Equal(t, []string{"ts_event", "source", "subject", "kind", "granularity", "open", "high", "low", "close", "volume", "meta"}, names)

	ts, ok := f.Schema().Lookup("ts_event")
	require.True(t, ok)
	tsType, ok := ts.Node.Type().LogicalType().Value.(*format.TimestampType)
	require.True(t, ok, "ts_event is a TIMESTAMP")
	require.True(t, tsType.IsAdjustedToUTC)
	require.Equal(t, "MICROS", tsType.Unit.String())

	for _, col := range []string{"open", "high", "low", "close", "volume"} {
		c, ok := f.Schema().Lookup(col)
		require.True(t, ok)
		require.True(t, c.Node.Optional(), col)
		require.Equal(t, parquet.DoubleType, c.Node.Type())
	}
	meta, ok := f.Schema().Lookup("meta")
	require.True(t, ok)
	_, isString := meta.Node.Type().LogicalType().Value.(*format.StringType)
	require.True(t, isString, "meta is a STRING")
	require.Equal(t, int64(1), f.NumRows())
}

func TestParquetFileName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "2026-03-09.parquet", ParquetFileName(time.Date(2026, 3, 10, 0, 30, 0, 0, time.FixedZone("X", 3600))))
}
