package scoring

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// MaxFailedReasonLen caps a stored failure reason. Script errors can carry long
// messages and a reason is stored once per failed prediction.
const MaxFailedReasonLen = 1000

// ScoreOne scores one item and never fails: a scorer error, a panic, a NaN or infinite
// value, a missing or non-numeric "value", a malformed "success"/"failed_reason", a
// non-JSON field, a script step-limit or time-out all become a failed Result
// {value: 0, success: false, failed_reason} for this item alone. This is the fix for
// the Python engine's poison-pill scoring, where one exception aborted every cycle.
//
// A scorer may also report a failure itself by returning success: false, with an
// optional failed_reason; the value is then forced to 0.
func ScoreOne(ctx context.Context, s Scorer, it Item) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = failed(it, fmt.Sprintf("scorer panicked: %v", p))
		}
	}()
	if vs, ok := s.(valueScorer); ok {
		v, err := vs.scoreValue(it)
		if err != nil {
			return failed(it, err.Error())
		}
		return Result{ModelID: it.ModelID, PredictionID: it.PredictionID, Success: true, Value: v}
	}
	out, err := s.Score(ctx, it)
	if err != nil {
		return failed(it, err.Error())
	}
	return fromScoreDict(it, out)
}

// valueScorer is implemented by built-in scorers whose score dict is just {value}.
// ScoreOne calls it directly so the hot path neither builds nor re-validates a dict;
// the result is identical to going through Score, which calls it too. Implementations
// must return a finite value.
type valueScorer interface {
	scoreValue(it Item) (float64, error)
}

func failed(it Item, reason string) Result {
	if reason == "" {
		reason = "scorer reported failure without a reason"
	}
	return Result{FailedReason: truncate(reason), ModelID: it.ModelID, PredictionID: it.PredictionID}
}

func truncate(s string) string {
	if len(s) <= MaxFailedReasonLen {
		return s
	}
	cut := MaxFailedReasonLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// fromScoreDict validates a scorer's dict and splits it into a Result.
func fromScoreDict(it Item, out map[string]any) Result {
	if out == nil {
		return failed(it, "scorer returned no score dict")
	}
	raw, ok := out["value"]
	if !ok {
		return failed(it, "score has no \"value\" field")
	}
	v, ok := number(raw)
	if !ok {
		return failed(it, fmt.Sprintf("score \"value\" is %s, want a number", typeName(raw)))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return failed(it, fmt.Sprintf("score \"value\" is %v", v))
	}
	res := Result{ModelID: it.ModelID, PredictionID: it.PredictionID, Success: true, Value: v}
	if len(out) == 1 {
		return res // only "value": the common case needs no more lookups
	}
	if sv, ok := out["success"]; ok && sv != nil {
		b, isBool := sv.(bool)
		if !isBool {
			return failed(it, fmt.Sprintf("score \"success\" is %s, want a bool", typeName(sv)))
		}
		res.Success = b
	}
	if fr, ok := out["failed_reason"]; ok && fr != nil {
		s, isString := fr.(string)
		if !isString {
			return failed(it, fmt.Sprintf("score \"failed_reason\" is %s, want a string or None", typeName(fr)))
		}
		if !res.Success {
			res.FailedReason = s
		}
	}
	if !res.Success {
		return failed(it, res.FailedReason)
	}
	for k, e := range out {
		switch k {
		case "value", "success", "failed_reason":
			continue
		}
		if err := checkJSONValue(e); err != nil {
			return failed(it, fmt.Sprintf("score field %q%s", k, err.Error()))
		}
		if res.Extra == nil {
			res.Extra = make(map[string]any, len(out)-1)
		}
		res.Extra[k] = e
	}
	return res
}

// batchChunk is how many consecutive items a worker claims at once: large enough that
// claiming costs nothing next to scoring, small enough to balance a batch of slow
// script scorers across workers.
const batchChunk = 64

// ScoreBatch scores items with [ScoreOne] on up to GOMAXPROCS goroutines and returns
// results in input order. Concurrency pays off for script scorers (each call is a few
// microseconds); small batches run on the calling goroutine.
//
// If ctx is done, items not yet scored come back failed with the context's error as
// reason. Callers should check ctx.Err() and not persist such a batch.
func ScoreBatch(ctx context.Context, s Scorer, items []Item) []Result {
	return scoreBatch(ctx, s, items, runtime.GOMAXPROCS(0))
}

func scoreBatch(ctx context.Context, s Scorer, items []Item, workers int) []Result {
	results := make([]Result, len(items))
	workers = min(workers, (len(items)+batchChunk-1)/batchChunk)
	if workers <= 1 {
		scoreRange(ctx, s, items, results, 0, len(items))
		return results
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				start := int(next.Add(batchChunk)) - batchChunk
				if start >= len(items) {
					return
				}
				scoreRange(ctx, s, items, results, start, min(start+batchChunk, len(items)))
			}
		})
	}
	wg.Wait()
	return results
}

func scoreRange(ctx context.Context, s Scorer, items []Item, results []Result, start, end int) {
	for i := start; i < end; i++ {
		if err := ctx.Err(); err != nil {
			results[i] = failed(items[i], "not scored: "+err.Error())
			continue
		}
		results[i] = ScoreOne(ctx, s, items[i])
	}
}
