package metric

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// pts builds a single-scope series with keys k0, k1, … one minute apart.
func pts(signals, actuals []float64) []Point {
	out := make([]Point, len(signals))
	for i := range signals {
		out[i] = Point{At: t0.Add(time.Duration(i) * time.Minute), Key: fmt.Sprintf("k%02d", i), Signal: signals[i]}
		if actuals != nil {
			out[i].Actual = actuals[i]
		}
	}
	return out
}

func compute(t *testing.T, names []string, w Window) map[string]map[string]float64 {
	t.Helper()
	res, err := NewRegistry().Compute(t.Context(), names, w)
	require.NoError(t, err)
	require.Empty(t, res.Failures)
	return res.Values
}

func one(t *testing.T, name string, points []Point) float64 {
	t.Helper()
	return compute(t, []string{name}, Window{Models: map[string][]Point{"m": points}})["m"][name]
}

func TestSingleModelMetrics(t *testing.T) {
	t.Parallel()

	nan := math.NaN()
	scores := func(s ...float64) []Point {
		p := pts(make([]float64, len(s)), nil)
		for i := range s {
			p[i].Score = s[i]
		}
		return p
	}
	scoped := pts([]float64{1, 5, 3, 5, 2}, nil)
	for i := range scoped {
		scoped[i].Scope = []string{"A", "B"}[i%2]
	}
	tests := []struct {
		metric string
		name   string
		points []Point
		want   float64
	}{
		{HitRate, "zero counts as positive", pts([]float64{1, -1, 0, 2}, []float64{2, -3, -1, 0}), 0.75},
		{HitRate, "no points", nil, 0},
		{IC, "non-finite pairs skipped", pts([]float64{1, nan, 2, 3, 4}, []float64{1, 5, 2, math.Inf(1), 3}), 1},
		{IC, "perfect", pts([]float64{0.1, 0.3, 0.2}, []float64{1, 3, 2}), 1},
		{IC, "ties averaged", pts([]float64{1, 2, 2, 3}, []float64{1, 3, 2, 4}), 4.5 / math.Sqrt(22.5)},
		{ICSharpe, "chunks of two", pts([]float64{1, 2, 1, 2, 2, 1, 1, 2}, []float64{1, 2, 1, 2, 1, 2, 1, 2}), 0.5 / math.Sqrt(0.75)},
		{ICSharpe, "consistently right", pts([]float64{1, 2, 1, 2, 1, 2}, []float64{1, 2, 1, 2, 1, 2}), 10},
		{ICSharpe, "consistently wrong is negative", pts([]float64{2, 1, 2, 1, 2, 1}, []float64{1, 2, 1, 2, 1, 2}), -10},
		{ICSharpe, "fewer than four", pts([]float64{1, 2, 3}, []float64{1, 2, 3}), 0},
		{MaxDrawdown, "cumulative from zero", scores(1, -2, 0.5, -1, 3), -2.5},
		{MaxDrawdown, "never below peak", scores(1, 2), 0},
		{MaxDrawdown, "non-finite skipped", scores(1, nan, -2), -2},
		{MaxDrawdown, "single score", scores(-5), 0},
		{MeanReturn, "signed actual", pts([]float64{1, -1, 0, 2}, []float64{2, -3, -1, 0}), 1},
		{SortinoRatio, "downside deviation of negatives", pts([]float64{1, -1, 0, 2}, []float64{2, -3, -1, 0}), 1},
		{SortinoRatio, "no downside clamps", pts([]float64{1, 1}, []float64{1, 2}), 10},
		{SortinoRatio, "single point", pts([]float64{1}, []float64{1}), 0},
		{Turnover, "per scope", scoped, 1},
		{Turnover, "single point", pts([]float64{1}, nil), 0},
	}
	for _, tt := range tests {
		t.Run(tt.metric+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, tt.want, one(t, tt.metric, tt.points), 1e-12)
		})
	}
}

// TestModelCorrelationIsTimeAligned: m3 skipped k1, so an index-aligned
// join (the Python engine's) would compare m3's k2 with the others' k1.
func TestModelCorrelationIsTimeAligned(t *testing.T) {
	t.Parallel()

	m3 := pts([]float64{1, 0, 3, 4}, nil)
	m3 = slices.Delete(m3, 1, 2)
	w := Window{Models: map[string][]Point{
		"m1": pts([]float64{1, 2, 3, 4}, nil),
		"m2": pts([]float64{2, 1, 4, 3}, nil),
		"m3": m3,
	}}
	got := compute(t, []string{ModelCorrelation}, w)
	// Others of m1 per key: 1.5, 1, 3.5, 3.5 (hand computed).
	require.InDelta(t, 3.5/math.Sqrt(22.5), got["m1"][ModelCorrelation], 1e-12)
	require.InDelta(t, referenceLOO(newRefWindow(w), "m3"), got["m3"][ModelCorrelation], 1e-12)
}

