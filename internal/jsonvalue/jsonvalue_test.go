package jsonvalue

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMarshalIsEncodingJSON: every value gives json.Marshal's bytes, or its error.
func TestMarshalIsEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value any
	}{
		{name: "Nil", value: nil},
		{name: "Bools", value: []any{true, false}},
		{name: "PlainString", value: "BTCUSDT-60s"},
		{name: "EscapedStrings", value: []any{"a\"b", `back\slash`, "tab\t", "<html>&", "é", "\u2028", "\x00", "bad\xff"}},
		{name: "Floats", value: []any{0.0, math.Copysign(0, -1), 1.0, -2.5, 100.123456789, 1e20, 1e21, 1e-6, 1e-7, 123456789e-15, math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-100}},
		{name: "Ints", value: []any{0, -7, int64(math.MaxInt64), int64(math.MinInt64)}},
		{name: "NestedObject", value: map[string]any{"z": 1.0, "a": map[string]any{"y": []any{}, "b": nil}, "m": []any{map[string]any{"k": "v"}}}},
		{name: "ManyKeys", value: map[string]any{"q": 1.0, "w": 2.0, "e": 3.0, "r": 4.0, "t": 5.0, "y": 6.0, "u": 7.0, "i": 8.0, "o": 9.0, "p": 10.0, "a": 11.0, "s": 12.0, "d": 13.0, "f": 14.0, "g": 15.0, "h": 16.0, "j": 17.0, "k": 18.0}},
		{name: "KeysNeedingEscapes", value: map[string]any{"<": 1.0, "a\"": 2.0, "é": 3.0}},
		{name: "NilMapAndSlice", value: []any{map[string]any(nil), []any(nil)}},
		{name: "OtherTypes", value: map[string]any{"n": json.Number("12.50"), "f32": float32(0.1), "ints": []int{1, 2}, "raw": json.RawMessage(`{ "x" : 1 }`)}},
		{name: "NaN", value: map[string]any{"v": math.NaN()}},
		{name: "Inf", value: []any{math.Inf(-1)}},
		{name: "BadNumber", value: json.Number("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, wantErr := json.Marshal(tt.value)
			got, err := Marshal(tt.value)
			if wantErr != nil {
				require.EqualError(t, err, wantErr.Error())
				return
			}
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
}

// FuzzMarshal compares with encoding/json on whatever a JSON decoder yields, and on
// arbitrary strings and floats.
func FuzzMarshal(f *testing.F) {
	f.Add([]byte(`{"symbol":"BTC","asof_ts":1764000000,"candles_1m":[{"ts":1,"open":100.5,"close":1e-7}]}`), "k<ey", 0.1)
	f.Add([]byte(`[1e21, -0, "\u2028", null, true]`), "\xff", 1e21)
	f.Fuzz(func(t *testing.T, doc []byte, s string, x float64) {
		var v any
		if json.Unmarshal(doc, &v) != nil {
			v = nil
		}
		for _, value := range []any{v, s, x, map[string]any{s: x, "v": v}} {
			want, wantErr := json.Marshal(value)
			got, err := Marshal(value)
			if wantErr != nil {
				require.Error(t, err)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		}
	})
}

func BenchmarkMarshalCandles(b *testing.B) {
	candles := make([]any, 120)
	for i := range candles {
		candles[i] = map[string]any{"close": 100.5 + float64(i%7), "high": 101.0, "low": 99.0, "open": 100.0, "ts": int64(1764000000 + i), "volume": 1.0}
	}
	input := map[string]any{"asof_ts": int64(1764000119), "candles_1m": candles, "symbol": "BTC"}
	b.Run("jsonvalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Marshal(input); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(input); err != nil {
				b.Fatal(err)
			}
		}
	})
}
