package merkle

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Snapshot is the part of a snapshot row that a leaf commits to. Other
// columns (ids, creation time) are bookkeeping and deliberately left out,
// as in the Python engine.
type Snapshot struct {
	ModelID         string
	PeriodEnd       time.Time
	PeriodStart     time.Time
	PredictionCount int64
	// ResultSummary is the aggregated result object, with Go ints for
	// integers and float64 (or json.Number literals) for floats; see
	// [Canonical] for why the distinction matters. A nil map encodes as
	// null.
	ResultSummary map[string]any
}

// CanonicalJSON returns the exact bytes a leaf hashes:
// {"model_id","period_end","period_start","prediction_count","result_summary"}
// encoded by [Canonical].
func (s Snapshot) CanonicalJSON() ([]byte, error) {
	var summary any
	if s.ResultSummary != nil {
		summary = s.ResultSummary
	}
	b, err := Canonical(map[string]any{
		"model_id":         s.ModelID,
		"period_end":       s.PeriodEnd,
		"period_start":     s.PeriodStart,
		"prediction_count": s.PredictionCount,
		"result_summary":   summary,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding snapshot of model %q: %w", s.ModelID, err)
	}
	return b, nil
}

// ContentHash returns the snapshot's leaf hash, sha256(CanonicalJSON()).
// Store it with the snapshot when it is written: recomputing it later from a
// JSON round trip risks losing float/int distinctions.
func (s Snapshot) ContentHash() (string, error) {
	b, err := s.CanonicalJSON()
	if err != nil {
		return "", err
	}
	return Hash(b), nil
}

// SortSnapshots orders snapshots by model id in code point order, the leaf
// order of a cycle tree. Sorting here rather than in SQL avoids database
// collations, which do not sort by code point.
func SortSnapshots(s []Snapshot) {
	slices.SortStableFunc(s, func(a, b Snapshot) int { return strings.Compare(a.ModelID, b.ModelID) })
}