func TestModelCorrelationWithoutPeers(t *testing.T) {
	t.Parallel()

	got := compute(t, []string{ModelCorrelation, FNC, IC}, Window{Models: map[string][]Point{
		"solo": pts([]float64{1, 2, 3}, []float64{3, 1, 2}),
	}})
	require.Zero(t, got["solo"][ModelCorrelation])
	require.InDelta(t, got["solo"][IC], got["solo"][FNC], 1e-12, "fnc falls back to ic")
}

func TestEnsembleMetrics(t *testing.T) {
	t.Parallel()

	actual := []float64{1, 2, 3, 4, 5}
	w := Window{
		Ensemble: pts([]float64{1, 2, 3, 5, 4}, nil),
		Models: map[string][]Point{
			"a": pts([]float64{1, 2, 3, 4, 5}, actual),
			"b": pts([]float64{5, 4, 3, 2, 1}, actual),
		},
	}
	got := compute(t, []string{Contribution, EnsembleCorrelation, FNC}, w)
	// a vs ensemble: one swapped pair among five.
	require.InDelta(t, 0.9, got["a"][EnsembleCorrelation], 1e-12)
	require.InDelta(t, -0.9, got["b"][EnsembleCorrelation], 1e-12)
	// contribution of a: ρ(ens, actual) − ρ(b, actual) = 0.9 − (−1).
	require.InDelta(t, 1.9, got["a"][Contribution], 1e-12)
	require.InDelta(t, 0.9-1, got["b"][Contribution], 1e-12)
	// The mean of a and b is 3 everywhere, so a − mean is a shifted a.
	require.InDelta(t, 1, got["a"][FNC], 1e-12)
	require.InDelta(t, -1, got["b"][FNC], 1e-12)

	noEns := compute(t, []string{Contribution, EnsembleCorrelation}, Window{Models: w.Models})
	require.Zero(t, noEns["a"][Contribution])
	require.Zero(t, noEns["a"][EnsembleCorrelation])
}

// TestComputeMatchesReference compares the fast path (interned keys,
// template matching, pre-ranked series) with a direct map-based
// implementation on messy windows: missing keys, extra keys, NaN signals,
// duplicated keys, shuffled input.
func TestComputeMatchesReference(t *testing.T) {
	t.Parallel()

	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			w := messyWindow(seed, 12, 300)
			shuffled := make(map[string][]Point, len(w.Models))
			before := make(map[string][]Point, len(w.Models))
			for id, p := range w.Models {
				before[id] = slices.Clone(p)
				shuffled[id] = p
			}
			names := []string{Contribution, EnsembleCorrelation, FNC, IC, ModelCorrelation}
			got := compute(t, names, w)
			for id := range before {
				require.True(t, slices.EqualFunc(before[id], shuffled[id], samePoint), "caller's slice of %s untouched", id)
			}
			ref := newRefWindow(w)
			for id := range w.Models {
				require.InDelta(t, referenceLOO(ref, id), got[id][ModelCorrelation], 1e-9, id)
				require.InDelta(t, referenceIC(ref, id), got[id][IC], 1e-9, id)
				require.InDelta(t, referenceFNC(ref, id), got[id][FNC], 1e-9, id)
				require.InDelta(t, referenceEnsembleCorr(ref, id), got[id][EnsembleCorrelation], 1e-9, id)
				require.InDelta(t, referenceContribution(ref, id), got[id][Contribution], 1e-9, id)
			}
		})
	}
}

// samePoint compares bit for bit, so that NaN equals NaN.
func samePoint(a, b Point) bool {
	bits := math.Float64bits
	return a.At.Equal(b.At) && a.Key == b.Key && a.Scope == b.Scope &&
		bits(a.Actual) == bits(b.Actual) && bits(a.Score) == bits(b.Score) && bits(a.Signal) == bits(b.Signal)
}

