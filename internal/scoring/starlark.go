package scoring

import (
	"context"
	"fmt"

	"go.starlark.net/starlark"

	"github.com/crunchnode/crunch-node/internal/script"
)

// StarlarkScorer runs an operator's SCORING_FUNCTION script
// `(prediction, ground_truth) -> dict`. The prediction dict also carries "model_id"
// and "prediction_id", as the Python engine injected them into the output object;
// they overwrite model-supplied keys of the same name so a model cannot impersonate
// another.
type StarlarkScorer struct {
	fn *script.Func
}

// NewStarlarkScorer checks that fn accepts (prediction, ground_truth).
func NewStarlarkScorer(fn *script.Func) (*StarlarkScorer, error) {
	if err := fn.CheckArity(2); err != nil {
		return nil, fmt.Errorf("scoring function: %w", err)
	}
	return &StarlarkScorer{fn: fn}, nil
}

// String returns the script reference, for logs.
func (s *StarlarkScorer) String() string { return s.fn.String() }

// Score implements [Scorer]. Errors, including step-limit and time-outs (which wrap
// script.ErrStepLimit and script.ErrTimeout), become failed results in [ScoreOne].
func (s *StarlarkScorer) Score(ctx context.Context, it Item) (map[string]any, error) {
	pred, err := toDict(it.Prediction)
	if err != nil {
		return nil, fmt.Errorf("converting prediction: %w", err)
	}
	if it.ModelID != "" {
		_ = pred.SetKey(starlark.String("model_id"), starlark.String(it.ModelID))
	}
	if it.PredictionID != "" {
		_ = pred.SetKey(starlark.String("prediction_id"), starlark.String(it.PredictionID))
	}
	gt, err := toDict(it.GroundTruth)
	if err != nil {
		return nil, fmt.Errorf("converting ground truth: %w", err)
	}
	res, err := s.fn.CallValues(ctx, pred, gt)
	if err != nil {
		return nil, err
	}
	return scriptDict(s.fn, res)
}

// toDict converts a Go map to a fresh, unfrozen Starlark dict, so a script may modify
// its arguments without affecting the caller or other calls.
func toDict(m map[string]any) (*starlark.Dict, error) {
	if m == nil {
		return starlark.NewDict(0), nil
	}
	v, err := script.ToValue(m)
	if err != nil {
		return nil, err
	}
	return v.(*starlark.Dict), nil //nolint:forcetypeassert // ToValue maps map[string]any to *Dict
}

// scriptDict converts a script's result, which must be a dict.
func scriptDict(fn *script.Func, v starlark.Value) (map[string]any, error) {
	d, ok := v.(*starlark.Dict)
	if !ok {
		if v == starlark.None {
			return nil, fmt.Errorf("%s returned None, want a dict", fn)
		}
		return nil, fmt.Errorf("%s returned %s, want a dict", fn, v.Type())
	}
	out, err := script.FromValue(d)
	if err != nil {
		return nil, fmt.Errorf("%s returned a dict that cannot be stored: %w", fn, err)
	}
	return out.(map[string]any), nil //nolint:forcetypeassert // FromValue maps *Dict to map[string]any
}
