package metric

import (
	"math"
	"slices"
)

// Built-in metric names, as written in crunch_config.yaml.
const (
	Contribution        = "contribution"
	EnsembleCorrelation = "ensemble_correlation"
	FNC                 = "fnc"
	HitRate             = "hit_rate"
	IC                  = "ic"
	ICSharpe            = "ic_sharpe"
	MaxDrawdown         = "max_drawdown"
	MeanReturn          = "mean_return"
	ModelCorrelation    = "model_correlation"
	SortinoRatio        = "sortino_ratio"
	Turnover            = "turnover"
)

// DefaultNames returns the metrics computed when the configuration does not
// name any, the Python engine's defaults.
func DefaultNames() []string {
	return []string{IC, ICSharpe, HitRate, MaxDrawdown, ModelCorrelation}
}

// builtins is the immutable table of built-in metrics.
func builtins() map[string]Func {
	return map[string]Func{
		Contribution:        contribution,
		EnsembleCorrelation: ensembleCorrelation,
		FNC:                 fnc,
		HitRate:             hitRate,
		IC:                  ic,
		ICSharpe:            icSharpe,
		MaxDrawdown:         maxDrawdown,
		MeanReturn:          meanReturn,
		ModelCorrelation:    modelCorrelation,
		SortinoRatio:        sortinoRatio,
		Turnover:            turnover,
	}
}

// cache holds per-model intermediate series so that metrics sharing them
// (ic, ic_sharpe, hit_rate, fnc, … all use the finite signal/actual pairs)
// compute them once; its buffers are reused from model to model by one
// worker goroutine.
type cache struct {
	r ranker

	paDone bool
	paIdx  []int32   // indexes into Points with finite Signal and Actual
	paP    []float64 // their signals, in time order
	paA    []float64 // their actuals

	paRankDone bool
	rankP      []float64
	rankA      []float64

	ord         []int32 // paRanks: pa positions in actual order
	pos         []int32 // paRanks: key id → 1 + pa position, else 0
	x, y, z, ry []float64
}

func (c *cache) reset() {
	c.paDone, c.paRankDone = false, false
}

func cacheOf(in Input) *cache {
	if in.c != nil {
		return in.c
	}
	return &cache{}
}

func grow(s []float64, n int) []float64 {
	return slices.Grow(s[:0], n)[:n]
}

// pa returns the signal/actual pairs with both values finite.
func (c *cache) pa(in Input) (p, a []float64) {
	if !c.paDone {
		c.paIdx, c.paP, c.paA = c.paIdx[:0], c.paP[:0], c.paA[:0]
		for i := range in.Points {
			pt := &in.Points[i]
			if finite(pt.Signal) && finite(pt.Actual) {
				c.paIdx = append(c.paIdx, int32(i))
				c.paP = append(c.paP, pt.Signal)
				c.paA = append(c.paA, pt.Actual)
			}
		}
		c.paDone = true
	}
	return c.paP, c.paA
}

// paRanks returns the average ranks of pa's signals and actuals.
func (c *cache) paRanks(in Input) (rp, ra []float64) {
	if !c.paRankDone {
		p, a := c.pa(in)
		c.rankP, c.rankA = grow(c.rankP, len(p)), grow(c.rankA, len(a))
		c.r.rank(p, c.rankP)
		if !c.rankActualsByWindowOrder(in) {
			c.r.rank(a, c.rankA)
		}
		c.paRankDone = true
	}
	return c.rankP, c.rankA
}

// rankActualsByWindowOrder ranks the actuals by walking the window's
// pre-sorted key order instead of sorting: O(keys) with no sort, which
// removes one of the three large sorts per model. It applies when every
// actual of the model equals its key's canonical actual (the usual case:
// actuals are ground truth) and reports whether it did.
func (c *cache) rankActualsByWindowOrder(in Input) bool {
	w := in.win
	if w == nil || len(w.actualOrder) == 0 {
		return false
	}
	ids := w.series[in.m].ids
	for j, i := range c.paIdx {
		id := ids[i]
		if int(id) >= len(w.actual) || w.actual[id] != c.paA[j] {
			return false
		}
	}
	if len(c.pos) < len(w.actual) {
		c.pos = make([]int32, len(w.actual))
	}
	for j, i := range c.paIdx {
		c.pos[ids[i]] = int32(j + 1)
	}
	c.ord = c.ord[:0]
	for _, id := range w.actualOrder {
		if j := c.pos[id]; j > 0 {
			c.ord = append(c.ord, j-1)
		}
	}
	for _, i := range c.paIdx {
		c.pos[ids[i]] = 0
	}
	// Equal actuals are adjacent in the order; they share the average rank.
	n := len(c.ord)
	for s := 0; s < n; {
		e := s + 1
		for e < n && c.paA[c.ord[e]] == c.paA[c.ord[s]] {
			e++
		}
		avg := float64(s+e+1) / 2
		for _, j := range c.ord[s:e] {
			c.rankA[j] = avg
		}
		s = e
	}
	return true
}

