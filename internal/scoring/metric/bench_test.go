package metric

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// benchWindow builds models × points scored predictions. Every key string
// is a separate allocation, as rows decoded from the database would be,
// and each model misses about 1 % of the keys.
func benchWindow(models, points int) Window {
	rng := rand.New(rand.NewPCG(1, 2))
	truth := make([]float64, points)
	keys := make([]string, points)
	for k := range truth {
		truth[k] = rng.NormFloat64()
		keys[k] = fmt.Sprintf("%s|btc-60s", t0.Add(time.Duration(k)*15*time.Second).Format(time.RFC3339))
	}
	w := Window{Models: make(map[string][]Point, models)}
	for m := range models {
		p := make([]Point, 0, points)
		skill := rng.Float64()
		for k := range points {
			if rng.IntN(100) == 0 {
				continue
			}
			p = append(p, Point{
				Actual: truth[k],
				At:     t0.Add(time.Duration(k) * 15 * time.Second),
				Key:    strings.Clone(keys[k]),
				Score:  rng.NormFloat64(),
				Signal: skill*truth[k] + rng.NormFloat64(),
			})
		}
		w.Models[fmt.Sprintf("model-%04d", m)] = p
	}
	return w
}

// BenchmarkComputeDefault1000x10000 measures the budget case: the five
// default metrics for 1,000 models × 10,000 scored predictions
// (target ≤ 1 s on 2 vCPU).
func BenchmarkComputeDefault1000x10000(b *testing.B) {
	w := benchWindow(1000, 10_000)
	r := NewRegistry()
	names := DefaultNames()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		res, err := r.Compute(b.Context(), names, w)
		if err != nil || len(res.Failures) > 0 {
			b.Fatal(err, res.Failures)
		}
	}
	cpu = processCPU() - cpu
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/window")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/window")
}

// BenchmarkComputeAll100x10000 covers every built-in metric, with an
// ensemble, on a smaller window.
func BenchmarkComputeAll100x10000(b *testing.B) {
	w := benchWindow(100, 10_000)
	for _, p := range w.Models["model-0000"] {
		w.Ensemble = append(w.Ensemble, Point{At: p.At, Key: p.Key, Signal: p.Signal})
	}
	r := NewRegistry()
	names := r.Names()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Compute(b.Context(), names, w); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/window")
}

// BenchmarkICSharpe10000 isolates the many small Spearman correlations of
// ic_sharpe on one model's 10,000 predictions.
func BenchmarkICSharpe10000(b *testing.B) {
	w := benchWindow(1, 10_000)
	in := Input{Points: w.Models["model-0000"], c: &cache{}}
	for b.Loop() {
		in.c.reset()
		if _, err := icSharpe(in); err != nil {
			b.Fatal(err)
		}
	}
}
