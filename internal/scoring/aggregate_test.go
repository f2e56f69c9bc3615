package scoring

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/script"
)

func ok(v float64, extra map[string]any) Result { return Result{Extra: extra, Success: true, Value: v} }

func bad(reason string) Result { return Result{FailedReason: reason} }

func TestMeanSummary(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		results []Result
		want    map[string]any
	}{
		{name: "BoolsAreNotNumbers", results: []Result{ok(1, map[string]any{"hit": true}), ok(3, map[string]any{"hit": false})}, want: map[string]any{"value": 2.0}},
		{name: "Empty", results: nil, want: map[string]any{}},
		{name: "FailedExcluded", results: []Result{ok(4, nil), bad("x"), ok(2, nil)}, want: map[string]any{"value": 3.0}},
		{name: "FieldMeanOverResultsThatHaveIt", results: []Result{ok(1, map[string]any{"error": 2.0}), ok(3, nil), ok(5, map[string]any{"error": int64(4)})}, want: map[string]any{"error": 3.0, "value": 3.0}},
		{name: "NonNumericDropped", results: []Result{ok(1, map[string]any{"note": "a", "parts": []any{1.0}})}, want: map[string]any{"value": 1.0}},
		{name: "OnlyFailed", results: []Result{bad("x"), bad("y")}, want: map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, MeanSummary(tt.results))
		})
	}
}

func TestMeanAggregatorCounts(t *testing.T) {
	t.Parallel()

	snap, err := MeanAggregator{}.Aggregate(context.Background(), []Result{ok(1, nil), bad("x"), ok(2, nil)})
	require.NoError(t, err)
	require.Equal(t, Snapshot{FailedCount: 1, PredictionCount: 3, SuccessCount: 2, Summary: map[string]any{"value": 1.5}}, snap)
}

func TestStarlarkAggregator(t *testing.T) {
	t.Parallel()

	t.Run("NotADict", func(t *testing.T) {
		t.Parallel()
		agg, err := NewAggregator("testdata/aggregate.star:not_a_dict", script.Options{})
		require.NoError(t, err)
		_, err = agg.Aggregate(context.Background(), []Result{ok(1, nil)})
		require.ErrorContains(t, err, "testdata/aggregate.star:not_a_dict returned number, want a dict")
	})
	t.Run("PenalisedMean", func(t *testing.T) {
		t.Parallel()
		agg, err := NewAggregator("testdata/aggregate.star:penalised_mean", script.Options{})
		require.NoError(t, err)
		snap, err := agg.Aggregate(context.Background(), []Result{ok(3, map[string]any{"error": 1.0}), bad("x"), ok(4, nil)})
		require.NoError(t, err)
		require.Equal(t, Snapshot{FailedCount: 1, PredictionCount: 3, SuccessCount: 2, Summary: map[string]any{"n": int64(3), "value": 2.0}}, snap)
	})
	t.Run("WrongArity", func(t *testing.T) {
		t.Parallel()
		_, err := NewAggregator("testdata/pnl.star:score", script.Options{})
		require.ErrorContains(t, err, "MODEL_SCORE_AGGREGATOR: aggregator: testdata/pnl.star:score:")
		require.ErrorContains(t, err, "must accept 1")
	})
}

func TestNewAggregator(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		ref      string
		wantType any
		wantErr  string
	}{
		{name: "BadRef", ref: "x.star", wantErr: "MODEL_SCORE_AGGREGATOR: script reference"},
		{name: "Empty", ref: "", wantType: MeanAggregator{}},
		{name: "Mean", ref: "mean", wantType: MeanAggregator{}},
		{name: "MissingFile", ref: "testdata/none.star:f", wantErr: "MODEL_SCORE_AGGREGATOR: loading testdata/none.star:f"},
		{name: "Script", ref: "testdata/aggregate.star:penalised_mean", wantType: &StarlarkAggregator{}},
		{name: "Unknown", ref: "median", wantErr: `unknown aggregator "median"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			agg, err := NewAggregator(tt.ref, script.Options{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.IsType(t, tt.wantType, agg)
		})
	}
}