// sgn is the Python engine's sign: zero counts as positive.
func sgn(x float64) float64 {
	if x >= 0 {
		return 1
	}
	return -1
}

// ic is the information coefficient: Spearman's ρ between signal and
// actual over the model's scored predictions in the window.
func ic(in Input) (float64, error) {
	c := cacheOf(in)
	rp, ra := c.paRanks(in)
	return pearsonRanks(rp, ra), nil
}

// icSharpe measures how consistent the IC is over time: the (finite,
// time-ordered) pairs are cut into consecutive chunks of
// max(2, n / max(3, n/10)) points, and the result is mean/std of the
// chunk ICs (population std). It is 0 with fewer than 4 pairs or 2 chunks.
// When the chunk ICs do not vary, the Python engine returns +10; here the
// sign follows the mean (a consistently wrong model gets -10), and the
// result is clamped to [-10, 10] in general so that a tiny std cannot
// produce an arbitrarily large value.
func icSharpe(in Input) (float64, error) {
	c := cacheOf(in)
	p, a := c.pa(in)
	n := len(p)
	if n < 4 {
		return 0, nil
	}
	chunk := max(2, n/max(3, n/10))
	ics := c.z[:0]
	for k := 0; k+chunk <= n; k += chunk {
		ics = append(ics, c.r.spearman(p[k:k+chunk], a[k:k+chunk]))
	}
	c.z = ics
	if len(ics) < 2 {
		return 0, nil
	}
	mean, std := meanStd(ics)
	if std < 1e-12 {
		if math.Abs(mean) > 1e-12 {
			return 10 * sgn(mean), nil
		}
		return 0, nil
	}
	return clamp(mean/std, -10, 10), nil
}

func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)))
}

// meanReturn is the mean of sgn(signal)·actual: the return of trading one
// unit in the predicted direction.
func meanReturn(in Input) (float64, error) {
	p, a := cacheOf(in).pa(in)
	if len(p) == 0 {
		return 0, nil
	}
	var sum float64
	for i := range p {
		sum += sgn(p[i]) * a[i]
	}
	return sum / float64(len(p)), nil
}

// hitRate is the share of predictions whose sign matches the actual's
// (zero counting as positive on both sides, as in the Python engine).
func hitRate(in Input) (float64, error) {
	p, a := cacheOf(in).pa(in)
	if len(p) == 0 {
		return 0, nil
	}
	hits := 0
	for i := range p {
		if sgn(p[i]) == sgn(a[i]) {
			hits++
		}
	}
	return float64(hits) / float64(len(p)), nil
}

// maxDrawdown is the deepest fall of the cumulative score from its running
// peak (the peak starting at 0), in time order: a value ≤ 0. Points with a
// non-finite score are skipped; fewer than 2 scores give 0.
func maxDrawdown(in Input) (float64, error) {
	var cum, peak, dd float64
	n := 0
	for i := range in.Points {
		s := in.Points[i].Score
		if !finite(s) {
			continue
		}
		n++
		cum += s
		peak = max(peak, cum)
		dd = min(dd, cum-peak)
	}
	if n < 2 {
		return 0, nil
	}
	return dd, nil
}

// sortinoRatio is mean(r)/downside deviation for r = sgn(signal)·actual,
// the downside deviation being sqrt(mean(r²)) over the negative r only.
// Without downside it is clamp(mean·1e6, -10, 10), as in the Python engine.
func sortinoRatio(in Input) (float64, error) {
	p, a := cacheOf(in).pa(in)
	n := len(p)
	if n < 2 {
		return 0, nil
	}
	var sum, down float64
	neg := 0
	for i := range p {
		r := sgn(p[i]) * a[i]
		sum += r
		if r < 0 {
			down += r * r
			neg++
		}
	}
	mean := sum / float64(n)
	if neg == 0 {
		return clamp(mean*1e6, -10, 10), nil
	}
	dd := math.Sqrt(down / float64(neg))
	if dd < 1e-12 {
		return clamp(mean*1e6, -10, 10), nil
	}
	return mean / dd, nil
}

