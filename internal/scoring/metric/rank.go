package metric

import (
	"math"
	"slices"
)

// kv is a value's order-preserving sort key and its original index.
type kv struct {
	k uint64
	i int32
}

// sortKey maps a finite float64 to a uint64 with the same order, so that
// sorting can be a radix sort. Both zeros map to the same key: -0 == 0, so
// they must tie.
func sortKey(f float64) uint64 {
	if f == 0 {
		f = 0
	}
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

// ranker holds reusable buffers; one per goroutine.
type ranker struct {
	kv, tmp []kv
	rx, ry  []float64
}

const (
	radixBits    = 11
	radixBuckets = 1 << radixBits
	// Below these sizes the fixed cost of a radix pass (clearing 2048
	// counters, six times) is more than a comparison sort costs.
	insertionMax = 24
	radixMin     = 256
)

// rank writes into out[i] the 1-based rank of x[i], ties sharing the
// average of their positions (the "average" method of scipy.stats.rankdata).
// x must be finite. Average ranks make Spearman's ρ independent of input
// order, unlike the Python engine's stable-sort ranks.
func (r *ranker) rank(x []float64, out []float64) {
	sorted := r.sort(x)
	n := len(sorted)
	for s := 0; s < n; {
		e := s + 1
		for e < n && sorted[e].k == sorted[s].k {
			e++
		}
		avg := float64(s+e+1) / 2
		for _, p := range sorted[s:e] {
			out[p.i] = avg
		}
		s = e
	}
}

// sort returns x's sort keys and indexes in ascending order, in one of the
// ranker's buffers (valid until the next call).
func (r *ranker) sort(x []float64) []kv {
	n := len(x)
	r.kv = slices.Grow(r.kv[:0], n)[:n]
	for i, f := range x {
		r.kv[i] = kv{k: sortKey(f), i: int32(i)}
	}
	switch {
	case n <= insertionMax:
		s := r.kv
		for i := 1; i < n; i++ {
			for j := i; j > 0 && s[j].k < s[j-1].k; j-- {
				s[j], s[j-1] = s[j-1], s[j]
			}
		}
		return s
	case n < radixMin:
		slices.SortFunc(r.kv, func(a, b kv) int {
			switch {
			case a.k < b.k:
				return -1
			case a.k > b.k:
				return 1
			}
			return 0
		})
		return r.kv
	}
	r.tmp = slices.Grow(r.tmp[:0], n)[:n]
	return radixSort(r.kv, r.tmp)
}

// smallMax is the largest n ranked by pair counting; ic_sharpe computes
// about n/10 Spearman correlations of ~10 points per model, where sorting
// (and its mispredicted branches) costs more than comparing all pairs.
const smallMax = 16

// smallSpearman ranks both sides by counting, for each pair, which value is
// smaller (branch-free), then correlates the average ranks. For a pair
// (i, j) each side gains 2 per smaller partner and 1 per equal partner, so
// rank = (acc + 2) / 2 is the average rank.
func smallSpearman(x, y []float64) float64 {
	var ax, ay [smallMax]int32
	n := len(x)
	for i := range n {
		xi, yi := x[i], y[i]
		for j := i + 1; j < n; j++ {
			dx := b2i(xi > x[j]) - b2i(xi < x[j])
			dy := b2i(yi > y[j]) - b2i(yi < y[j])
			ax[i] += 1 + dx
			ax[j] += 1 - dx
			ay[i] += 1 + dy
			ay[j] += 1 - dy
		}
	}
	var rx, ry [smallMax]float64
	for i := range n {
		rx[i] = float64(ax[i]+2) / 2
		ry[i] = float64(ay[i]+2) / 2
	}
	return pearsonRanks(rx[:n], ry[:n])
}

func b2i(b bool) int32 {
	var i int32
	if b {
		i = 1
	}
	return i
}

// radixSort is an LSD radix sort on 11-bit digits; a digit on which every
// key agrees (common in the exponent bits) is skipped. It returns whichever
// buffer holds the result.
func radixSort(a, tmp []kv) []kv {
	var count [radixBuckets]int32
	for shift := uint(0); shift < 64; shift += radixBits {
		clear(count[:])
		for _, x := range a {
			count[(x.k>>shift)&(radixBuckets-1)]++
		}
		if int(count[(a[0].k>>shift)&(radixBuckets-1)]) == len(a) {
			continue
		}
		var sum int32
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, x := range a {
			d := (x.k >> shift) & (radixBuckets - 1)
			tmp[count[d]] = x
			count[d]++
		}
		a, tmp = tmp, a
	}
	return a
}

// spearman returns Spearman's rank correlation of two equally long finite
// series: Pearson's r of their average ranks. It is 0 when n < 2 or either
// side is constant (no ordering information), and always within [-1, 1].
func (r *ranker) spearman(x, y []float64) float64 {
	n := len(x)
	if n < 2 || len(y) != n {
		return 0
	}
	if n <= smallMax {
		return smallSpearman(x, y)
	}
	r.rx = slices.Grow(r.rx[:0], n)[:n]
	r.ry = slices.Grow(r.ry[:0], n)[:n]
	r.rank(x, r.rx)
	r.rank(y, r.ry)
	return pearsonRanks(r.rx, r.ry)
}

// pearsonRanks is Pearson's r for average ranks, whose mean is known to be
// (n+1)/2.
func pearsonRanks(rx, ry []float64) float64 {
	n := len(rx)
	if n < 2 {
		return 0
	}
	mean := float64(n+1) / 2
	var sxx, syy, sxy float64
	for i := range rx {
		dx, dy := rx[i]-mean, ry[i]-mean
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	// The Python engine's threshold: population std below 1e-12.
	if math.Sqrt(sxx/float64(n)) < 1e-12 || math.Sqrt(syy/float64(n)) < 1e-12 {
		return 0
	}
	return clamp(sxy/math.Sqrt(sxx*syy), -1, 1)
}

// Spearman returns Spearman's rank correlation of x and y (average ranks
// for ties), using the pairs where both values are finite. It is 0 when
// fewer than two pairs remain or either side is constant. It is exported
// for callers that need the same definition the metrics use.
func Spearman(x, y []float64) float64 {
	n := min(len(x), len(y))
	xs, ys := make([]float64, 0, n), make([]float64, 0, n)
	for i := range n {
		if finite(x[i]) && finite(y[i]) {
			xs = append(xs, x[i])
			ys = append(ys, y[i])
		}
	}
	var r ranker
	return r.spearman(xs, ys)
}

func finite(f float64) bool {
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}

func clamp(v, lo, hi float64) float64 {
	return max(lo, min(hi, v))
}
