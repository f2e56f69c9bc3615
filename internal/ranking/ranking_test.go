package ranking_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/ranking"
	"github.com/crunchnode/crunch-node/internal/script"
)

func entries(ids ...string) []ranking.Entry {
	out := make([]ranking.Entry, len(ids))
	for i, id := range ids {
		value := float64(len(ids) - i)
		out[i] = ranking.Entry{
			CruncherName: "cruncher-" + id, Metrics: map[string]any{"ic": float64(i), "score_recent": value, "window": nil},
			ModelID: id, ModelName: "name-" + id, PredictionCount: int64(10 * (i + 1)), Rank: i + 1, RankingValue: &value,
		}
	}
	return out
}

// star writes a Starlark file into a temporary directory and returns its reference.
func star(t *testing.T, src, fn string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rank.star")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	return path + ":" + fn
}

func TestNew(t *testing.T) {
	t.Parallel()
	opts := script.Options{}

	t.Run("BuiltInIsNil", func(t *testing.T) {
		t.Parallel()
		for _, ref := range []string{"", ranking.BuiltIn} {
			r, err := ranking.New(ref, opts)
			require.NoError(t, err)
			require.Nil(t, r, "%q keeps the built-in ranking", ref)
		}
	})

	for _, tt := range []struct {
		name string
		ref  func(t *testing.T) string
		want []string
	}{
		{"MissingFile", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.star") + ":rank" }, []string{"LEADERBOARD_RANKER", "none.star"}},
		{"MissingFunction", func(t *testing.T) string { return star(t, "def other(rows):\n    return rows\n", "rank") }, []string{"LEADERBOARD_RANKER", `no global "rank"`, "other"}},
		{"NotAReference", func(*testing.T) string { return "elo" }, []string{"LEADERBOARD_RANKER", `"elo"`}},
		{"SyntaxError", func(t *testing.T) string { return star(t, "def rank(rows)\n    return rows\n", "rank") }, []string{"LEADERBOARD_RANKER", "rank.star:2:1", "want ':'"}},
		{"WrongArity", func(t *testing.T) string { return star(t, "def rank(rows, extra):\n    return rows\n", "rank") }, []string{"LEADERBOARD_RANKER", "takes 2 positional parameter(s), must accept 1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ranking.New(tt.ref(t), opts)
			require.Error(t, err)
			for _, want := range tt.want {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestParseOrder(t *testing.T) {
	t.Parallel()
	given := entries("a", "b", "c")
	for _, tt := range []struct {
		name string
		out  any
		want []string
		err  string
	}{
		{name: "Duplicate", out: []any{"a", "a"}, err: `element 1: "a" is ranked twice`},
		{name: "Empty", out: []any{}, want: []string{}},
		{name: "Ids", out: []any{"c", "a", "b"}, want: []string{"c", "a", "b"}},
		{name: "Mixed", out: []any{map[string]any{"model_id": "b", "x": 1.0}, "a"}, want: []string{"b", "a"}},
		{name: "NotAList", out: map[string]any{"a": int64(1)}, err: "returned a value of type dict, want a list"},
		{name: "None", out: nil, err: "returned a value of type None"},
		{name: "NumberElement", out: []any{int64(1)}, err: "element 0 is of type int"},
		{name: "RowWithoutID", out: []any{map[string]any{"id": "a"}}, err: "element 0 is of type dict, want a model id or a row with a model_id"},
		{name: "Rows", out: []any{map[string]any{"model_id": "b"}, map[string]any{"model_id": "c"}}, want: []string{"b", "c"}},
		{name: "Subset", out: []any{"b"}, want: []string{"b"}},
		{name: "UnknownID", out: []any{"a", "z"}, err: `element 1: "z" is not one of the models given to rank`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ranking.ParseOrder(tt.out, given)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestReorder(t *testing.T) {
	t.Parallel()
	id := func(s string) string { return s }
	for _, tt := range []struct {
		name        string
		items       []string
		order       []string
		ranked, res []string
	}{
		{name: "All", items: []string{"a", "b", "c"}, order: []string{"c", "b", "a"}, ranked: []string{"c", "b", "a"}},
		{name: "None", items: []string{"a", "b"}, order: nil, ranked: []string{}, res: []string{"a", "b"}},
		{name: "RestKeepsItsOrder", items: []string{"a", "b", "c", "d"}, order: []string{"c"}, ranked: []string{"c"}, res: []string{"a", "b", "d"}},
		{name: "UnknownIDLeavesNoHole", items: []string{"a", "b"}, order: []string{"x", "b"}, ranked: []string{"b"}, res: []string{"a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ranked, rest := ranking.Reorder(tt.items, id, tt.order)
			require.Equal(t, tt.ranked, ranked)
			require.Equal(t, tt.res, rest)
		})
	}
}

func TestRankerOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	given := entries("a", "b", "c")
	load := func(t *testing.T, src string) *ranking.Ranker {
		t.Helper()
		r, err := ranking.New(star(t, src, "rank"), script.Options{MaxSteps: 10_000})
		require.NoError(t, err)
		require.NotNil(t, r)
		return r
	}

	t.Run("Reversed", func(t *testing.T) {
		t.Parallel()
		order, err := load(t, "def rank(rows):\n    return reversed(rows)\n").Order(ctx, given)
		require.NoError(t, err)
		require.Equal(t, []string{"c", "b", "a"}, order)
	})

	t.Run("SortedByAMetric", func(t *testing.T) {
		t.Parallel()
		src := "def rank(rows):\n    return [r[\"model_id\"] for r in sorted(rows, key=lambda r: r[\"metrics\"][\"ic\"], reverse=True)]\n"
		order, err := load(t, src).Order(ctx, given)
		require.NoError(t, err)
		require.Equal(t, []string{"c", "b", "a"}, order)
	})

	t.Run("SeesTheContract", func(t *testing.T) {
		t.Parallel()
		// Ranks by every documented field at once, so a missing or mistyped one fails.
		src := `
def rank(rows):
    for r in rows:
        if type(r["prediction_count"]) != "int" or type(r["rank"]) != "int":
            fail("ints expected")
        if type(r["ranking_value"]) != "float" or r["metrics"]["window"] != None:
            fail("floats and None expected")
        if not r["cruncher_name"].startswith("cruncher-") or not r["model_name"].startswith("name-"):
            fail("names expected")
    return [r["model_id"] for r in rows if r["prediction_count"] >= 20]
`
		order, err := load(t, src).Order(ctx, given)
		require.NoError(t, err)
		require.Equal(t, []string{"b", "c"}, order, "models left out are unranked")
	})

	for _, tt := range []struct {
		name, src, err string
	}{
		{"Fails", "def rank(rows):\n    fail(\"no ranking today\")\n", "no ranking today"},
		{"RunsForever", "def rank(rows):\n    n = 0\n    while True:\n        n += 1\n", "step limit"},
		{"UnknownModel", "def rank(rows):\n    return [\"nobody\"]\n", `"nobody" is not one of the models`},
		{"WrongType", "def rank(rows):\n    return len(rows)\n", "returned a value of type int"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tt.src).Order(ctx, given)
			require.ErrorContains(t, err, tt.err)
			require.ErrorContains(t, err, "rank.star:rank", "the error names the script")
		})
	}
}
