package emission

import (
	"fmt"
	"math"
)

// Strategy names a built-in way of turning a ranking into percentages; it
// is the emission.strategy value of crunch_config.yaml.
type Strategy string

const (
	// StrategyContributionWeighted rewards rank, ensemble contribution and
	// diversity; see [ContributionWeighted].
	StrategyContributionWeighted Strategy = "contribution_weighted"
	// StrategyTiers is the default fixed tier table; see [Tiers].
	StrategyTiers Strategy = "tiers"
)

// ParseStrategy validates a configured strategy name at start-up, so a typo
// stops the process instead of failing at the first checkpoint. The empty
// string means the default, tiers.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case "":
		return StrategyTiers, nil
	case StrategyContributionWeighted, StrategyTiers:
		return Strategy(s), nil
	}
	return "", fmt.Errorf("unknown emission strategy %q (want %q or %q)", s, StrategyTiers, StrategyContributionWeighted)
}

// Entry is one ranked model, in ranking order (index 0 is rank 1).
type Entry struct {
	// Contribution is the model's ensemble contribution metric; only
	// contribution_weighted reads it. Non-finite values count as 0.
	Contribution float64
	ModelID      string
	// ModelCorrelation is the model's correlation with the other models;
	// only contribution_weighted reads it. Non-finite values count as 0
	// (fully diverse), so a missing metric does not cost a reward.
	ModelCorrelation float64
}

// Pcts returns the reward percentage of each entry, summing to 100.
func (s Strategy) Pcts(entries []Entry) ([]float64, error) {
	if len(entries) == 0 {
		return nil, ErrNoEntries
	}
	switch s {
	case StrategyContributionWeighted:
		return ContributionWeighted(entries), nil
	case StrategyTiers, "":
		return Tiers(len(entries)), nil
	}
	return nil, fmt.Errorf("unknown emission strategy %q", s)
}

// tierPct is the immutable tier table: index r-1 holds rank r's share.
var tierPct = [10]float64{35, 10, 10, 10, 10, 5, 5, 5, 5, 5}

// Tiers returns the tier percentages for n ranked entries: rank 1 gets
// 35 %, ranks 2–5 10 % each, ranks 6–10 5 % each, later ranks nothing. With
// fewer than ten entries the unassigned remainder is split equally among
// all entries (tiered ones included), so the shares still sum to 100: three
// models get 50/25/25.
func Tiers(n int) []float64 {
	pcts := make([]float64, n)
	var sum float64
	for i := range min(n, len(tierPct)) {
		pcts[i] = tierPct[i]
		sum += tierPct[i]
	}
	if n > 0 && sum < 100 {
		extra := (100 - sum) / float64(n)
		for i := range pcts {
			pcts[i] += extra
		}
	}
	return pcts
}

const (
	// minPct is the floor every entry gets under contribution_weighted,
	// so that a participating model is never left with nothing.
	minPct = 1.0

	weightContribution = 0.3
	weightDiversity    = 0.2
	weightRank         = 0.5
)

// ContributionWeighted returns percentages from a composite score
// 0.5·rank + 0.3·contribution + 0.2·diversity, where rank is 1/rank,
// diversity is 1 − model_correlation, and each of the three is min-max
// normalised over the entries (all equal → 1/n each). Each entry gets
// max(1 %, its share of the composite), and the result is renormalised to
// 100 %. A near-zero composite total gives equal shares.
//
// Because of the 1 % floor, with more than about 100 entries the floor
// dominates and shares tend toward equal; that is the Python engine's
// behaviour and is kept.
func ContributionWeighted(entries []Entry) []float64 {
	n := len(entries)
	rank := make([]float64, n)
	contrib := make([]float64, n)
	diversity := make([]float64, n)
	for i, e := range entries {
		rank[i] = 1 / float64(i+1)
		contrib[i] = finiteOr0(e.Contribution)
		diversity[i] = 1 - finiteOr0(e.ModelCorrelation)
	}
	minMax(rank)
	minMax(contrib)
	minMax(diversity)

	composite := make([]float64, n)
	var total float64
	for i := range composite {
		composite[i] = weightRank*rank[i] + weightContribution*contrib[i] + weightDiversity*diversity[i]
		total += composite[i]
	}
	pcts := make([]float64, n)
	if total < 1e-12 {
		for i := range pcts {
			pcts[i] = 100 / float64(n)
		}
		return pcts
	}
	var sum float64
	for i, c := range composite {
		pcts[i] = max(minPct, c/total*100)
		sum += pcts[i]
	}
	for i := range pcts {
		pcts[i] = pcts[i] / sum * 100
	}
	return pcts
}

// minMax rescales v in place to [0, 1]; when all values are equal there is
// no information to rank on and each gets 1/n.
func minMax(v []float64) {
	if len(v) == 0 {
		return
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	if hi-lo < 1e-12 {
		for i := range v {
			v[i] = 1 / float64(len(v))
		}
		return
	}
	for i, x := range v {
		v[i] = (x - lo) / (hi - lo)
	}
}

func finiteOr0(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}