func messyWindow(seed uint64, models, keys int) Window {
	rng := rand.New(rand.NewPCG(seed, 99))
	truth := make([]float64, keys)
	for k := range truth {
		truth[k] = rng.NormFloat64()
	}
	w := Window{Models: map[string][]Point{}}
	for m := range models {
		var p []Point
		for k := range keys {
			if rng.IntN(10) == 0 {
				continue // missed this prediction
			}
			pt := Point{
				Actual: truth[k],
				At:     t0.Add(time.Duration(k)*time.Minute + time.Duration(rng.IntN(1000))*time.Millisecond),
				Key:    fmt.Sprintf("slot-%04d|btc", k),
				Signal: truth[k]*float64(m%3) + rng.NormFloat64(),
			}
			if rng.IntN(40) == 0 {
				pt.Signal = math.NaN()
			}
			if m == 3 { // its own idea of the outcome: no shared actual order
				pt.Actual += float64(k % 7)
			}
			p = append(p, pt)
			if rng.IntN(50) == 0 { // a later duplicate wins
				dup := pt
				dup.At = dup.At.Add(30 * time.Second)
				dup.Signal = rng.NormFloat64()
				p = append(p, dup)
			}
		}
		if m%2 == 1 {
			p = append(p, Point{At: t0, Key: fmt.Sprintf("only-%d", m), Signal: 1, Actual: 1})
			rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		}
		w.Models[fmt.Sprintf("model-%02d", m)] = p
	}
	if seed%2 == 0 {
		for k := range keys {
			if rng.IntN(5) > 0 {
				w.Ensemble = append(w.Ensemble, Point{At: t0, Key: fmt.Sprintf("slot-%04d|btc", k), Signal: truth[k] + rng.NormFloat64()})
			}
		}
	}
	return w
}

// latest maps key → the point with the latest At (ties: the later one in
// (At, Key) order), the documented dedup rule.
func latest(p []Point) map[string]Point {
	sorted := slices.Clone(p)
	slices.SortStableFunc(sorted, comparePoints)
	out := map[string]Point{}
	for _, pt := range sorted {
		out[pt.Key] = pt
	}
	return out
}

