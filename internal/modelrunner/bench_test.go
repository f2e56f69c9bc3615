package modelrunner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

// BenchmarkCallFanout100 measures one fan-out of predict to 100 trivial
// models over loopback TCP. The budget is p99 ≤ 5 ms. Two set-ups:
//
//   - hosts=goroutines: each model is a host served by this process, so
//     cpu-ms/op is the client's and the 100 servers' CPU together;
//   - hosts=processes: each model is its own model-server process started by
//     LocalSource, as `crunch-node dev` runs them, so cpu-ms/op is the
//     client's alone.
//
// Run with:
//
//	go test -run '^$' -bench BenchmarkCallFanout100 -benchtime 2000x ./internal/modelrunner/
func BenchmarkCallFanout100(b *testing.B) {
	const n = 100
	b.Run("hosts=goroutines", func(b *testing.B) {
		models := make([]ModelInfo, n)
		for i := range models {
			models[i], _ = startTCPHost(b, fmt.Sprintf("m%03d", i), "constant", modelhost.Faults{})
		}
		r := NewRunner(RunnerOptions{Client: ClientOptions{CallTimeout: 5 * time.Second}, Logger: slog.New(slog.DiscardHandler)})
		defer r.Close()
		r.Update(models)
		benchmarkFanout(b, r, n)
	})
	b.Run("hosts=processes", func(b *testing.B) {
		var file strings.Builder
		file.WriteString("models:\n")
		for i := range n {
			fmt.Fprintf(&file, "  - {id: m%03d, model_name: constant, cruncher_id: c%03d, desired_state: RUNNING, runtime: go, model: constant}\n", i, i)
		}
		path := filepath.Join(b.TempDir(), "models.dev.yml")
		if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		src, err := NewLocalSource(LocalOptions{
			File: path, Logger: testLogger(), PollInterval: -1, Runtimes: map[string]CommandFunc{"go": helperRuntime(b)}, StartTimeout: time.Minute,
		})
		if err != nil {
			b.Fatal(err)
		}
		r := NewRunner(RunnerOptions{Client: ClientOptions{CallTimeout: 5 * time.Second}, Logger: slog.New(slog.DiscardHandler)})
		defer r.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, src, nil) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		}()
		benchmarkFanout(b, r, n)
	})
}

func benchmarkFanout(b *testing.B, r *Runner, n int) {
	deadline := time.After(time.Minute)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for countReady(r) < n {
		select {
		case <-deadline:
			var notReady []string
			for _, m := range r.Models() {
				if m.Stats.State != ClientReady {
					notReady = append(notReady, fmt.Sprintf("%s %s", m.Info.ID, m.Stats.State))
				}
			}
			b.Fatalf("only %d of %d models ready; not ready: %v", countReady(r), n, notReady)
		case <-poll.C:
		}
	}
	args, err := variant.Args("BTCUSDT", 60, 15)
	if err != nil {
		b.Fatal(err)
	}
	call, err := PrepareCall("predict", args, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for range 20 { // warm connections and pools
		r.CallPrepared(ctx, call)
	}

	latencies := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	cpuStart := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		results := r.CallPrepared(ctx, call)
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