// turnover is the mean absolute change of the signal between consecutive
// predictions of the same scope (time order), i.e. how much a model trading
// its signal would trade. Fewer than one change gives 0.
func turnover(in Input) (float64, error) {
	type last struct {
		scope string
		v     float64
	}
	var (
		lasts []last // few scopes per model: a slice beats a map
		cur   = -1
		sum   float64
		n     int
	)
	for i := range in.Points {
		pt := &in.Points[i]
		if !finite(pt.Signal) {
			continue
		}
		if cur < 0 || lasts[cur].scope != pt.Scope {
			cur = slices.IndexFunc(lasts, func(l last) bool { return l.scope == pt.Scope })
			if cur < 0 {
				lasts = append(lasts, last{scope: pt.Scope, v: pt.Signal})
				cur = len(lasts) - 1
				continue
			}
		}
		sum += math.Abs(pt.Signal - lasts[cur].v)
		n++
		lasts[cur].v = pt.Signal
	}
	if n == 0 {
		return 0, nil
	}
	return sum / float64(n), nil
}

// modelCorrelation is Spearman's ρ between the model's signal and the
// leave-one-out consensus: for each Key, the mean signal of all *other*
// models that predicted that Key (see [Input.Others]). Keys no other model
// predicted are skipped. This replaces the Python engine's mean of
// pairwise correlations, which was index-aligned (wrong) and O(models² ·
// n) (too slow for large competitions); against the consensus it is O(n)
// per model, time-aligned, and still answers the question the metric
// exists for: does this model just repeat what everybody else says?
func modelCorrelation(in Input) (float64, error) {
	c := cacheOf(in)
	c.x, c.y = c.x[:0], c.y[:0]
	sameAsPA := true
	p, _ := c.pa(in)
	k := 0 // walks the pa subset to detect whether both subsets coincide
	for i := range in.Points {
		s := in.Points[i].Signal
		if !finite(s) {
			continue
		}
		mean, n := in.Others(i)
		if n == 0 || !finite(mean) {
			sameAsPA = false
			continue
		}
		if k >= len(c.paIdx) || c.paIdx[k] != int32(i) {
			sameAsPA = false
		} else {
			k++
		}
		c.x = append(c.x, s)
		c.y = append(c.y, mean)
	}
	if len(c.x) < 2 {
		return 0, nil
	}
	if sameAsPA && k == len(p) {
		rp, _ := c.paRanks(in)
		c.ry = grow(c.ry, len(c.y))
		c.r.rank(c.y, c.ry)
		return pearsonRanks(rp, c.ry), nil
	}
	return c.r.spearman(c.x, c.y), nil
}

// fnc is the "feature-neutral" correlation: Spearman's ρ between the
// actual and the signal minus the mean signal of all models (itself
// included) for the same Key. It rewards what a model knows beyond the
// consensus. With no other model in the window it equals ic.
func fnc(in Input) (float64, error) {
	if in.win == nil || len(in.win.series) < 2 {
		return ic(in)
	}
	c := cacheOf(in)
	p, a := c.pa(in)
	c.x, c.y = c.x[:0], c.y[:0]
	ids := in.win.series[in.m].ids
	for j, i := range c.paIdx {
		id := ids[i]
		if x := p[j] - in.win.sum[id]/float64(in.win.cnt[id]); finite(x) {
			c.x = append(c.x, x)
			c.y = append(c.y, a[j])
		}
	}
	return c.r.spearman(c.x, c.y), nil
}

// contribution estimates how much the model improves the ensemble:
// ρ(ensemble, actual) − ρ(others' consensus, actual), over the Keys where
// the model, the ensemble and at least one other model all have a finite
// value. It is 0 without an ensemble.
func contribution(in Input) (float64, error) {
	c := cacheOf(in)
	_, a := c.pa(in)
	c.x, c.y, c.z = c.x[:0], c.y[:0], c.z[:0]
	for j, i := range c.paIdx {
		e, ok := in.Ensemble(int(i))
		if !ok {
			continue
		}
		mean, n := in.Others(int(i))
		if n == 0 || !finite(mean) {
			continue
		}
		c.x = append(c.x, e)
		c.y = append(c.y, mean)
		c.z = append(c.z, a[j])
	}
	if len(c.x) < 2 {
		return 0, nil
	}
	withModel := c.r.spearman(c.x, c.z)
	without := c.r.spearman(c.y, c.z)
	return withModel - without, nil
}

// ensembleCorrelation is Spearman's ρ between the model's signal and the
// ensemble's, per Key. It is 0 without an ensemble.
func ensembleCorrelation(in Input) (float64, error) {
	c := cacheOf(in)
	c.x, c.y = c.x[:0], c.y[:0]
	for i := range in.Points {
		s := in.Points[i].Signal
		e, ok := in.Ensemble(i)
		if !ok || !finite(s) {
			continue
		}
		c.x = append(c.x, s)
		c.y = append(c.y, e)
	}
	return c.r.spearman(c.x, c.y), nil
}