func orderedKeys(m map[string]Point) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func othersMean(w refWindow, self, key string) (float64, int) {
	var sum float64
	n := 0
	for id, p := range w.Models {
		if id == self {
			continue
		}
		if pt, ok := p[key]; ok && finite(pt.Signal) {
			sum += pt.Signal
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}

func referenceLOO(w refWindow, id string) float64 {
	self := w.Models[id]
	var x, y []float64
	for _, k := range orderedKeys(self) {
		if !finite(self[k].Signal) {
			continue
		}
		if mean, n := othersMean(w, id, k); n > 0 {
			x, y = append(x, self[k].Signal), append(y, mean)
		}
	}
	return naiveSpearman(x, y)
}

func referenceIC(w refWindow, id string) float64 {
	self := w.Models[id]
	var x, y []float64
	for _, k := range orderedKeys(self) {
		if finite(self[k].Signal) && finite(self[k].Actual) {
			x, y = append(x, self[k].Signal), append(y, self[k].Actual)
		}
	}
	return naiveSpearman(x, y)
}

func referenceFNC(w refWindow, id string) float64 {
	self := w.Models[id]
	var x, y []float64
	for _, k := range orderedKeys(self) {
		s := self[k]
		if !finite(s.Signal) || !finite(s.Actual) {
			continue
		}
		mean, n := othersMean(w, id, k)
		all := (mean*float64(n) + s.Signal) / float64(n+1)
		x, y = append(x, s.Signal-all), append(y, s.Actual)
	}
	return naiveSpearman(x, y)
}

// refWindow is a Window as maps: model → key → latest point, and
// key → ensemble signal.
type refWindow struct {
	Ensemble map[string]float64
	Models   map[string]map[string]Point
}

func newRefWindow(w Window) refWindow {
	r := refWindow{Ensemble: map[string]float64{}, Models: map[string]map[string]Point{}}
	for id, p := range w.Models {
		r.Models[id] = latest(p)
	}
	for _, e := range w.Ensemble {
		r.Ensemble[e.Key] = e.Signal
	}
	return r
}

func referenceEnsembleCorr(w refWindow, id string) float64 {
	self, ens := w.Models[id], w.Ensemble
	var x, y []float64
	for _, k := range orderedKeys(self) {
		if e, ok := ens[k]; ok && finite(self[k].Signal) {
			x, y = append(x, self[k].Signal), append(y, e)
		}
	}
	return naiveSpearman(x, y)
}

func referenceContribution(w refWindow, id string) float64 {
	self, ens := w.Models[id], w.Ensemble
	var e, loo, a []float64
	for _, k := range orderedKeys(self) {
		s := self[k]
		ev, ok := ens[k]
		mean, n := othersMean(w, id, k)
		if !ok || n == 0 || !finite(s.Signal) || !finite(s.Actual) {
			continue
		}
		e, loo, a = append(e, ev), append(loo, mean), append(a, s.Actual)
	}
	if len(e) < 2 {
		return 0
	}
	return naiveSpearman(e, a) - naiveSpearman(loo, a)
}

func TestAllMetricsFiniteOnHostileInput(t *testing.T) {
	t.Parallel()

	inf, nan := math.Inf(1), math.NaN()
	hostile := []Point{
		{Actual: nan, Key: "a", Score: inf, Signal: nan},
		{Actual: 1e300, At: t0, Key: "b", Score: 1e300, Signal: -1e300},
		{Actual: -1e300, At: t0.Add(time.Second), Key: "c", Score: 1e300, Signal: 1e300},
		{Actual: 5e-324, At: t0.Add(2 * time.Second), Key: "d", Score: -inf, Signal: -5e-324},
	}
	w := Window{Ensemble: hostile, Models: map[string][]Point{"x": hostile, "y": hostile[1:], "z": nil}}
	res, err := NewRegistry().Compute(t.Context(), NewRegistry().Names(), w)
	require.NoError(t, err)
	require.Empty(t, res.Failures)
	require.Len(t, res.Values, 3)
	for id, vals := range res.Values {
		require.Len(t, vals, len(NewRegistry().Names()))
		for name, v := range vals {
			require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%s/%s = %v", id, name, v)
		}
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	require.NoError(t, r.Validate(DefaultNames()))
	err := r.Validate([]string{"ic", "icc", "sharpe"})
	require.ErrorIs(t, err, ErrUnknownMetric)
	require.ErrorContains(t, err, `"icc", "sharpe"`)

	_, err = r.Compute(t.Context(), []string{"nope"}, Window{})
	require.ErrorIs(t, err, ErrUnknownMetric)

	tests := []struct {
		name string
		f    Func
	}{
		{"", ic},
		{"1st", ic},
		{"has space", ic},
		{"ic", ic},
		{"nil_func", nil},
	}
	for _, tt := range tests {
		require.Error(t, r.Register(tt.name, tt.f), tt.name)
	}
	require.NoError(t, r.Register("consensus_gap", func(in Input) (float64, error) {
		var sum float64
		for i := range in.Points {
			mean, n := in.Others(i)
			if n > 0 {
				sum += in.Points[i].Signal - mean
			}
		}
		return sum, nil
	}))
	require.Contains(t, r.Names(), "consensus_gap")
	require.NoError(t, r.Validate([]string{"consensus_gap", "ic"}))

	res, err := r.Compute(t.Context(), []string{"consensus_gap"}, Window{Models: map[string][]Point{
		"a": pts([]float64{1, 2}, nil),
		"b": pts([]float64{3, 5}, nil),
	}})
	require.NoError(t, err)
	require.InDelta(t, -5.0, res.Values["a"]["consensus_gap"], 1e-12)
	require.InDelta(t, 5.0, res.Values["b"]["consensus_gap"], 1e-12)
}

func TestCustomMetricsAndFailures(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	errBoom := errors.New("boom")
	require.NoError(t, r.Register("ens_sum", func(in Input) (float64, error) {
		var sum float64
		for i := range in.Points {
			if e, ok := in.Ensemble(i); ok {
				sum += e
			}
		}
		return sum, nil
	}))
	require.NoError(t, r.Register("errs", func(Input) (float64, error) { return 0, errBoom }))
	require.NoError(t, r.Register("nan", func(Input) (float64, error) { return math.NaN(), nil }))
	require.NoError(t, r.Register("panics", func(Input) (float64, error) { panic("bad metric") }))

	w := Window{
		Ensemble: pts([]float64{10, 20}, nil),
		Models:   map[string][]Point{"a": pts([]float64{1, 2, 3}, []float64{1, 2, 3}), "b": pts([]float64{1}, nil)},
	}
	res, err := r.Compute(t.Context(), []string{"ens_sum", "errs", "nan", "panics", IC}, w)
	require.NoError(t, err)
	require.InDelta(t, 30.0, res.Values["a"]["ens_sum"], 0)
	require.InDelta(t, 10.0, res.Values["b"]["ens_sum"], 0)
	require.InDelta(t, 1.0, res.Values["a"][IC], 1e-12)
	require.Zero(t, res.Values["a"]["panics"])
	require.Len(t, res.Failures, 6)
	require.Equal(t, "a", res.Failures[0].ModelID)
	require.Equal(t, "errs", res.Failures[0].Metric)
	require.ErrorIs(t, res.Failures[0], errBoom)
	require.ErrorContains(t, res.Failures[1], "non-finite")
	require.ErrorContains(t, res.Failures[2], "panic: bad metric")
}

func TestInputWithoutWindow(t *testing.T) {
	t.Parallel()

	in := Input{Points: pts([]float64{1, 2, 3}, []float64{1, 3, 2})}
	mean, n := in.Others(0)
	require.Zero(t, mean)
	require.Zero(t, n)
	_, ok := in.Ensemble(0)
	require.False(t, ok)
	v, err := ic(in)
	require.NoError(t, err)
	require.InDelta(t, 0.5, v, 1e-12)
	v, err = fnc(in)
	require.NoError(t, err)
	require.InDelta(t, 0.5, v, 1e-12)
}

func TestComputeCancelled(t *testing.T) {
	t.Parallel()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := NewRegistry().Compute(ctx, DefaultNames(), messyWindow(1, 4, 50))
	require.Error(t, err)
}
