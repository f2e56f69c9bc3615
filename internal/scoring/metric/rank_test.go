package metric

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// naiveRanks is an independent O(n²) definition of average ranks: the
// number of smaller values plus the mean position among equal ones.
func naiveRanks(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		less, equal := 0, 0
		for _, w := range x {
			switch {
			case w < v:
				less++
			case w == v:
				equal++
			}
		}
		out[i] = float64(less) + float64(equal+1)/2
	}
	return out
}

// naiveSpearman is the textbook definition, written without the package's
// helpers.
func naiveSpearman(x, y []float64) float64 {
	n := len(x)
	if n < 2 {
		return 0
	}
	rx, ry := naiveRanks(x), naiveRanks(y)
	var mx, my float64
	for i := range rx {
		mx += rx[i]
		my += ry[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxy, sxx, syy float64
	for i := range rx {
		sxy += (rx[i] - mx) * (ry[i] - my)
		sxx += (rx[i] - mx) * (rx[i] - mx)
		syy += (ry[i] - my) * (ry[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

func TestSpearman(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		x, y []float64
		want float64
	}{
		{"constant side", []float64{1, 2, 3}, []float64{5, 5, 5}, 0},
		{"empty", nil, nil, 0},
		{"monotonic", []float64{1, 2, 3, 4}, []float64{10, 20, 30, 1000}, 1},
		{"negative zero ties zero", []float64{0, math.Copysign(0, -1), 1}, []float64{1, 1, 2}, 1},
		{"non-finite pairs dropped", []float64{1, math.NaN(), 2, 3}, []float64{3, 0, 2, math.Inf(1)}, -1},
		{"one pair", []float64{1}, []float64{2}, 0},
		{"reversed", []float64{1, 2, 3}, []float64{3, 2, 1}, -1},
		{"ties averaged", []float64{1, 2, 2, 3}, []float64{1, 3, 2, 4}, 4.5 / math.Sqrt(22.5)},
		{"truncated to shorter", []float64{1, 2, 3, 99}, []float64{1, 2, 3}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, tt.want, Spearman(tt.x, tt.y), 1e-12)
		})
	}
}

// TestRankMatchesNaive covers the three sorting paths (insertion, pdq,
// radix) with heavy ties, negative numbers, zeros of both signs and huge
// magnitudes.
func TestRankMatchesNaive(t *testing.T) {
	t.Parallel()

	for _, n := range []int{1, 2, 7, insertionMax, insertionMax + 1, 100, radixMin - 1, radixMin, 3000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(n), 7))
			x := make([]float64, n)
			y := make([]float64, n)
			for i := range x {
				switch rng.IntN(5) {
				case 0:
					x[i] = float64(rng.IntN(5) - 2) // many ties, ±0 included
				case 1:
					x[i] = math.Copysign(0, -1)
				case 2:
					x[i] = rng.NormFloat64() * 1e300
				default:
					x[i] = rng.NormFloat64()
				}
				y[i] = x[i]*0.3 + rng.NormFloat64()
			}
			var r ranker
			got := make([]float64, n)
			r.rank(x, got)
			require.Equal(t, naiveRanks(x), got)
			require.InDelta(t, naiveSpearman(x, y), r.spearman(x, y), 1e-9)
		})
	}
}
