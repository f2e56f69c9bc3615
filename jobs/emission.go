package jobs

import (
	"context"
	"fmt"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/emission"
	"github.com/crunchnode/crunch-node/internal/script"
)

// EmissionBuilder turns a checkpoint's ranking into reward shares: a built-in strategy
// (tiers, contribution_weighted) or an operator's Starlark function.
type EmissionBuilder func(ctx context.Context, ranking []RankedModel, ids emission.Identities) (emission.Checkpoint, error)

// NewEmissionBuilder resolves BUILD_EMISSION. A Starlark function is called as
// `fn(ranking)` with the ranking as a list of dicts {model_id, model_name, cruncher_name,
// rank, ranking_value, prediction_count, result_summary} in rank order, and returns a
// list of percentages (one per ranked model, summing to 100); the engine converts them to
// frac64 so the rewards still sum to exactly 1,000,000,000.
func NewEmissionBuilder(ref string, dir string) (EmissionBuilder, error) {
	if !config.IsScriptRef(ref) {
		strategy, err := emission.ParseStrategy(ref)
		if err != nil {
			return nil, fmt.Errorf("BUILD_EMISSION: %w", err)
		}
		return func(_ context.Context, ranking []RankedModel, ids emission.Identities) (emission.Checkpoint, error) {
			entries := make([]emission.Entry, len(ranking))
			for i, r := range ranking {
				entries[i] = emission.Entry{ModelID: r.ModelID, Contribution: number(r.ResultSummary["contribution"]), ModelCorrelation: number(r.ResultSummary["model_correlation"])}
			}
			return emission.Build(strategy, entries, ids)
		}, nil
	}
	parsed, err := script.ParseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("BUILD_EMISSION: %w", err)
	}
	if dir != "" && len(parsed.Path) > 0 && parsed.Path[0] != '/' {
		parsed.Path = dir + "/" + parsed.Path
	}
	fn, err := script.LoadRef(parsed, script.Options{MaxSteps: script.DefaultMaxSteps, Timeout: script.DefaultTimeout})
	if err != nil {
		return nil, fmt.Errorf("BUILD_EMISSION: %w", err)
	}
	return func(ctx context.Context, ranking []RankedModel, ids emission.Identities) (emission.Checkpoint, error) {
		rows := make([]any, len(ranking))
		for i, r := range ranking {
			rows[i] = map[string]any{
				"cruncher_name": r.CruncherName, "model_id": r.ModelID, "model_name": r.ModelName,
				"prediction_count": r.PredictionCount, "rank": int64(r.Rank), "ranking_value": r.RankingValue,
				"result_summary": finiteNumbers(r.ResultSummary),
			}
		}
		out, err := fn.Call(ctx, rows)
		if err != nil {
			return emission.Checkpoint{}, fmt.Errorf("BUILD_EMISSION %s: %w", fn, err)
		}
		list, ok := out.([]any)
		if !ok || len(list) != len(ranking) {
			return emission.Checkpoint{}, fmt.Errorf("BUILD_EMISSION %s: want a list of %d percentages, got %T", fn, len(ranking), out)
		}
		pcts := make([]float64, len(list))
		for i, v := range list {
			switch x := v.(type) {
			case float64:
				pcts[i] = x
			case int64:
				pcts[i] = float64(x)
			default:
				return emission.Checkpoint{}, fmt.Errorf("BUILD_EMISSION %s: element %d is %T, want a number", fn, i, v)
			}
		}
		return emission.FromPcts(pcts, ids)
	}, nil
}
