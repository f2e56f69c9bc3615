// Package ranking applies LEADERBOARD_RANKER, an operator's Starlark function that orders
// the models of the leaderboard and of each checkpoint in place of the built-in ranking
// by ranking_key.
//
// The Python engine read LEADERBOARD_RANKER but never called it, so the contract is this
// engine's: the function receives the models that may be ranked as a list of dicts, in
// the built-in order,
//
//	{"cruncher_name": str, "metrics": {name: number or None, …}, "model_id": str,
//	 "model_name": str, "prediction_count": int, "rank": int or None,
//	 "ranking_value": float or None}
//
// and returns the models it ranks, best first: a list of model ids, or of the dicts it
// was given (so `return sorted(rows, key=…)` works). Models left out are unranked.
//
//	def rank(rows):
//	    return sorted(rows, key=lambda r: r["metrics"].get("ic") or 0, reverse=True)
//
// A ranker only orders: which models may be ranked stays the engine's rule (ensembles and
// models under min_predictions_to_rank never are), so a ranker cannot give a reward to a
// model the configuration excludes.
package ranking

import (
	"context"
	"fmt"

	"github.com/crunchnode/crunch-node/internal/script"
)

// BuiltIn names the built-in ranking (by ranking_key and ranking_direction), in history
// records and as the LEADERBOARD_RANKER value that selects it.
const BuiltIn = "sql"

// Entry is one model as a ranker sees it.
type Entry struct {
	// CruncherName is the model's owner.
	CruncherName string
	// Metrics holds the values the ranking can use: the window means and the latest
	// snapshot's fields on the leaderboard, the period's means in a checkpoint.
	Metrics map[string]any
	// ModelID identifies the model; the ranker returns these.
	ModelID string
	// ModelName is the model's display name.
	ModelName string
	// PredictionCount is how many scored predictions the values are built from.
	PredictionCount int64
	// Rank is the built-in rank (1 is best); 0 when the built-in ranking leaves the model
	// unranked (no value for the ranking key).
	Rank int
	// RankingValue is the model's value of the ranking key; nil when it has none.
	RankingValue *float64
}

// toMap is the dict the script receives.
func (e Entry) toMap() map[string]any {
	row := map[string]any{
		"cruncher_name":    e.CruncherName,
		"metrics":          e.Metrics,
		"model_id":         e.ModelID,
		"model_name":       e.ModelName,
		"prediction_count": e.PredictionCount,
		"rank":             nil,
		"ranking_value":    nil,
	}
	if e.Metrics == nil {
		row["metrics"] = map[string]any{}
	}
	if e.Rank > 0 {
		row["rank"] = int64(e.Rank)
	}
	if e.RankingValue != nil {
		row["ranking_value"] = *e.RankingValue
	}
	return row
}

// Ranker is a loaded LEADERBOARD_RANKER script. It is safe for concurrent use.
type Ranker struct {
	fn *script.Func
}

// New builds the ranker named by ref. "" and "sql" select the built-in ranking and return
// nil: callers keep the order they computed. Anything else must be `file.star:function`
// naming a function of one argument; a reference that cannot be loaded is an error, so a
// misconfigured node stops at start-up rather than silently ranking by the built-in rule.
func New(ref string, opts script.Options) (*Ranker, error) {
	if ref == "" || ref == BuiltIn {
		return nil, nil
	}
	if !script.IsRef(ref) {
		return nil, fmt.Errorf("LEADERBOARD_RANKER: unknown ranker %q (want %q or path/to/file.star:function)", ref, BuiltIn)
	}
	parsed, err := script.ParseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("LEADERBOARD_RANKER: %w", err)
	}
	fn, err := script.LoadRef(parsed, opts)
	if err != nil {
		return nil, fmt.Errorf("LEADERBOARD_RANKER: %w", err)
	}
	if err := fn.CheckArity(1); err != nil {
		return nil, fmt.Errorf("LEADERBOARD_RANKER: %w", err)
	}
	return &Ranker{fn: fn}, nil
}

// NewFromFunc wraps an already loaded function (tests, embedded scripts).
func NewFromFunc(fn *script.Func) (*Ranker, error) {
	if err := fn.CheckArity(1); err != nil {
		return nil, fmt.Errorf("LEADERBOARD_RANKER: %w", err)
	}
	return &Ranker{fn: fn}, nil
}

// String returns the script reference, which history records name as the ranking used.
func (r *Ranker) String() string { return r.fn.String() }

// Order calls the script with entries and returns the model ids it ranks, best first. An
// error (the script failed, timed out, or returned something other than distinct ids of
// the given entries) leaves the decision to the caller, which keeps the built-in ranking.
func (r *Ranker) Order(ctx context.Context, entries []Entry) ([]string, error) {
	rows := make([]any, len(entries))
	for i, e := range entries {
		rows[i] = e.toMap()
	}
	out, err := r.fn.Call(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("ranker %s: %w", r.fn, err)
	}
	order, err := ParseOrder(out, entries)
	if err != nil {
		return nil, fmt.Errorf("ranker %s: %w", r.fn, err)
	}
	return order, nil
}

// ParseOrder checks a ranker's result: a list whose elements are model ids or dicts with
// a "model_id", each one of the entries' and none twice.
func ParseOrder(out any, entries []Entry) ([]string, error) {
	list, ok := out.([]any)
	if !ok {
		return nil, fmt.Errorf("returned a value of type %s, want a list of model ids or rows", script.TypeName(out))
	}
	known := make(map[string]bool, len(entries))
	for _, e := range entries {
		known[e.ModelID] = true
	}
	seen := make(map[string]bool, len(list))
	order := make([]string, 0, len(list))
	for i, item := range list {
		id, ok := item.(string)
		if row, isRow := item.(map[string]any); isRow {
			id, ok = row["model_id"].(string)
		}
		if !ok {
			return nil, fmt.Errorf("element %d is of type %s, want a model id or a row with a model_id", i, script.TypeName(item))
		}
		if !known[id] {
			return nil, fmt.Errorf("element %d: %q is not one of the models given to rank", i, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("element %d: %q is ranked twice", i, id)
		}
		seen[id] = true
		order = append(order, id)
	}
	return order, nil
}

// Reorder splits items into those named by order, in that order, and the rest, in their
// original order.
func Reorder[T any](items []T, id func(T) string, order []string) (ranked, rest []T) {
	position := make(map[string]int, len(order))
	for i, o := range order {
		position[o] = i
	}
	ranked = make([]T, len(order))
	found := make([]bool, len(order))
	for _, item := range items {
		if i, ok := position[id(item)]; ok && !found[i] {
			ranked[i], found[i] = item, true
			continue
		}
		rest = append(rest, item)
	}
	// An id of order without an item leaves no hole.
	compact := ranked[:0]
	for i, item := range ranked {
		if found[i] {
			compact = append(compact, item)
		}
	}
	return compact, rest
}
