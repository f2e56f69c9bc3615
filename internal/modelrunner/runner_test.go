package modelrunner

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
)

func readyIDs(r *Runner) []string {
	var ids []string
	for _, m := range r.Models() {
		if m.Stats.State == ClientReady {
			ids = append(ids, m.Info.ID)
		}
	}
	return ids
}

func TestRunnerFanout(t *testing.T) {
	t.Parallel()

	var models []ModelInfo
	for _, ex := range []string{"constant", "contrarian", "mean-reversion", "momentum"} {
		m, _ := startTCPHost(t, ex, ex, modelhost.Faults{})
		models = append(models, m)
	}
	slow, _ := startTCPHost(t, "slow", "momentum", modelhost.Faults{Delay: 3 * time.Second})
	models = append(models, slow)

	r := NewRunner(RunnerOptions{Client: testClientOptions(&reports{}), Logger: testLogger()})
	defer r.Close()
	r.Update(models)
	waitFor(t, "5 ready models", func() bool { return len(readyIDs(r)) == 5 })

	start := time.Now()
	results, err := r.Call(t.Context(), "feed_update", candles("BTCUSDT", 100, 101, 103, 102, 104, 107, 106))
	require.NoError(t, err)
	require.Len(t, results, 5)
	// The slow model costs its own deadline, not the sum of anything.
	require.Less(t, time.Since(start), 3*time.Second)

	results, err = r.Call(t.Context(), "predict", "BTCUSDT", 60, 15)
	require.NoError(t, err)
	got := map[string]Result{}
	var order []string
	for _, res := range results {
		got[res.Model.ID] = res
		order = append(order, res.Model.ID)
	}
	require.Equal(t, []string{"constant", "contrarian", "mean-reversion", "momentum", "slow"}, order)
	require.Equal(t, StatusTimeout, got["slow"].Status)
	value := func(id string) float64 {
		res := got[id]
		require.Equal(t, StatusSuccess, res.Status, "%s: %v", id, res.Err)
		require.Less(t, res.ExecTime, 300*time.Millisecond)
		return res.Value.(map[string]any)["value"].(float64)
	}
	// The examples scale their signals by recent volatility into (-1, 1) (modelhost
	// tests pin the formula); here the rising prices must give momentum a positive
	// signal and contrarian exactly its opposite.
	momentum := value("momentum")
	require.InDelta(t, 0.5, value("constant"), 1e-12)
	require.Greater(t, momentum, 0.0)
	require.Less(t, momentum, 1.0)
	require.InDelta(t, -momentum, value("contrarian"), 1e-12)
	// The last close (106) is above the recent mean (104.4): mean reversion bets down.
	reversion := value("mean-reversion")
	require.Less(t, reversion, 0.0)
	require.Greater(t, reversion, -1.0)
	require.Equal(t, "player-momentum", got["momentum"].Model.PlayerID)

	_, err = r.Call(t.Context(), "predict", make(chan int))
	require.ErrorContains(t, err, "calling predict: encoding argument 1")
}

func TestRunnerUpdate(t *testing.T) {
	t.Parallel()

	m, _ := startTCPHost(t, "m1", "constant", modelhost.Faults{})
	r := NewRunner(RunnerOptions{Client: testClientOptions(&reports{})})
	defer r.Close()

	r.Update([]ModelInfo{m, {ID: "m2", State: StateStopped}})
	waitFor(t, "ready", func() bool { return len(readyIDs(r)) == 1 })
	require.Len(t, r.Models(), 1)

	// Same run, new name: details refreshed, same client.
	renamed := m
	renamed.Name = "renamed"
	r.Update([]ModelInfo{renamed})
	require.Equal(t, "renamed", r.Models()[0].Info.Name)
	require.Equal(t, ClientReady, r.Models()[0].Stats.State)

	// New deployment at the same address: a new client, set up again.
	redeployed := renamed
	redeployed.DeploymentID = "m1_20260102_000000_000"
	r.Update([]ModelInfo{redeployed})
	require.Equal(t, redeployed.DeploymentID, r.Models()[0].Info.DeploymentID)
	waitFor(t, "ready again", func() bool { return len(readyIDs(r)) == 1 })

	results, err := r.Call(t.Context(), "predict", "BTC", 60, 15)
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Equal(t, redeployed.DeploymentID, results[0].Model.DeploymentID)

	// RECOVERING and STOPPED remove the model.
	recovering := redeployed
	recovering.State = StateRecovering
	r.Update([]ModelInfo{recovering})
	require.Empty(t, r.Models())
	results, err = r.Call(t.Context(), "predict", "BTC", 60, 15)
	require.NoError(t, err)
	require.Empty(t, results)
}

