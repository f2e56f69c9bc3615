package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/api"
	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/telemetry"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark measures the
// server's work rather than a recorder's buffer growth (a real connection writes through
// a small bufio.Writer).
type discardWriter struct {
	header  http.Header
	status  int
	written int
}

func (w *discardWriter) Header() http.Header    { return w.header }
func (w *discardWriter) WriteHeader(status int) { w.status = status }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.written += len(p)
	return len(p), nil
}

// BenchmarkLeaderboard serves /reports/leaderboard for 100 models through the whole router
// (metrics, auth, huma, cache) in-process, from parallel goroutines, and reports the
// throughput and the latency percentiles of single requests. The budget is 10,000 req/s
// with p99 ≤ 5 ms on 2 vCPU.
func BenchmarkLeaderboard(b *testing.B) {
	pool := dbtest.NewPool(b)
	f := newFixture(b, pool)
	now := time.Now().UTC()
	for i := range 100 {
		id := fmt.Sprintf("model-%03d", i)
		f.model(b, id, false)
		f.score(b, id, now.Add(-time.Hour), result(float64(i)), "")
	}
	f.refresh(b)
	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: b.TempDir()})
	require.NoError(b, err)
	handler, _ := api.NewHandler(api.Deps{
		Config: cfg, Logger: dbtest.Logger(b), Metrics: telemetry.New(), Pool: pool, Version: "bench",
	})

	warm := httptest.NewRecorder()
	handler.ServeHTTP(warm, httptest.NewRequest(http.MethodGet, "/reports/leaderboard", nil))
	require.Equal(b, http.StatusOK, warm.Code)

	var mu sync.Mutex
	var latencies []time.Duration
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		// One request per goroutine: building one costs more than serving it.
		req := httptest.NewRequest(http.MethodGet, "/reports/leaderboard", nil)
		for pb.Next() {
			w := &discardWriter{header: http.Header{}, status: http.StatusOK}
			began := time.Now()
			handler.ServeHTTP(w, req)
			local = append(local, time.Since(began))
			if w.status != http.StatusOK || w.written != warm.Body.Len() {
				b.Errorf("status %d, %d bytes", w.status, w.written)
				return
			}
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(latencies)
	percentile := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(float64(warm.Body.Len()), "body_bytes")
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "req/s")
	b.ReportMetric(percentile(0.50), "p50_µs")
	b.ReportMetric(percentile(0.99), "p99_µs")
}
