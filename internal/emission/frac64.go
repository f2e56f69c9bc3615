package emission

import (
	"errors"
	"fmt"
	"math"
)

// Frac64Multiplier is 100 % in frac64 units. The Python engine calls it
// FRAC_64_MULTIPLIER although it is 1e9, not 2^64; the value is what the
// on-chain programs expect, the name is kept for recognisability.
const Frac64Multiplier int64 = 1_000_000_000

// pctTolerance is how far, in percentage points, a strategy's percentages
// may sum away from 100 before the result is refused rather than silently
// topped up through the residue. It is far above float error for thousands
// of entries and far below anything meaningful (1e-6 % = 10 units).
const pctTolerance = 1e-6

var (
	// ErrNoEntries is returned when there is nobody to reward: rewards
	// could not sum to 100 %, so the caller should skip the emission.
	ErrNoEntries = errors.New("no ranked entries")

	// ErrInvalidPct is returned for percentages that are negative,
	// non-finite or do not sum to 100.
	ErrInvalidPct = errors.New("invalid reward percentage")
)

// PctToFrac64 converts a percentage to frac64 exactly as Python's
// int(round(pct / 100 * 1e9)): the same float operations in the same order,
// then round-half-even, so both engines produce identical integers.
func PctToFrac64(pct float64) (int64, error) {
	v := math.RoundToEven(pct / 100 * 1e9)
	if math.IsNaN(v) || math.IsInf(v, 0) || v > math.MaxInt64/2 || v < math.MinInt64/2 {
		return 0, fmt.Errorf("%w: %v", ErrInvalidPct, pct)
	}
	return int64(v), nil
}

// ToFrac64 converts reward percentages (summing to 100) to frac64 and adds
// the rounding residue to index 0, so the result sums to exactly
// Frac64Multiplier.
func ToFrac64(pcts []float64) ([]int64, error) {
	if len(pcts) == 0 {
		return nil, ErrNoEntries
	}
	var total float64
	for i, p := range pcts {
		if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 {
			return nil, fmt.Errorf("%w: entry %d is %v", ErrInvalidPct, i, p)
		}
		total += p
	}
	if math.Abs(total-100) > pctTolerance {
		return nil, fmt.Errorf("%w: percentages sum to %v, not 100", ErrInvalidPct, total)
	}
	out := make([]int64, len(pcts))
	var sum int64
	for i, p := range pcts {
		v, err := PctToFrac64(p)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		out[i] = v
		sum += v
	}
	out[0] += Frac64Multiplier - sum
	if out[0] < 0 {
		return nil, fmt.Errorf("%w: residue %d makes entry 0 negative", ErrInvalidPct, Frac64Multiplier-sum)
	}
	return out, nil
}
