package predict

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/script"
)

// writeScript writes src to a .star file in a fresh directory and returns its path.
func writeScript(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "callables.star")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	return path
}

func loadFunc(t *testing.T, src, name string) *script.Func {
	t.Helper()
	fn, err := script.LoadSource("callables.star", []byte(src), name, script.Options{MaxSteps: 10_000})
	require.NoError(t, err)
	return fn
}

func testTick() *Tick {
	return &Tick{
		Input:    map[string]any{"symbol": "BTC", "asof_ts": int64(1700000060)},
		Scope:    map[string]any{"resolve_horizon_seconds": int64(60), "subject": "BTCUSDT"},
		ScopeKey: "btcusdt-60s",
		Slot:     time.Unix(1700000070, 0).UTC(),
		Subject:  "BTCUSDT",
		Symbol:   "BTC",
	}
}

func testRecords() []feed.Record {
	at := time.Unix(1700000000, 0).UTC()
	return []feed.Record{
		{Source: "binance", Subject: "BTCUSDT", Kind: "candle", Granularity: "1m", TsEvent: at, Values: map[string]float64{"close": 100}},
		{Source: "binance", Subject: "BTCUSDT", Kind: "candle", Granularity: "1m", TsEvent: at.Add(time.Minute), Values: map[string]float64{"close": 101.5}},
	}
}

func TestNewInputBuilder(t *testing.T) {
	t.Parallel()
	good := writeScript(t, "def build(records, context):\n    return {}\n")
	wrongArity := writeScript(t, "def build(a, b, c):\n    return {}\n")
	broken := writeScript(t, "def build(records):\n    return {\n")
	tests := []struct {
		name       string
		ref        string
		normalizer string
		wantErr    string
		wantName   string
	}{
		{name: "BadRef", ref: "build.star", wantErr: `INFERENCE_INPUT_BUILDER: script reference "build.star": want path/to/file.star:function`},
		{name: "Candle", ref: "candle", normalizer: "tick", wantName: "candle"},
		{name: "DefaultIsTheNormalizer", ref: "default", normalizer: "tick", wantName: "tick"},
		{name: "EmptyIsTheNormalizer", ref: "", normalizer: "candle", wantName: "candle"},
		{name: "MissingFile", ref: "/nonexistent/build.star:build", wantErr: "INFERENCE_INPUT_BUILDER: loading /nonexistent/build.star:build"},
		{name: "MissingFunction", ref: good + ":other", wantErr: `has no global "other" (globals: build)`},
		{name: "Script", ref: good + ":build"},
		{name: "SyntaxError", ref: broken + ":build", wantErr: "INFERENCE_INPUT_BUILDER: loading " + broken + ":build: " + broken + ":3:1"},
		{name: "Tick", ref: "tick", wantName: "tick"},
		{name: "UnknownName", ref: "ohlc", wantErr: `INFERENCE_INPUT_BUILDER: unknown input builder "ohlc" (want default, candle, tick or path/to/file.star:function)`},
		{name: "UnknownNormalizer", ref: "", normalizer: "depth", wantErr: `feed.normalizer: unknown feed normalizer "depth"`},
		{name: "WrongArity", ref: wrongArity + ":build", wantErr: "build takes 3 positional parameter(s), must accept 1 (want (records) or (records, context))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewInputBuilder(tt.ref, tt.normalizer, script.Options{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			if tt.wantName != "" {
				require.IsType(t, NormalizerInput{}, b)
				require.Equal(t, tt.wantName, b.(NormalizerInput).Normalizer.Name()) //nolint:forcetypeassert // checked above
				return
			}
			require.IsType(t, &StarlarkInput{}, b)
		})
	}
}

func TestNormalizerInputMapsTheSymbol(t *testing.T) {
	t.Parallel()
	b, err := NewInputBuilder("", "candle", script.Options{})
	require.NoError(t, err)
	input, err := b.Build(context.Background(), testRecords(), testTick())
	require.NoError(t, err)
	require.Equal(t, "BTC", input["symbol"])
	require.Len(t, input["candles_1m"], 2)
}

func TestStarlarkInputBuild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		want    map[string]any
		wantErr string
	}{
		{
			name: "Context",
			src: `def build(records, context):
    return {
        "closes": [r["values"]["close"] for r in records],
        "first": {k: records[0][k] for k in ("granularity", "kind", "source", "subject", "ts_event", "ts_event_ms")},
        "horizon": context["scope"]["resolve_horizon_seconds"],
        "scope_key": context["scope_key"],
        "slot_ts": context["slot_ts"],
        "subject": context["subject"],
        "symbol": context["symbol"],
    }
`,
			want: map[string]any{
				"closes": []any{100.0, 101.5},
				"first": map[string]any{
					"granularity": "1m", "kind": "candle", "source": "binance", "subject": "BTCUSDT",
					"ts_event": int64(1700000000), "ts_event_ms": int64(1700000000000),
				},
				"horizon": int64(60), "scope_key": "btcusdt-60s", "slot_ts": int64(1700000070),
				"subject": "BTCUSDT", "symbol": "BTC",
			},
		},
		{name: "ContextIsReadOnly", src: "def build(records, context):\n    context[\"scope\"][\"x\"] = 1\n    return {}\n", wantErr: "frozen"},
		{name: "RecordsOnly", src: "def build(records):\n    return {\"n\": len(records)}\n", want: map[string]any{"n": int64(2)}},
		{name: "NaN", src: "def build(records):\n    return {\"x\": float(\"nan\")}\n", wantErr: "callables.star:build returned non-finite number NaN at $.x"},
		{name: "NotADict", src: "def build(records):\n    return [1]\n", wantErr: "building the model input: callables.star:build returned list, want a dict"},
		{name: "NonStringKey", src: "def build(records):\n    return {1: 2}\n", wantErr: "returned a dict that cannot be sent: dict key 1 is a int, want string"},
		{name: "Raises", src: "def build(records):\n    fail(\"no candles\")\n", wantErr: "calling callables.star:build: callables.star:2:9: fail: no candles"},
		{name: "StepLimit", src: "def build(records):\n    while True:\n        pass\n", wantErr: script.ErrStepLimit.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewStarlarkInput(loadFunc(t, tt.src, "build"))
			require.NoError(t, err)
			got, err := b.Build(context.Background(), testRecords(), testTick())
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.ErrorContains(t, err, "building the model input")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			_, err = json.Marshal(got)
			require.NoError(t, err, "the input is stored as JSON")
		})
	}
}

