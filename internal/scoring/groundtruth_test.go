package scoring

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/script"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func candle(sec int, open, closePrice float64) FeedPoint {
	return FeedPoint{Subject: "BTCUSDT", TsEvent: at(sec), Values: map[string]float64{"close": closePrice, "open": open}}
}

func tick(sec int, p float64) FeedPoint {
	return FeedPoint{Subject: "BTCUSDT", TsEvent: at(sec), Values: map[string]float64{"price": p}}
}

func TestResolveDefault(t *testing.T) {
	t.Parallel()

	noGuard := GroundTruthConfig{}
	guard := GroundTruthConfig{MaxStalenessFraction: 0.2}
	tests := []struct {
		name      string
		cfg       GroundTruthConfig
		records   []FeedPoint
		horizon   int // seconds
		want      map[string]any
		wantCode  string
		wantRetry bool
		wantErr   string
	}{
		{
			name:    "CandleFieldsWinOverPrice",
			cfg:     noGuard,
			records: []FeedPoint{{Subject: "ETHUSDT", TsEvent: at(0), Values: map[string]float64{"close": 10, "price": 99}}, {Subject: "ETHUSDT", TsEvent: at(60), Values: map[string]float64{"close": 12, "price": 1}}},
			horizon: 60,
			want:    gt("ETHUSDT", at(60), 10, 12, 0.2, true),
		},
		{
			name:     "InfPrice",
			cfg:      noGuard,
			records:  []FeedPoint{candle(0, 100, 101), candle(60, 101, math.Inf(1))},
			horizon:  60,
			wantCode: CodeInvalidPrice,
		},
		{
			name:    "ManyCandlesFirstCloseToLastClose",
			cfg:     guard,
			records: []FeedPoint{candle(0, 90, 100), candle(60, 100, 104), candle(120, 104, 110)},
			horizon: 120,
			want:    gt("BTCUSDT", at(120), 100, 110, 0.1, true),
		},
		{
			name:    "ManyTicks",
			cfg:     guard,
			records: []FeedPoint{tick(0, 200), tick(30, 190), tick(59, 180)},
			horizon: 60,
			want:    gt("BTCUSDT", at(59), 200, 180, -0.1, false),
		},
		{
			name:     "MissingPrice",
			cfg:      noGuard,
			records:  []FeedPoint{{Subject: "BTCUSDT", TsEvent: at(0), Values: map[string]float64{"volume": 3}}, tick(60, 1)},
			horizon:  60,
			wantCode: CodeMissingPrice,
		},
		{
			name:     "NaNPrice",
			cfg:      noGuard,
			records:  []FeedPoint{tick(0, math.NaN()), tick(60, 1)},
			horizon:  60,
			wantCode: CodeInvalidPrice,
		},
		{
			name:    "NegativePrices",
			cfg:     noGuard,
			records: []FeedPoint{tick(0, -40), tick(60, -20)},
			horizon: 60,
			want:    gt("BTCUSDT", at(60), -40, -20, 0.5, true),
		},
		{
			name:      "NoRecords",
			cfg:       guard,
			horizon:   60,
			wantCode:  CodeNoRecords,
			wantRetry: true,
		},
		{
			name:    "OneCandleOpenToClose",
			cfg:     noGuard,
			records: []FeedPoint{candle(0, 100, 102)},
			horizon: 60,
			want:    gt("BTCUSDT", at(0), 100, 102, 0.02, true),
		},
		{
			name:    "OneTickIsFlat",
			cfg:     noGuard,
			records: []FeedPoint{tick(10, 50)},
			horizon: 60,
			want:    gt("BTCUSDT", at(10), 50, 50, 0.0, false),
		},
		{
			name:    "StaleBoundaryIsAllowed",
			cfg:     guard,
			records: []FeedPoint{tick(0, 100), tick(48, 101)}, // exactly 12 s
			horizon: 60,
			want:    gt("BTCUSDT", at(48), 100, 101, 0.01, true),
		},
		{
			name:    "StaleGuardDisabled",
			cfg:     noGuard,
			records: []FeedPoint{tick(0, 100), tick(1, 101)},
			horizon: 3600,
			want:    gt("BTCUSDT", at(1), 100, 101, 0.01, true),
		},
		{
			name:    "StaleGuardSkippedForZeroHorizon",
			cfg:     guard,
			records: []FeedPoint{tick(0, 100)},
			horizon: 0,
			want:    gt("BTCUSDT", at(0), 100, 100, 0.0, false),
		},
		{
			// A one-minute candle opening 60 s before the end covers the whole window:
			// measured from its close it is fresh. Python measured from the open and
			// rejected it.
			name:    "StaleGuardUsesCandleClose",
			cfg:     GroundTruthConfig{Granularity: time.Minute, MaxStalenessFraction: 0.2},
			records: []FeedPoint{candle(0, 100, 101), candle(60, 101, 103)},
			horizon: 120,
			want:    gt("BTCUSDT", at(60), 101, 103, 2.0/101, true),
		},
		{
			name:      "StaleGuardWithoutGranularity",
			cfg:       guard,
			records:   []FeedPoint{candle(0, 100, 101), candle(60, 101, 103)},
			horizon:   120,
			wantCode:  CodeStale,
			wantRetry: true,
		},
		{
			name:      "StaleTick",
			cfg:       guard,
			records:   []FeedPoint{tick(0, 100), tick(47, 101)}, // 13 s before the end, 12 s allowed
			horizon:   60,
			wantCode:  CodeStale,
			wantRetry: true,
		},
		{
			name:    "Unordered",
			cfg:     noGuard,
			records: []FeedPoint{tick(30, 100), tick(10, 101)},
			horizon: 60,
			wantErr: "feed records not ascending: record 1",
		},
		{
			// Python's `close or price` fell through to price=5; a present 0 is the value.
			name:     "ZeroCloseDoesNotFallThrough",
			cfg:      noGuard,
			records:  []FeedPoint{{Subject: "BTCUSDT", TsEvent: at(0), Values: map[string]float64{"close": 0, "price": 5}}, tick(60, 6)},
			horizon:  60,
			wantCode: CodeZeroEntry,
		},
		{
			name:     "ZeroEntryOneCandle",
			cfg:      noGuard,
			records:  []FeedPoint{candle(0, 0, 10)},
			horizon:  60,
			wantCode: CodeZeroEntry,
		},
		{
			name:    "ZeroResolvedIsAValue",
			cfg:     noGuard,
			records: []FeedPoint{tick(0, 10), tick(60, 0)},
			horizon: 60,
			want:    gt("BTCUSDT", at(60), 10, 0, -1.0, false),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := ResolveInput{PerformedAt: at(0), Records: tt.records, ResolvableAt: at(tt.horizon)}
			res, err := ResolveDefault(in, tt.cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			if tt.wantCode != "" {
				require.False(t, res.OK())
				require.Equal(t, tt.wantCode, res.Code)
				require.NotEmpty(t, res.Reason)
				require.Equal(t, tt.wantRetry, res.Retryable)
				require.Nil(t, res.GroundTruth)
				return
			}
			require.True(t, res.OK(), "unresolved: %s: %s", res.Code, res.Reason)
			require.Empty(t, res.Code)
			requireGroundTruth(t, tt.want, res.GroundTruth)

			// The interface form gives the same answer.
			res2, err := DefaultResolver{Config: tt.cfg}.Resolve(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, res, res2)
		})
	}
}

