package ensemble

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		want    Filter
		wantErr string
	}{
		{in: " top_n( 5 ) ", want: TopN{Metric: "value", N: 5}},
		{in: `min_metric("ic", 0.01)`, want: MinMetric{Metric: "ic", Threshold: 0.01}},
		{in: "min_metric(ic, -1e-3)", want: MinMetric{Metric: "ic", Threshold: -0.001}},
		{in: "min_metric(ic)", wantErr: "min_metric takes (metric, threshold)"},
		{in: "min_metric(ic, inf)", wantErr: "threshold must be a finite number"},
		{in: "min_metric(ic, lots)", wantErr: "threshold must be a finite number"},
		{in: "min_metric(ic-x, 1)", wantErr: `invalid metric name "ic-x"`},
		{in: "top_n", wantErr: "want name(arguments)"},
		{in: "top_n()", wantErr: "top_n takes (n) or (n, metric)"},
		{in: "top_n(0)", wantErr: "n must be a positive integer"},
		{in: "top_n(2.5)", wantErr: "n must be a positive integer"},
		{in: "top_n(3, 'score_recent')", want: TopN{Metric: "score_recent", N: 3}},
		{in: "top_n(3,)", wantErr: "empty argument 2"},
		{in: "top_n(3, a, b)", wantErr: "top_n takes (n) or (n, metric)"},
		{in: "best(3)", wantErr: `unknown filter "best"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFilter(tt.in)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidSpec)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestFilterString(t *testing.T) {
	t.Parallel()

	require.Equal(t, "top_n(5, value)", TopN{Metric: "value", N: 5}.String())
	require.Equal(t, "min_metric(ic, 0.01)", MinMetric{Metric: "ic", Threshold: 0.01}.String())
}

func TestParseSpec(t *testing.T) {
	t.Parallel()

	spec, err := ParseSpec("top5", "", []string{"min_metric(ic, 0)", "top_n(5)"})
	require.NoError(t, err)
	require.Equal(t, "inverse_variance", spec.Strategy.Name())
	require.Len(t, spec.Filters, 2)
	require.Equal(t, "__ensemble_top5__", spec.ModelID())

	tests := []struct {
		name, strategy string
		filters        []string
	}{
		{"", "equal_weight", nil},
		{"has space", "equal_weight", nil},
		{"ok", "bogus", nil},
		{"ok", "equal_weight", []string{"top_n(x)"}},
	}
	for _, tt := range tests {
		_, err := ParseSpec(tt.name, tt.strategy, tt.filters)
		require.ErrorIs(t, err, ErrInvalidSpec, "%+v", tt)
	}
}

func TestVirtualModelID(t *testing.T) {
	t.Parallel()

	require.True(t, IsVirtual(VirtualModelID("x")))
	require.False(t, IsVirtual("__ensemble___"))
	require.False(t, IsVirtual("model-1"))
}

func cands() []Candidate {
	return []Candidate{
		{Metrics: map[string]float64{"ic": 0.05, "value": 3}, ModelID: "a", Signals: []float64{1, 3}},             // var 1
		{Metrics: map[string]float64{"ic": 0.02, "value": 5}, ModelID: "b", Signals: []float64{0, 4, math.NaN()}}, // var 4
		{Metrics: map[string]float64{"ic": -0.01, "value": 5}, ModelID: "c", Signals: []float64{2}},               // too few: raw 1
		{Metrics: map[string]float64{"value": math.NaN()}, ModelID: "d", Signals: []float64{7, 7, 7}},             // constant: raw 1
		{Metrics: map[string]float64{"ic": 1, "value": 99}, ModelID: VirtualModelID("old"), Signals: []float64{1, 2}},
	}
}

func TestSpecWeights(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		strategy string
		filters  []string
		want     map[string]float64
		wantErr  error
	}{
		{
			name:     "equal weight skips ensembles",
			strategy: "equal_weight",
			want:     map[string]float64{"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25},
		},
		{
			name:     "filters apply in order",
			strategy: "equal_weight",
			filters:  []string{"min_metric(ic, 0)", "top_n(1)"},
			want:     map[string]float64{"b": 1},
		},
		{
			// raw 1/1, 1/4, 1, 1 → total 3.25
			name: "inverse variance",
			want: map[string]float64{"a": 1 / 3.25, "b": 0.25 / 3.25, "c": 1 / 3.25, "d": 1 / 3.25},
		},
		{
			name:    "missing metric fails threshold",
			filters: []string{"min_metric(sharpe, -100)"},
			wantErr: ErrNoCandidates,
		},
		{
			name:     "top_n ties by model id, missing last",
			strategy: "equal_weight",
			filters:  []string{"top_n(3)"},
			want:     map[string]float64{"a": 1.0 / 3, "b": 1.0 / 3, "c": 1.0 / 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec, err := ParseSpec("e", tt.strategy, tt.filters)
			require.NoError(t, err)
			got, err := spec.Weights(cands())
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			var sum float64
			for id, w := range tt.want {
				require.InDelta(t, w, got[id], 1e-12, id)
				sum += got[id]
			}
			require.InDelta(t, 1, sum, 1e-12)
		})
	}
}

func TestCombine(t *testing.T) {
	t.Parallel()

	weights := map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2, "zero": 0}
	tests := []struct {
		name  string
		preds []Prediction
		want  map[string]float64
	}{
		{
			name:  "all present",
			preds: []Prediction{{"k", "a", 1}, {"k", "b", 2}, {"k", "c", 3}},
			want:  map[string]float64{"k": 0.5*1 + 0.3*2 + 0.2*3},
		},
		{
			name:  "renormalised over present",
			preds: []Prediction{{"k", "a", 1}, {"k", "c", 3}},
			want:  map[string]float64{"k": (0.5*1 + 0.2*3) / 0.7},
		},
		{
			name:  "later duplicate wins",
			preds: []Prediction{{"k", "a", 100}, {"k", "a", 1}},
			want:  map[string]float64{"k": 1},
		},
		{
			name:  "non-finite and unweighted ignored",
			preds: []Prediction{{"k", "a", math.NaN()}, {"k", "b", 2}, {"k", "zero", 50}, {"k", "unknown", 50}},
			want:  map[string]float64{"k": 2},
		},
		{
			name:  "key nobody weighted is absent",
			preds: []Prediction{{"k1", "a", 1}, {"k2", "zero", 1}},
			want:  map[string]float64{"k1": 1},
		},
		{
			name: "no predictions",
			want: map[string]float64{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Combine(weights, tt.preds)
			require.Len(t, got, len(tt.want))
			for k, v := range tt.want {
				require.InDelta(t, v, got[k], 1e-12, k)
			}
		})
	}
}

// FuzzParseFilter checks that any accepted expression prints back to an
// expression that parses to the same filter.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"top_n(5)", "min_metric(ic, 0.01)", `top_n(2, "value")`, "min_metric(x,-1e-9)", "top_n((1))"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidSpec)
			return
		}
		again, err := ParseFilter(flt.String())
		require.NoError(t, err, flt.String())
		require.Equal(t, flt, again)
	})
}
