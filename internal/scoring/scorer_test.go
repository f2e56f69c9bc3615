package scoring

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBuiltinScorers(t *testing.T) {
	t.Parallel()

	up := groundTruthFor(100, 102)   // profit +0.02
	down := groundTruthFor(100, 99)  // profit −0.01
	flat := groundTruthFor(100, 100) // profit 0
	withTarget := groundTruthFor(100, 102)
	withTarget["target"] = 3.0

	tests := []struct {
		name    string
		scorer  string
		pred    map[string]any
		gt      map[string]any
		want    map[string]any
		wantErr string
	}{
		{name: "AbsoluteError", scorer: AbsoluteErrorName, pred: map[string]any{"value": 100.5}, gt: up, want: map[string]any{"error": 1.5, "value": -1.5}},
		{name: "AbsoluteErrorMissingPrice", scorer: AbsoluteErrorName, pred: map[string]any{"value": 1.0}, gt: map[string]any{"profit": 0.1}, wantErr: `ground truth has no "resolved_price" field`},
		{name: "AbsoluteErrorPrefersTarget", scorer: AbsoluteErrorName, pred: map[string]any{"value": 1.0}, gt: withTarget, want: map[string]any{"error": 2.0, "value": -2.0}},
		{name: "CRPSBadSample", scorer: CRPSName, pred: map[string]any{"samples": []any{1.0, "2"}}, gt: up, wantErr: `prediction "samples"[1] is string, want a number`},
		{name: "CRPSEmpty", scorer: CRPSName, pred: map[string]any{"samples": []any{}}, gt: up, wantErr: `prediction "samples" is empty`},
		{name: "CRPSFloatSlice", scorer: CRPSName, pred: map[string]any{"samples": []float64{101, 103}}, gt: up, want: map[string]any{"crps": 0.5, "value": -0.5}},
		{name: "CRPSInfSample", scorer: CRPSName, pred: map[string]any{"samples": []float64{1, math.Inf(-1)}}, gt: up, wantErr: `prediction "samples"[1] is -Inf`},
		{name: "CRPSMissing", scorer: CRPSName, pred: map[string]any{"value": 1.0}, gt: up, wantErr: `prediction has no "samples" field`},
		{name: "CRPSNotList", scorer: CRPSName, pred: map[string]any{"samples": 3.0}, gt: up, wantErr: `prediction "samples" is number, want a list of numbers`},
		// One sample: CRPS is the absolute error.
		{name: "CRPSOneSample", scorer: CRPSName, pred: map[string]any{"samples": []any{json.Number("99")}}, gt: up, want: map[string]any{"crps": 3.0, "value": -3.0}},
		// Samples {1,2,3} against 3 (target): mean|X−y| = 1, ½·mean|X−X′| = ½·8/9.
		{name: "CRPSTarget", scorer: CRPSName, pred: map[string]any{"samples": []any{3, 1, int64(2)}}, gt: withTarget, want: map[string]any{"crps": 1 - 4.0/9, "value": -(1 - 4.0/9)}},
		{name: "DirectionDownHit", scorer: DirectionName, pred: map[string]any{"value": -0.3}, gt: down, want: map[string]any{"value": 1.0}},
		{name: "DirectionFlagBadType", scorer: DirectionName, pred: map[string]any{"value": 1.0}, gt: map[string]any{"direction_up": "yes"}, wantErr: `ground truth "direction_up" is string, want a bool`},
		{name: "DirectionFlagOnly", scorer: DirectionName, pred: map[string]any{"value": -2}, gt: map[string]any{"direction_up": false}, want: map[string]any{"value": 1.0}},
		{name: "DirectionFlatIsMiss", scorer: DirectionName, pred: map[string]any{"value": -1.0}, gt: flat, want: map[string]any{"value": 0.0}},
		{name: "DirectionMiss", scorer: DirectionName, pred: map[string]any{"value": 0.3}, gt: down, want: map[string]any{"value": 0.0}},
		{name: "DirectionNoTruth", scorer: DirectionName, pred: map[string]any{"value": 1.0}, gt: map[string]any{"symbol": "X"}, wantErr: `ground truth has neither "profit" nor "direction_up"`},
		{name: "DirectionUpHit", scorer: DirectionName, pred: map[string]any{"value": 0.01}, gt: up, want: map[string]any{"value": 1.0}},
		{name: "DirectionZeroPredictionIsMiss", scorer: DirectionName, pred: map[string]any{"value": 0.0}, gt: up, want: map[string]any{"value": 0.0}},
		{name: "PnL", scorer: PnLName, pred: map[string]any{"value": 0.5}, gt: up, want: map[string]any{"value": 100.0}},
		{name: "PnLBoolValue", scorer: PnLName, pred: map[string]any{"value": true}, gt: up, wantErr: `prediction "value" is bool, want a number`},
		{name: "PnLIntValue", scorer: PnLName, pred: map[string]any{"value": int64(-2)}, gt: down, want: map[string]any{"value": 200.0}},
		{name: "PnLMissingProfit", scorer: PnLName, pred: map[string]any{"value": 1.0}, gt: map[string]any{"entry_price": 1.0}, wantErr: `ground truth has no "profit" field`},
		{name: "PnLMissingValue", scorer: PnLName, pred: map[string]any{"prediction": 1.0}, gt: up, wantErr: `prediction has no "value" field`},
		{name: "PnLNaNValue", scorer: PnLName, pred: map[string]any{"value": math.NaN()}, gt: up, wantErr: `prediction "value" is NaN`},
		{name: "PnLNilPrediction", scorer: PnLName, pred: nil, gt: up, wantErr: `prediction has no "value" field`},
		{name: "PnLOverflow", scorer: PnLName, pred: map[string]any{"value": 1e306}, gt: up, wantErr: "overflows"},
		{name: "PnLStringValue", scorer: PnLName, pred: map[string]any{"value": "0.5"}, gt: up, wantErr: `prediction "value" is string, want a number`},
		{name: "PnLZeroEntry", scorer: PnLName, pred: map[string]any{"value": 1.0}, gt: map[string]any{"entry_price": 0.0, "profit": 0.0}, wantErr: "ground truth entry_price is 0"},
		{name: "SquaredError", scorer: SquaredErrorName, pred: map[string]any{"value": 99.0}, gt: up, want: map[string]any{"error": 9.0, "value": -9.0}},
		{name: "SquaredErrorOverflow", scorer: SquaredErrorName, pred: map[string]any{"value": 1e300}, gt: up, wantErr: "overflows"},
	}
	reg := NewRegistry()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ok := reg.Lookup(tt.scorer)
			require.True(t, ok)
			got, err := s.Score(context.Background(), Item{GroundTruth: tt.gt, Prediction: tt.pred})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for k, v := range tt.want {
				require.InDelta(t, v, got[k], 1e-9, "field %s", k)
			}
		})
	}
}