func gt(symbol string, asOf time.Time, entry, resolved, profit float64, up bool) map[string]any {
	return map[string]any{
		"asof_ts":        asOf.UnixMilli(),
		"direction_up":   up,
		"entry_price":    entry,
		"profit":         profit,
		"resolved_price": resolved,
		"symbol":         symbol,
	}
}

func requireGroundTruth(t *testing.T, want, got map[string]any) {
	t.Helper()
	require.InDelta(t, want["profit"], got["profit"], 1e-12)
	want, got = cloneWithout(want, "profit"), cloneWithout(got, "profit")
	require.Equal(t, want, got)
}

func cloneWithout(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func TestResolveDefaultStaleReason(t *testing.T) {
	t.Parallel()

	res, err := ResolveDefault(ResolveInput{PerformedAt: at(0), Records: []FeedPoint{tick(0, 1), tick(30, 2)}, ResolvableAt: at(60)},
		GroundTruthConfig{MaxStalenessFraction: 0.2})
	require.NoError(t, err)
	require.Equal(t, "newest record ends at 2026-03-01T12:00:30Z, 30s before resolvable_at; at most 12s (0.2 × 1m0s horizon) is allowed", res.Reason)
}

func TestGroundTruthConfigValidate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		cfg     GroundTruthConfig
		wantErr string
	}{
		{name: "Disabled", cfg: GroundTruthConfig{}},
		{name: "NaN", cfg: GroundTruthConfig{MaxStalenessFraction: math.NaN()}, wantErr: "max_staleness_fraction: NaN is outside [0, 1]"},
		{name: "NegativeGranularity", cfg: GroundTruthConfig{Granularity: -time.Second}, wantErr: "granularity: -1s is negative"},
		{name: "One", cfg: GroundTruthConfig{MaxStalenessFraction: 1}},
		{name: "TooLarge", cfg: GroundTruthConfig{MaxStalenessFraction: 1.5}, wantErr: "max_staleness_fraction: 1.5 is outside [0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

func loadFunc(t *testing.T, ref string, opts script.Options) *script.Func {
	t.Helper()
	r, err := script.ParseRef(ref)
	require.NoError(t, err)
	fn, err := script.LoadRef(r, opts)
	require.NoError(t, err)
	return fn
}

func TestStarlarkResolver(t *testing.T) {
	t.Parallel()

	records := []FeedPoint{candle(0, 100, 101), candle(60, 101, 104)}
	in := ResolveInput{PerformedAt: at(0), Prediction: map[string]any{"model_id": "m1"}, Records: records, ResolvableAt: at(60)}

	t.Run("BadType", func(t *testing.T) {
		t.Parallel()
		r, err := NewStarlarkResolver(loadFunc(t, "testdata/resolvers.star:bad_type", script.Options{}), GroundTruthConfig{})
		require.NoError(t, err)
		_, err = r.Resolve(context.Background(), in)
		require.ErrorContains(t, err, "testdata/resolvers.star:bad_type returned number, want a dict or None")
	})
	t.Run("NaN", func(t *testing.T) {
		t.Parallel()
		r, err := NewStarlarkResolver(loadFunc(t, "testdata/resolvers.star:nan", script.Options{}), GroundTruthConfig{})
		require.NoError(t, err)
		_, err = r.Resolve(context.Background(), in)
		require.ErrorContains(t, err, `returned ["target"]: NaN is not a finite number`)
	})
	t.Run("None", func(t *testing.T) {
		t.Parallel()
		r, err := NewStarlarkResolver(loadFunc(t, "testdata/resolvers.star:last_close", script.Options{}), GroundTruthConfig{})
		require.NoError(t, err)
		res, err := r.Resolve(context.Background(), ResolveInput{PerformedAt: at(0), ResolvableAt: at(60)})
		require.NoError(t, err)
		require.Equal(t, CodeResolverNone, res.Code)
		require.True(t, res.Retryable)
	})
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		r, err := NewStarlarkResolver(loadFunc(t, "testdata/resolvers.star:last_close", script.Options{}), GroundTruthConfig{})
		require.NoError(t, err)
		res, err := r.Resolve(context.Background(), in)
		require.NoError(t, err)
		require.Equal(t, map[string]any{
			"asof_s":  at(60).Unix(),
			"asof_ts": at(60).UnixMilli(),
			"model":   "m1",
			"n":       int64(2),
			"subject": "BTCUSDT",
			"target":  104.0,
		}, res.GroundTruth)
	})
	t.Run("StaleGuardRunsFirst", func(t *testing.T) {
		t.Parallel()
		r, err := NewStarlarkResolver(loadFunc(t, "testdata/resolvers.star:last_close", script.Options{}), GroundTruthConfig{MaxStalenessFraction: 0.1})
		require.NoError(t, err)
		stale := in
		stale.ResolvableAt = at(600)
		res, err := r.Resolve(context.Background(), stale)
		require.NoError(t, err)
		require.Equal(t, CodeStale, res.Code)
	})
	t.Run("WrongArity", func(t *testing.T) {
		t.Parallel()
		_, err := NewStarlarkResolver(loadFunc(t, "testdata/misbehave.star:wrong_arity", script.Options{}), GroundTruthConfig{})
		require.ErrorContains(t, err, "must accept 2")
	})
}

func TestNewResolver(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		ref      string
		cfg      GroundTruthConfig
		wantType any
		wantErr  string
	}{
		{name: "BadConfig", ref: "default", cfg: GroundTruthConfig{MaxStalenessFraction: 2}, wantErr: "max_staleness_fraction"},
		{name: "BadRef", ref: "resolvers.star", wantErr: "RESOLVE_GROUND_TRUTH: script reference"},
		{name: "Default", ref: "default", wantType: DefaultResolver{}},
		{name: "Empty", ref: "", wantType: DefaultResolver{}},
		{name: "MissingFile", ref: "testdata/none.star:f", wantErr: "RESOLVE_GROUND_TRUTH: loading testdata/none.star:f"},
		{name: "Script", ref: "testdata/resolvers.star:last_close", wantType: &StarlarkResolver{}},
		{name: "Unknown", ref: "fancy", wantErr: `unknown resolver "fancy"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewResolver(tt.ref, tt.cfg, script.Options{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.IsType(t, tt.wantType, r)
		})
	}
}
