package scoring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/script"
)

func returning(out map[string]any) Scorer {
	return ScorerFunc(func(context.Context, Item) (map[string]any, error) { return out, nil })
}

func TestScoreOne(t *testing.T) {
	t.Parallel()

	long := strings.Repeat("é", MaxFailedReasonLen)
	tests := []struct {
		name       string
		scorer     Scorer
		wantValue  float64
		wantExtra  map[string]any
		wantReason string // empty means success
	}{
		{name: "Error", scorer: ScorerFunc(func(context.Context, Item) (map[string]any, error) { return nil, errors.New("bad input") }), wantReason: "bad input"},
		{name: "ExtraChan", scorer: returning(map[string]any{"value": 1.0, "c": make(chan int)}), wantReason: `score field "c": unsupported type chan int`},
		{name: "ExtraFieldsKept", scorer: returning(map[string]any{"value": 2, "hit": true, "note": "x", "parts": []any{1.0, nil}}), wantValue: 2, wantExtra: map[string]any{"hit": true, "note": "x", "parts": []any{1.0, nil}}},
		{name: "ExtraNestedInf", scorer: returning(map[string]any{"value": 1.0, "d": map[string]any{"xs": []any{0.0, math.Inf(1)}}}), wantReason: `score field "d"["xs"][1]: +Inf is not a finite number`},
		{name: "FailedReasonNotString", scorer: returning(map[string]any{"value": 1.0, "failed_reason": 3}), wantReason: `score "failed_reason" is number, want a string or None`},
		{name: "FailedReasonNoneOnSuccess", scorer: returning(map[string]any{"value": 1.0, "success": true, "failed_reason": nil}), wantValue: 1},
		{name: "InfValue", scorer: returning(map[string]any{"value": math.Inf(-1)}), wantReason: `score "value" is -Inf`},
		{name: "LongReasonTruncated", scorer: ScorerFunc(func(context.Context, Item) (map[string]any, error) { return nil, errors.New(long) }), wantReason: long[:MaxFailedReasonLen] + "…"},
		{name: "MissingValue", scorer: returning(map[string]any{"score": 1.0}), wantReason: `score has no "value" field`},
		{name: "NaNValue", scorer: returning(map[string]any{"value": math.NaN()}), wantReason: `score "value" is NaN`},
		{name: "NilDict", scorer: returning(nil), wantReason: "scorer returned no score dict"},
		{name: "NilValue", scorer: returning(map[string]any{"value": nil}), wantReason: `score "value" is None, want a number`},
		{name: "Panic", scorer: ScorerFunc(func(context.Context, Item) (map[string]any, error) { panic("index out of range") }), wantReason: "scorer panicked: index out of range"},
		{name: "SelfReportedFailure", scorer: returning(map[string]any{"value": 5.0, "success": false, "failed_reason": "out of range"}), wantReason: "out of range"},
		{name: "SelfReportedFailureNoReason", scorer: returning(map[string]any{"value": 5.0, "success": false}), wantReason: "scorer reported failure without a reason"},
		{name: "SuccessNotBool", scorer: returning(map[string]any{"value": 1.0, "success": 1}), wantReason: `score "success" is number, want a bool`},
		{name: "ValueBool", scorer: returning(map[string]any{"value": true}), wantReason: `score "value" is bool, want a number`},
		{name: "ValueInt", scorer: returning(map[string]any{"value": int64(3)}), wantValue: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			it := Item{ModelID: "m", PredictionID: "p"}
			res := ScoreOne(context.Background(), tt.scorer, it)
			require.Equal(t, "m", res.ModelID)
			require.Equal(t, "p", res.PredictionID)
			if tt.wantReason != "" {
				require.False(t, res.Success)
				require.Zero(t, res.Value)
				require.Nil(t, res.Extra)
				require.Equal(t, tt.wantReason, res.FailedReason)
				return
			}
			require.True(t, res.Success, res.FailedReason)
			require.Empty(t, res.FailedReason)
			require.Equal(t, tt.wantValue, res.Value)
			require.Equal(t, tt.wantExtra, res.Extra)
		})
	}
}

// poisonScorer scores like pnl but misbehaves on marked predictions.
func poisonScorer() Scorer {
	return ScorerFunc(func(ctx context.Context, it Item) (map[string]any, error) {
		switch it.Prediction["poison"] {
		case "panic":
			var xs []int
			_ = xs[len(it.PredictionID)] // a genuine runtime panic: index out of range
		case "nan":
			return map[string]any{"value": math.NaN()}, nil
		case "error":
			return nil, errors.New("cannot score")
		}
		return PnL{}.Score(ctx, it)
	})
}

func TestScoreBatchPoisonedItems(t *testing.T) {
	t.Parallel()

	poison := map[int]string{3: "panic", 200: "nan", 511: "error", 999: "panic"}
	items := make([]Item, 1000)
	for i := range items {
		pred := map[string]any{"value": float64(i)}
		if p, ok := poison[i]; ok {
			pred["poison"] = p
		}
		items[i] = Item{GroundTruth: groundTruthFor(100, 101), Prediction: pred, PredictionID: fmt.Sprint(i)}
	}
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("Workers%d", workers), func(t *testing.T) {
			t.Parallel()
			results := scoreBatch(context.Background(), poisonScorer(), items, workers)
			require.Len(t, results, len(items))
			for i, r := range results {
				require.Equal(t, fmt.Sprint(i), r.PredictionID, "results must keep input order")
				if _, bad := poison[i]; bad {
					require.False(t, r.Success, "item %d", i)
					require.NotEmpty(t, r.FailedReason)
					continue
				}
				require.True(t, r.Success, "item %d: %s", i, r.FailedReason)
				require.InDelta(t, float64(i)*100, r.Value, 1e-6)
			}
			require.Contains(t, results[3].FailedReason, "scorer panicked: runtime error: index out of range [1] with length 0")
			require.Equal(t, `score "value" is NaN`, results[200].FailedReason)
			require.Equal(t, "cannot score", results[511].FailedReason)
		})
	}
}

