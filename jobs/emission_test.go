package jobs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/emission"
)

func TestEmissionBuilder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ranking := []RankedModel{
		{ModelID: "a", Rank: 1, RankingValue: 2, ResultSummary: map[string]any{"value": 2.0}},
		{ModelID: "b", Rank: 2, RankingValue: 1, ResultSummary: map[string]any{"value": 1.0}},
	}
	dir := t.TempDir()
	write := func(name, src string) string {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644))
		return name
	}
	sum := func(c emission.Checkpoint) int64 {
		var total int64
		for _, r := range c.CruncherRewards {
			total += r.RewardPct
		}
		return total
	}

	t.Run("BuiltinTiers", func(t *testing.T) {
		t.Parallel()
		build, err := NewEmissionBuilder("tiers", dir)
		require.NoError(t, err)
		doc, err := build(ctx, ranking, emission.Identities{Crunch: "c"})
		require.NoError(t, err)
		require.EqualValues(t, emission.Frac64Multiplier, sum(doc))
	})

	t.Run("Starlark", func(t *testing.T) {
		t.Parallel()
		ref := write("split.star", "def build(ranking):\n    return [100.0 * r['ranking_value'] / 3 for r in ranking]\n") + ":build"
		build, err := NewEmissionBuilder(ref, dir)
		require.NoError(t, err)
		doc, err := build(ctx, ranking, emission.Identities{})
		require.NoError(t, err)
		require.EqualValues(t, emission.Frac64Multiplier, sum(doc), "frac64 rewards sum exactly")
		require.InDelta(t, 666_666_667, doc.CruncherRewards[0].RewardPct, 1)
	})

	t.Run("StarlarkWrongShape", func(t *testing.T) {
		t.Parallel()
		ref := write("bad.star", "def build(ranking):\n    return [100]\n") + ":build"
		build, err := NewEmissionBuilder(ref, dir)
		require.NoError(t, err)
		_, err = build(ctx, ranking, emission.Identities{})
		require.ErrorContains(t, err, "want a list of 2 percentages")
	})

	t.Run("UnknownStrategy", func(t *testing.T) {
		t.Parallel()
		_, err := NewEmissionBuilder("lottery", dir)
		require.ErrorContains(t, err, "BUILD_EMISSION")
	})
}