func TestRunnerWithOrchestrator(t *testing.T) {
	t.Parallel()

	a, _ := startTCPHost(t, "a", "constant", modelhost.Faults{})
	b, _ := startTCPHost(t, "b", "momentum", modelhost.Faults{})
	bad, _ := startTCPHost(t, "c", "momentum", modelhost.Faults{BadImplementation: true})
	fake := newFakeOrchestrator(t)
	src, err := NewOrchestratorSource(OrchestratorOptions{URL: fake.url("crunch-1"), ReconnectDelay: 20 * time.Millisecond, Logger: testLogger()})
	require.NoError(t, err)

	r := NewRunner(RunnerOptions{Client: testClientOptions(nil), Logger: testLogger()})
	defer r.Close()
	mirrored := make(chan []ModelInfo, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, src, func(ms []ModelInfo) { mirrored <- ms }) }()

	conn := fake.accept(t)
	conn.send(t, fmt.Sprintf(`{"event":"init","data":[%s,%s,%s]}`, modelStateJSON(a, "RUNNING"), modelStateJSON(b, "RUNNING"), modelStateJSON(bad, "RUNNING")))
	require.Len(t, <-mirrored, 3)

	// The bad model is reported straight away, over the WebSocket.
	require.JSONEq(t, `{"event":"report_failure","data":[{"model_id":"c","failure_code":"BAD_IMPLEMENTATION","failure_reason":"BAD_IMPLEMENTATION: no subclass of cruncher.ModelBaseClass found","ip":"127.0.0.1"}]}`, conn.read(t))
	waitFor(t, "2 ready models", func() bool { return len(readyIDs(r)) == 2 })

	results, err := r.Call(t.Context(), "predict", "BTC", 60, 15)
	require.NoError(t, err)
	require.Len(t, results, 2)
	for _, res := range results {
		require.Equal(t, StatusSuccess, res.Status)
	}

	// The orchestrator stops the bad model and a: only b remains.
	conn.send(t, fmt.Sprintf(`{"event":"update","data":[%s]}`, modelStateJSON(bad, "STOPPED")))
	conn.send(t, fmt.Sprintf(`{"event":"update","data":[%s]}`, modelStateJSON(a, "STOPPED")))
	waitFor(t, "a dropped", func() bool { return len(r.Models()) == 1 })
	results, err = r.Call(t.Context(), "predict", "BTC", 60, 15)
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Equal(t, "b", results[0].Model.ID)

	cancel()
	require.NoError(t, <-done)
}

// sequenceModel answers feed_update (unless it has none) and predict, recording when
// predict ran.
type sequenceModel struct {
	feedUpdate bool
	predicted  chan time.Time
}

func (m sequenceModel) Method(name string) (modelhost.Method, bool) {
	switch {
	case name == "feed_update" && m.feedUpdate:
		return modelhost.Method{Func: func(context.Context, []any, map[string]any) (any, error) { return nil, nil }}, true
	case name == "predict":
		return modelhost.Method{Func: func(context.Context, []any, map[string]any) (any, error) {
			m.predicted <- time.Now()
			return map[string]any{"value": 0.5}, nil
		}}, true
	}
	return modelhost.Method{}, false
}

func TestRunnerCallSequence(t *testing.T) {
	t.Parallel()

	host := func(id string, m sequenceModel, faults modelhost.Faults) ModelInfo {
		info, _ := startTCPHostConfig(t, id, modelhost.Config{
			Factory: func([]any, map[string]any) (modelhost.Model, error) { return m, nil }, Faults: faults,
		})
		return info
	}
	fast := sequenceModel{feedUpdate: true, predicted: make(chan time.Time, 1)}
	models := []ModelInfo{
		host("a-fast", fast, modelhost.Faults{}),
		// No feed_update: BAD_IMPLEMENTATION retires it, so it is not asked to predict.
		host("b-no-feed-update", sequenceModel{predicted: make(chan time.Time, 1)}, modelhost.Faults{}),
		// Slower than the deadline: its feed_update times out and its predict is skipped.
		host("c-slow", sequenceModel{feedUpdate: true, predicted: make(chan time.Time, 1)}, modelhost.Faults{Delay: 2 * time.Second}),
	}
	opts := testClientOptions(&reports{})
	opts.CallTimeout = time.Second
	r := NewRunner(RunnerOptions{Client: opts, Logger: testLogger()})
	defer r.Close()
	r.Update(models)
	waitFor(t, "3 ready models", func() bool { return len(readyIDs(r)) == 3 })

	feedUpdate, err := Prepare("feed_update", candles("BTCUSDT", 100, 101))
	require.NoError(t, err)
	predict, err := Prepare("predict", "BTC", 60, 15)
	require.NoError(t, err)
	start := time.Now()
	results := r.CallSequence(t.Context(), feedUpdate, predict)
	require.Len(t, results, 2)

	status := func(rs []Result) map[string]Status {
		out := map[string]Status{}
		for _, res := range rs {
			out[res.Model.ID] = res.Status
		}
		return out
	}
	require.Equal(t, map[string]Status{"a-fast": StatusSuccess, "b-no-feed-update": StatusFailed, "c-slow": StatusTimeout}, status(results[0]))
	require.Equal(t, map[string]Status{"a-fast": StatusSuccess, "c-slow": StatusTimeout}, status(results[1]))
	require.Equal(t, "a-fast", results[1][0].Model.ID, "sorted by model ID")
	require.ErrorIs(t, results[1][1].Err, ErrCoolingDown)
	// No barrier: the fast model predicted long before the slow one's feed_update gave
	// up at its one-second deadline.
	require.Less(t, (<-fast.predicted).Sub(start), 500*time.Millisecond)
}

func TestWorkerPool(t *testing.T) {
	t.Parallel()
	p := newWorkerPool(10 * time.Millisecond)
	waitIdle := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for p.workers.Load() > 0 {
			require.True(t, time.Now().Before(deadline), "%d workers still running", p.workers.Load())
			runtime.Gosched()
		}
	}

	// Concurrent jobs each get a worker; idle workers then exit.
	var wg sync.WaitGroup
	release := make(chan struct{})
	wg.Add(3)
	for i := range 3 {
		p.do(poolJob{run: func(int) { defer wg.Done(); <-release }, i: i})
	}
	require.EqualValues(t, 3, p.workers.Load())
	close(release)
	wg.Wait()
	waitIdle()

	// A closed pool still runs a job, and its worker exits after it.
	p.close()
	p.close()
	done := make(chan int, 1)
	p.do(poolJob{run: func(i int) { done <- i }, i: 7})
	require.Equal(t, 7, <-done)
	waitIdle()
}
