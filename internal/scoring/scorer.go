package scoring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Item is one prediction to score. Predictions and ground truths are plain dicts
// because that is what the scoring contract is, for Go and Starlark scorers alike.
type Item struct {
	// GroundTruth is the resolved ground truth (see [ResolveDefault]).
	GroundTruth map[string]any
	// ModelID is shown to script scorers as prediction["model_id"].
	ModelID string
	// Prediction is the model's validated inference output, e.g. {"value": 0.3}.
	Prediction map[string]any
	// PredictionID is shown to script scorers as prediction["prediction_id"].
	PredictionID string
}

// Result is the score of one prediction. A failed result has Success false, Value 0
// and a FailedReason; it is stored like any other score so a bad prediction (or a
// scorer bug) is visible per prediction and never blocks the rest of a batch.
type Result struct {
	// Extra holds the score dict's other fields (numbers, strings, …), nil if none.
	Extra map[string]any
	// FailedReason says why scoring failed; empty on success.
	FailedReason string
	// ModelID is copied from the Item.
	ModelID string
	// PredictionID is copied from the Item.
	PredictionID string
	// Success is true when the scorer returned a valid score.
	Success bool
	// Value is the score's "value"; 0 when failed. Higher is better for every
	// built-in scorer.
	Value float64
}

// Map returns the score dict as stored and as script aggregators see it: the extra
// fields plus value, success and failed_reason (None on success).
func (r Result) Map() map[string]any {
	m := make(map[string]any, len(r.Extra)+3)
	for k, v := range r.Extra {
		m[k] = v
	}
	m["value"] = r.Value
	m["success"] = r.Success
	if r.Success {
		m["failed_reason"] = nil
	} else {
		m["failed_reason"] = r.FailedReason
	}
	return m
}

// Scorer is a SCORING_FUNCTION: it scores one prediction against its ground truth and
// returns the score dict, which must hold a numeric "value" and may hold other fields.
// A scorer may return an error, panic or produce garbage; [ScoreOne] and [ScoreBatch]
// turn all of that into a failed [Result]. Scorers must be safe for concurrent use.
type Scorer interface {
	Score(ctx context.Context, it Item) (map[string]any, error)
}

// ScorerFunc adapts a function to [Scorer], for Go users registering their own.
type ScorerFunc func(ctx context.Context, it Item) (map[string]any, error)

// Score implements [Scorer].
func (f ScorerFunc) Score(ctx context.Context, it Item) (map[string]any, error) { return f(ctx, it) }

// Names of the built-in scorers.
const (
	AbsoluteErrorName = "absolute_error"
	CRPSName          = "crps"
	DirectionName     = "direction"
	PnLName           = "pnl"
	SquaredErrorName  = "squared_error"
)

// builtinScorers is the immutable default set; registries copy it.
var builtinScorers = map[string]Scorer{
	AbsoluteErrorName: ErrorScorer{},
	CRPSName:          CRPS{},
	DirectionName:     Direction{},
	PnLName:           PnL{},
	SquaredErrorName:  ErrorScorer{Squared: true},
}

