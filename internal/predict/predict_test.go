package predict

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
)

func TestBuildScope(t *testing.T) {
	t.Parallel()
	scope := BuildScope(
		map[string]any{"step_seconds": 15, "subject": "ETHUSDT"},
		map[string]any{"subject": "BTCUSDT", "scope_key": "ignored"},
		90*time.Second,
		FeedDefaults{Source: "binance", Subject: "SOLUSDT", Kind: "candle", Granularity: "1m"},
	)
	require.Equal(t, map[string]any{
		"granularity": "1m", "kind": "candle", "resolve_horizon_seconds": int64(90),
		"source": "binance", "step_seconds": 15, "subject": "BTCUSDT",
	}, scope)
}

func TestArguments(t *testing.T) {
	t.Parallel()
	defaults := []config.CallArg{
		{Name: "subject", Type: "STRING"}, {Name: "resolve_horizon_seconds", Type: "INT"}, {Name: "step_seconds", Type: "INT"},
	}
	tests := []struct {
		name    string
		args    []config.CallArg
		scope   map[string]any
		want    []any
		wantErr string
	}{
		{
			name:  "Defaults",
			args:  defaults,
			scope: map[string]any{"subject": "BTC", "resolve_horizon_seconds": int64(60), "step_seconds": 15},
			want:  []any{"BTC", int64(60), int64(15)},
		},
		{name: "MissingIsZero", args: defaults, scope: map[string]any{}, want: []any{"", int64(0), int64(0)}},
		{name: "WholeFloatToInt", args: []config.CallArg{{Name: "n", Type: "INT"}}, scope: map[string]any{"n": 3.0}, want: []any{int64(3)}},
		{name: "FractionToIntFails", args: []config.CallArg{{Name: "n", Type: "INT"}}, scope: map[string]any{"n": 3.5}, wantErr: "argument n (INT)"},
		{name: "Double", args: []config.CallArg{{Name: "x", Type: "DOUBLE"}}, scope: map[string]any{"x": 2}, want: []any{2.0}},
		{name: "JSON", args: []config.CallArg{{Name: "f", Type: "JSON"}}, scope: map[string]any{"f": map[string]any{"a": 1}}, want: []any{json.RawMessage(`{"a":1}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Arguments(tt.args, tt.scope)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	validator, err := NewSchemaValidator(map[string]any{
		"type": "object", "required": []any{"value"},
		"properties": map[string]any{"value": map[string]any{"type": "number"}},
	})
	require.NoError(t, err)
	model := modelrunner.ModelInfo{ID: "m1"}
	success := func(v any) modelrunner.Result {
		return modelrunner.Result{Model: &model, Status: modelrunner.StatusSuccess, Value: v, ExecTime: 1500 * time.Microsecond}
	}
	tests := []struct {
		name       string
		result     modelrunner.Result
		wantStatus string
		wantReason string
		wantOutput map[string]any
	}{
		{name: "Valid", result: success(map[string]any{"value": 0.5}), wantStatus: StatusPending, wantOutput: map[string]any{"value": 0.5}},
		{name: "ExtraKeysKept", result: success(map[string]any{"value": 1.0, "note": "x"}), wantStatus: StatusPending, wantOutput: map[string]any{"value": 1.0, "note": "x"}},
		{name: "NaN", result: success(map[string]any{"value": math.NaN()}), wantStatus: StatusFailed, wantReason: "non-finite"},
		{name: "WrongType", result: success(map[string]any{"value": "high"}), wantStatus: StatusFailed, wantReason: "/value"},
		{name: "MissingField", result: success(map[string]any{"other": 1.0}), wantStatus: StatusFailed, wantReason: "value"},
		{name: "NotAnObject", result: success(0.3), wantStatus: StatusFailed, wantReason: "validation"},
		{name: "ModelFailed", result: modelrunner.Result{Model: &model, Status: modelrunner.StatusFailed, Err: errors.New("BAD_IMPLEMENTATION")}, wantStatus: StatusFailed, wantReason: "failed: BAD_IMPLEMENTATION"},
		{name: "Timeout", result: modelrunner.Result{Model: &model, Status: modelrunner.StatusTimeout, Err: errors.New("deadline")}, wantStatus: StatusFailed, wantReason: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Classify(context.Background(), tt.result, validator, &Tick{})
			require.Equal(t, tt.wantStatus, got.Status)
			require.Equal(t, "m1", got.ModelID)
			require.Contains(t, got.Reason, tt.wantReason)
			if tt.wantOutput != nil {
				require.Equal(t, tt.wantOutput, got.Output)
			}
			if got.Status == StatusFailed && tt.result.Status == modelrunner.StatusSuccess {
				require.Contains(t, got.Output, "raw_output", "a rejected answer is kept")
				_, err := json.Marshal(got.Output)
				require.NoError(t, err, "a rejected answer is storable as JSON, NaN included")
			}
		})
	}
	require.InDelta(t, 1.5, Classify(context.Background(), success(map[string]any{"value": 1.0}), validator, &Tick{}).ExecTimeMs, 1e-9)
}

func TestPredictionID(t *testing.T) {
	t.Parallel()
	slot := time.Date(2026, 11, 24, 12, 0, 15, 0, time.UTC)
	require.Equal(t, "PRE_m1_btc_60s_20261124_120015.000", PredictionID(StatusPending, "m1", "btc/60s", slot))
	require.Equal(t, "ABS_m1_btc-60s_20261124_120015.000", PredictionID(StatusAbsent, "m1", "btc-60s", slot))
	require.Equal(t, "INP_7_20261124_120015.000", InputID(7, slot))
}

// TestSchemaValidatorJudgesTheJSON: an output is judged as the JSON the model sent,
// whether it is checked as decoded (a float by its shortest decimal: 0.1 is a multiple of
// 0.01) or, holding types a decoder never yields, after a round trip through
// encoding/json.
func TestSchemaValidatorJudgesTheJSON(t *testing.T) {
	t.Parallel()
	validator, err := NewSchemaValidator(map[string]any{
		"type": "object",
		"properties": map[string]any{
			"step":   map[string]any{"multipleOf": 0.01},
			"count":  map[string]any{"type": "integer"},
			"huge":   map[string]any{"maximum": 1e21},
			"tiny":   map[string]any{"exclusiveMinimum": 0},
			"values": map[string]any{"type": "array", "items": map[string]any{"type": "number"}},
		},
	})
	require.NoError(t, err)
	tests := []struct {
		name    string
		output  map[string]any
		wantErr string
	}{
		{name: "DecimalMultiple", output: map[string]any{"step": 0.1}},
		{name: "NotAMultiple", output: map[string]any{"step": 0.015}, wantErr: "/step"},
		{name: "IntegralFloat", output: map[string]any{"count": 2.0}},
		{name: "Fraction", output: map[string]any{"count": 2.5}, wantErr: "/count"},
		{name: "ExponentLarge", output: map[string]any{"huge": 1e21}},
		{name: "ExponentTooLarge", output: map[string]any{"huge": 2e21}, wantErr: "/huge"},
		{name: "ExponentSmall", output: map[string]any{"tiny": 1e-7}},
		{name: "Nested", output: map[string]any{"values": []any{1.5, json.Number("2")}}},
		{name: "NestedWrongType", output: map[string]any{"values": []any{1.5, "x"}}, wantErr: "/values/1"},
		{name: "RoundTripForOtherTypes", output: map[string]any{"count": 3, "values": []float64{1, 2}}},
		{name: "RoundTripStillJudges", output: map[string]any{"count": 3, "values": []string{"x"}}, wantErr: "/values/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := validator.Check(tt.output)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