func TestNewValidator(t *testing.T) {
	t.Parallel()
	good := writeScript(t, "def check(output):\n    return None\n")
	noParams := writeScript(t, "def check():\n    return None\n")
	tests := []struct {
		name     string
		ref      string
		schema   map[string]any
		wantErr  string
		wantType Validator
	}{
		{name: "BadSchema", ref: "default", schema: map[string]any{"type": 3}, wantErr: "output_schema"},
		{name: "Default", ref: "default", wantType: &SchemaValidator{}},
		{name: "Empty", ref: "", wantType: &SchemaValidator{}},
		{name: "MissingFile", ref: "/nonexistent/check.star:check", wantErr: "INFERENCE_OUTPUT_VALIDATOR: loading /nonexistent/check.star:check"},
		{name: "NoParams", ref: noParams + ":check", wantErr: "INFERENCE_OUTPUT_VALIDATOR: " + noParams + ":check: " + noParams + ":1:1: check takes 0 positional parameter(s), must accept 1 (want (output) or (output, context))"},
		{name: "Script", ref: good + ":check", wantType: &StarlarkValidator{}},
		{name: "Unknown", ref: "pydantic", wantErr: `INFERENCE_OUTPUT_VALIDATOR: unknown validator "pydantic" (want default or path/to/file.star:function)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewValidator(tt.ref, tt.schema, script.Options{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.IsType(t, tt.wantType, v)
		})
	}
}

func TestStarlarkValidatorClassify(t *testing.T) {
	t.Parallel()
	success := func(v any) modelrunner.Result {
		return modelrunner.Result{Model: &modelrunner.ModelInfo{ID: "m1"}, Status: modelrunner.StatusSuccess, Value: v}
	}
	tests := []struct {
		name       string
		src        string
		value      any
		wantReason string // empty: accepted
	}{
		{name: "AcceptEmptyString", src: "def check(output):\n    return \"\"\n", value: map[string]any{"value": 1.0}},
		{name: "AcceptNone", src: "def check(output):\n    return None\n", value: map[string]any{"value": 1.0}},
		{name: "AcceptTrue", src: "def check(output):\n    return True\n", value: map[string]any{"value": 1.0}},
		{
			name: "Context",
			src: `def check(output, context):
    if context["model_id"] != "m1" or context["input"]["symbol"] != "BTC" or context["scope_key"] != "btcusdt-60s":
        return "bad context: %r" % context
    return None
`,
			value: map[string]any{"value": 1.0},
		},
		{name: "NonObjectIsWrapped", src: "def check(output):\n    return \"result\" in output or \"no result\"\n", value: 0.25},
		{name: "RejectFalse", src: "def check(output):\n    return False\n", value: map[string]any{"value": 1.0}, wantReason: "output fails validation: rejected by callables.star:check"},
		{name: "RejectReason", src: "def check(output):\n    if abs(output[\"value\"]) > 1:\n        return \"value %s is outside [-1, 1]\" % output[\"value\"]\n", value: map[string]any{"value": 2.0}, wantReason: "output fails validation: value 2.0 is outside [-1, 1]"},
		{name: "ScriptError", src: "def check(output):\n    return output[\"value\"] > 0\n", value: map[string]any{"other": 1.0}, wantReason: `output fails validation: validator error: calling callables.star:check: callables.star:2:18: key "value" not in dict`},
		{name: "StepLimit", src: "def check(output):\n    while True:\n        pass\n", value: map[string]any{"value": 1.0}, wantReason: "validator error: calling callables.star:check: step limit exceeded"},
		{name: "WrongVerdict", src: "def check(output):\n    return 1\n", value: map[string]any{"value": 1.0}, wantReason: "validator error: callables.star:check returned int, want None, True, False or a reason string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewStarlarkValidator(loadFunc(t, tt.src, "check"))
			require.NoError(t, err)
			got := Classify(context.Background(), success(tt.value), v, testTick())
			if tt.wantReason == "" {
				require.Equal(t, StatusPending, got.Status, got.Reason)
				return
			}
			require.Equal(t, StatusFailed, got.Status)
			require.Contains(t, got.Reason, tt.wantReason)
			require.Equal(t, got.Reason, got.Output["_validation_error"])
			require.Equal(t, tt.value, got.Output["raw_output"], "the raw answer is kept")
		})
	}
}

func TestStarlarkValidatorSharesTheContextAcrossModels(t *testing.T) {
	t.Parallel()
	v, err := NewStarlarkValidator(loadFunc(t, "def check(output, context):\n    return context[\"model_id\"] == output[\"id\"] or \"wrong model\"\n", "check"))
	require.NoError(t, err)
	tick := testTick()
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, v.Validate(context.Background(), map[string]any{"id": id}, id, tick))
	}
	require.EqualError(t, v.Validate(context.Background(), map[string]any{"id": "a"}, "b", tick), "wrong model")
}