// TestValueScorerFastPath checks that ScoreOne's shortcut for built-ins gives exactly
// what going through the score dict gives, failures included.
func TestValueScorerFastPath(t *testing.T) {
	t.Parallel()

	items := []Item{
		{GroundTruth: groundTruthFor(100, 102), Prediction: map[string]any{"value": 0.5}},
		{GroundTruth: groundTruthFor(100, 99), Prediction: map[string]any{"value": 0.5}},
		{GroundTruth: groundTruthFor(100, 100), Prediction: map[string]any{"value": -1}},
		{GroundTruth: map[string]any{"entry_price": 0.0, "profit": 0.0}, Prediction: map[string]any{"value": 1.0}},
		{GroundTruth: groundTruthFor(100, 102), Prediction: map[string]any{"value": "x"}},
		{GroundTruth: groundTruthFor(100, 102), Prediction: map[string]any{"value": 1e306}},
	}
	for _, s := range []Scorer{Direction{}, PnL{}} {
		_, ok := s.(valueScorer)
		require.True(t, ok)
		viaDict := ScorerFunc(s.Score) // hides scoreValue
		for i, it := range items {
			it.ModelID, it.PredictionID = "m", fmt.Sprint(i)
			require.Equal(t, ScoreOne(context.Background(), viaDict, it), ScoreOne(context.Background(), s, it), "%T item %d", s, i)
		}
	}
}

func TestCustomFieldScorers(t *testing.T) {
	t.Parallel()

	it := Item{
		GroundTruth: map[string]any{"profit": 0.02, "resolved_price": 50.0},
		Prediction:  map[string]any{"expected_return": 0.05, "paths": []any{0.01, 0.03}},
	}
	got, err := ErrorScorer{PredictionField: "expected_return", TruthField: "profit"}.Score(context.Background(), it)
	require.NoError(t, err)
	require.InDelta(t, -0.03, got["value"], 1e-12)

	got, err = CRPS{SamplesField: "paths", TruthField: "profit"}.Score(context.Background(), it)
	require.NoError(t, err)
	// mean|X−y| = 0.01, ½·mean|X−X′| = ½·(2·0.02)/4 = 0.005.
	require.InDelta(t, -0.005, got["value"], 1e-12)
}

// TestCRPSEnsembleMatchesDefinition checks the O(n log n) estimator against the O(n²)
// definition on random ensembles.
func TestCRPSEnsembleMatchesDefinition(t *testing.T) {
	t.Parallel()

	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 101, 1000} {
		samples := make([]float64, n)
		for i := range samples {
			samples[i] = rng.NormFloat64()*5 + 100
		}
		y := rng.NormFloat64()*5 + 100

		var abs, pair float64
		for _, x := range samples {
			abs += math.Abs(x - y)
			for _, x2 := range samples {
				pair += math.Abs(x - x2)
			}
		}
		fn := float64(n)
		want := abs/fn - 0.5*pair/(fn*fn)

		got := CRPSEnsemble(samples, y)
		require.InDelta(t, want, got, 1e-9*math.Max(1, math.Abs(want)), "n=%d", n)
		require.GreaterOrEqual(t, got, 0.0)
	}
}

func TestCRPSDoesNotMutatePrediction(t *testing.T) {
	t.Parallel()

	samples := []float64{3, 1, 2}
	_, err := CRPS{}.Score(context.Background(), Item{
		GroundTruth: map[string]any{"resolved_price": 2.0},
		Prediction:  map[string]any{"samples": samples},
	})
	require.NoError(t, err)
	require.Equal(t, []float64{3, 1, 2}, samples)
}

func TestResultMap(t *testing.T) {
	t.Parallel()

	require.Equal(t,
		map[string]any{"error": 2.0, "failed_reason": nil, "success": true, "value": -2.0},
		Result{Extra: map[string]any{"error": 2.0}, Success: true, Value: -2}.Map())
	require.Equal(t,
		map[string]any{"failed_reason": "boom", "success": false, "value": 0.0},
		Result{FailedReason: "boom"}.Map())
}
