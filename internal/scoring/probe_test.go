package scoring

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/script"
)

func TestDryRun(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		scorer   Scorer
		defaults map[string]any
		gt       map[string]any
		wantErr  string
	}{
		{name: "CRPSWithoutSamples", scorer: CRPS{}, defaults: map[string]any{"value": 0.0}, wantErr: `dry run of the scoring function on the output schema defaults {"value":0}: prediction has no "samples" field`},
		{name: "CRPSWithSamples", scorer: CRPS{}, defaults: map[string]any{"samples": []any{100.0, 102.0}}},
		{name: "CustomGroundTruth", scorer: ErrorScorer{}, defaults: map[string]any{"value": 1.0}, gt: map[string]any{"target": 2.0}},
		{name: "CustomGroundTruthMissingField", scorer: PnL{}, defaults: map[string]any{"value": 1.0}, gt: map[string]any{"target": 2.0}, wantErr: `ground truth has no "profit" field`},
		{name: "GoError", scorer: ScorerFunc(func(context.Context, Item) (map[string]any, error) { return nil, errors.New("not ready") }), defaults: map[string]any{}, wantErr: ": not ready"},
		{name: "PnL", scorer: PnL{}, defaults: map[string]any{"value": 0.0}},
		{name: "StarlarkRaises", scorer: nil, defaults: map[string]any{"value": -1.0}, wantErr: "negative predictions are not allowed"},
		{name: "TournamentShape", scorer: PnL{}, defaults: map[string]any{"prediction": 0.0}, wantErr: `prediction has no "value" field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.scorer
			if s == nil {
				s = starlarkScorer(t, "testdata/misbehave.star:raises", script.Options{})
			}
			err := DryRun(context.Background(), s, tt.defaults, tt.gt)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestDetectStub(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name         string
		scorer       Scorer
		ref          string
		defaults     map[string]any
		wantProbable bool
		wantReason   string
	}{
		{name: "AbsoluteError", scorer: ErrorScorer{}, defaults: map[string]any{"value": 0.0}, wantReason: "not a stub"},
		{name: "AlwaysFails", scorer: ScorerFunc(func(context.Context, Item) (map[string]any, error) { return nil, errors.New("nope") }), defaults: map[string]any{"value": 0.0}, wantReason: "inconclusive: only 0 of 4 probes scored (nope; nope; nope; nope)"},
		{name: "CRPS", scorer: CRPS{}, defaults: map[string]any{"samples": []any{}}, wantReason: "not a stub"},
		{name: "ConstantGo", scorer: returning(map[string]any{"value": 0.0, "success": true, "failed_reason": nil}), defaults: map[string]any{"value": 0.0}, wantProbable: true, wantReason: "probable stub: 4 different predictions and ground truths all scored value=0"},
		{name: "ConstantStarlark", ref: "testdata/misbehave.star:constant", defaults: map[string]any{"value": 0.0}, wantProbable: true, wantReason: "probable stub"},
		{name: "Direction", scorer: Direction{}, defaults: map[string]any{"value": 0.0}, wantReason: "not a stub"},
		{name: "IgnoresPrediction", scorer: ScorerFunc(func(_ context.Context, it Item) (map[string]any, error) {
			return map[string]any{"value": it.GroundTruth["profit"]}, nil
		}), defaults: map[string]any{"value": 0.0}, wantReason: "not a stub"},
		{name: "PnL", scorer: PnL{}, defaults: map[string]any{"value": 0.0}, wantReason: "not a stub: 4 probes gave different scores"},
		{name: "PnLNoDefaults", scorer: PnL{}, defaults: nil, wantReason: "not a stub"},
		{name: "PnLStarlark", ref: "testdata/pnl.star:score", defaults: map[string]any{"value": 0.0}, wantReason: "not a stub"},
		{name: "SameValueDifferentExtra", scorer: ScorerFunc(func(_ context.Context, it Item) (map[string]any, error) {
			return map[string]any{"value": 1.0, "seen": it.Prediction["value"]}, nil
		}), defaults: map[string]any{"value": 0.0}, wantReason: "not a stub"},
		{name: "SquaredError", scorer: ErrorScorer{Squared: true}, defaults: map[string]any{"value": 0.0, "label": "x", "confident": true}, wantReason: "not a stub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.scorer
			if tt.ref != "" {
				s = starlarkScorer(t, tt.ref, script.Options{})
			}
			rep := DetectStub(context.Background(), s, tt.defaults)
			require.Equal(t, tt.wantProbable, rep.Probable, rep.Reason)
			require.Contains(t, rep.Reason, tt.wantReason)
			require.Len(t, rep.Results, 4)
		})
	}
}

func TestProbePredictionVariesFields(t *testing.T) {
	t.Parallel()

	got := probePrediction(map[string]any{"flag": true, "label": "a", "samples": []float64{}, "size": int64(-2), "value": 0.0}, -0.5, 200)
	require.Equal(t, true, got["flag"])
	require.Equal(t, "a", got["label"])
	require.InDelta(t, -1.5, got["size"], 1e-12)
	require.InDelta(t, -0.5, got["value"], 1e-12)
	require.Len(t, got["samples"], 8)
	require.InDelta(t, 199.0*(1-0.008), got["samples"].([]any)[0], 1e-9)
}
