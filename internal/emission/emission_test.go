package emission

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPctToFrac64MatchesPython uses int(round(p / 100 * 1e9)) from CPython
// 3.11, including exact halves that round to even.
func TestPctToFrac64MatchesPython(t *testing.T) {
	t.Parallel()

	tests := []struct {
		pct  float64
		want int64
	}{
		{0.00000005, 0},
		{0.00000015, 2},
		{0.00000025, 2},
		{0.1, 1_000_000},
		{1e-7, 1},
		{2.5e-8, 0},
		{12.5, 125_000_000},
		{100.0 / 3, 333_333_333},
		{100.0 / 7, 142_857_143},
		{99.99999995, 1_000_000_000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.pct), func(t *testing.T) {
			t.Parallel()
			got, err := PctToFrac64(tt.pct)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPctToFrac64RejectsNonFinite(t *testing.T) {
	t.Parallel()

	for _, p := range []float64{math.NaN(), math.Inf(1), 1e300} {
		_, err := PctToFrac64(p)
		require.ErrorIs(t, err, ErrInvalidPct)
	}
}

func testEntries(n int) []Entry {
	entries := make([]Entry, n)
	for i := range entries {
		entries[i] = Entry{
			Contribution:     math.Sin(float64(i)) / 10,
			ModelID:          fmt.Sprintf("m%04d", i),
			ModelCorrelation: math.Cos(float64(i) * 0.7),
		}
	}
	return entries
}

// TestBuildSumsExactly is the invariant a payer depends on.
func TestBuildSumsExactly(t *testing.T) {
	t.Parallel()

	for _, s := range []Strategy{StrategyContributionWeighted, StrategyTiers} {
		for _, n := range []int{1, 2, 3, 5, 10, 11, 1000} {
			t.Run(fmt.Sprintf("%s/%d", s, n), func(t *testing.T) {
				t.Parallel()
				c, err := Build(s, testEntries(n), Identities{Crunch: "crunch"})
				require.NoError(t, err)
				require.Len(t, c.CruncherRewards, n)
				var sum int64
				for i, r := range c.CruncherRewards {
					require.Equal(t, i, r.CruncherIndex)
					require.GreaterOrEqual(t, r.RewardPct, int64(0))
					sum += r.RewardPct
				}
				require.Equal(t, Frac64Multiplier, sum)
				require.NoError(t, c.Validate())
			})
		}
	}
}

func rewards(t *testing.T, s Strategy, entries []Entry) []int64 {
	t.Helper()
	c, err := Build(s, entries, Identities{})
	require.NoError(t, err)
	out := make([]int64, len(c.CruncherRewards))
	for i, r := range c.CruncherRewards {
		out[i] = r.RewardPct
	}
	return out
}

func TestTiers(t *testing.T) {
	t.Parallel()

	tests := []struct {
		n    int
		want []int64
	}{
		{1, []int64{1_000_000_000}},
		{2, []int64{625_000_000, 375_000_000}},
		{3, []int64{500_000_000, 250_000_000, 250_000_000}},
		{10, []int64{350_000_000, 100_000_000, 100_000_000, 100_000_000, 100_000_000, 50_000_000, 50_000_000, 50_000_000, 50_000_000, 50_000_000}},
		{11, []int64{350_000_000, 100_000_000, 100_000_000, 100_000_000, 100_000_000, 50_000_000, 50_000_000, 50_000_000, 50_000_000, 50_000_000, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, rewards(t, StrategyTiers, testEntries(tt.n)))
		})
	}
}

func TestTiersResidueGoesToFirst(t *testing.T) {
	t.Parallel()

	// 7 entries: 35+40+10 = 85, remainder 15/7 each; the non-terminating
	// shares round down and the residue (3 units) lands on rank 1; values
	// from the Python formula.
	got := rewards(t, StrategyTiers, testEntries(7))
	require.Equal(t, []int64{371_428_574, 121_428_571, 121_428_571, 121_428_571, 121_428_571, 71_428_571, 71_428_571}, got)
}

// TestContributionWeightedMatchesPython uses the Python engine's formula
// evaluated in CPython for the same four entries.
func TestContributionWeightedMatchesPython(t *testing.T) {
	t.Parallel()

	entries := []Entry{
		{Contribution: 0.02, ModelCorrelation: 0.9},
		{Contribution: 0.05, ModelCorrelation: 0.1},
		{Contribution: -0.01, ModelCorrelation: 0.5},
		{Contribution: 0.0, ModelCorrelation: 0.2},
	}
	require.Equal(t, []int64{382_978_723, 392_798_691, 91_653_028, 132_569_558}, rewards(t, StrategyContributionWeighted, entries))
}

func TestContributionWeightedEdgeCases(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		entries []Entry
		check   func(t *testing.T, got []int64)
	}{
		{
			name:    "floor of one percent",
			entries: []Entry{{Contribution: 1, ModelCorrelation: -1}, {Contribution: 0, ModelCorrelation: 1}, {Contribution: 0, ModelCorrelation: 1}},
			check: func(t *testing.T, got []int64) {
				t.Helper()
				require.GreaterOrEqual(t, got[2], int64(9_000_000), "the floor survives renormalisation at about 1 %%")
			},
		},
		{
			name:    "non-finite metrics count as zero",
			entries: []Entry{{Contribution: math.NaN(), ModelCorrelation: math.Inf(1)}, {}},
			check: func(t *testing.T, got []int64) {
				t.Helper()
				require.Greater(t, got[0], got[1], "rank still decides")
			},
		},
		{
			name:    "single entry gets everything",
			entries: []Entry{{Contribution: 0.3}},
			check: func(t *testing.T, got []int64) {
				t.Helper()
				require.Equal(t, []int64{Frac64Multiplier}, got)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, rewards(t, StrategyContributionWeighted, tt.entries))
		})
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()

	_, err := Build(StrategyTiers, nil, Identities{})
	require.ErrorIs(t, err, ErrNoEntries)
	_, err = Build("bogus", testEntries(2), Identities{})
	require.ErrorContains(t, err, `unknown emission strategy "bogus"`)
}

func TestFromPctsErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		pcts []float64
	}{
		{"does not sum to 100", []float64{50, 40}},
		{"empty", nil},
		{"nan", []float64{math.NaN(), 100}},
		{"negative", []float64{110, -10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := FromPcts(tt.pcts, Identities{})
			require.Error(t, err)
		})
	}
}

