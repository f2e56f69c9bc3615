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

// buildScoring loads the scorer and resolver and dry-runs the scorer on the output
// schema's defaults: a scorer that fails there stops the process with a clear message; one
// that returns the same score for varied inputs is reported as a probable stub.
func buildScoring(ctx context.Context, cfg *config.Config, dir string, logger *slog.Logger, warn *warnings) (*jobs.Scoring, error) {
	opts := script.Options{MaxSteps: script.DefaultMaxSteps, Timeout: script.DefaultTimeout}
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
	_, builtin := resolver.(scoring.DefaultResolver)
	return &jobs.Scoring{
		Scorer:               scorer,
		Resolver:             resolver,
		FullWindow:           !builtin,
		Grace:                cfg.Crunch.GroundTruth.UnresolvedGrace.D(),
		MaxStalenessFraction: fraction,
	}, nil
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
