package cli

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/scoring"
	"github.com/crunchnode/crunch-node/internal/scoring/metric"
	"github.com/crunchnode/crunch-node/internal/script"
	"github.com/crunchnode/crunch-node/jobs"
)

// warnings collects conditions the node runs with but an operator should fix; /healthz
// lists them.
type warnings struct {
	mu    sync.Mutex
	items []string
}

func (w *warnings) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.items = append(w.items, s)
}

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.items...)
}

// resolveRef makes a script reference relative to the workspace root, where the operator
// wrote it from.
func resolveRef(ref, dir string) string {
	if !script.IsRef(ref) || dir == "" {
		return ref
	}
	r, err := script.ParseRef(ref)
	if err != nil || filepath.IsAbs(r.Path) {
		return ref
	}
	r.Path = filepath.Join(dir, r.Path)
	return r.String()
}

// scriptOptions bounds every operator callable this process loads: the package defaults,
// named here so that all of them share one budget.
func scriptOptions() script.Options {
	return script.Options{MaxSteps: script.DefaultMaxSteps, Timeout: script.DefaultTimeout}
}

// buildScoring loads the scorer and resolver and dry-runs the scorer on the output
// schema's defaults: a scorer that fails there stops the process with a clear message; one
// that returns the same score for varied inputs is reported as a probable stub.
func buildScoring(ctx context.Context, cfg *config.Config, dir string, logger *slog.Logger, warn *warnings) (*jobs.Scoring, error) {
	opts := scriptOptions()
	scorer, err := scoring.NewRegistry().Scorer(resolveRef(cfg.ScoringFunction, dir), opts)
	if err != nil {
		return nil, fmt.Errorf("SCORING_FUNCTION %q: %w", cfg.ScoringFunction, err)
	}
	fraction := *cfg.Crunch.GroundTruth.MaxStalenessFraction
	resolverRef := cfg.ResolveGroundTruth
	if resolverRef == "" {
		resolverRef = cfg.Crunch.GroundTruth.Resolver
	}
	resolver, err := scoring.NewResolver(resolveRef(resolverRef, dir), scoring.GroundTruthConfig{MaxStalenessFraction: fraction}, opts)
	if err != nil {
		return nil, err
	}
	defaults := outputDefaults(cfg.Crunch.OutputSchema)
	dryCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := scoring.DryRun(dryCtx, scorer, defaults, nil); err != nil {
		return nil, fmt.Errorf("the scoring function %q fails on the output schema's defaults: %w", cfg.ScoringFunction, err)
	}
	if report := scoring.DetectStub(dryCtx, scorer, defaults); report.Probable {
		msg := fmt.Sprintf("scoring function %q looks like a stub: %s", cfg.ScoringFunction, report.Reason)
		logger.WarnContext(ctx, "Scoring: "+msg)
		warn.add(msg)
	}
	aggregator, err := buildAggregator(dryCtx, cfg.ModelScoreAggregator, dir, opts)
	if err != nil {
		return nil, err
	}
	metrics, names, err := buildMetrics(cfg, dir, opts)
	if err != nil {
		return nil, err
	}
	var window time.Duration
	if w := cfg.Crunch.Aggregation.Windows; len(w) > 0 {
		window = w[0].Duration.D()
	}
	_, builtin := resolver.(scoring.DefaultResolver)
	return &jobs.Scoring{
		Metrics:              metrics,
		MetricNames:          names,
		MetricWindow:         window,
		Aggregator:           aggregator,
		Scorer:               scorer,
		Resolver:             resolver,
		FullWindow:           !builtin,
		Grace:                cfg.Crunch.GroundTruth.UnresolvedGrace.D(),
		MaxStalenessFraction: fraction,
	}, nil
}

// buildAggregator loads MODEL_SCORE_AGGREGATOR and dry-runs it on two sample results, so
// a broken script stops the process at start rather than at its first snapshot. The
// built-in mean returns nil: snapshots compute it in SQL.
func buildAggregator(ctx context.Context, ref, dir string, opts script.Options) (scoring.Aggregator, error) {
	aggregator, err := scoring.NewAggregator(resolveRef(ref, dir), opts)
	if err != nil {
		return nil, err
	}
	if _, mean := aggregator.(scoring.MeanAggregator); mean {
		return nil, nil
	}
	sample := []scoring.Result{
		{Success: true, Value: 0.5, Extra: map[string]any{"profit": 0.01}},
		{FailedReason: "sample failure"},
	}
	if _, err := aggregator.Aggregate(ctx, sample); err != nil {
		return nil, fmt.Errorf("MODEL_SCORE_AGGREGATOR %q fails on sample results: %w", ref, err)
	}
	return aggregator, nil
}

// outputDefaults builds a sample model output from the output schema: each property's
// default, or a zero value of its type.
func outputDefaults(schema map[string]any) map[string]any {
	out := map[string]any{}
	props, _ := schema["properties"].(map[string]any)
	for name, raw := range props {
		prop, _ := raw.(map[string]any)
		if d, ok := prop["default"]; ok {
			out[name] = d
			continue
		}
		switch prop["type"] {
		case "number", "integer":
			out[name] = 0.0
		case "string":
			out[name] = ""
		case "boolean":
			out[name] = false
		case "array":
			out[name] = []any{}
		case "object":
			out[name] = map[string]any{}
		}
	}
	if len(out) == 0 {
		out["value"] = 0.0
	}
	return out
}

// buildMetrics registers the operator's Starlark metrics (`file.star:fn` in the metrics
// list, registered under the function's name) next to the built-ins and checks every
// configured name: an unknown metric stops the process.
func buildMetrics(cfg *config.Config, dir string, opts script.Options) (*metric.Registry, []string, error) {
	registry := metric.NewRegistry()
	names := make([]string, 0, len(cfg.Crunch.Metrics))
	for _, name := range cfg.Crunch.Metrics {
		if !script.IsRef(name) {
			names = append(names, name)
			continue
		}
		ref, err := script.ParseRef(resolveRef(name, dir))
		if err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
		fn, err := script.LoadRef(ref, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
		if err := registry.Register(ref.Func, starlarkMetric(fn)); err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
		names = append(names, ref.Func)
	}
	if err := registry.Validate(names); err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	return registry, names, nil
}

// starlarkMetric adapts a Starlark function `fn(model_id, points)` to a metric: points are
// dicts {at, key, scope, signal, actual, score, others_mean} in time order, and the
// function returns a number.
func starlarkMetric(fn *script.Func) metric.Func {
	return func(in metric.Input) (float64, error) {
		points := make([]any, len(in.Points))
		for i, p := range in.Points {
			others, _ := in.Others(i)
			points[i] = map[string]any{
				"actual": p.Actual, "at": p.At.UTC().Format(time.RFC3339Nano), "key": p.Key,
				"others_mean": others, "scope": p.Scope, "score": p.Score, "signal": p.Signal,
			}
		}
		out, err := fn.Call(context.Background(), in.ModelID, points)
		if err != nil {
			return 0, err
		}
		switch v := out.(type) {
		case float64:
			return v, nil
		case int64:
			return float64(v), nil
		case int:
			return float64(v), nil
		}
		return 0, fmt.Errorf("metric %s returned %T, want a number", fn, out)
	}
}