func TestScoreBatchDefaultAndEmpty(t *testing.T) {
	t.Parallel()

	require.Empty(t, ScoreBatch(context.Background(), PnL{}, nil))
	res := ScoreBatch(context.Background(), PnL{}, []Item{{GroundTruth: groundTruthFor(100, 110), Prediction: map[string]any{"value": 1.0}}})
	require.Len(t, res, 1)
	require.True(t, res[0].Success)
	require.InDelta(t, 1000.0, res[0].Value, 1e-9)
}

func TestScoreBatchCanceled(t *testing.T) {
	t.Parallel()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	items := make([]Item, 300)
	for _, r := range ScoreBatch(ctx, PnL{}, items) {
		require.False(t, r.Success)
		require.Equal(t, "not scored: context canceled", r.FailedReason)
	}
}

func starlarkScorer(t *testing.T, ref string, opts script.Options) Scorer {
	t.Helper()
	s, err := NewRegistry().Scorer(ref, opts)
	require.NoError(t, err)
	return s
}

func TestStarlarkScorerIsolation(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		fn         string
		opts       script.Options
		value      float64
		wantValue  float64
		wantExtra  map[string]any
		wantReason []string // empty means success
	}{
		{name: "Constant", fn: "constant", value: 1, wantValue: 0},
		{name: "EchoIDs", fn: "echo_ids", value: 1, wantValue: 1, wantExtra: map[string]any{"model_id": "model-7", "prediction_id": "PRE_1"}},
		{name: "ExtraFields", fn: "extra_fields", value: -2, wantValue: -2, wantExtra: map[string]any{"abs": 2.0, "hit": false, "note": "ok"}},
		{name: "NaNExtra", fn: "nan_extra", value: 1, wantReason: []string{`score field "detail"[1]: +Inf is not a finite number`}},
		{name: "NaNValue", fn: "nan_value", value: 1, wantReason: []string{`score "value" is NaN`}},
		{name: "NoValue", fn: "no_value", value: 1, wantReason: []string{`score has no "value" field`}},
		{name: "NonDict", fn: "non_dict", value: 1, wantReason: []string{"testdata/misbehave.star:non_dict returned list, want a dict"}},
		{name: "None", fn: "none", value: 1, wantReason: []string{"testdata/misbehave.star:none returned None, want a dict"}},
		{name: "Raises", fn: "raises", value: -1, wantReason: []string{"calling testdata/misbehave.star:raises: testdata/misbehave.star:34:13:", "negative predictions are not allowed"}},
		{name: "RaisesNotOnGoodInput", fn: "raises", value: 4, wantValue: 4},
		{name: "ReportsFailure", fn: "reports_failure", value: 1, wantReason: []string{"model output out of range"}},
		{name: "StepLimit", fn: "spin", opts: script.Options{MaxSteps: 10_000}, value: 1, wantReason: []string{"step limit exceeded (10000 steps) at testdata/misbehave.star:"}},
		{name: "StringValue", fn: "string_value", value: 1, wantReason: []string{`score "value" is string, want a number`}},
		{name: "Timeout", fn: "spin", opts: script.Options{MaxSteps: math.MaxUint64, Timeout: 20 * time.Millisecond}, value: 1, wantReason: []string{"time limit exceeded (20ms)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := starlarkScorer(t, "testdata/misbehave.star:"+tt.fn, tt.opts)
			res := ScoreOne(context.Background(), s, Item{
				GroundTruth:  groundTruthFor(100, 101),
				ModelID:      "model-7",
				Prediction:   map[string]any{"model_id": "spoofed", "value": tt.value},
				PredictionID: "PRE_1",
			})
			if len(tt.wantReason) > 0 {
				require.False(t, res.Success)
				for _, want := range tt.wantReason {
					require.Contains(t, res.FailedReason, want)
				}
				return
			}
			require.True(t, res.Success, res.FailedReason)
			require.InDelta(t, tt.wantValue, res.Value, 1e-12)
			require.Equal(t, tt.wantExtra, res.Extra)
		})
	}
}

func TestStarlarkScorerCannotMutateCaller(t *testing.T) {
	t.Parallel()

	s := starlarkScorer(t, "testdata/misbehave.star:mutate_args", script.Options{})
	pred := map[string]any{"value": 1.0}
	truth := groundTruthFor(100, 101)
	res := ScoreOne(context.Background(), s, Item{GroundTruth: truth, Prediction: pred})
	require.True(t, res.Success, res.FailedReason)
	require.Equal(t, 99.0, res.Value)
	require.Equal(t, map[string]any{"value": 1.0}, pred)
	require.Equal(t, groundTruthFor(100, 101), truth)
}

func TestStarlarkScorerPoisonedBatch(t *testing.T) {
	t.Parallel()

	s := starlarkScorer(t, "testdata/misbehave.star:raises", script.Options{})
	items := make([]Item, 500)
	for i := range items {
		v := float64(i)
		if i%97 == 5 {
			v = -1
		}
		items[i] = Item{GroundTruth: groundTruthFor(100, 101), Prediction: map[string]any{"value": v}}
	}
	for i, r := range scoreBatch(context.Background(), s, items, 2) {
		if i%97 == 5 {
			require.False(t, r.Success)
			require.Contains(t, r.FailedReason, "negative predictions are not allowed")
			continue
		}
		require.True(t, r.Success, r.FailedReason)
		require.Equal(t, float64(i), r.Value)
	}
}