// BuiltinScorerNames lists the built-in scorer names in order.
func BuiltinScorerNames() []string {
	names := make([]string, 0, len(builtinScorers))
	for n := range builtinScorers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// PnLScale turns a return into basis points, as the Python realtime pack does.
const PnLScale = 10_000

// PnL is the built-in "pnl" scorer of the realtime pack: value = prediction value ×
// ground-truth profit × 10,000, i.e. the return in basis points of a position sized
// by the prediction. It fails when the entry price is 0, since profit is then
// meaningless (only a script resolver can produce such a ground truth).
type PnL struct{}

// Score implements [Scorer].
func (p PnL) Score(_ context.Context, it Item) (map[string]any, error) {
	v, err := p.scoreValue(it)
	if err != nil {
		return nil, err
	}
	return map[string]any{"value": v}, nil
}

func (PnL) scoreValue(it Item) (float64, error) {
	v, err := finiteField(it.Prediction, "prediction", "value")
	if err != nil {
		return 0, err
	}
	if e, ok := it.GroundTruth["entry_price"]; ok {
		if f, isNum := number(e); isNum && f == 0 {
			return 0, errors.New("ground truth entry_price is 0")
		}
	}
	profit, err := finiteField(it.GroundTruth, "ground truth", "profit")
	if err != nil {
		return 0, err
	}
	pnl := v * profit * PnLScale
	if math.IsInf(pnl, 0) {
		return 0, fmt.Errorf("pnl of value %v and profit %v overflows", v, profit)
	}
	return pnl, nil
}

// Direction is the built-in "direction" scorer: value 1 when the sign of the
// prediction's value matches the realised move, else 0. Two cases are misses by
// choice: a zero prediction (it calls no direction) and a flat market (profit exactly
// 0; Python's direction_up = resolved > entry would have credited every "down" call).
// The realised direction is ground-truth profit's sign when present, else the
// direction_up flag.
type Direction struct{}

// Score implements [Scorer].
func (d Direction) Score(_ context.Context, it Item) (map[string]any, error) {
	v, err := d.scoreValue(it)
	if err != nil {
		return nil, err
	}
	return map[string]any{"value": v}, nil
}

func (Direction) scoreValue(it Item) (float64, error) {
	v, err := finiteField(it.Prediction, "prediction", "value")
	if err != nil {
		return 0, err
	}
	var up, flat bool
	if _, hasProfit := it.GroundTruth["profit"]; hasProfit {
		profit, err := finiteField(it.GroundTruth, "ground truth", "profit")
		if err != nil {
			return 0, err
		}
		up, flat = profit > 0, profit == 0
	} else {
		d, ok := it.GroundTruth["direction_up"]
		if !ok {
			return 0, errors.New("ground truth has neither \"profit\" nor \"direction_up\"")
		}
		b, isBool := d.(bool)
		if !isBool {
			return 0, fmt.Errorf("ground truth \"direction_up\" is %s, want a bool", typeName(d))
		}
		up = b
	}
	if !flat && v != 0 && (v > 0) == up {
		return 1, nil
	}
	return 0, nil
}

// realised returns the realised value that the error and CRPS scorers compare with:
// field when set; otherwise the ground truth's "target" when a (script) resolver
// provides one, else "resolved_price".
func realised(gt map[string]any, field string) (float64, error) {
	if field == "" {
		field = "resolved_price"
		if _, ok := gt["target"]; ok {
			field = "target"
		}
	}
	return finiteField(gt, "ground truth", field)
}

// ErrorScorer is the built-in "absolute_error" and "squared_error" scorers. They
// compare the prediction's value (or PredictionField) with the realised value (see
// TruthField) and return value = −error, so that, like every built-in, higher is
// better and the default descending ranking works; the positive error is in the
// "error" field for aggregation.
type ErrorScorer struct {
	// PredictionField is the prediction field holding the estimate; "" means "value".
	PredictionField string
	// Squared selects squared error instead of absolute error.
	Squared bool
	// TruthField is the ground-truth field to compare with; "" means "target" when
	// present, else "resolved_price" (the default resolver's price at the horizon).
	TruthField string
}

// Score implements [Scorer].
func (s ErrorScorer) Score(_ context.Context, it Item) (map[string]any, error) {
	pf := s.PredictionField
	if pf == "" {
		pf = "value"
	}
	v, err := finiteField(it.Prediction, "prediction", pf)
	if err != nil {
		return nil, err
	}
	y, err := realised(it.GroundTruth, s.TruthField)
	if err != nil {
		return nil, err
	}
	e := math.Abs(v - y)
	if s.Squared {
		e *= e
	}
	if math.IsInf(e, 0) {
		return nil, fmt.Errorf("error of %v against %v overflows", v, y)
	}
	return map[string]any{"error": e, "value": -e}, nil
}

// CRPS is the built-in "crps" scorer for predictions that are ensembles: the
// prediction's "samples" list (predicted values of the same quantity as the truth, see
// TruthField) is scored with the continuous ranked probability score against the
// realised value, as Synth does. CRPS is a loss, so value = −crps (higher is better);
// the positive score is in the "crps" field.
type CRPS struct {
	// SamplesField is the prediction field holding the samples; "" means "samples".
	SamplesField string
	// TruthField is the ground-truth field to compare with; "" means "target" when
	// present, else "resolved_price".
	TruthField string
}

// Score implements [Scorer].
func (s CRPS) Score(_ context.Context, it Item) (map[string]any, error) {
	sf := s.SamplesField
	if sf == "" {
		sf = "samples"
	}
	samples, err := sampleList(it.Prediction, sf)
	if err != nil {
		return nil, err
	}
	y, err := realised(it.GroundTruth, s.TruthField)
	if err != nil {
		return nil, err
	}
	c := CRPSEnsemble(samples, y)
	if math.IsNaN(c) || math.IsInf(c, 0) {
		return nil, fmt.Errorf("crps of %d samples against %v overflows", len(samples), y)
	}
	return map[string]any{"crps": c, "value": -c}, nil
}

func sampleList(pred map[string]any, field string) ([]float64, error) {
	raw, ok := pred[field]
	if !ok {
		return nil, fmt.Errorf("prediction has no %q field", field)
	}
	var out []float64
	switch xs := raw.(type) {
	case []float64:
		out = slices.Clone(xs)
	case []any:
		out = make([]float64, len(xs))
		for i, x := range xs {
			f, ok := number(x)
			if !ok {
				return nil, fmt.Errorf("prediction %q[%d] is %s, want a number", field, i, typeName(x))
			}
			out[i] = f
		}
	default:
		return nil, fmt.Errorf("prediction %q is %s, want a list of numbers", field, typeName(raw))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("prediction %q is empty", field)
	}
	for i, f := range out {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("prediction %q[%d] is %v", field, i, f)
		}
	}
	return out, nil
}

// CRPSEnsemble returns the CRPS of the empirical distribution of samples at the
// observation y: mean|X−y| − ½·mean|X−X′|, with both means over all samples (the
// properscoring.crps_ensemble form Synth uses). The pair term is computed from the
// sorted samples in O(n log n) instead of O(n²): Σᵢⱼ|xᵢ−xⱼ| = 2·Σₖ(2k−n+1)·x₍ₖ₎.
// samples is sorted in place; it must be non-empty.
func CRPSEnsemble(samples []float64, y float64) float64 {
	slices.Sort(samples)
	n := float64(len(samples))
	var abs, pair float64
	for k, x := range samples {
		abs += math.Abs(x - y)
		pair += (2*float64(k) - n + 1) * x
	}
	return abs/n - pair/(n*n)
}
