package emission

import (
	"errors"
	"fmt"
)

// ErrInvalidCheckpoint is returned by [Checkpoint.Validate].
var ErrInvalidCheckpoint = errors.New("invalid emission checkpoint")

// Checkpoint is the emission document stored in a checkpoint's entries (the
// Python engine's EmissionCheckpoint); its JSON shape is part of the report
// API and of what gets submitted on chain.
type Checkpoint struct {
	// ComputeProviderRewards is empty, or the one configured compute
	// provider with 100 %.
	ComputeProviderRewards []ProviderReward `json:"compute_provider_rewards"`
	// Crunch is the competition's on-chain public key.
	Crunch string `json:"crunch"`
	// CruncherRewards has one element per ranked model, in ranking order.
	CruncherRewards []CruncherReward `json:"cruncher_rewards"`
	// DataProviderRewards is empty, or the one configured data provider
	// with 100 %.
	DataProviderRewards []ProviderReward `json:"data_provider_rewards"`
}

// CruncherReward is one ranked model's share.
type CruncherReward struct {
	// CruncherIndex is the position in the ranking (0 = rank 1).
	CruncherIndex int `json:"cruncher_index"`
	// RewardPct is the share in frac64 units (1e9 = 100 %), despite the
	// name inherited from the Python JSON.
	RewardPct int64 `json:"reward_pct"`
}

// ProviderReward is a provider's share in frac64 units.
type ProviderReward struct {
	Provider  string `json:"provider"`
	RewardPct int64  `json:"reward_pct"`
}

// Identities are the configured on-chain parties of a competition. Empty
// provider fields mean "no such provider".
type Identities struct {
	ComputeProvider string
	Crunch          string
	DataProvider    string
}

// Build computes the emission for entries in ranking order with strategy s.
func Build(s Strategy, entries []Entry, ids Identities) (Checkpoint, error) {
	pcts, err := s.Pcts(entries)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("computing %s shares: %w", s, err)
	}
	return FromPcts(pcts, ids)
}

// FromPcts builds the document from percentages (index = ranking
// position), for strategies defined outside this package such as an
// operator's BUILD_EMISSION callable. Percentages must be finite,
// non-negative and sum to 100.
func FromPcts(pcts []float64, ids Identities) (Checkpoint, error) {
	fracs, err := ToFrac64(pcts)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("converting shares to frac64: %w", err)
	}
	c := Checkpoint{
		ComputeProviderRewards: providerRewards(ids.ComputeProvider),
		Crunch:                 ids.Crunch,
		CruncherRewards:        make([]CruncherReward, len(fracs)),
		DataProviderRewards:    providerRewards(ids.DataProvider),
	}
	for i, f := range fracs {
		c.CruncherRewards[i] = CruncherReward{CruncherIndex: i, RewardPct: f}
	}
	return c, nil
}

// providerRewards gives a configured provider the whole provider pool and
// returns an empty (never nil) list otherwise, so the JSON has [] not null.
func providerRewards(provider string) []ProviderReward {
	if provider == "" {
		return []ProviderReward{}
	}
	return []ProviderReward{{Provider: provider, RewardPct: Frac64Multiplier}}
}

// Validate checks the invariants a payer relies on: cruncher indexes are
// 0..n-1 in order, no share is negative, cruncher rewards sum to exactly
// 100 %, and each provider list is empty or sums to exactly 100 %. Use it on
// documents produced by operator code or read back from storage.
func (c Checkpoint) Validate() error {
	if len(c.CruncherRewards) == 0 {
		return fmt.Errorf("%w: no cruncher rewards", ErrInvalidCheckpoint)
	}
	var sum int64
	for i, r := range c.CruncherRewards {
		if r.CruncherIndex != i {
			return fmt.Errorf("%w: cruncher_rewards[%d] has cruncher_index %d", ErrInvalidCheckpoint, i, r.CruncherIndex)
		}
		if r.RewardPct < 0 {
			return fmt.Errorf("%w: cruncher_rewards[%d] is negative", ErrInvalidCheckpoint, i)
		}
		sum += r.RewardPct
	}
	if sum != Frac64Multiplier {
		return fmt.Errorf("%w: cruncher rewards sum to %d, not %d", ErrInvalidCheckpoint, sum, Frac64Multiplier)
	}
	for _, list := range []struct {
		name    string
		rewards []ProviderReward
	}{
		{"compute_provider_rewards", c.ComputeProviderRewards},
		{"data_provider_rewards", c.DataProviderRewards},
	} {
		if len(list.rewards) == 0 {
			continue
		}
		var s int64
		for i, r := range list.rewards {
			if r.RewardPct < 0 || r.Provider == "" {
				return fmt.Errorf("%w: %s[%d] needs a provider and a non-negative share", ErrInvalidCheckpoint, list.name, i)
			}
			s += r.RewardPct
		}
		if s != Frac64Multiplier {
			return fmt.Errorf("%w: %s sum to %d, not %d", ErrInvalidCheckpoint, list.name, s, Frac64Multiplier)
		}
	}
	return nil
}