func TestCheckpointJSON(t *testing.T) {
	t.Parallel()

	c, err := Build(StrategyTiers, testEntries(2), Identities{Crunch: "CrunchKey", DataProvider: "DataKey"})
	require.NoError(t, err)
	raw, err := json.Marshal(c)
	require.NoError(t, err)
	require.JSONEq(t, `{
		"crunch": "CrunchKey",
		"cruncher_rewards": [{"cruncher_index": 0, "reward_pct": 625000000}, {"cruncher_index": 1, "reward_pct": 375000000}],
		"compute_provider_rewards": [],
		"data_provider_rewards": [{"provider": "DataKey", "reward_pct": 1000000000}]
	}`, string(raw))
}

func TestCheckpointValidate(t *testing.T) {
	t.Parallel()

	valid := func() Checkpoint {
		c, err := Build(StrategyTiers, testEntries(3), Identities{ComputeProvider: "cp"})
		require.NoError(t, err)
		return c
	}
	tests := []struct {
		name   string
		mutate func(c *Checkpoint)
	}{
		{"empty provider name", func(c *Checkpoint) { c.ComputeProviderRewards[0].Provider = "" }},
		{"index out of order", func(c *Checkpoint) { c.CruncherRewards[1].CruncherIndex = 2 }},
		{"negative share", func(c *Checkpoint) {
			c.CruncherRewards[1].RewardPct = -1
			c.CruncherRewards[0].RewardPct += 250_000_001
		}},
		{"no crunchers", func(c *Checkpoint) { c.CruncherRewards = nil }},
		{"provider sum", func(c *Checkpoint) { c.ComputeProviderRewards[0].RewardPct-- }},
		{"sum off by one", func(c *Checkpoint) { c.CruncherRewards[2].RewardPct++ }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			require.NoError(t, c.Validate())
			tt.mutate(&c)
			require.ErrorIs(t, c.Validate(), ErrInvalidCheckpoint)
		})
	}
}

func TestParseStrategy(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		want    Strategy
		wantErr bool
	}{
		{"", StrategyTiers, false},
		{"contribution_weighted", StrategyContributionWeighted, false},
		{"Tiers", "", true},
		{"tiers", StrategyTiers, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseStrategy(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
