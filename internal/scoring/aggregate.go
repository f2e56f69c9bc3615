package scoring

import (
	"context"
	"fmt"

	"github.com/crunchnode/crunch-node/internal/script"
)

// Snapshot is one model's aggregate over a set of scored predictions
// (MODEL_SCORE_AGGREGATOR). The counts are always computed here, whatever the
// aggregator, so failures stay visible even when the summary ignores them.
type Snapshot struct {
	// FailedCount is how many results have Success false.
	FailedCount int
	// PredictionCount is how many results were aggregated, failed or not.
	PredictionCount int
	// SuccessCount is how many results have Success true.
	SuccessCount int
	// Summary is the aggregated score dict (result_summary); never nil.
	Summary map[string]any
}

// Aggregator is a MODEL_SCORE_AGGREGATOR: it turns one model's results into a summary.
type Aggregator interface {
	Aggregate(ctx context.Context, results []Result) (Snapshot, error)
}

// MeanAggregator is the built-in "mean" aggregator; see [MeanSummary].
type MeanAggregator struct{}

// Aggregate implements [Aggregator].
func (MeanAggregator) Aggregate(_ context.Context, results []Result) (Snapshot, error) {
	snap := countResults(results)
	snap.Summary = MeanSummary(results)
	return snap, nil
}

func countResults(results []Result) Snapshot {
	s := Snapshot{PredictionCount: len(results)}
	for _, r := range results {
		if r.Success {
			s.SuccessCount++
		} else {
			s.FailedCount++
		}
	}
	return s
}

// MeanSummary returns, for "value" and every top-level numeric field of the successful
// results, its mean over the successful results that have it. Failed results are left
// out (their value is a placeholder 0, not a score), which the Python engine documented
// but did not do. Booleans are not numbers here, unlike Python where `success` became
// a fraction, and non-numeric fields are dropped rather than taking the last value
// seen, because a summary should not depend on result order. No successful result
// gives an empty summary.
func MeanSummary(results []Result) map[string]any {
	type acc struct {
		n   int
		sum float64
	}
	sums := map[string]*acc{}
	add := func(k string, f float64) {
		a := sums[k]
		if a == nil {
			a = &acc{}
			sums[k] = a
		}
		a.n++
		a.sum += f
	}
	for _, r := range results {
		if !r.Success {
			continue
		}
		add("value", r.Value)
		for k, v := range r.Extra {
			if f, ok := number(v); ok {
				add(k, f)
			}
		}
	}
	out := make(map[string]any, len(sums))
	for k, a := range sums {
		out[k] = a.sum / float64(a.n)
	}
	return out
}

// StarlarkAggregator runs an operator's MODEL_SCORE_AGGREGATOR script
// `(results) -> dict`, where results is the list of score dicts ([Result.Map]) of one
// model, failed ones included so the script can decide how to treat them.
type StarlarkAggregator struct {
	fn *script.Func
}

// NewStarlarkAggregator checks that fn accepts (results).
func NewStarlarkAggregator(fn *script.Func) (*StarlarkAggregator, error) {
	if err := fn.CheckArity(1); err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	return &StarlarkAggregator{fn: fn}, nil
}

// Aggregate implements [Aggregator].
func (a *StarlarkAggregator) Aggregate(ctx context.Context, results []Result) (Snapshot, error) {
	list := make([]any, len(results))
	for i, r := range results {
		list[i] = r.Map()
	}
	out, err := a.fn.Call(ctx, list)
	if err != nil {
		return Snapshot{}, fmt.Errorf("aggregating scores: %w", err)
	}
	summary, ok := out.(map[string]any)
	if !ok {
		return Snapshot{}, fmt.Errorf("aggregating scores: %s returned %s, want a dict", a.fn, typeName(out))
	}
	if err := checkJSONValue(summary); err != nil {
		return Snapshot{}, fmt.Errorf("aggregating scores: %s returned a summary that cannot be stored: at %w", a.fn, err)
	}
	snap := countResults(results)
	snap.Summary = summary
	return snap, nil
}

// NewAggregator builds the MODEL_SCORE_AGGREGATOR named by ref: "" or "mean" for
// [MeanAggregator], or `file.star:function` for a [StarlarkAggregator].
func NewAggregator(ref string, opts script.Options) (Aggregator, error) {
	switch {
	case ref == "" || ref == "mean":
		return MeanAggregator{}, nil
	case script.IsRef(ref):
		parsed, err := script.ParseRef(ref)
		if err != nil {
			return nil, fmt.Errorf("MODEL_SCORE_AGGREGATOR: %w", err)
		}
		fn, err := script.LoadRef(parsed, opts)
		if err != nil {
			return nil, fmt.Errorf("MODEL_SCORE_AGGREGATOR: %w", err)
		}
		agg, err := NewStarlarkAggregator(fn)
		if err != nil {
			return nil, fmt.Errorf("MODEL_SCORE_AGGREGATOR: %w", err)
		}
		return agg, nil
	}
	return nil, fmt.Errorf("MODEL_SCORE_AGGREGATOR: unknown aggregator %q (want \"mean\" or path/to/file.star:function)", ref)
}
