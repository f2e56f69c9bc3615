package scoring

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"
)

// probeTime is a fixed as-of time for synthetic ground truths, so probes are
// reproducible.
var probeTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// groundTruthFor builds a ground truth shaped like [ResolveDefault]'s.
func groundTruthFor(entry, resolved float64) map[string]any {
	return map[string]any{
		"asof_ts":        probeTime.UnixMilli(),
		"direction_up":   resolved > entry,
		"entry_price":    entry,
		"profit":         (resolved - entry) / entry,
		"resolved_price": resolved,
		"symbol":         "BTCUSDT",
	}
}

// SampleGroundTruth returns a plausible ground truth in the default resolver's shape
// (entry 100, resolved 101), used by [DryRun] when the caller has none.
func SampleGroundTruth() map[string]any { return groundTruthFor(100, 101) }

// DryRun scores the output schema's default answer against groundTruth (nil means
// [SampleGroundTruth]) and returns an error if the scorer fails on it. Start-up calls
// it so that a scoring function that cannot handle the configured output shape stops
// the process with the reason, instead of failing every prediction at run time.
func DryRun(ctx context.Context, s Scorer, outputDefaults, groundTruth map[string]any) error {
	if groundTruth == nil {
		groundTruth = SampleGroundTruth()
	}
	res := ScoreOne(ctx, s, Item{
		GroundTruth:  groundTruth,
		ModelID:      "dry-run",
		Prediction:   maps.Clone(outputDefaults),
		PredictionID: "dry-run",
	})
	if !res.Success {
		shown, err := json.Marshal(outputDefaults)
		if err != nil {
			shown = fmt.Appendf(nil, "%v", outputDefaults)
		}
		return fmt.Errorf("dry run of the scoring function on the output schema defaults %s: %s", shown, res.FailedReason)
	}
	return nil
}

// StubReport is the outcome of [DetectStub].
type StubReport struct {
	// Probable is true when every probe scored successfully with an identical result.
	Probable bool
	// Reason explains the verdict in one sentence, for the start-up log.
	Reason string
	// Results are the probe results, in probe order.
	Results []Result
}

// probes are (prediction multiplier, entry, resolved) triples chosen so that every
// built-in scorer gives at least two different results: both signs of prediction, up
// and down markets, different magnitudes, and one wrong-direction call.
var probes = []struct{ mul, entry, resolved float64 }{
	{mul: 0.8, entry: 100, resolved: 103},
	{mul: -0.5, entry: 100, resolved: 97},
	{mul: 1.7, entry: 250, resolved: 251},
	{mul: -1.2, entry: 50, resolved: 55},
}

// DetectStub scores several varied prediction/ground-truth pairs derived from the
// output schema defaults and reports a probable stub when all results are identical.
// Operators who forget to replace the scaffold's `return {"value": 0}` otherwise get a
// leaderboard of ties that looks like it works; the Python engine lost this check in a
// refactor. Every numeric field of the defaults is varied, and every list field is
// filled with samples around the realised price, so ensemble scorers are probed too.
// Fewer than two successful probes give an inconclusive, non-stub report; [DryRun]
// is the check for scorers that fail.
func DetectStub(ctx context.Context, s Scorer, outputDefaults map[string]any) StubReport {
	rep := StubReport{Results: make([]Result, len(probes))}
	var ok []Result
	for i, p := range probes {
		gt := groundTruthFor(p.entry, p.resolved)
		rep.Results[i] = ScoreOne(ctx, s, Item{
			GroundTruth:  gt,
			ModelID:      "stub-probe",
			Prediction:   probePrediction(outputDefaults, p.mul, p.resolved),
			PredictionID: fmt.Sprintf("stub-probe-%d", i),
		})
		if rep.Results[i].Success {
			ok = append(ok, rep.Results[i])
		}
	}
	if len(ok) < 2 {
		reasons := make([]string, 0, len(probes))
		for _, r := range rep.Results {
			if !r.Success {
				reasons = append(reasons, r.FailedReason)
			}
		}
		rep.Reason = fmt.Sprintf("inconclusive: only %d of %d probes scored (%s)", len(ok), len(probes), strings.Join(reasons, "; "))
		return rep
	}
	for _, r := range ok[1:] {
		if r.Value != ok[0].Value || !reflect.DeepEqual(r.Extra, ok[0].Extra) {
			rep.Reason = fmt.Sprintf("not a stub: %d probes gave different scores", len(ok))
			return rep
		}
	}
	rep.Probable = true
	rep.Reason = fmt.Sprintf("probable stub: %d different predictions and ground truths all scored value=%v", len(ok), ok[0].Value)
	return rep
}

// probePrediction varies the defaults: numbers become mul·(1+|default|) (so zero
// defaults still vary and signs alternate), lists become eight samples spread around
// a centre that depends on mul.
func probePrediction(defaults map[string]any, mul, resolved float64) map[string]any {
	pred := make(map[string]any, len(defaults)+1)
	for k, v := range defaults {
		switch x := v.(type) {
		case bool, string, nil, map[string]any:
			pred[k] = v
		case []any, []float64:
			centre := resolved * (1 + 0.01*mul)
			samples := make([]any, 8)
			for j := range samples {
				samples[j] = centre * (1 + 0.002*float64(j-4))
			}
			pred[k] = samples
		default:
			f, isNum := number(x)
			if !isNum {
				pred[k] = v
				continue
			}
			if f < 0 {
				f = -f
			}
			pred[k] = mul * (1 + f)
		}
	}
	if _, ok := pred["value"]; !ok {
		pred["value"] = mul
	}
	return pred
}
