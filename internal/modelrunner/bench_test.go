package modelrunner

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

// BenchmarkCallFanout100 measures one fan-out of predict to 100 trivial
// models, each its own host on loopback TCP in this process. The budget is
// p99 ≤ 5 ms. Run with:
//
//	go test -run '^$' -bench BenchmarkCallFanout100 -benchtime 2000x ./internal/modelrunner/
func BenchmarkCallFanout100(b *testing.B) {
	const n = 100
	models := make([]ModelInfo, n)
	for i := range models {
		models[i], _ = startTCPHost(b, fmt.Sprintf("m%03d", i), "constant", modelhost.Faults{})
	}
	r := NewRunner(RunnerOptions{Client: ClientOptions{CallTimeout: 5 * time.Second}, Logger: slog.New(slog.DiscardHandler)})
	defer r.Close()
	r.Update(models)
	deadline := time.After(30 * time.Second)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for countReady(r) < n {
		select {
		case <-deadline:
			b.Fatalf("only %d of %d models ready", countReady(r), n)
		case <-poll.C:
		}
	}
	args, err := variant.Args("BTCUSDT", 60, 15)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for range 20 { // warm connections and pools
		r.CallEncoded(ctx, "predict", args, nil)
	}

	latencies := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	cpuStart := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		results := r.CallEncoded(ctx, "predict", args, nil)
		latencies = append(latencies, time.Since(start))
		if len(results) != n || results[n-1].Status != StatusSuccess {
			b.Fatalf("got %d results, last %+v", len(results), results[len(results)-1])
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpuStart)/float64(len(latencies))/1e6, "cpu-ms/op")
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// cpuTime is the process's user+system CPU time in nanoseconds; on a shared
// machine it is steadier than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func countReady(r *Runner) int {
	n := 0
	for _, m := range r.Models() {
		if m.Stats.State == ClientReady {
			n++
		}
	}
	return n
}
